"""The decoder / generator G: (identity code z, expression code c) -> face image.

As the original: z concatenated with ``label_tile`` copies of c (50 + 8*30 = 290 dims);
Dense to a ``S/32 x S/32 x decoder_start_filters`` map + ReLU; c broadcast and
concatenated after that and after every block; ``len(decoder_filters)`` blocks of
nearest-neighbour upsampling x2 + 3x3 conv (no bias) + ReLU; a 3x3 conv to
``decoder_final_filters`` + ReLU; a 3x3 conv to ``channels`` + tanh.
``decoder_batch_norm=True`` (not the original) adds BatchNorm after every conv but the
last. ``decoder_output="blend"`` (not the original) adds a parallel 3x3 conv + sigmoid
to a one-channel mask and a third input, the face to edit: G gives
``mask * face + (1 - mask) * image``. Call G through :func:`decode`, which passes that
face when G takes one. ``decoder_output="residual"`` (not the original) takes the same
third input and gives ``clip(face + image, -1, 1)``: G draws a change on the face.
``decoder_sees_face=True`` (not the original) takes that face with any output and
concatenates it, average-pooled to each stage's size, to the start map, to every
block's output and to the last conv's: G's layers see the face they edit.
``decoder_face_hole=True`` (not the original) blanks that face first wherever the
editor's paste map gives G at least :data:`FACE_HOLE_FROM` of the edit
(:class:`~exprgan_tf.layers.BlankRegions`, its 0/1 map a weight filled here);
``decoder_hole_blur=k`` fills the hole with the face average-pooled over ``k x k``
cells instead (a :class:`~exprgan_tf.layers.PasteRegions` of that blur), and
``decoder_hole_blur_above`` keeps that fill to the upper part of the face, the hole
left blank below it or (``decoder_hole_blur_below``) filled there with coarser cells.
``code_knots=K`` (not the original) passes c through a learned piecewise-linear
function of each entry (:class:`~exprgan_tf.layers.PiecewiseLinear`, K knots, starting
as the identity) before any layer reads it.
``code_at="output"`` (not the original) gives c to no layer: the last conv draws
``1 + code_dim`` images' worth of channels from z and the face, and c mixes them
(:class:`~exprgan_tf.layers.CodeMix`) before the tanh; ``code_levels=K`` mixes
``1 + num_classes * K`` instead, weighted by each class's intensity on ``K`` levels
(:class:`~exprgan_tf.layers.CodeLevels`). ``rest_sees_face=True`` (not
the original; with that and the hole) draws the zero code's map from two convs of its
own that read the last features and the whole face, hole included.

Example:
    >>> from exprgan_tf.config import get_preset
    >>> from exprgan_tf.models import build_decoder
    >>> dec = build_decoder(get_preset("exprgan-small").model)
    >>> dec.output_shape
    (None, 64, 64, 3)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from exprgan_tf.config import ModelConfig
from exprgan_tf.layers import (BlankRegions, CodeLevels, CodeMix, ConcatLabel, MaskedBlend,
                               PasteRegions, PiecewiseLinear)
from exprgan_tf.models._blocks import decoder_conv_init, dense, synchronized_batch_norm

# decoder_face_hole: G does not see the face where the paste map is at least this (36%
# of a 64x64 built-in face at edit_regions=90); where it is less the editor keeps 90%
# or more of the input.
FACE_HOLE_FROM = 0.1


def _conv(x, filters, cfg, name, batch_norm=False):
    x = keras.layers.Conv2D(filters, cfg.decoder_kernel, padding="same", use_bias=False,
                            kernel_initializer=decoder_conv_init(), name=name)(x)
    if batch_norm:
        # Keras defaults (scale and offset); statistics synchronised when there are
        # several replicas, like the discriminators', so a distributed step equals the
        # single-device one.
        x = keras.layers.BatchNormalization(synchronized=synchronized_batch_norm(),
                                            name=f"{name}_bn")(x)
    return x


def build_decoder(cfg: ModelConfig, name: str = "decoder") -> keras.Model:
    """Build G from a :class:`~exprgan_tf.config.ModelConfig`.

    Returns:
        A functional model ``[z [N, latent_dim], code [N, code_dim]] -> image
        [N, S, S, channels]`` in [-1, 1]; with ``cfg.decoder_output == "blend"``
        ``[z, code, base [N, S, S, channels]] -> [image, mask [N, S, S, 1]]``; with
        ``"residual"`` ``[z, code, base] -> clip(base + image, -1, 1)``; with
        ``cfg.decoder_sees_face`` and ``"image"`` ``[z, code, base] -> image``.
    """
    cfg.validate()
    z = keras.Input((cfg.latent_dim,), name="z")
    code = keras.Input((cfg.code_dim,), name="code")
    base = (keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="base")
            if cfg.decoder_sees_face or cfg.decoder_output != "image" else None)
    start = cfg.image_size // 2 ** len(cfg.decoder_filters)
    # decoder_face_hole: G sees the face without the regions the editor takes from G,
    # blank there or (decoder_hole_blur) the face's k x k cell means.
    # (validate() allows decoder_hole_blur only with decoder_face_hole.)
    seen = base
    if cfg.decoder_hole_blur:
        def cell_means(k, prefix):
            # the face average-pooled over k x k cells, resized back bilinearly
            pooled = keras.layers.AveragePooling2D(k, name=f"{prefix}_pool")(base)
            return keras.layers.Resizing(cfg.image_size, cfg.image_size, "bilinear",
                                         name=f"{prefix}_resize")(pooled)

        blur = cell_means(cfg.decoder_hole_blur, "G_hole_blur")
        if cfg.decoder_hole_blur_above < 1.0 and cfg.decoder_hole_blur_below:
            # from that row down, coarser cells
            coarse = cell_means(cfg.decoder_hole_blur_below, "G_hole_blur_below")
            blur = PasteRegions(name="G_hole_blur_rows")([coarse, blur])
        elif cfg.decoder_hole_blur_above < 1.0:  # the fill blank from that row down
            blur = BlankRegions(name="G_hole_blur_rows")(blur)
        seen = PasteRegions(name="G_face_hole")([blur, base])
    elif cfg.decoder_face_hole:
        seen = BlankRegions(name="G_face_hole")(base)

    def with_face(x, suffix):
        # decoder_sees_face: the face, pooled to x's size, beside x's channels.
        if not cfg.decoder_sees_face:
            return x
        factor = cfg.image_size // x.shape[1]
        face = seen if factor == 1 else keras.layers.AveragePooling2D(
            factor, name=f"G_face_pool_{suffix}")(seen)
        return keras.layers.Concatenate(name=f"G_face_{suffix}")([x, face])

    code_in = code
    if cfg.code_knots:  # (not the original) every layer reads the code through knots
        code = PiecewiseLinear(cfg.code_knots, cfg.code_knot_gain, name="G_code_knots")(code)
    in_layers = cfg.code_at == "layers"

    def with_code(x, name, **kwargs):
        # every layer reads c, as the original; with code_at="output" none does
        return ConcatLabel(name=name, **kwargs)([x, code]) if in_layers else x

    x = with_code(z, "G_concat_z", duplicate=cfg.label_tile)
    x = dense(x, start * start * cfg.decoder_start_filters, name="G_fc")
    x = keras.layers.Reshape((start, start, cfg.decoder_start_filters), name="G_reshape")(x)
    x = keras.layers.ReLU(name="G_fc_relu")(x)
    x = with_code(with_face(x, "fc"), "G_concat_fc")
    for i, filters in enumerate(cfg.decoder_filters):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"G_up{i}")(x)
        x = _conv(x, filters, cfg, f"G_conv{i}", cfg.decoder_batch_norm)
        x = keras.layers.ReLU(name=f"G_relu{i}")(x)
        x = with_code(with_face(x, str(i)), f"G_concat{i}")
    x = _conv(x, cfg.decoder_final_filters, cfg, "G_conv_final", cfg.decoder_batch_norm)
    x = keras.layers.ReLU(name="G_relu_final")(x)
    features = with_code(with_face(x, "final"), "G_concat_final")
    if in_layers:
        x = _conv(features, cfg.channels, cfg, "G_conv_out")
    else:  # code_at="output": c mixes 1 + code_dim drawings, linear in c before the tanh
        mix, mix_dim = code, cfg.code_dim
        if cfg.code_levels:  # or 1 + classes * levels drawings, one per class and level
            mix = CodeLevels(cfg.num_classes, cfg.code_levels, name="G_code_levels")(code)
            mix_dim = cfg.num_classes * cfg.code_levels
        if cfg.rest_sees_face:  # the zero code's map A also reads the face in the hole
            rest = keras.layers.Concatenate(name="G_rest_face")([features, base])
            rest = _conv(rest, cfg.decoder_final_filters, cfg, "G_conv_rest_hidden")
            rest = _conv(keras.layers.ReLU(name="G_relu_rest")(rest), cfg.channels, cfg,
                         "G_conv_rest")
            x = _conv(features, cfg.channels * mix_dim, cfg, "G_conv_out")
            x = keras.layers.Concatenate(name="G_rest_and_code_maps")([rest, x])
        else:
            x = _conv(features, cfg.channels * (1 + mix_dim), cfg, "G_conv_out")
        x = CodeMix(cfg.channels, name="G_code_mix")([x, mix])
    image = keras.layers.Activation("tanh", name="G_tanh", dtype="float32")(x)
    if cfg.decoder_output == "image":
        model = keras.Model([z, code_in] if base is None else [z, code_in, base], image, name=name)
    elif cfg.decoder_output == "residual":
        edited = keras.layers.Add(name="G_residual", dtype="float32")([base, image])
        edited = keras.layers.Activation("hard_tanh", name="G_clip", dtype="float32")(edited)
        model = keras.Model([z, code_in, base], edited, name=name)
    else:
        mask = keras.layers.Conv2D(1, cfg.decoder_kernel, padding="same",
                                   kernel_initializer=decoder_conv_init(),
                                   name="G_conv_mask")(features)
        mask = keras.layers.Activation("sigmoid", name="G_mask", dtype="float32")(mask)
        blended = MaskedBlend(name="G_blend", dtype="float32")([image, mask, base])
        model = keras.Model([z, code_in, base], [blended, mask], name=name)
    if cfg.decoder_face_hole:
        from exprgan_tf.data.regions import expression_regions  # renders faces: lazy

        hole = expression_regions(cfg.image_size, cfg.edit_regions) >= FACE_HOLE_FROM
        model.get_layer("G_face_hole").regions.assign(hole[..., None].astype("float32"))
        if cfg.decoder_hole_blur and cfg.decoder_hole_blur_above < 1.0:
            rows = np.arange(cfg.image_size) >= cfg.decoder_hole_blur_above * cfg.image_size
            below = np.broadcast_to(rows[:, None, None], (cfg.image_size, cfg.image_size, 1))
            model.get_layer("G_hole_blur_rows").regions.assign(below.astype("float32"))
    return model


def takes_base(decoder: keras.Model) -> bool:
    """Whether ``decoder`` is a ``blend`` or ``residual`` G or one that sees the face
    (``decoder_sees_face``): its third input is the face it edits."""
    return len(decoder.inputs) == 3


def decode(decoder: keras.Model, z, code, base=None, training=False, with_mask=False):
    """``G(z, code)``, for either kind of G.

    Args:
        decoder: a model from :func:`build_decoder`.
        z: ``[N, latent_dim]`` identity codes.
        code: ``[N, code_dim]`` expression codes.
        base: ``[N, S, S, channels]`` the pre-processed faces being edited, which a
            ``blend`` G keeps where its mask is 1, a ``residual`` G draws on and a G
            that sees the face reads at every stage; ignored by any other G. ``None``
            (samples from the prior, which edit no face) gives them a zero image.
        training: passed to the model (BatchNorm statistics).
        with_mask: also return a blend G's mask (``None`` for another G).

    Returns:
        ``[N, S, S, channels]`` images in [-1, 1]; with ``with_mask`` the pair
        ``(images, mask [N, S, S, 1] or None)``.
    """
    if not takes_base(decoder):
        image = decoder([z, code], training=training)
        return (image, None) if with_mask else image
    z, code = tf.convert_to_tensor(z), tf.convert_to_tensor(code)  # Keras refuses a mix
    if base is None:
        base = tf.zeros(tf.concat([tf.shape(z)[:1], decoder.inputs[2].shape[1:]], 0))
    out = decoder([z, code, tf.convert_to_tensor(base)], training=training)
    image, mask = out if isinstance(out, (list, tuple)) else (out, None)
    return (image, mask) if with_mask else image
