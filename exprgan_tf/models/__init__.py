"""Builders of every ExprGAN network, one module each:

- :mod:`~exprgan_tf.models.encoder`: E (``single`` or the paper's ``dilated``);
- :mod:`~exprgan_tf.models.decoder`: G;
- :mod:`~exprgan_tf.models.discriminators`: D_z and D_img with the Q heads.

:func:`build_networks` builds all four from one config.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from exprgan_tf.config import ModelConfig
from exprgan_tf.models.decoder import build_decoder, decode, takes_base
from exprgan_tf.models.discriminators import (build_image_discriminator,
                                              build_latent_discriminator)
from exprgan_tf.models.encoder import build_encoder


@dataclass
class Networks:
    """The four networks of one ExprGAN."""

    encoder: keras.Model
    decoder: keras.Model
    latent_discriminator: keras.Model
    image_discriminator: keras.Model

    def as_dict(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder,
                "latent_discriminator": self.latent_discriminator,
                "image_discriminator": self.image_discriminator}


def build_networks(cfg: ModelConfig) -> Networks:
    """Build E, G, D_z and D_img from one :class:`~exprgan_tf.config.ModelConfig`."""
    return Networks(encoder=build_encoder(cfg), decoder=build_decoder(cfg),
                    latent_discriminator=build_latent_discriminator(cfg),
                    image_discriminator=build_image_discriminator(cfg))


__all__ = ["Networks", "build_networks", "build_encoder", "build_decoder", "decode", "takes_base",
           "build_latent_discriminator", "build_image_discriminator"]
