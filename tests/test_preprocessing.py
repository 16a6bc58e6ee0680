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
