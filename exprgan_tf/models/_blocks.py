"""Initialisers and small block helpers shared by the network builders.

The initialisers reproduce the original ExprGAN's (TF1 ``ops.py``) so a freshly built
network starts from the same distribution:

- stride-2 5x5 convs (encoder, D_img): truncated normal with
  ``stddev = sqrt(2 / (sqrt(c_in * c_out) * k**2))``, zero bias;
- dense layers: normal with ``stddev = sqrt(1 / sqrt(n_in * n_out))``, zero bias;
- the decoder's 3x3 convs: truncated normal with ``stddev = 0.02``, no bias.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def conv_init(c_in: int, c_out: int, kernel: int) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(
        stddev=math.sqrt(2.0 / (math.sqrt(c_in * c_out) * kernel ** 2)))


def dense_init(n_in: int, n_out: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=math.sqrt(1.0 / math.sqrt(n_in * n_out)))


def decoder_conv_init() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


def dense(x, units: int, name: str, dtype=None):
    """A Dense layer with the original's initialiser (needs a known input width)."""
    return keras.layers.Dense(units, kernel_initializer=dense_init(x.shape[-1], units),
                              name=name, dtype=dtype)(x)


def synchronized_batch_norm() -> bool:
    """Whether a BatchNorm layer built now synchronises its batch statistics across
    replicas: only when the ``tf.distribute`` strategy in scope has several, so a
    distributed step equals the single-device one. With one replica the plain
    statistics are the same numbers (up to float rounding: the synchronised path
    computes ``E[x^2] - E[x]^2``, the plain one ``E[(x - E[x])^2]``) without the
    synchronised path's extra sums and all-reduces. The variables are the same either
    way, so checkpoints and weight files load into both."""
    return tf.distribute.get_strategy().num_replicas_in_sync > 1


def batch_norm(x, cfg, name: str):
    """The discriminators' BatchNorm: TF1 ``contrib.layers.batch_norm`` defaults
    (learned offset, no scale, momentum 0.999, epsilon 1e-3); statistics synchronised
    when the strategy has several replicas (:func:`synchronized_batch_norm`)."""
    return keras.layers.BatchNormalization(momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon,
                                           scale=False, synchronized=synchronized_batch_norm(),
                                           name=name)(x)
