"""The encoder E: face image -> identity code z in (-1, 1)^latent_dim.

Two variants, chosen by ``ModelConfig.encoder``:

- ``"single"`` (the original ExprGAN): ``len(encoder_filters)`` blocks of a 5x5
  stride-2 "same" convolution with bias + ReLU (64, 128, 256, 512, 1024 channels:
  128x128 -> 4x4x1024), flatten, Dense to ``latent_dim``, tanh.
- ``"dilated"`` (the paper's two-channel multi-scale block): one such stack of blocks
  per rate in ``encoder_dilations`` (1 and 2), every block a strided
  :class:`~exprgan_tf.layers.DilatedConv2D`; the channels' last maps are concatenated
  before the Dense layer.

Example:
    >>> from exprgan_tf.config import get_preset
    >>> from exprgan_tf.models import build_encoder
    >>> enc = build_encoder(get_preset("proposed-small").model)
    >>> enc.output_shape
    (None, 50)
"""

from __future__ import annotations

import keras

from exprgan_tf.config import ModelConfig
from exprgan_tf.layers import DilatedConv2D
from exprgan_tf.models._blocks import conv_init, dense


def _conv_stack(x, cfg: ModelConfig, dilation: int | None, prefix: str):
    for i, filters in enumerate(cfg.encoder_filters):
        init = conv_init(x.shape[-1], filters, cfg.encoder_kernel)
        name = f"{prefix}conv{i}"
        if dilation is None:  # the original: TF "same" padding, stride 2
            x = keras.layers.Conv2D(filters, cfg.encoder_kernel, strides=2, padding="same",
                                    kernel_initializer=init, name=name)(x)
        else:
            x = DilatedConv2D(filters, cfg.encoder_kernel, strides=2, dilation_rate=dilation,
                              kernel_initializer=init, name=name)(x)
        x = keras.layers.ReLU(name=f"{prefix}relu{i}")(x)
    return x


def build_encoder(cfg: ModelConfig, name: str = "encoder") -> keras.Model:
    """Build E from a :class:`~exprgan_tf.config.ModelConfig`.

    Args:
        cfg: the model config (``encoder``, ``encoder_filters``, ``encoder_kernel``,
            ``encoder_dilations``, ``latent_dim``, ``image_size``, ``channels``).
        name: model name.

    Returns:
        A functional model ``image [N, S, S, C] in [-1, 1] -> z [N, latent_dim]``.
    """
    cfg.validate()
    image = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="image")
    if cfg.encoder == "single":
        x = _conv_stack(image, cfg, None, "E_")
    else:
        branches = [_conv_stack(image, cfg, d, f"E_ch{c}_")
                    for c, d in enumerate(cfg.encoder_dilations)]
        x = (keras.layers.Concatenate(axis=-1, name="E_concat")(branches)
             if len(branches) > 1 else branches[0])
    x = keras.layers.Flatten(name="E_flatten")(x)
    x = dense(x, cfg.latent_dim, name="E_fc")
    z = keras.layers.Activation("tanh", name="E_tanh", dtype="float32")(x)
    return keras.Model(image, z, name=name)
