import numpy as np
import pytest
import tensorflow as tf
from skimage import data as skdata
from skimage.filters import unsharp_mask as sk_unsharp_mask
from skimage.transform import resize

from exprgan_tf import preprocessing


def _real_looking():
    img = resize(skdata.astronaut()[:256, 128:384], (64, 64), anti_aliasing=True)
    return (img * 255).round().astype(np.uint8)


@pytest.mark.parametrize("radius, amount", [(1.0, 1.0), (0.5, 2.0), (2.0, 0.5), (3.0, 1.5)])
@pytest.mark.parametrize("kind", ["random", "photo"])
def test_unsharp_mask_matches_scikit_image(radius, amount, kind):
    rng = np.random.default_rng(0)
    img = (rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) if kind == "random"
           else _real_looking())
    # channel_axis=2, not -1: scikit-image issue #7264.
    expected = sk_unsharp_mask(img, radius=radius, amount=amount, channel_axis=2)
    got = preprocessing.unsharp_mask(img, radius=radius, amount=amount).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_unsharp_mask_batched_and_in_tf_data():
    imgs = np.stack([_real_looking(), _real_looking()[::-1]])
    expected = np.stack([sk_unsharp_mask(i, 1.0, 1.0, channel_axis=2) for i in imgs])
    ds = tf.data.Dataset.from_tensor_slices(imgs).map(
        lambda x: preprocessing.unsharp_mask(x, 1.0, 1.0)).batch(2)
    got = next(iter(ds)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(preprocessing.unsharp_mask(imgs).numpy(), expected, atol=1e-4)


def test_rescale_and_inverse():
    img = np.array([[[0, 128, 255]]], np.uint8)
    x = preprocessing.preprocess_image(img).numpy()
    np.testing.assert_allclose(x, [[[-1.0, 128 / 127.5 - 1, 1.0]]], atol=1e-6)
    np.testing.assert_array_equal(preprocessing.to_display(x).numpy(), img)
    sharp = preprocessing.preprocess_image(_real_looking(), unsharp_mask=True).numpy()
    ref = sk_unsharp_mask(_real_looking(), 1.0, 1.0, channel_axis=2) * 2 - 1
    np.testing.assert_allclose(sharp, ref, atol=2e-4)


def test_gaussian_kernel_and_errors():
    k = preprocessing.gaussian_kernel_1d(1.0)
    assert k.size == 9 and abs(k.sum() - 1) < 1e-12
    np.testing.assert_allclose(preprocessing.unsharp_mask(_real_looking(), radius=0.0).numpy(),
                               _real_looking() / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match="radius must be >= 0. Received: radius=-1"):
        preprocessing.unsharp_mask(_real_looking(), radius=-1)


@pytest.mark.parametrize("radius, amount", [(1.0, 1.0), (1.5, 2.0), (0.0, 1.0)])
def test_undo_unsharp_mask_gives_back_the_face_before_sharpening(radius, amount):
    # a face squeezed into [0.35, 0.65]: sharpening it clips nothing, so the undo is exact
    face = _real_looking().astype(np.float32) / 255 * 0.3 + 0.35
    faces = np.stack([face[:, :56], face[::-1, 8:]])          # non-square, batched
    sharp = preprocessing.unsharp_mask(faces, radius, amount)
    assert float(tf.reduce_min(sharp)) > 0 and float(tf.reduce_max(sharp)) < 1
    back = preprocessing.undo_unsharp_mask(sharp, radius, amount).numpy()
    np.testing.assert_allclose(back, faces, atol=2e-5)
    single = preprocessing.undo_unsharp_mask(sharp[0], radius, amount).numpy()
    np.testing.assert_allclose(single, back[0], atol=1e-6)
    if radius > 0:
        assert np.abs(sharp.numpy() - faces).max() > 0.03       # there was something to undo
    # a uint8 photo, where the mask clips: far closer to the photo than its sharpened self
    photo = _real_looking() / 255.0
    sharp = preprocessing.unsharp_mask(photo, radius, amount).numpy()
    undone = preprocessing.undo_unsharp_mask(sharp, radius, amount).numpy()
    assert np.abs(undone - photo).mean() <= 0.3 * np.abs(sharp - photo).mean() + 1e-6
    with pytest.raises(ValueError, match="amount must be >= 0 to be undone"):
        preprocessing.undo_unsharp_mask(photo, radius, -1.0)


def test_grey_is_tensorflows_luma_in_every_channel():
    faces = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    g = preprocessing.grey(faces)
    assert g.dtype == np.uint8 and g.shape == faces.shape and (g == g[..., :1]).all()
    tf_luma = tf.image.rgb_to_grayscale(tf.constant(faces, tf.float32)).numpy()[..., 0]
    np.testing.assert_array_equal(g[..., 0], np.round(tf_luma))
