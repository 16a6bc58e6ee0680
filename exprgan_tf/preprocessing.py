"""Image pre-processing as TensorFlow ops, usable inside ``tf.data`` and in graphs.

The paper sharpens each input face with an unsharp mask and then rescales it to
[-1, 1]. :func:`unsharp_mask` reproduces ``skimage.filters.unsharp_mask`` (same
``radius`` = Gaussian sigma and ``amount`` semantics, the same 'reflect' border, the
same clipping to [0, 1]) so results match scikit-image to ~1e-6.

Example:
    >>> import numpy as np
    >>> from exprgan_tf import preprocessing
    >>> img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> x = preprocessing.preprocess_image(img, unsharp_mask=True, radius=1.0, amount=1.0)
    >>> float(x.numpy().min()) >= -1.0
    True
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1-D kernel ``scipy.ndimage.gaussian_filter`` uses (radius = int(truncate*sigma+0.5))."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0. Received: sigma={sigma!r}")
    if sigma == 0:
        return np.ones(1, dtype=np.float64)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return k / k.sum()


def to_float01(images) -> tf.Tensor:
    """uint8 0-255 -> float32 in [0, 1]; float inputs are assumed to be in [0, 1]."""
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def gaussian_blur(images, sigma: float, truncate: float = 4.0) -> tf.Tensor:
    """Separable Gaussian blur of [H, W, C] or [N, H, W, C] float images, per channel,
    with scipy's 'reflect' border (= ``tf.pad`` SYMMETRIC)."""
    images = tf.convert_to_tensor(images, tf.float32)
    kernel = gaussian_kernel_1d(sigma, truncate)
    r = (kernel.size - 1) // 2
    if r == 0:
        return images
    batched = images.shape.rank == 4
    x = images if batched else images[tf.newaxis]
    channels = x.shape[-1]
    if channels is None:
        raise ValueError("gaussian_blur needs a known number of channels.")
    k = tf.constant(kernel, tf.float32)
    ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, channels, 1])
    kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, channels, 1])
    # scipy reflects repeatedly for radii longer than the image; SYMMETRIC pads once,
    # which is exact whenever r <= size (every practical face image).
    x = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    x = tf.nn.depthwise_conv2d(x, ky, strides=[1, 1, 1, 1], padding="VALID")
    x = tf.nn.depthwise_conv2d(x, kx, strides=[1, 1, 1, 1], padding="VALID")
    return x if batched else x[0]


