"""tf.data pipeline: shapes, pre-processing, reproducible epochs, files, errors."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from exprgan_tf.config import PreprocessConfig
from exprgan_tf.data import pipeline
from exprgan_tf.preprocessing import preprocess_image

N, S, B = 20, 8, 6


@pytest.fixture(scope="module")
def data():
    """Image i holds value 10*i in the top-left pixel's red channel, a left-right
    asymmetric pattern elsewhere so flips are visible, label i % 6."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, S, S, 3), dtype=np.uint8)
    images[:, :, : S // 2, 1] = 0
    images[:, :, S // 2:, 1] = 255
    images[:, 0, 0, 0] = np.arange(N) * 10
    images[:, 0, -1, 0] = np.arange(N) * 10
    return images, (np.arange(N) % 6).astype(np.int32)


def _ids(x):
    """Image ids of a batch of [-1, 1] images (from the corner pixels)."""
    v = np.round((np.asarray(x)[:, 0, 0, 0] + 1.0) * 127.5 / 10).astype(int)
    return v.tolist()


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_training_batches_shapes_range_and_one_hot(data):
    images, labels = data
    ds = pipeline.make_dataset(images, labels, None, batch_size=B, seed=1)
    assert ds.element_spec[0].shape.as_list() == [B, S, S, 3]
    assert ds.element_spec[1].shape.as_list() == [B, 6]
    out = _batches(ds)
    assert len(out) == pipeline.steps_per_epoch(N, B) == 3
    for x, y in out:
        assert x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.float32 and (y.sum(1) == 1).all()
        assert (y.argmax(1) == labels[_ids(x)]).all()


def test_each_training_epoch_is_a_permutation(data):
    images, labels = data
    ids = sum((_ids(x) for x, _ in _batches(
        pipeline.make_dataset(images, labels, None, batch_size=B, seed=2))), [])
    assert len(ids) == 18 and len(set(ids)) == 18 and set(ids) <= set(range(N))


def test_same_seed_same_batches_other_seed_other_order(data):
    images, labels = data
    a = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=3))
    b = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=3))
    c = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=4))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
    assert [_ids(x) for x, _ in a] != [_ids(x) for x, _ in c]


def test_epoch_k_equals_the_kth_epoch_of_an_uninterrupted_run(data):
    images, labels = data
    run = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=5,
                                         epoch=0, num_epochs=3))
    assert len(run) == 9
    resumed = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=5,
                                             epoch=2))
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1])
               for p, q in zip(run[6:], resumed))
    orders = [sum((_ids(x) for x, _ in run[k * 3:(k + 1) * 3]), []) for k in range(3)]
    assert orders[0] != orders[1] != orders[2]
    # The global TF seed does not change the order.
    tf.random.set_seed(123)
    again = _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=5,
                                           epoch=2))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(resumed, again))


def test_flips_are_random_per_image_and_can_be_disabled(data):
    images, labels = data
    left_dark = lambda x: x[:, :, 0, 1] < 0  # noqa: E731  (green channel 0 on the left)
    flipped = [~left_dark(x).all(axis=1) for x, _ in _batches(pipeline.make_dataset(
        images, labels, None, batch_size=B, seed=6, num_epochs=4))]
    flipped = np.concatenate(flipped)
    assert 0 < flipped.sum() < len(flipped)
    plain = np.concatenate([~left_dark(x).all(axis=1) for x, _ in _batches(
        pipeline.make_dataset(images, labels, None, batch_size=B, seed=6, flip=False))])
    assert not plain.any()


def test_flipped_images_are_exact_mirrors(data):
    images, labels = data
    ref = preprocess_image(images).numpy()
    for x, _ in _batches(pipeline.make_dataset(images, labels, None, batch_size=B, seed=7)):
        for img, i in zip(x, _ids(x)):
            assert np.array_equal(img, ref[i]) or np.array_equal(img, ref[i][:, ::-1])


def test_evaluation_keeps_order_every_image_and_no_flip(data):
    images, labels = data
    cfg = PreprocessConfig(unsharp_mask=True, radius=1.0, amount=1.0)
    out = _batches(pipeline.make_dataset(images, labels, cfg, batch_size=B, training=False))
    assert [len(x) for x, _ in out] == [6, 6, 6, 2]
    x = np.concatenate([x for x, _ in out])
    np.testing.assert_allclose(x, preprocess_image(images, True, 1.0, 1.0).numpy(), atol=1e-6)


def test_file_dataset_decodes_png_and_jpeg_gray_and_odd_sizes(tmp_path, data):
    images, labels = data
    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        Image.fromarray(images[i]).save(p)
        paths.append(str(p))
    ds = pipeline.make_file_dataset(paths, labels[:4], None, batch_size=2, image_size=S,
                                    training=False)
    x = np.concatenate([x for x, _ in _batches(ds)])
    np.testing.assert_allclose(x, preprocess_image(images[:4]).numpy(), atol=1e-6)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 50), 128, np.uint8), mode="L").save(gray, quality=100)
    ds = pipeline.make_file_dataset([str(gray)] * 3, [1, 2, 3], None, batch_size=2,
                                    image_size=16, seed=0)
    (x, y), = _batches(ds)
    assert x.shape == (2, 16, 16, 3) and np.abs(x - (128 / 127.5 - 1)).max() < 0.02


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=np.zeros((0, 8, 8, 3), np.uint8), labels=np.zeros(0, int)),
     "images is empty: expected at least one image. Received: images.shape=(0, 8, 8, 3)"),
    (dict(images=np.zeros((4, 8, 8), np.uint8)),
     "images must have shape [N, H, W, 3]. Received: images.shape=(4, 8, 8)"),
    (dict(labels=np.arange(3)), "labels must have shape (4,) to match the images. "
                                "Received: labels.shape=(3,)"),
    (dict(labels=np.array([0, 1, 2, 6])), "labels must be in [0, 6). Received values in [0, 6]"),
    (dict(batch_size=0), "batch_size must be an integer >= 1. Received: batch_size=0"),
    (dict(epoch=-1), "epoch must be an integer >= 0. Received: epoch=-1"),
    (dict(num_epochs=0), "num_epochs must be a positive integer or None. "
                         "Received: num_epochs=0"),
    (dict(batch_size=5), "A training epoch needs at least one full batch: 4 image(s) < "
                         "batch_size=5."),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    args = dict(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.arange(4), batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError) as e:
        pipeline.make_dataset(**args)
    assert str(e.value) == message


def test_file_dataset_rejects_empty_paths():
    with pytest.raises(ValueError, match="paths is empty: expected at least one image file."):
        pipeline.make_file_dataset([], [], batch_size=2)
