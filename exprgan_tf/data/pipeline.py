"""``tf.data`` input pipelines: arrays or files -> batches of ([-1, 1] images, one-hot).

Both :func:`make_dataset` (images already in memory) and :func:`make_file_dataset`
(PNG/JPEG files decoded inside ``tf.data``) run the same steps: pre-process once
(unsharp mask per ``PreprocessConfig``, rescale to [-1, 1]) and cache the result, then per
epoch draw a permutation and per-image horizontal flips, gather batches, prefetch.

Reproducible epochs
-------------------
The order and the flips of epoch ``k`` are stateless functions of ``(seed, k)``
(``tf.random.stateless_uniform``), independent of the global TF seed, of the iteration
count and of how often the dataset was rebuilt. A dataset covers the epochs
``epoch, epoch + 1, ..., epoch + num_epochs - 1`` back to back (``num_epochs=None``:
forever), each ending at an epoch boundary (training batches never straddle epochs).
So a run resumed at epoch ``k`` calls ``make_dataset(..., epoch=k)`` and sees exactly the
batches an uninterrupted run would have seen from epoch ``k`` on. Iterating the same
dataset object twice yields the same epochs again.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.config import PreprocessConfig
    >>> images = np.zeros((10, 32, 32, 3), np.uint8)
    >>> labels = np.arange(10) % 6
    >>> ds = make_dataset(images, labels, PreprocessConfig(), batch_size=4, seed=1)
    >>> [tuple(x.shape) for x, y in ds]
    [(4, 32, 32, 3), (4, 32, 32, 3)]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from exprgan_tf.config import PreprocessConfig
from exprgan_tf.preprocessing import preprocess_fn


def steps_per_epoch(num_images: int, batch_size: int, training: bool = True) -> int:
    """Batches per epoch: training drops the remainder, evaluation keeps it."""
    if training:
        return num_images // batch_size
    return -(-num_images // batch_size)


def _check_common(batch_size, num_classes, epoch, num_epochs, seed):
    for name, value, low in (("batch_size", batch_size, 1), ("num_classes", num_classes, 1),
                             ("epoch", epoch, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
    if num_epochs is not None and (isinstance(num_epochs, bool) or
                                   not isinstance(num_epochs, (int, np.integer))
                                   or num_epochs < 1):
        raise ValueError("num_epochs must be a positive integer or None. "
                         f"Received: num_epochs={num_epochs!r}")


def _check_labels(labels, n, num_classes):
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the images. "
                         f"Received: labels.shape={labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers. Received: labels.dtype={labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}). Received values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int32)


def _epochs(full, n, batch_size, training, seed, flip, epoch, num_epochs, num_classes):
    """Turn a one-element dataset (all images, all labels) into batched epochs."""
    if training and n < batch_size:
        raise ValueError(f"A training epoch needs at least one full batch: {n} image(s) < "
                         f"batch_size={batch_size}.")
    seed = int(seed)
    nb = steps_per_epoch(n, batch_size, training)

    def one_epoch(e):
        if training:
            key = tf.stack([tf.constant(seed, tf.int64), 2 * e])
            order = tf.argsort(tf.random.stateless_uniform([n], seed=key))
            order = tf.reshape(order[: nb * batch_size], [nb, batch_size])
            if flip:
                key = tf.stack([tf.constant(seed, tf.int64), 2 * e + 1])
                flips = tf.random.stateless_uniform([n], seed=key) < 0.5
                flips = tf.reshape(flips[: nb * batch_size], [nb, batch_size])
            else:
                flips = tf.zeros([nb, batch_size], tf.bool)
            batches = tf.data.Dataset.from_tensor_slices((order, flips))
        else:
            idx = tf.data.Dataset.range(n).map(lambda i: tf.cast(i, tf.int32))
            batches = idx.batch(batch_size).map(
                lambda i: (i, tf.zeros(tf.shape(i), tf.bool)))

        def gather(images, labels):
            def take(i, f):
                x = tf.gather(images, i)
                x = tf.where(f[:, None, None, None], tf.reverse(x, axis=[2]), x)
                y = tf.one_hot(tf.gather(labels, i), num_classes, dtype=tf.float32)
                return x, y
            return batches.map(take)

        return full.flat_map(gather)

    stop = epoch + num_epochs if num_epochs is not None else np.iinfo(np.int64).max
    ds = tf.data.Dataset.range(epoch, stop).flat_map(one_epoch)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_dataset(images, labels, preprocess_config: PreprocessConfig = None,
                 batch_size: int = 48, training: bool = True, seed: int = 0,
                 flip: bool = True, num_classes: int = 6, epoch: int = 0,
                 num_epochs=1, cache: bool = True) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(images, one-hot labels)`` batches from arrays.

    Args:
        images: uint8 [N, H, W, 3] (0-255) or float [N, H, W, 3] in [0, 1].
        labels: int [N] class indices.
        preprocess_config: unsharp mask settings (``None`` = no sharpening).
        batch_size: images per batch.
        training: shuffle and flip, and drop the last partial batch so every step has
            the same static shape; ``False`` keeps the order and every image.
        seed: seed of the per-epoch order and flips.
        flip: random horizontal flips (training only).
        num_classes: length of the one-hot labels.
        epoch: first epoch to produce (see the module docstring: resuming).
        num_epochs: epochs to produce back to back; ``None`` repeats forever.
        cache: keep the pre-processed images in memory after the first pass.

    Returns:
        A dataset yielding ``(float32 [B, H, W, 3] in [-1, 1], float32 [B, num_classes])``.
        Batches have a static batch dimension when ``training``.
    """
    _check_common(batch_size, num_classes, epoch, num_epochs, seed)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError("images must have shape [N, H, W, 3]. "
                         f"Received: images.shape={images.shape}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("images is empty: expected at least one image. "
                         f"Received: images.shape={images.shape}")
    labels = _check_labels(labels, n, num_classes)
    fn = preprocess_fn(preprocess_config or PreprocessConfig())
    # Pre-process in chunks of 256 (bounded memory), then gather everything into one
    # element so each epoch can index it with its own permutation.
    processed = tf.data.Dataset.from_tensor_slices(images).batch(256).map(fn).unbatch()
    full = tf.data.Dataset.zip(processed.batch(n), tf.data.Dataset.from_tensors(labels))
    if cache:
        full = full.cache()
    return _epochs(full, n, batch_size, training, seed, flip, epoch, num_epochs, num_classes)


