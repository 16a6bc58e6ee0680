"""Small serialisable layers shared by the identity networks.

They replace what would otherwise be Lambda layers (which only load with
``safe_mode=False``): input normalisation, dlib's per-channel ``affine`` layer and dlib's
``add_prev`` (a sum that zero-pads the smaller operand).
"""

from __future__ import annotations

import keras
from keras import ops

_PACKAGE = "exprgan_tf.identity"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FaceNetInput(keras.layers.Layer):
    """Maps images in [-1, 1] to a face network's input range.

    Computes ``((x + 1) / 2 * 255 - mean) * scale`` per RGB channel, i.e. first back to
    0-255 pixel values, then the network's own normalisation.

    Args:
        mean: three per-channel means (RGB) in 0-255 units.
        scale: factor applied after the mean subtraction (VGG-Face: 1, dlib: 1/256).
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> layer = FaceNetInput(mean=(129.1863, 104.7624, 93.5940))
        >>> y = layer(keras.ops.zeros((1, 4, 4, 3)))
    """

    def __init__(self, mean, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        mean = tuple(float(m) for m in mean)
        if len(mean) != 3:
            raise ValueError(f"`mean` must hold 3 values (RGB). Received: mean={mean}")
        self.mean = mean
        self.scale = float(scale)

    def call(self, x):
        mean = ops.convert_to_tensor(self.mean, dtype=x.dtype)
        return ((x + 1.0) * 127.5 - mean) * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mean=list(self.mean), scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ChannelAffine(keras.layers.Layer):
    """Per-channel ``gamma * x + beta``: dlib's ``affine`` layer (a frozen batch norm).

    Args:
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        return x * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PaddedAdd(keras.layers.Layer):
    """Sum of two NHWC maps that zero-pads the smaller one, as dlib's ``add_prev``.

    dlib adds tensors of different sizes by treating missing rows, columns and channels
    as zeros (padding at the bottom, right and channel end). The face ResNet relies on
    this where a block's strided conv gives a smaller map than its 2x2 average-pooled
    shortcut, and where the shortcut has fewer channels. Spatial sizes must be static.

    Args:
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).
    """

    def call(self, inputs):
        a, b = inputs
        target = [max(a.shape[i], b.shape[i]) for i in (1, 2, 3)]

        def pad(x):
            amounts = [(0, 0)] + [(0, t - s) for t, s in zip(target, x.shape[1:])]
            if any(p[1] for p in amounts):
                return ops.pad(x, amounts)
            return x

        return pad(a) + pad(b)

    def compute_output_shape(self, input_shape):
        a, b = input_shape
        dims = []
        for i in (1, 2, 3):
            dims.append(None if a[i] is None or b[i] is None else max(a[i], b[i]))
        return (a[0], *dims)
