"""The two discriminators: D_z on identity codes and D_img (with the Q heads) on images.

D_z (as the original): Dense 64, 32, 16 each with BatchNorm + ReLU, Dense 1 -> logit.
It tells codes from the prior U(-1, 1)^latent_dim from the encoder's codes.

D_img (as the original): the one-hot label y (not the intensity code) is concatenated
to the image and after every layer; 5x5 stride-2 convs (16, 32, 64, 128) with
BatchNorm + ReLU; flatten, Dense 1024 + BatchNorm + LeakyReLU(0.2), y again = the
shared features; Dense 1 -> real/fake logit. Q, the regulariser that recovers the
intensity code, sits on the shared features: Dense 128 + BatchNorm + LeakyReLU, then
per class Dense 64 + BatchNorm + LeakyReLU -> Dense ``intensity_dim`` + tanh; the
heads are concatenated in class order into a ``code_dim`` vector.

All BatchNorm layers use the TF1 defaults the original had (offset, no scale).
``dimg_normalization="spectral"`` (not the original) replaces the trunk's BatchNorm by
spectral normalisation of its conv and Dense kernels.

Example:
    >>> from exprgan_tf.config import get_preset
    >>> from exprgan_tf.models import build_image_discriminator
    >>> d = build_image_discriminator(get_preset("exprgan-small").model)
    >>> [tuple(o.shape) for o in d.outputs]
    [(None, 1), (None, 30)]
"""

from __future__ import annotations

import keras

from exprgan_tf.config import ModelConfig
from exprgan_tf.layers import ConcatLabel
from exprgan_tf.models._blocks import batch_norm, conv_init, dense, dense_init


def build_latent_discriminator(cfg: ModelConfig, name: str = "latent_discriminator"
                               ) -> keras.Model:
    """Build D_z: ``z [N, latent_dim] -> logit [N, 1]``."""
    cfg.validate()
    z = keras.Input((cfg.latent_dim,), name="z")
    x = z
    for i, units in enumerate(cfg.dz_units):
        x = dense(x, units, name=f"D_z_fc{i}")
        x = batch_norm(x, cfg, f"D_z_bn{i}")
        x = keras.layers.ReLU(name=f"D_z_relu{i}")(x)
    logit = dense(x, 1, name=f"D_z_fc{len(cfg.dz_units)}", dtype="float32")
    return keras.Model(z, logit, name=name)


def build_image_discriminator(cfg: ModelConfig, name: str = "image_discriminator"
                              ) -> keras.Model:
    """Build D_img with Q: ``[image, label one-hot [N, num_classes]] ->
    [logit [N, 1], code [N, code_dim]]``. With ``model.q_sees_label=false`` Q's code
    depends on the image alone."""
    cfg.validate()
    image = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="image")
    label = keras.Input((cfg.num_classes,), name="label")

    spectral = cfg.dimg_normalization == "spectral"

    def trunk(layer, x, bn_name):
        # The original: layer -> BatchNorm; "spectral": the layer's kernel divided by
        # its largest singular value (one power iteration per training call), no BN.
        if spectral:
            return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn")(x)
        return batch_norm(layer(x), cfg, bn_name)

    def down(x, i, prefix):
        # One stride-2 conv of the trunk: conv, normalisation, ReLU.
        filters = cfg.dimg_filters[i]
        conv = keras.layers.Conv2D(filters, cfg.dimg_kernel, strides=2, padding="same",
                                   kernel_initializer=conv_init(x.shape[-1], filters,
                                                                cfg.dimg_kernel),
                                   name=f"{prefix}_conv{i}")
        return keras.layers.ReLU(name=f"{prefix}_relu{i}")(trunk(conv, x, f"{prefix}_bn{i}"))

    x = ConcatLabel(name="D_img_concat_in")([image, label])
    for i in range(len(cfg.dimg_filters)):
        x = ConcatLabel(name=f"D_img_concat{i}")([down(x, i, "D_img"), label])
    x = keras.layers.Flatten(name="D_img_flatten")(x)
    fc1 = keras.layers.Dense(cfg.dimg_dense, kernel_initializer=dense_init(x.shape[-1],
                                                                           cfg.dimg_dense),
                             name="D_img_fc1")
    x = trunk(fc1, x, "D_img_fc1_bn")
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="D_img_fc1_lrelu")(x)
    shared = ConcatLabel(name="D_img_shared")([x, label])
    logit = dense(shared, 1, name="D_img_fc2", dtype="float32")

    if cfg.q_sees_label:
        q = dense(shared, cfg.q_shared_units, name="D_img_q_shared")
    else:
        # Q reads the face alone (model.q_sees_label=false): convs of its own, so no
        # feature it sees carries the label D_img is shown.
        q = image
        for i in range(len(cfg.dimg_filters)):
            q = down(q, i, "D_img_q")
        q = keras.layers.Flatten(name="D_img_q_flatten")(q)
        q = dense(q, cfg.q_shared_units, name="D_img_q_shared")
    q = batch_norm(q, cfg, "D_img_q_shared_bn")
    q = keras.layers.LeakyReLU(negative_slope=0.2, name="D_img_q_shared_lrelu")(q)
    heads = []
    for i in range(cfg.num_classes):
        h = dense(q, cfg.q_head_units, name=f"D_img_q_fc{i}")
        h = batch_norm(h, cfg, f"D_img_q_fc_bn{i}")
        h = keras.layers.LeakyReLU(negative_slope=0.2, name=f"D_img_q_fc_lrelu{i}")(h)
        h = dense(h, cfg.intensity_dim, name=f"D_img_q_cat{i}")
        heads.append(keras.layers.Activation("tanh", name=f"D_img_q_tanh{i}")(h))
    code = keras.layers.Concatenate(axis=-1, name="D_img_q", dtype="float32")(heads)
    return keras.Model([image, label], [logit, code], name=name)