def decode_image(contents, image_size: int) -> tf.Tensor:
    """Decode PNG/JPEG/BMP/GIF bytes to uint8 [image_size, image_size, 3].

    Grayscale and RGBA become RGB; a non-square image is centre-cropped to a square, then
    resized (area-averaging when shrinking).
    """
    x = tf.io.decode_image(contents, channels=3, expand_animations=False)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    s = tf.minimum(h, w)
    x = tf.image.crop_to_bounding_box(x, (h - s) // 2, (w - s) // 2, s, s)
    x = tf.image.resize(x, [image_size, image_size], method="area", antialias=True)
    x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(x, [image_size, image_size, 3])


def make_file_dataset(paths, labels, preprocess_config: PreprocessConfig = None,
                      batch_size: int = 48, image_size: int = 128, training: bool = True,
                      seed: int = 0, flip: bool = True, num_classes: int = 6,
                      epoch: int = 0, num_epochs=1, cache=True) -> tf.data.Dataset:
    """Like :func:`make_dataset`, decoding image files inside ``tf.data``.

    Check the files first (``readers.read_images`` or ``readers.scan`` + ``load_split``
    skip corrupt ones with a warning); a corrupt file here raises when decoded.

    Args:
        paths: image file paths (PNG, JPEG, BMP or GIF).
        labels: int [N] class indices.
        image_size: decoded images are centre-cropped and resized to this size.
        cache: ``True`` caches decoded, pre-processed images in memory; a string caches
            them to that file prefix (for data larger than memory); ``False`` re-reads.
        Other arguments: as :func:`make_dataset`.

    Returns:
        The same kind of dataset as :func:`make_dataset`.
    """
    _check_common(batch_size, num_classes, epoch, num_epochs, seed)
    paths = [str(p) for p in paths]
    n = len(paths)
    if n == 0:
        raise ValueError("paths is empty: expected at least one image file.")
    labels = _check_labels(labels, n, num_classes)
    fn = preprocess_fn(preprocess_config or PreprocessConfig())
    files = tf.data.Dataset.from_tensor_slices(paths)
    decoded = files.map(lambda p: fn(decode_image(tf.io.read_file(p), image_size)),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    full = tf.data.Dataset.zip(decoded.batch(n), tf.data.Dataset.from_tensors(labels))
    if cache:
        full = full.cache(cache if isinstance(cache, str) else "")
    return _epochs(full, n, batch_size, training, seed, flip, epoch, num_epochs, num_classes)
