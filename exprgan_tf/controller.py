"""The expression-code controller: (expression label, intensity) -> code c.

The code c has ``num_classes * intensity_dim`` dims (6 x 5 = 30): one block of
``intensity_dim`` entries per expression class.

Training (the original's sampler): draw ``u ~ U(-1, 1)^intensity_dim``; the target
class's block is ``|u|`` and every other block is ``-|u|``.

Test time (our scalar API): an intensity ``s`` in [0, 1] gives the target block
``s`` in all its entries and every other block ``-s`` - the point ``u = (s, ..., s)``
of the training distribution. ``s = 0`` is the all-zero code shared by every class
(the weakest expression), ``s = 1`` the strongest. A per-dimension intensity of shape
``[N, intensity_dim]`` is accepted too, for sweeps of single code dimensions as the
original's test figures do.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.controller import intensity_code
    >>> c = intensity_code([3], [0.5])
    >>> tuple(c.shape), float(c[0, 15]), float(c[0, 0])
    ((1, 30), 0.5, -0.5)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from exprgan_tf.layers import PACKAGE


def _code_ops(labels, magnitudes, num_classes, intensity_dim):
    """Backend-neutral core: labels [N] int, magnitudes [N, intensity_dim] >= 0."""
    onehot = ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype=magnitudes.dtype)
    sign = 2.0 * onehot - 1.0                                   # +1 target, -1 others
    sign = ops.repeat(sign, intensity_dim, axis=-1)             # [N, C*D]
    mags = ops.tile(magnitudes, [1, num_classes])               # [N, C*D]
    return sign * mags


def _as_magnitudes(intensity, batch, intensity_dim):
    intensity = ops.convert_to_tensor(intensity, "float32")
    if len(intensity.shape) == 0:
        intensity = ops.broadcast_to(intensity, (batch,))
    if len(intensity.shape) == 1:
        intensity = ops.repeat(intensity[:, None], intensity_dim, axis=-1)
    elif len(intensity.shape) == 2 and intensity.shape[-1] == 1:
        intensity = ops.repeat(intensity, intensity_dim, axis=-1)
    return intensity


def intensity_code(labels, intensity, num_classes: int = 6, intensity_dim: int = 5):
    """The test-time code for target ``labels`` at ``intensity``.

    Args:
        labels: int expression indices, shape ``[N]``.
        intensity: float in [0, 1]: a scalar, shape ``[N]``, or ``[N, intensity_dim]``.
        num_classes: number of expression classes.
        intensity_dim: code dims per class.

    Returns:
        float32 tensor ``[N, num_classes * intensity_dim]``.

    Raises:
        ValueError: for a label outside ``[0, num_classes)`` or an intensity outside
            [0, 1] (checked when the values are known, i.e. eagerly).
    """
    labels_np = np.asarray(labels)
    if labels_np.ndim != 1:
        raise ValueError(f"labels must have shape [N]. Received: shape={labels_np.shape}")
    if labels_np.size and (labels_np.min() < 0 or labels_np.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}). Received: labels={labels_np}")
    inten_np = np.asarray(intensity, dtype=np.float32)
    if inten_np.size and (inten_np.min() < 0.0 or inten_np.max() > 1.0):
        raise ValueError(f"intensity must be in [0, 1]. Received: intensity={inten_np}")
    mags = _as_magnitudes(inten_np, labels_np.shape[0], intensity_dim)
    return _code_ops(labels_np, mags, num_classes, intensity_dim)


def sample_training_code(labels, seed, num_classes: int = 6,
                         intensity_dim: int = 5) -> tf.Tensor:
    """The original's training code: target block ``|u|``, other blocks ``-|u|``.

    Args:
        labels: int ``[N]`` class indices, or one-hot ``[N, num_classes]``.
        seed: stateless seed, int shape ``[2]``; the same seed gives the same codes
            (the trainer derives it from the run seed, epoch and step).
        num_classes, intensity_dim: code layout.

    Returns:
        float32 ``[N, num_classes * intensity_dim]``.
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2:
        labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
    u = tf.random.stateless_uniform([tf.shape(labels)[0], intensity_dim], seed, -1.0, 1.0)
    return _code_ops(labels, tf.abs(u), num_classes, intensity_dim)


def sample_latent_prior(seed, batch_size, latent_dim: int) -> tf.Tensor:
    """Draw z ~ U(-1, 1)^latent_dim (the prior D_z compares the encoder's codes with)
    from a stateless ``seed`` of shape ``[2]``."""
    return tf.random.stateless_uniform([batch_size, latent_dim], seed, -1.0, 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExpressionCode(keras.layers.Layer):
    """Keras layer form of :func:`intensity_code`, for models and SavedModels.

    Called on ``[labels, intensity]`` with labels int ``[N]`` (or ``[N, 1]``) and
    intensity float ``[N]`` / ``[N, 1]`` / ``[N, intensity_dim]``. Intensities are
    clipped to [0, 1] (graph inputs cannot raise per value; validate before calling
    when you need an error).

    Args:
        num_classes: expression classes.
        intensity_dim: code dims per class.
        scale: the code of intensity ``s`` is that of ``scale * s`` (after the clip;
            ``model.intensity_scale``). The code is linear in the intensity.

    Example:
        >>> layer = ExpressionCode(scale=0.5)
        >>> c = layer([np.array([3]), np.array([0.8], "float32")])
        >>> round(float(c[0, 15]), 6), round(float(c[0, 0]), 6)
        (0.4, -0.4)
    """

    def __init__(self, num_classes=6, intensity_dim=5, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.intensity_dim = intensity_dim
        self.scale = float(scale)

    def call(self, inputs):
        labels, intensity = inputs
        labels = ops.reshape(labels, (-1,))
        intensity = ops.clip(ops.cast(intensity, self.compute_dtype), 0.0, 1.0)
        if len(intensity.shape) == 2 and intensity.shape[-1] == self.intensity_dim:
            mags = intensity
        else:
            mags = ops.repeat(ops.reshape(intensity, (-1, 1)), self.intensity_dim, axis=-1)
        if self.scale != 1.0:
            mags = mags * self.scale
        return _code_ops(labels, mags, self.num_classes, self.intensity_dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.num_classes * self.intensity_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "intensity_dim": self.intensity_dim,
                       "scale": self.scale})
        return config