def unsharp_mask(images, radius: float = 1.0, amount: float = 1.0) -> tf.Tensor:
    """``skimage.filters.unsharp_mask(image, radius, amount, channel_axis=2)`` in TF.

    Args:
        images: uint8 (0-255) or float ([0, 1]) images, [H, W, C] or [N, H, W, C].
        radius: standard deviation of the Gaussian blur (0 = no sharpening).
        amount: how much of the detail (image - blurred) is added back.

    Returns:
        float32 images in [0, 1], same shape.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0. Received: radius={radius!r}")
    x = to_float01(images)
    blurred = gaussian_blur(x, radius)
    return tf.clip_by_value(x + (x - blurred) * amount, 0.0, 1.0)


def undo_unsharp_mask(images, radius: float = 1.0, amount: float = 1.0) -> tf.Tensor:
    """The inverse of :func:`unsharp_mask`: the image that the mask sharpens into
    ``images`` (exact up to float rounding wherever the mask did not clip).

    The mask is the linear filter ``(1 + amount) x - amount * blur(x)``; a separable
    Gaussian with the 'reflect' border is diagonal in the 2-D DCT-II basis, so the
    filter is undone by dividing each DCT coefficient by its gain ``1 + amount *
    (1 - g_y g_x)`` (>= 1 for ``amount >= 0``: the inverse is stable). Used to score
    what a generator trained on sharpened faces draws once its sharpening is undone
    (``benchmarks/train_learning.py --undo-sharpening``).

    Args:
        images: uint8 (0-255) or float ([0, 1]) images, [H, W, C] or [N, H, W, C], no
            smaller than the Gaussian's radius.
        radius, amount: those the images were sharpened with.

    Returns:
        float32 images in [0, 1], same shape.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).uniform(0.3, 0.7, (16, 16, 3)).astype("float32")
        >>> x = gaussian_blur(x, 2.0)   # smooth: sharpening it stays inside [0, 1]
        >>> back = undo_unsharp_mask(unsharp_mask(x, 1.0, 1.0), 1.0, 1.0)
        >>> float(np.abs(back.numpy() - x.numpy()).max()) < 1e-5
        True
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0. Received: radius={radius!r}")
    if amount < 0:
        raise ValueError(f"amount must be >= 0 to be undone. Received: amount={amount!r}")
    x = to_float01(images)
    batched = x.shape.rank == 4
    x = x if batched else x[tf.newaxis]
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError("undo_unsharp_mask needs images of a known height and width.")
    kernel = gaussian_kernel_1d(radius)
    r = (kernel.size - 1) // 2

    def gain_1d(n):  # the Gaussian's gain at each DCT-II frequency of an n-pixel axis
        j = np.arange(-r, r + 1)
        return (kernel[None] * np.cos(np.pi * np.arange(n)[:, None] * j[None] / n)).sum(1)

    gain = 1.0 + amount * (1.0 - np.outer(gain_1d(height), gain_1d(width)))
    y = tf.transpose(x, [0, 3, 1, 2])                                       # [N, C, H, W]
    y = tf.signal.dct(y, type=2, norm="ortho")                              # along W
    y = tf.signal.dct(tf.linalg.matrix_transpose(y), type=2, norm="ortho")  # along H
    y = y / tf.constant(gain.T, tf.float32)                                 # [W, H]
    y = tf.linalg.matrix_transpose(tf.signal.idct(y, type=2, norm="ortho"))
    y = tf.signal.idct(y, type=2, norm="ortho")
    y = tf.clip_by_value(tf.transpose(y, [0, 2, 3, 1]), 0.0, 1.0)
    return y if batched else y[0]


_sharpen = unsharp_mask  # preprocess_image's argument shadows the name


LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G and B (:func:`grey`; ``tf.image.rgb_to_grayscale``'s)."""


def grey(images) -> np.ndarray:
    """uint8 RGB ``images`` ``[..., 3]`` in grey (ITU-R 601 luma, rounded), repeated over
    the three channels, so networks that take colour read them unchanged in shape.

    Example:
        >>> grey(np.array([[255, 0, 0], [0, 0, 255], [10, 20, 30]], np.uint8)).tolist()
        [[76, 76, 76], [29, 29, 29], [18, 18, 18]]
    """
    luma = np.asarray(images, np.float32) @ np.array(LUMA, np.float32)
    return np.repeat(np.round(luma)[..., None], 3, -1).clip(0, 255).astype(np.uint8)


def to_model_range(images01) -> tf.Tensor:
    """[0, 1] float -> [-1, 1] (the range every network works in)."""
    return tf.convert_to_tensor(images01, tf.float32) * 2.0 - 1.0


def to_display(images) -> tf.Tensor:
    """[-1, 1] float model images -> uint8 0-255 for display and saving."""
    x = (tf.convert_to_tensor(images, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def preprocess_image(images, unsharp_mask: bool = False, radius: float = 1.0,
                     amount: float = 1.0) -> tf.Tensor:
    """The full pre-processing: optional unsharp mask, then rescale to [-1, 1].

    Args:
        images: uint8 0-255 or float [0, 1] images, [H, W, C] or [N, H, W, C].
        unsharp_mask: sharpen first (the paper's proposed pre-processing).
        radius, amount: unsharp-mask parameters (scikit-image semantics).
    """
    x = to_float01(images)
    if unsharp_mask:
        x = _sharpen(x, radius=radius, amount=amount)
    return to_model_range(x)


def preprocess_fn(config):
    """A ``tf.data``-ready function ``uint8 image -> [-1, 1] float`` from a
    :class:`~exprgan_tf.config.PreprocessConfig`."""
    def fn(images):
        return preprocess_image(images, config.unsharp_mask, config.radius, config.amount)
    return fn

