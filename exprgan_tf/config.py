"""Typed configuration for every part of exprgan_tf.

A configuration is a tree of frozen dataclasses. It is saved as indented JSON (human
readable, no extra dependency) and loaded back with full validation: an unknown key, a
value of the wrong type or an impossible value raises ``ValueError`` naming the dotted
path of the offending field and the value received.

Example:
    >>> from exprgan_tf.config import get_preset
    >>> cfg = get_preset("proposed-small")
    >>> cfg.model.encoder
    'dilated'
    >>> cfg = cfg.override(["model.latent_dim=64", "training.stage1.epochs=3"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field

EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")

EXPRESSION_ALIASES = {
    "anger": 0, "angry": 0, "an": 0,
    "disgust": 1, "disgusted": 1, "di": 1,
    "fear": 2, "fearful": 2, "afraid": 2, "fe": 2,
    "happiness": 3, "happy": 3, "joy": 3, "ha": 3,
    "sadness": 4, "sad": 4, "sa": 4,
    "surprise": 5, "surprised": 5, "su": 5,
}
"""Every word (lower case) read as each class index of :data:`EXPRESSIONS`: the names
and the spellings face datasets name their folders with."""


def expression_index(expression, *, whole_words: bool = False) -> int:
    """Class index of ``expression`` in :data:`EXPRESSIONS`: the one reading of an
    expression for the command line, the face renderer and dataset folders.

    Args:
        expression: an index 0-5 (an ``int``, or its digits), a word of
            :data:`EXPRESSION_ALIASES` in any case, or a prefix only one name starts
            with (``"sur"``).
        whole_words: read words of :data:`EXPRESSION_ALIASES` only, no digits and no
            prefixes (dataset folders: a subject folder ``"3"`` or ``"f"`` is not an
            expression).

    Raises:
        ValueError: ``expression`` is none of those.

    Example:
        >>> expression_index("Happy"), expression_index(5), expression_index("sur")
        (3, 5, 5)
    """
    if isinstance(expression, str):
        word = expression.strip().lower()
        if word in EXPRESSION_ALIASES:
            return EXPRESSION_ALIASES[word]
        if not whole_words:
            if word.isdigit():
                return expression_index(int(word))
            starts = [i for i, name in enumerate(EXPRESSIONS) if word and name.startswith(word)]
            if len(starts) == 1:
                return starts[0]
    elif (isinstance(expression, numbers.Integral) and not isinstance(expression, bool)
          and not whole_words and 0 <= expression < len(EXPRESSIONS)):
        return int(expression)
    synonyms = sorted(k for k in EXPRESSION_ALIASES if len(k) > 2 and k not in EXPRESSIONS)
    raise ValueError(f"expression must be an index 0-{len(EXPRESSIONS) - 1} or one of "
                     f"{list(EXPRESSIONS)} (or a synonym: {synonyms}). "
                     f"Received: expression={expression!r}")

ENCODER_VARIANTS = ("single", "dilated")
IDENTITY_NETWORKS = ("none", "vgg_face", "dlib_resnet")
DIMG_NORMALIZATIONS = ("batch", "spectral")
# What the decoder's last layer gives (ModelConfig.decoder_output).
DECODER_OUTPUTS = ("image", "blend", "residual")
CODE_AT = ("layers", "output")
"""Where G reads the expression code (see :class:`ModelConfig`, ``code_at``)."""
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
TRAINING_CODES = ("sampled", "intensity")
"""What ``training.codes`` may be (see :class:`TrainingConfig`)."""
PAIR_POSES = ("clean", "input")
"""What ``training.pair_pose`` may be (see :class:`TrainingConfig`)."""
EDIT_INTENSITIES = ("full", "sampled")
"""What ``training.edit_intensity`` may be (see :class:`TrainingConfig`)."""
HOLE_VIEWS = ("input", "partner")
"""What ``training.hole_view`` may be (see :class:`TrainingConfig`)."""
MAX_WARP_ROWS = 4
"""The largest ``training.warp_rows`` (pixels). At 4, two knots a third of the image apart
can already move 8 pixels against each other; the warp is meant for the pixel or two a
feature sits off."""


def _fail(path, value, expected):
    raise ValueError(f"Invalid config value {path}={value!r}: expected {expected}.")


def _check_positive_ints(path, values, allow_empty=False):
    if not allow_empty and len(values) == 0:
        _fail(path, values, "a non-empty list of positive integers")
    for v in values:
        if not _is_int(v) or v <= 0:
            _fail(path, values, "a list of positive integers")


def _is_int(value) -> bool:
    """An integer that is not a bool (``True`` is an ``int`` to Python, not to a config)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    """A real number that is not NaN or +-Inf (``nan <= 0`` is False, so range checks
    alone let NaN through)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value))


def _plain(value):
    """A config value as a ``--set`` would write it: ``None`` -> ``null``, a tuple -> a
    JSON list."""
    return json.dumps(_to_plain(value))


def _check_positive(path, value):
    if not _is_finite_number(value):
        _fail(path, value, "a finite positive number")
    if value <= 0:
        _fail(path, value, "a positive number")


def _check_non_negative(path, value):
    if not _is_finite_number(value):
        _fail(path, value, "a finite number >= 0")
    if value < 0:
        _fail(path, value, "a number >= 0")


def _check_unit_interval(path, value):
    if not _is_finite_number(value) or not 0.0 <= value <= 1.0:
        _fail(path, value, "a number in [0, 1]")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of every network (docs/design.md, "Networks" and "What the paper changes").

    Args:
        image_size: height and width of square input/output images. Must be divisible
            by ``2 ** len(encoder_filters)`` and by ``2 ** len(decoder_filters)``.
        channels: image channels (3 for RGB).
        latent_dim: size of the identity code z (original: 50).
        num_classes: expression classes (6).
        intensity_dim: intensity-code dims per class (5); the code c has
            ``num_classes * intensity_dim`` dims.
        encoder: ``"single"`` (original ExprGAN) or ``"dilated"`` (the paper's two
            channels with dilation rates ``encoder_dilations``).
        encoder_filters: channels of the stride-2 5x5 conv blocks of each channel.
        encoder_kernel: kernel size of the encoder convs.
        encoder_dilations: dilation rate of each parallel channel (``dilated`` only).
        decoder_start_filters: channels of the Dense-projected start map.
        decoder_filters: channels of the upsample + conv blocks.
        decoder_final_filters: channels of the last conv before the RGB conv.
        decoder_kernel: kernel size of the decoder convs.
        decoder_batch_norm: BatchNorm after each decoder conv but the last (not in the
            original). On in the ``-small`` presets, off in the paper-size ones; on the
            built-in face set it keeps stage 1 from collapsing into saturated images
            (see benchmarks/results/).
        decoder_output: what G's last layer gives. ``"image"`` (the original): a 3x3
            conv to ``channels`` + tanh. ``"blend"`` (not in the original): that image
            ``color`` and, from a parallel 3x3 conv + sigmoid, a one-channel ``mask``;
            G then takes a third input, the pre-processed face ``base`` it edits, and
            gives ``mask * base + (1 - mask) * color`` - it redraws only where the mask
            says so (the attention mask of GANimation, Pumarola et al. 2018). With no
            face to keep (stage 1, samples from the prior) ``base`` is a zero image.
            ``"residual"`` (not in the original): G takes ``base`` as ``"blend"`` does
            and gives ``clip(base + image, -1, 1)``: its tanh output is a change drawn
            on the face, so returning the face unchanged is ``image = 0`` and the
            input's own detail (hair, sensor noise) reaches the edit wherever G draws
            nothing. Without a face (stage 1) it is an image G.
        decoder_sees_face: ``False`` (the original): G's layers see only z and c. ``True``
            (not in the original): G takes ``base``, the pre-processed face it edits (as
            ``"blend"`` and ``"residual"`` do), and every decoder stage gets that face,
            average-pooled to the stage's size, concatenated to its feature maps (as c
            is): G can place what it draws on the input's own geometry and copy its
            detail, where otherwise it must read both from z. Any ``decoder_output``.
            With no face (stage 1) the face channels are zeros.
        decoder_face_hole: with ``decoder_sees_face`` and ``edit_regions``: the face G's
            layers see is blank wherever the editor's paste map gives G a tenth of
            the edit or more (36% of a built-in face at 90; not in the original).
            Where the editor keeps G's drawing, G cannot copy the input and must draw
            from z and c; around it G still reads the input's pose, light and colour
            (an inpainting G). ``False`` (the default): G sees the whole face.
        decoder_hole_blur: with ``decoder_face_hole``: ``0`` (the default) leaves the
            hole blank; ``k > 0`` (a divisor of ``image_size``; not in the original)
            fills it with the face average-pooled over ``k x k`` cells and resized
            back bilinearly: G sees where the brows, eyes and mouth lie and their
            shading, but not their lines.
        decoder_hole_blur_above: with ``decoder_hole_blur``: the fraction of the
            image's height, from the top, in which the hole is filled with the cell
            means; below it the hole stays blank. ``1.0`` (the default): the whole hole
            is filled. Below 1 (not in the original) G sees the person's resting eyes
            and brows but nothing of the mouth (at 64 px, ``0.625`` blanks rows 40 and
            down: the mouth and jaw of the built-in faces; the two rows above the cut
            still mix in the cells below it, as bilinear resizing does).
        decoder_hole_blur_below: with ``decoder_hole_blur_above < 1``: ``0`` (the
            default) leaves the hole blank below the cut; ``k > 0`` (a divisor of
            ``image_size``; not in the original) fills it there with the face's ``k x
            k`` cell means instead, coarser than above it, so G sees about where the
            mouth lies without its shape.
        code_knots: ``0`` (the original): G's layers take the expression code c as it
            is, so each responds to an intensity linearly up to its ReLU. ``K >= 2`` (not
            in the original): G first passes every entry of c through a learned
            piecewise-linear function with ``K`` knots evenly spaced on [-1, 1]
            (:class:`exprgan_tf.layers.PiecewiseLinear`, starting as the identity), so
            a weak and a strong code reach G's layers through weights of their own.
            With 9 knots the test sweep's intensities 0, 0.25, ..., 1 are knots.
        code_knot_gain: with ``code_knots``: the layer's ``gain`` (> 0): its knot values
            move this many times as fast under Adam as a weight stored as it is (at
            gain 1 they move about 0.1 in a 1000-step stage at learning rate 1e-4).
        code_at: ``"layers"`` (the original): c is concatenated to z and to every
            layer's feature maps. ``"output"`` (not in the original): G's layers see
            z (and the face) only, and c mixes ``1 + code_dim`` maps of G's last conv
            (:class:`exprgan_tf.layers.CodeMix`) before the tanh, so G draws
            ``tanh(A + s * D)`` at intensity ``s``: every pixel moves monotonically
            from the zero code's face ``A`` as ``s`` grows. Only with
            ``decoder_output="image"`` and no ``code_knots``.
        code_levels: with ``code_at="output"``: ``0`` (the default) mixes G's maps by
            the code itself, linear in the intensity. ``K >= 2`` (not in the original):
            by each class's intensity spread on ``K`` levels at ``1/K, 2/K, ..., 1``
            (:class:`exprgan_tf.layers.CodeLevels`), so G draws a map of its own at
            each level, piecewise linear between them: an expression whose shapes move
            as it grows is not drawn as a fade of its peak. ``K = 4`` puts a level on
            each intensity of stage 3's partners (0.25, 0.5, 0.75, 1).
        rest_sees_face: with ``code_at="output"`` and ``decoder_face_hole`` (not in the
            original): the zero code's map ``A`` gets two 3x3 convs of its own that read
            G's last features and the whole face, hole included, while the code's maps
            ``D`` still see the face only around the hole. The face's resting features
            (eyes, glasses) can reach every edit through ``A``; the expression still
            has to be drawn through ``D``. ``False`` (the default): ``A`` and ``D`` come
            from one conv over the same features.
        edit_regions: ``0`` (the original): an edit is G's whole face. A percentile in
            (50, 100] (not in the original): the editor pastes G's face into the input
            (rescaled, not sharpened) through the map of where the built-in faces
            change with expression (:func:`exprgan_tf.data.regions.expression_regions`
            at that percentile: brows, eyes, mouth, jaw) and keeps the input elsewhere.
            Training is unchanged (G still learns whole faces); the editor, its sample
            grids, the learning report and exported models paste. It fits faces
            centred and sized as the built-in ones (not measured on photos).
        paste_gate: with ``edit_regions``, not in the original: ``0`` (the default):
            the editor pastes G's face through the whole map. ``tau > 0``: only where
            the code changes G's drawing, the map times ``clip(|G(z, c) - G(z, 0)| /
            tau, 0, 1)`` (channel mean, G's [-1, 1] units, blurred by 1 px;
            :func:`exprgan_tf.editor.change_gate`), so the input stays wherever G would
            only redraw it, and an edit at intensity 0 is the input itself. Edit time
            only (G decodes each face twice); training is unchanged.
        intensity_scale: not in the original: the editor asks G for a requested
            intensity ``s`` with the code of intensity ``intensity_scale * s`` (the code
            is linear in the intensity, so this scales the code). ``1`` (the default):
            the code as requested. Below 1 a model that draws its expressions heavier
            than the true faces draws them lighter at every ``s`` (0 stays 0); above 1
            the codes leave the range G was trained on. Edit time only; training is
            unchanged.
        label_tile: how many copies of c are concatenated to z at the decoder input
            (original: ``int(latent_dim / num_classes)`` = 8).
        dz_units: hidden units of D_z.
        dimg_filters: channels of D_img's stride-2 convs.
        dimg_kernel: kernel size of D_img's convs.
        dimg_dense: units of D_img's shared Dense layer.
        dimg_normalization: how D_img's trunk (its convs and shared Dense) is normalised:
            ``"batch"`` (the original: BatchNorm after each) or ``"spectral"`` (spectral
            normalisation of their kernels and no BatchNorm; not in the original). The Q
            heads keep their BatchNorm either way.
        q_shared_units: units of Q's shared Dense layer.
        q_head_units: units of each per-class Q head.
        q_sees_label: ``True`` (the original): Q is a head on D_img's shared features,
            which are given the label at every layer, so Q can read a face's class off
            the label it is shown. ``False`` (not in the original): Q reads the face
            alone, through convs of its own (D_img's filters, kernel and normalisation)
            and a Dense layer of ``q_shared_units`` to its heads; D_img's real/fake
            logit is unchanged. With ``training.q_real`` and ``losses.q > 0`` this is
            an expression reader of real faces that G's ``L_Q`` terms answer to.
        bn_momentum: moving-average momentum of BatchNorm in the discriminators
            (TF1 ``contrib.layers.batch_norm`` default 0.999).
        bn_epsilon: BatchNorm epsilon (TF1 default 1e-3).
    """

    image_size: int = 128
    channels: int = 3
    latent_dim: int = 50
    num_classes: int = 6
    intensity_dim: int = 5
    encoder: str = "single"
    encoder_filters: tuple = (64, 128, 256, 512, 1024)
    encoder_kernel: int = 5
    encoder_dilations: tuple = (1, 2)
    decoder_start_filters: int = 1024
    decoder_filters: tuple = (512, 256, 128, 64, 32)
    decoder_final_filters: int = 16
    decoder_kernel: int = 3
    decoder_batch_norm: bool = False
    decoder_output: str = "image"
    decoder_sees_face: bool = False
    decoder_face_hole: bool = False
    decoder_hole_blur: int = 0
    decoder_hole_blur_above: float = 1.0
    decoder_hole_blur_below: int = 0
    code_knots: int = 0
    code_knot_gain: float = 1.0
    code_at: str = "layers"
    code_levels: int = 0
    rest_sees_face: bool = False
    edit_regions: float = 0.0
    paste_gate: float = 0.0
    intensity_scale: float = 1.0
    label_tile: int = 8
    dz_units: tuple = (64, 32, 16)
    dimg_filters: tuple = (16, 32, 64, 128)
    dimg_kernel: int = 5
    dimg_dense: int = 1024
    dimg_normalization: str = "batch"
    q_shared_units: int = 128
    q_head_units: int = 64
    q_sees_label: bool = True
    bn_momentum: float = 0.999
    bn_epsilon: float = 1e-3

    @property
    def code_dim(self) -> int:
        """Size of the expression code c."""
        return self.num_classes * self.intensity_dim

    def validate(self, prefix="model"):
        for name in ("image_size", "channels", "latent_dim", "num_classes", "intensity_dim",
                     "encoder_kernel", "decoder_start_filters", "decoder_final_filters",
                     "decoder_kernel", "label_tile", "dimg_kernel", "dimg_dense",
                     "q_shared_units", "q_head_units"):
            _check_positive(f"{prefix}.{name}", getattr(self, name))
        if self.dimg_normalization not in DIMG_NORMALIZATIONS:
            _fail(f"{prefix}.dimg_normalization", self.dimg_normalization,
                  f"one of {list(DIMG_NORMALIZATIONS)}")
        if self.decoder_output not in DECODER_OUTPUTS:
            _fail(f"{prefix}.decoder_output", self.decoder_output,
                  f"one of {list(DECODER_OUTPUTS)}")
        if not isinstance(self.decoder_sees_face, bool):
            _fail(f"{prefix}.decoder_sees_face", self.decoder_sees_face, "true or false")
        if not isinstance(self.decoder_face_hole, bool):
            _fail(f"{prefix}.decoder_face_hole", self.decoder_face_hole, "true or false")
        if not _is_finite_number(self.edit_regions) or not (
                self.edit_regions == 0 or 50.0 < self.edit_regions <= 100.0):
            _fail(f"{prefix}.edit_regions", self.edit_regions,
                  "0 (G's whole face) or a percentile in (50, 100]")
        gate = self.paste_gate
        if not _is_finite_number(gate) or gate < 0 or (gate and not self.edit_regions):
            _fail(f"{prefix}.paste_gate", gate,
                  "0, or a number > 0 with model.edit_regions > 0 (it gates that paste)")
        _check_positive(f"{prefix}.intensity_scale", self.intensity_scale)
        if self.decoder_face_hole and not (self.decoder_sees_face and self.edit_regions):
            _fail(f"{prefix}.decoder_face_hole", self.decoder_face_hole,
                  "false unless model.decoder_sees_face=true and model.edit_regions > 0 "
                  "(the hole is that map's regions in the face G sees)")
        blur = self.decoder_hole_blur
        if not _is_int(blur) or blur < 0 or (blur and self.image_size % blur):
            _fail(f"{prefix}.decoder_hole_blur", blur,
                  f"0 or a positive divisor of model.image_size={self.image_size}")
        if blur and not self.decoder_face_hole:
            _fail(f"{prefix}.decoder_hole_blur", blur,
                  "0 unless model.decoder_face_hole=true (it fills that hole)")
        above = self.decoder_hole_blur_above
        if not _is_finite_number(above) or not 0.0 < above <= 1.0:
            _fail(f"{prefix}.decoder_hole_blur_above", above,
                  "a fraction of the image height in (0, 1]")
        if above != 1.0 and not blur:
            _fail(f"{prefix}.decoder_hole_blur_above", above,
                  "1.0 unless model.decoder_hole_blur > 0 (it says where that fill ends)")
        below = self.decoder_hole_blur_below
        if not _is_int(below) or below < 0 or (below and self.image_size % below):
            _fail(f"{prefix}.decoder_hole_blur_below", below,
                  f"0 or a positive divisor of model.image_size={self.image_size}")
        if below and above == 1.0:
            _fail(f"{prefix}.decoder_hole_blur_below", below,
                  "0 unless model.decoder_hole_blur_above < 1 (it fills the hole below "
                  "that cut)")
        knots = self.code_knots
        if not _is_int(knots) or knots < 0 or knots == 1:
            _fail(f"{prefix}.code_knots", knots,
                  "0 (G takes the code as it is) or an integer >= 2")
        if not _is_finite_number(self.code_knot_gain) or not self.code_knot_gain > 0:
            _fail(f"{prefix}.code_knot_gain", self.code_knot_gain, "a number > 0")
        if self.code_at not in CODE_AT:
            _fail(f"{prefix}.code_at", self.code_at, f"one of {list(CODE_AT)}")
        if self.code_at == "output" and (self.decoder_output != "image" or knots):
            _fail(f"{prefix}.code_at", self.code_at,
                  "'layers' unless model.decoder_output='image' and model.code_knots=0 "
                  "(the output must stay linear in the code before its tanh)")
        levels = self.code_levels
        if not _is_int(levels) or levels < 0 or levels == 1:
            _fail(f"{prefix}.code_levels", levels, "0 (the code as it is) or an integer >= 2")
        if levels and self.code_at != "output":
            _fail(f"{prefix}.code_levels", levels,
                  "0 unless model.code_at='output' (the levels weigh G's output maps)")
        if not isinstance(self.q_sees_label, bool):
            _fail(f"{prefix}.q_sees_label", self.q_sees_label, "true or false")
        if not isinstance(self.rest_sees_face, bool):
            _fail(f"{prefix}.rest_sees_face", self.rest_sees_face, "true or false")
        if self.rest_sees_face and not (self.code_at == "output" and self.decoder_face_hole):
            _fail(f"{prefix}.rest_sees_face", self.rest_sees_face,
                  "false unless model.code_at='output' and model.decoder_face_hole=true "
                  "(it gives the zero code's map the face the hole hides)")
        if self.encoder not in ENCODER_VARIANTS:
            _fail(f"{prefix}.encoder", self.encoder, f"one of {list(ENCODER_VARIANTS)}")
        for name in ("encoder_filters", "encoder_dilations", "decoder_filters", "dz_units",
                     "dimg_filters"):
            _check_positive_ints(f"{prefix}.{name}", getattr(self, name))
        if self.encoder_kernel % 2 == 0:
            _fail(f"{prefix}.encoder_kernel", self.encoder_kernel, "an odd kernel size")
        for name, blocks in (("encoder_filters", len(self.encoder_filters)),
                             ("decoder_filters", len(self.decoder_filters))):
            if self.image_size % (2 ** blocks):
                _fail(f"{prefix}.image_size", self.image_size,
                      f"a multiple of 2**len({name}) = {2 ** blocks}")
        if not _is_finite_number(self.bn_momentum) or not 0.0 <= self.bn_momentum < 1.0:
            _fail(f"{prefix}.bn_momentum", self.bn_momentum, "a value in [0, 1)")
        _check_positive(f"{prefix}.bn_epsilon", self.bn_epsilon)


@dataclass(frozen=True)
class PreprocessConfig:
    """Input pre-processing (the paper's unsharp mask, then rescaling to [-1, 1]).

    Args:
        unsharp_mask: apply the unsharp mask before rescaling.
        radius: Gaussian sigma of the blur, as ``skimage.filters.unsharp_mask``.
        amount: strength of the sharpening, as ``skimage.filters.unsharp_mask``.
        sharpen_targets: with ``unsharp_mask``, whether the faces G is trained to give
            back (the L1 targets, D_img's real faces, the paired partners, L_id's real
            faces) are sharpened too, as in the paper (``True``). ``False`` trains G
            towards the faces before the mask (rescaled only) while E still sees the
            sharpened ones, so G's output lives where the faces it is compared with
            do (see docs/design.md, "What the paper changes").
    """

    unsharp_mask: bool = False
    radius: float = 1.0
    amount: float = 1.0
    sharpen_targets: bool = True

    @property
    def target(self) -> "PreprocessConfig":
        """The pre-processing of the faces G learns to give back: this one, or the same
        without the unsharp mask when ``sharpen_targets`` is off.

        Example:
            >>> PreprocessConfig(unsharp_mask=True, sharpen_targets=False).target.unsharp_mask
            False
        """
        if self.sharpen_targets or not self.unsharp_mask:
            return self
        return dataclasses.replace(self, unsharp_mask=False, sharpen_targets=True)

    def validate(self, prefix="preprocess"):
        _check_non_negative(f"{prefix}.radius", self.radius)
        if not _is_finite_number(self.amount):
            _fail(f"{prefix}.amount", self.amount, "a finite number")


@dataclass(frozen=True)
class IdentityConfig:
    """The frozen face network behind the identity loss L_id.

    Args:
        network: ``"none"``, ``"vgg_face"`` (paper/original; bring the weights) or
            ``"dlib_resnet"`` (dlib's ResNet-34 descriptor, obtainable offline).
        weights_path: weights file; ``None`` = the network's default cache location.
        layers: names of the feature layers L_id compares (empty = the network's
            defaults, see ``exprgan_tf.identity.DEFAULT_FEATURE_LAYERS``).
        layer_weights: weight of each feature layer in L_id (empty = all 1, the
            original's beta_l).
        images_per_step: L_id is measured on the first this many faces of each
            replica's batch (0, the default and the original: all of them). The
            batches are shuffled, so this is an unbiased estimate of the batch's L_id
            at a fraction of the identity network's cost, which on a CPU is most of a
            step (dlib's ResNet: 1.1 GFLOP per face forward, about 3x a ``-small``
            step with all 16; not in the original).
    """

    network: str = "none"
    weights_path: typing.Optional[str] = None
    layers: tuple = ()
    layer_weights: tuple = ()
    images_per_step: int = 0

    def validate(self, prefix="identity"):
        if self.network not in IDENTITY_NETWORKS:
            _fail(f"{prefix}.network", self.network, f"one of {list(IDENTITY_NETWORKS)}")
        for w in self.layer_weights:
            if not _is_finite_number(w) or w < 0:
                _fail(f"{prefix}.layer_weights", self.layer_weights, "numbers >= 0")
        for name in self.layers:
            if not isinstance(name, str):
                _fail(f"{prefix}.layers", self.layers, "a list of layer names")
        if self.layers and self.layer_weights and len(self.layers) != len(self.layer_weights):
            _fail(f"{prefix}.layer_weights", self.layer_weights,
                  f"one weight per layer in identity.layers ({len(self.layers)})")
        if not _is_int(self.images_per_step) or self.images_per_step < 0:
            _fail(f"{prefix}.images_per_step", self.images_per_step, "an integer >= 0")


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the E+G loss of one stage (docs/design.md, "The three stages").

    Args:
        pixel: L1 reconstruction loss.
        identity: identity feature loss L_id.
        q: the intensity-code regulariser L_Q.
        image_adversarial: G's adversarial loss against D_img.
        latent_adversarial: E's adversarial loss against D_z.
        total_variation: total-variation smoothness of G's output.
        mismatch: weight of a term in D_img's loss (not E+G's), not in the original:
            real faces shown with a wrong expression label count as fake (the
            "matching-aware" discriminator of Reed et al., 2016), so D_img learns what
            each expression looks like from real faces instead of only from G's samples.
        edit: stages 2/3, not in the original: each face is also decoded with the code of
            another expression, ``G(E(x), c')``, and that edit is trained like a stage-1
            sample: E+G get ``edit * (G_img + q * L_Q)`` on it and D_img ``edit * (fake +
            L_Q)``. It trains the edits the model is used for, not only reconstructions.
            With ``paired > 0`` the edit is the paired edit below (no extra decoder pass).
        paired: stages 2/3, not in the original: cross-expression reconstruction. Each
            training face ``x`` (subject s, expression A) is paired with a face ``x'`` of
            the same subject under the same capture conditions in another expression B
            (Oulu-CASIA records every subject in all six), and E+G get
            ``paired * mean |x' - G(E(x), c(B, 1))|``: the edit must be that person with
            the other expression (and, with L_id on, ``paired * L_id(x', edit)``). Needs
            the subjects of the training faces (``Trainer(..., pair_groups=...)``).
        r1: weight of a term in D_img's loss (not E+G's), not in the original: the R1
            gradient penalty of Mescheder et al. (2018), ``r1 / 2 * E ||grad_x
            D_img(x, label)||^2`` on the real faces under their own label (``x`` in G's
            [-1, 1] units). It keeps D_img from answering to detail finer than a face's
            features, which G would otherwise be rewarded for painting (stripes,
            checkerboard).
        mask: stages 2/3, only with ``model.decoder_output="blend"``, not in the
            original: E+G get ``mask * G_mask``, the mean of the blend mask over the
            step's decodes of a face (reconstruction, paired and edit decodes). Without
            it the L1 terms drive the mask to 1, a copy of the input that no longer
            changes the expression (GANimation's attention loss answers the same).
        expression: stages 2/3, with ``paired > 0`` and ``training.expression_network``,
            not in the original: E+G get ``paired * expression * L_expr_pair``, the mean
            absolute difference between the paired decode and its partner in the feature
            maps of a frozen expression classifier
            (:mod:`exprgan_tf.training.expression_features`): a stroke drawn near its
            place counts there, where the paired L1 charges it twice what leaving it
            out costs.
        gradient: stages 2/3, not in the original: the image-gradient L1 of
            :func:`~exprgan_tf.losses.gradient_loss` beside each pixel L1 term: E+G get
            ``gradient * (L_grad + paired * L_grad_pair)``, for the reconstruction and
            for the paired term's decode (weighted by ``training.expression_regions``
            like them). It charges G for edges the target does not have, such as the
            stripes the adversarial terms bring in.
    """

    pixel: float = 1.0
    identity: float = 1.0
    q: float = 1.0
    image_adversarial: float = 0.0
    latent_adversarial: float = 0.0
    total_variation: float = 0.0
    mismatch: float = 0.0
    edit: float = 0.0
    paired: float = 0.0
    r1: float = 0.0
    mask: float = 0.0
    gradient: float = 0.0
    expression: float = 0.0

    def validate(self, prefix="losses"):
        for f in dataclasses.fields(self):
            _check_non_negative(f"{prefix}.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class StageConfig:
    """Schedule of one incremental-training stage.

    Args:
        epochs: passes over the training set.
        batch_size: global batch size (split over replicas).
        losses: weights of the E+G loss terms.
        lr_decay_epochs: over this many last epochs of the stage every optimiser's
            learning rate falls linearly from ``optimizer.learning_rate`` towards 0 (its
            value at each step is a function of the step's place in the stage, so a
            resumed run continues the same schedule). 0 (the original's, default): a
            constant learning rate. The last epochs count from the stage's total, so
            ``--epochs`` moves them.
        pair_intensities: this stage's ``training.pair_intensities``; ``None`` (the
            default): the training section's. (Not in the original: one recipe can draw
            stage 2's partners at intensity 1 and stage 3's at several.)
        pair_shares: this stage's ``training.pair_shares``; ``None``: the training
            section's when the stage keeps its ``pair_intensities``, none (every
            candidate alike) when it sets its own.
    """

    epochs: int = 50
    batch_size: int = 48
    losses: LossWeights = field(default_factory=LossWeights)
    lr_decay_epochs: int = 0
    pair_intensities: tuple | None = None
    pair_shares: tuple | None = None

    def validate(self, prefix="stage"):
        _check_positive(f"{prefix}.epochs", self.epochs)
        _check_positive(f"{prefix}.batch_size", self.batch_size)
        decay = self.lr_decay_epochs
        if not _is_int(decay) or decay < 0:
            _fail(f"{prefix}.lr_decay_epochs", decay,
                  "an integer >= 0 (0: a constant learning rate)")
        self.losses.validate(f"{prefix}.losses")


def _stage1():
    # Controller stage: G fed from the latent prior, trained against D_img/Q.
    return StageConfig(epochs=200, batch_size=60,
                       losses=LossWeights(pixel=0.0, identity=0.0, q=1.0,
                                          image_adversarial=1.0))


def _stage2():
    # E+G reconstruction: L1 + L_id + L_Q, adversarial and TV terms off.
    return StageConfig(epochs=50, batch_size=48,
                       losses=LossWeights(pixel=1.0, identity=1.0, q=1.0))


def _stage3():
    # Everything, with the original's small adversarial and TV weights.
    return StageConfig(epochs=50, batch_size=48,
                       losses=LossWeights(pixel=1.0, identity=1.0, q=1.0,
                                          image_adversarial=0.01, latent_adversarial=0.01,
                                          total_variation=0.001))


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam, shared by E+G, D_z and D_img (each has its own instance).

    Args:
        learning_rate: constant learning rate (original 2e-4, paper 1e-4).
        beta_1: Adam beta_1 (0.5 in both).
        beta_2: Adam beta_2.
        epsilon: Adam epsilon (TF1's default 1e-8).
    """

    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    epsilon: float = 1e-8

    def validate(self, prefix="optimizer"):
        _check_positive(f"{prefix}.learning_rate", self.learning_rate)
        for name in ("beta_1", "beta_2"):
            v = getattr(self, name)
            if not _is_finite_number(v) or not 0.0 <= v < 1.0:
                _fail(f"{prefix}.{name}", v, "a value in [0, 1)")
        _check_positive(f"{prefix}.epsilon", self.epsilon)


@dataclass(frozen=True)
class TrainingConfig:
    """Incremental training schedule and run behaviour.

    Args:
        stage1: the controller stage (G from the latent prior + D_img/Q).
        stage2: E+G reconstruction.
        stage3: the full model with adversarial and TV terms.
        seed: seed of every random draw (data order, flips, codes, priors).
        flip: random horizontal flip of training images.
        sample_every: epochs between sample grids.
        checkpoint_every: epochs between checkpoints (Ctrl-C and the end always save).
        jit_compile: compile the train steps with XLA (slower on CPU; docs/design.md,
            "Speed options").
        precision: ``"float32"`` (the default), or a Keras mixed-precision policy for
            the four networks: ``"mixed_bfloat16"`` or ``"mixed_float16"`` (the latter
            with dynamic loss scaling). Variables, the final tanh/logit outputs and the
            losses stay float32. Mixed precision is for GPUs (and CPUs with bfloat16
            units); see the README's Performance section for what it does on a CPU.
        pair_intensities: where the paired term (``losses.paired``) draws its partners.
            Empty (the default): from the training faces, coded at intensity 1. A list
            of intensities in [0, 1]: from renders of each training subject in every
            expression at those intensities, coded at them, so the decoder learns
            intensity from examples (built-in face set only; not in the original).
        pair_pose: the pose of those partners. ``"clean"`` (the default): centred,
            without jitter or noise, one set per subject and lighting. ``"input"``: one
            set per training face, in that face's own pose, light and gain (the same
            capture in the other expressions, without sensor noise), so all a partner
            differs from its face in is the expression, and G has no pose to blur over.
        codes: the code c each training face is decoded with (its reconstruction, and
            stage 1's G from the prior). ``"sampled"`` (the original): the face's
            expression with random intensities, target block ``|u|`` and the others
            ``-|u|``, ``u ~ U(-1, 1)^intensity_dim``. ``"intensity"``: the face's
            expression at the intensity it really has, ``(t, ..., t)`` / ``-t`` - the
            test-time code of that intensity - so a weaker code is never asked for a
            full expression (built-in face set only, whose renders know ``t``; not in
            the original).
        dimg_blur: sigma in pixels of a Gaussian blur D_img sees every image through,
            real or generated, in every stage; 0 (the default, the original): none.
            Detail finer than the blur - the renders' sensor noise, or the stripes and
            checkerboard a generator draws to imitate it - then earns G nothing from the
            adversarial terms, and only the pixel terms shape it (not in the original).
        expression_regions: extra weight of G's pixel terms (``L1``, ``L1_pair``) where
            the faces of one person differ between expressions - eyes, brows, mouth -
            read from the training set (:func:`~exprgan_tf.data.regions.expression_map`).
            Each pixel's L1 is weighted ``(1 + k * m) / (1 + k)``, with ``m`` the map
            scaled to mean 1, so the mean weight stays 1. 0 (the default, the original):
            every pixel alike. Needs the paired term's ``pair_groups`` (not in the
            original).
        ema_momentum: keep an exponential moving average of E's and G's weights, ``a <-
            m * a + (1 - m) * w`` after every step (:mod:`exprgan_tf.training.averaging`),
            and edit with it: the exporter, the scorers and the sample sheets use the
            average, training itself never does. 0 (the default, the original): no
            average. In ``[0, 1)``; the average spans about ``1 / (1 - m)`` steps and
            restarts from the trained weights at the start of each stage.
        clean_targets: every face G is trained towards - its L1 target, the paired
            term's partners, D_img's real faces, L_id's real faces - is the clean render
            of the same frame (same person, expression, intensity and lighting, without
            the pose jitter and sensor noise of the face E sees), so G learns to give
            back a centred, noise-free face. Built-in face set only (the trainer's
            ``targets``, from :func:`exprgan_tf.data.clean_faces`); not in the original.
        paste_regions: train G through the editor's paste: in stages 2 and 3 every
            decode of E's code (reconstruction, paired and edit decodes) is
            ``r * G + (1 - r) * face``, ``r`` the map ``model.edit_regions`` gives the
            editor and ``face`` the one G is trained towards, before any loss or D_img
            sees it. G is then trained only where the editor uses it, and D_img judges
            the pasted faces the editor gives. Needs ``model.edit_regions > 0``; false
            (the default): G is trained on its whole face (not in the original).
        frames: frames of each expression sequence ``scripts/train.py`` trains on. 3
            (the default, the original's selection): the three peak frames. The
            built-in set with more: that many frames from neutral (intensity 0) to peak
            (1), evenly spaced, so E sees neutral and weak faces and, with
            ``codes="intensity"``, G is asked for them at their own intensity (not in
            the original). Data on disk in the Oulu-CASIA layout: the last ``frames``
            frames of each sequence (other layouts have no sequences).
        extra_subjects: built-in set only: this many more training subjects, drawn
            after the held-out ones (P081, P082, ...), each in the same expressions,
            frames and lightings as P001-P072; the held-out subjects stay P073-P080.
            An epoch grows with them, so set the stages' ``epochs`` for the steps you
            want. 0 (the default): the 72 training subjects of an Oulu-sized set (not
            in the original, which has the people its dataset has).
        dimg_min_intensity: with ``codes="intensity"``, D_img's real, mismatch and
            reconstruction terms count only the training faces whose intensity is at
            least this, so the neutral and weak frames ``frames > 3`` brings in are
            not shown to D_img as examples of their sequence's expression (its edit
            term, at intensity 1, is unchanged). 0 (the default): every face (not in
            the original).
        pair_min_intensity: with ``codes="intensity"`` and partners from the training
            faces (``pair_intensities`` empty), the paired term draws each face's
            partners only from its subject's faces at least this intense, so with
            ``frames > 3`` G is shown the other expressions at their peak, not their
            neutral and weak frames. 0 (the default): any frame (not in the original).
        pair_change: extra weight of ``L1_pair`` where the partner differs from the
            face it belongs to: with ``pair_pose="input"`` each partner comes with the
            map of the pixels where it differs from its face's own capture without
            noise (:func:`~exprgan_tf.data.regions.change_maps`: the lines of both
            expressions, grown by a pixel), and each pixel's L1 is weighted ``(1 + k *
            m) / (1 + k * mean(m))`` per partner, so the mean weight of each partner
            stays 1. The expression is a few percent of the face's pixels, and of a
            copy's L1 less than the input's noise; this makes those pixels count. 0
            (the default): every pixel alike (not in the original).
        pair_blur: sigma in pixels of a Gaussian blur both G's paired decode and its
            partner go through before ``L1_pair`` compares them; 0 (the default): none.
            A stroke drawn a pixel from where the partner has it then costs a fraction
            of what leaving it out costs, where the plain L1 charges it twice that, so
            a G unsure of a stroke's exact place is no longer paid to draw it faint
            (the learning report's intensity test reads the edits through such a blur
            for the same reason; not in the original). At 1 on the built-in set
            the strokes came out fainter, not stronger, on two seeds (recipe log,
            report 163).
        expression_network: the frozen expression classifier of ``losses.expression``
            (:func:`~exprgan_tf.training.expression_features.build_expression_features`):
            ``"none"`` (the default: no such term), ``"builtin"`` (trained in the run
            directory on the built-in set's training subjects when first needed),
            ``"builtin-grey"`` (the same, trained on and shown faces in grey, so G
            cannot answer it with a colour tint) or the path of a ``.keras`` classifier
            of the Fig. 4 architecture. Not in the original.
        edit_intensity: the intensity at which the edit term (``losses.edit``, with
            the paired term) decodes each face with its partner's expression.
            ``"full"`` (the default): 1, the partner's own code when the partner is at
            the peak. ``"sampled"``: drawn per face from U(0, 1), coded as at test
            time, so D_img and, with ``losses.q > 0``, Q's estimate of the code (L_Q)
            judge G at every intensity, as InfoGAN's code regression does, while the
            paired L1 keeps showing the peak (not in the original).
        pair_shares: how often the paired term draws a partner at each of
            ``pair_intensities``: relative shares, one per intensity (normalised to sum
            1), so a few partners can show a level - the neutral face at the zero code,
            ``pair_intensities=[0, 1]`` with ``pair_shares=[0.1, 0.9]`` - without taking
            the others' place in most batches. Empty (the default): every partner
            candidate alike, so each level's share is its share of the candidates (not
            in the original).
        pair_l1_min_intensity: the paired term's pixel terms (``L1_pair``,
            ``L_grad_pair``) count only the partners at least this intense, so partners
            below it reach G only through D_img and Q (with ``q_real``): a weak partner
            is then an example of what a weak expression looks like, not a picture G is
            pulled towards pixel by pixel. Needs partners of known intensity
            (``pair_intensities``, or ``codes="intensity"``). 0 (the default): every
            partner (not in the original).
        q_real: in stages 2 and 3, Q (D_img's code head) learns the code from real faces
            at their known intensities - each training face at its own code and each
            partner at its own - instead of from G's faces, and D_img is shown the
            partners as real faces of their expression. G's ``L_Q`` (``losses.q``) and
            the edit's then ask G for faces a reader of real expressions reads at the
            requested intensity, rather than for whatever trace of the code Q learned to
            find in G's own faces. Needs ``codes="intensity"`` and the paired term's
            partners. False (the default, the original): Q learns from G's faces.
        dimg_pair_real: with ``q_real``: ``True`` (the default) D_img is also shown the
            partners as real faces of their expression; ``False``: the partners teach
            Q alone and D_img's real faces are the batch's, as without ``q_real``
            (not in the original).
        warp_rows: move the features of the training faces up and down, independently
            of each other, by up to this many pixels: each training face, the face G
            gives back for it and its partner (with its change map) are resampled along
            their rows by one random displacement per sample, whole-pixel shifts in
            ``[-k, k]`` drawn at four knots evenly spaced down the image (top, a third,
            two thirds, bottom) and linear between them, rounded to whole rows (the
            nearest row, the edge rows repeated). Brows, eyes, mouth and chin then sit
            a pixel or two higher or lower against each other and the face's outline
            than on the person the renderer drew, so G must find them on the face it is
            shown rather than recall where they are on the people it trained on. The
            cached identity features are then not used (each step computes them). 0
            (the default): the faces as they are (not in the original).
        hole_view: what G sees inside its hole (``model.decoder_face_hole``) while it
            trains. ``"input"`` (the default): the face it edits, as the editor shows
            it. ``"partner"`` (not in the original): another render of the same face
            in the same pose, in an expression drawn per sample from the face's paired
            partners (all of its candidates alike, on a stream of its own), with the
            face itself around the hole. G then learns to take the person's features
            and where they lie from the hole without taking the expression there,
            since that expression is unrelated to the one it is asked for; at edit
            time the hole shows the input. Needs the paired term's partners posed as
            the input (``pair_pose="input"``, built-in set); stage 1 sees no face.
        dimg_intensity_label: D_img is shown each face's expression label scaled by the
            intensity of its code (one-hot times ``t``) instead of the one-hot label, in
            every stage and term: it judges whether a face is a real face of that
            expression at that intensity, so partners below the peak (``q_real``) and
            edits at low codes are compared with real faces at their own intensity, and
            a neutral face is an example of the zero label rather than of an expression.
            Needs ``codes="intensity"``. False (the default, the original): the one-hot
            label.
    """

    stage1: StageConfig = field(default_factory=_stage1)
    stage2: StageConfig = field(default_factory=_stage2)
    stage3: StageConfig = field(default_factory=_stage3)
    seed: int = 2018
    flip: bool = True
    sample_every: int = 5
    checkpoint_every: int = 1
    jit_compile: bool = False
    precision: str = "float32"
    pair_intensities: tuple = ()
    codes: str = "sampled"
    dimg_blur: float = 0.0
    expression_regions: float = 0.0
    ema_momentum: float = 0.0
    clean_targets: bool = False
    pair_pose: str = "clean"
    paste_regions: bool = False
    frames: int = 3
    extra_subjects: int = 0
    dimg_min_intensity: float = 0.0
    pair_min_intensity: float = 0.0
    pair_change: float = 0.0
    pair_blur: float = 0.0
    expression_network: str = "none"
    edit_intensity: str = "full"
    pair_shares: tuple = ()
    pair_l1_min_intensity: float = 0.0
    q_real: bool = False
    dimg_pair_real: bool = True
    dimg_intensity_label: bool = False
    warp_rows: int = 0
    hole_view: str = "input"

    def stage(self, number: int) -> StageConfig:
        if number not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3. Received: stage={number!r}")
        return getattr(self, f"stage{number}")

    def at_stage(self, number: int) -> "TrainingConfig":
        """This config as stage ``number`` trains with it: ``pair_intensities`` and
        ``pair_shares`` are the stage's own where it sets them (:class:`StageConfig`).

        Example:
            >>> t = TrainingConfig(pair_intensities=(1.0,), pair_pose="input",
            ...                    stage3=StageConfig(pair_intensities=(0.0, 1.0),
            ...                                       pair_shares=(1, 9)))
            >>> t.at_stage(2).pair_intensities, t.at_stage(3).pair_intensities
            ((1.0,), (0.0, 1.0))
            >>> t.at_stage(2).pair_shares, t.at_stage(3).pair_shares
            ((), (1, 9))
        """
        s = self.stage(number)
        if s.pair_intensities is None and s.pair_shares is None:
            return self
        own = s.pair_intensities is not None
        return dataclasses.replace(
            self, pair_intensities=s.pair_intensities if own else self.pair_intensities,
            pair_shares=(s.pair_shares if s.pair_shares is not None
                         else () if own else self.pair_shares))

    def _check_pairs(self, prefix):
        """The checks of the paired term's partner settings (a stage can set its own)."""
        for t in self.pair_intensities:
            if not _is_finite_number(t) or not 0.0 <= t <= 1.0:
                _fail(f"{prefix}.pair_intensities", list(self.pair_intensities),
                      "a list of numbers in [0, 1]")
        if self.pair_pose != "clean" and not self.pair_intensities:
            _fail(f"{prefix}.pair_pose", self.pair_pose,
                  "'clean' when training.pair_intensities is empty (the pose is that of "
                  "the rendered partners; without them partners are training faces)")
        _check_unit_interval(f"{prefix}.pair_min_intensity", self.pair_min_intensity)
        if self.pair_min_intensity > 0 and (self.codes != "intensity"
                                            or self.pair_intensities):
            _fail(f"{prefix}.pair_min_intensity", self.pair_min_intensity,
                  "0 unless training.codes='intensity' and training.pair_intensities is "
                  "empty (only then are the partners training faces of known intensity)")
        if self.pair_shares:
            if len(self.pair_shares) != len(self.pair_intensities):
                _fail(f"{prefix}.pair_shares", list(self.pair_shares),
                      f"one share per training.pair_intensities entry "
                      f"({list(self.pair_intensities)})")
            if not all(_is_finite_number(w) and w >= 0 for w in self.pair_shares) \
                    or sum(self.pair_shares) <= 0:
                _fail(f"{prefix}.pair_shares", list(self.pair_shares),
                      "numbers >= 0 with a positive sum")
        _check_unit_interval(f"{prefix}.pair_l1_min_intensity", self.pair_l1_min_intensity)
        if self.pair_l1_min_intensity > 0 and not (self.pair_intensities
                                                   or self.codes == "intensity"):
            _fail(f"{prefix}.pair_l1_min_intensity", self.pair_l1_min_intensity,
                  "0 unless the partners' intensities are known (training.pair_intensities, "
                  "or training.codes='intensity')")

    def validate(self, prefix="training"):
        for n in (1, 2, 3):
            getattr(self, f"stage{n}").validate(f"{prefix}.stage{n}")
        _check_positive(f"{prefix}.sample_every", self.sample_every)
        _check_positive(f"{prefix}.checkpoint_every", self.checkpoint_every)
        if self.precision not in PRECISIONS:
            _fail(f"{prefix}.precision", self.precision, f"one of {list(PRECISIONS)}")
        if self.pair_pose not in PAIR_POSES:
            _fail(f"{prefix}.pair_pose", self.pair_pose, f"one of {list(PAIR_POSES)}")
        if self.codes not in TRAINING_CODES:
            _fail(f"{prefix}.codes", self.codes, f"one of {list(TRAINING_CODES)}")
        self._check_pairs(prefix)
        for n in (2, 3):   # stage 1 has no partners
            s = self.stage(n)
            if s.pair_intensities is None and s.pair_shares is None:
                continue
            try:
                self.at_stage(n)._check_pairs(prefix)
            except ValueError as e:
                raise ValueError(
                    f"{e} (in stage {n}, which sets {prefix}.stage{n}.pair_intensities="
                    f"{_plain(s.pair_intensities)} and {prefix}.stage{n}.pair_shares="
                    f"{_plain(s.pair_shares)})") from None
        _check_non_negative(f"{prefix}.dimg_blur", self.dimg_blur)
        _check_non_negative(f"{prefix}.expression_regions", self.expression_regions)
        if not _is_finite_number(self.ema_momentum) or not 0.0 <= self.ema_momentum < 1.0:
            _fail(f"{prefix}.ema_momentum", self.ema_momentum, "a number in [0, 1)")
        if not isinstance(self.clean_targets, bool):
            _fail(f"{prefix}.clean_targets", self.clean_targets, "true or false")
        if not isinstance(self.paste_regions, bool):
            _fail(f"{prefix}.paste_regions", self.paste_regions, "true or false")
        if not _is_int(self.frames) or self.frames < 1:
            _fail(f"{prefix}.frames", self.frames, "a positive integer (3: the peak frames)")
        if not _is_int(self.warp_rows) or not 0 <= self.warp_rows <= MAX_WARP_ROWS:
            _fail(f"{prefix}.warp_rows", self.warp_rows,
                  f"an integer in [0, {MAX_WARP_ROWS}] (pixels; 0: no warp)")
        if self.hole_view not in HOLE_VIEWS:
            _fail(f"{prefix}.hole_view", self.hole_view, f"one of {list(HOLE_VIEWS)}")
        if self.hole_view != "input" and self.pair_pose != "input":
            _fail(f"{prefix}.hole_view", self.hole_view,
                  "'input' unless training.pair_pose='input' (the view is one of the "
                  "face's partners in its own pose)")
        if not _is_int(self.extra_subjects) or self.extra_subjects < 0:
            _fail(f"{prefix}.extra_subjects", self.extra_subjects, "an integer >= 0")
        _check_unit_interval(f"{prefix}.dimg_min_intensity", self.dimg_min_intensity)
        if self.dimg_min_intensity > 0 and self.codes != "intensity":
            _fail(f"{prefix}.dimg_min_intensity", self.dimg_min_intensity,
                  "0 unless training.codes='intensity' (only then is a face's code its "
                  "true intensity)")
        _check_non_negative(f"{prefix}.pair_change", self.pair_change)
        if self.pair_change > 0 and self.pair_pose != "input":
            _fail(f"{prefix}.pair_change", self.pair_change,
                  "0 unless training.pair_pose='input' (only a partner in its face's own "
                  "capture shows where the expression alone changes the picture)")
        _check_non_negative(f"{prefix}.pair_blur", self.pair_blur)
        if not isinstance(self.expression_network, str) or not self.expression_network:
            _fail(f"{prefix}.expression_network", self.expression_network,
                  "'none', 'builtin', 'builtin-grey' or the path of a .keras expression "
                  "classifier")
        for n in (2, 3):
            weight = self.stage(n).losses.expression
            if weight > 0 and self.expression_network == "none":
                _fail(f"{prefix}.stage{n}.losses.expression", weight,
                      "0 unless training.expression_network names a network ('builtin', "
                      "'builtin-grey' or a .keras file)")
            if weight > 0 and self.stage(n).losses.paired <= 0:
                _fail(f"{prefix}.stage{n}.losses.expression", weight,
                      f"0 unless {prefix}.stage{n}.losses.paired > 0 (the term compares "
                      "the paired decode with its partner)")
        if self.edit_intensity not in EDIT_INTENSITIES:
            _fail(f"{prefix}.edit_intensity", self.edit_intensity,
                  f"one of {list(EDIT_INTENSITIES)}")
        if not isinstance(self.dimg_pair_real, bool):
            _fail(f"{prefix}.dimg_pair_real", self.dimg_pair_real, "true or false")
        if not self.dimg_pair_real and not self.q_real:
            _fail(f"{prefix}.dimg_pair_real", self.dimg_pair_real,
                  "true unless training.q_real=true (it says whom q_real's partners teach)")
        # Settings that read a face's true intensity off its code.
        for name, why in (("q_real", "Q is taught the real faces' codes"),
                          ("dimg_intensity_label", "D_img is shown each face's intensity")):
            value = getattr(self, name)
            if not isinstance(value, bool):
                _fail(f"{prefix}.{name}", value, "true or false")
            if value and self.codes != "intensity":
                _fail(f"{prefix}.{name}", value,
                      f"false unless training.codes='intensity' ({why}, and only then is "
                      "a face's code its true intensity)")


@dataclass(frozen=True)
class ExprGANConfig:
    """The whole configuration of a model and its training.

    Args:
        name: preset name this config came from (informational).
        model: architecture.
        preprocess: input pre-processing.
        identity: the identity network for L_id.
        optimizer: Adam settings.
        training: stage schedule and run behaviour.
    """

    name: str = "exprgan"
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self):
        self.validate()

    def validate(self):
        self.model.validate("model")
        self.preprocess.validate("preprocess")
        self.identity.validate("identity")
        self.optimizer.validate("optimizer")
        self.training.validate("training")
        for n in (1, 2, 3):
            mask = getattr(self.training, f"stage{n}").losses.mask
            if mask > 0 and self.model.decoder_output != "blend":
                _fail(f"training.stage{n}.losses.mask", mask,
                      "0 unless model.decoder_output='blend' (only a blend G has a mask)")
        if self.training.hole_view != "input" and not self.model.decoder_face_hole:
            _fail("training.hole_view", self.training.hole_view,
                  "'input' unless model.decoder_face_hole=true (it says what fills that "
                  "hole)")
        if self.training.paste_regions and not self.model.edit_regions:
            _fail("training.paste_regions", self.training.paste_regions,
                  "false unless model.edit_regions > 0 (it pastes through that map)")

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExprGANConfig":
        return _from_plain(cls, data, "")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ExprGANConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Config is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as indented JSON."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExprGANConfig":
        """Read a config written by :meth:`save` (or by hand), validating every field."""
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None

    def at_stage(self, number: int) -> "ExprGANConfig":
        """This config as stage ``number`` trains with it (:meth:`TrainingConfig.at_stage`:
        the stage's own partner settings in ``training.pair_intensities`` and
        ``training.pair_shares``). The trainer and :func:`exprgan_tf.data.training_data`
        read a stage's config through it."""
        training = self.training.at_stage(number)
        return self if training is self.training else dataclasses.replace(
            self, training=training)

    def override(self, assignments) -> "ExprGANConfig":
        """Return a copy with ``"dotted.path=value"`` assignments applied.

        Values are parsed as JSON when possible (``3``, ``1e-4``, ``true``, ``[1,2]``),
        otherwise taken as strings, then validated like a loaded file.
        """
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ValueError(f"Override must look like key.path=value. Received: {item!r}")
            key, raw = item.split("=", 1)
            key = key.strip()
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            node = data
            parts = key.split(".")
            for i, part in enumerate(parts[:-1]):
                if not isinstance(node.get(part), dict):
                    raise ValueError(f"Unknown config key {'.'.join(parts[:i + 1])!r} "
                                     f"in override {item!r}")
                node = node[part]
            if parts[-1] not in node:
                raise ValueError(f"Unknown config key {key!r} in override {item!r}; "
                                 f"known keys here: {sorted(node)}")
            node[parts[-1]] = value
        return ExprGANConfig.from_dict(data)


def _to_plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_plain(v) for v in obj]
    return obj


def _from_plain(cls, data, prefix):
    where = prefix or "config"
    if not isinstance(data, dict):
        raise ValueError(f"Invalid config value {where}={data!r}: expected a mapping.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        dotted = [f"{prefix}.{k}" if prefix else k for k in unknown]
        raise ValueError(f"Unknown config key(s) {dotted}; known keys in {where}: "
                         f"{sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(hints[name], value, path)
    # Construct without validation of the top level until all children are built;
    # children validate through the top-level __post_init__ with full dotted paths.
    if cls is ExprGANConfig:
        return cls(**kwargs)
    return cls(**kwargs)


def _coerce(hint, value, path):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, path)
    if hint is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            _fail(path, value, "a list")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            _fail(path, value, "true or false")
        return value
    if hint is int:
        if not _is_int(value):
            _fail(path, value, "an integer")
        return value
    if hint is float:
        if not _is_finite_number(value):
            _fail(path, value, "a finite number (not NaN or Infinity)")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            _fail(path, value, "a string")
        return value
    return value


# --- presets ------------------------------------------------------------------------

_SMALL_MODEL = dict(
    image_size=64,
    encoder_filters=(32, 64, 128, 256, 512),
    decoder_start_filters=512,
    decoder_filters=(256, 128, 64, 32, 16),
    dimg_dense=512,
    # The CPU recipe (not the original's; see README "Training on a CPU"):
    decoder_batch_norm=True,
    dimg_normalization="spectral",
    # the editor keeps the input outside where expressions change (benchmarks/results/
    # recipe/README.md, "Pasting G's face into the input")
    edit_regions=90.0,
    # G draws into a hole where expressions change, seeing the face around it and the
    # hole's coarse cells (4 x 4 above 0.625 of its height, 8 x 8 below), reading the
    # code only at its last layer, with 32 channels there (recipe log, reports 120-175)
    decoder_sees_face=True,
    decoder_face_hole=True,
    decoder_hole_blur=4,
    decoder_hole_blur_above=0.625,
    decoder_hole_blur_below=8,
    code_at="output",
    decoder_final_filters=32,
)

_SMALL_LEARNING_RATE = 2e-4
_SMALL_EPOCHS = (1, 12, 45)
# G's L1 weighted towards the eyes, brows and mouth (benchmarks/results/recipe, reports
# 38-39: on two seeds better L1, SSIM, identity and smiles; the overall judge +2 / -5)
_SMALL_EXPRESSION_REGIONS = 4.0
# E and G edit with the average of their last ~500 steps' weights (reports 42-45 at
# 0.995; 0.998 since report 125, the face-hole G)
_SMALL_EMA_MOMENTUM = 0.998
_SMALL_BATCH = 16
# Per stage: the loss weights the -small recipe changes from the original's.
_SMALL_LOSSES = (
    dict(mismatch=1.0),                                  # stage 1: a one-epoch warm start
    dict(paired=1.0, q=0.0),                             # stage 2: L1 + paired, no L_Q
    # stage 3: + conditional D_img, the edit term light (reports 164-172) and the L1 of
    # image gradients (report 181: less stripe, lower L1)
    dict(paired=1.0, q=0.0, mismatch=1.0, edit=0.05, gradient=1.0),
)
# Partners: every face is paired with its own subject's true face at the target
# expression, posed as the input, L1 weighted where the partner differs from the face;
# codes carry the face's intensity. Stages 1-2 pair at the peak, stage 3 at five
# intensities (reports 118-133).
_SMALL_PAIRS = dict(codes="intensity", pair_pose="input", pair_intensities=(1.0,),
                    pair_change=10.0)
_SMALL_STAGE3_PAIRS = dict(pair_intensities=(0.0, 0.25, 0.5, 0.75, 1.0),
                           pair_shares=(0.1, 0.15, 0.15, 0.15, 0.45))


def _small_training() -> "TrainingConfig":
    """The ``-small`` presets' schedule (README "Training on a CPU"): the original's three
    stages at batch 16, a one-epoch stage 1, the paired term (each face's own subject at
    the target expression) and no L_Q in stages 2-3, the matching-aware D_img with a
    light edit term and the gradient L1 in a 45-epoch stage 3 whose partners come at
    five intensities, G's L1 terms weighted towards where expressions change
    (``expression_regions``), and edits made with the average of the trained weights
    (``ema_momentum``)."""
    stages = {}
    for n, (base, epochs, changes) in enumerate(
            zip((_stage1(), _stage2(), _stage3()), _SMALL_EPOCHS, _SMALL_LOSSES), 1):
        stages[f"stage{n}"] = StageConfig(epochs=epochs, batch_size=_SMALL_BATCH,
                                          losses=dataclasses.replace(base.losses, **changes),
                                          **(_SMALL_STAGE3_PAIRS if n == 3 else {}))
    return TrainingConfig(**stages, expression_regions=_SMALL_EXPRESSION_REGIONS,
                          ema_momentum=_SMALL_EMA_MOMENTUM, **_SMALL_PAIRS)


def _preset(name: str) -> ExprGANConfig:
    small = name.endswith("-small")
    base = name[: -len("-small")] if small else name
    if base == "exprgan":
        model = ModelConfig(encoder="single")
        pre = PreprocessConfig(unsharp_mask=False)
        opt = OptimizerConfig(learning_rate=2e-4)
    elif base == "proposed":
        model = ModelConfig(encoder="dilated")
        pre = PreprocessConfig(unsharp_mask=True, radius=1.0, amount=1.0)
        opt = OptimizerConfig(learning_rate=1e-4)
    elif base == "proposed_no_unsharp":
        model = ModelConfig(encoder="dilated")
        pre = PreprocessConfig(unsharp_mask=False)
        opt = OptimizerConfig(learning_rate=1e-4)
    else:
        raise ValueError(f"Unknown preset {name!r}; choose one of {list(PRESETS)}")
    training = TrainingConfig()
    if small:
        model = dataclasses.replace(model, **_SMALL_MODEL)
        opt = dataclasses.replace(opt, learning_rate=_SMALL_LEARNING_RATE)
        training = _small_training()
    return ExprGANConfig(name=name, model=model, preprocess=pre, optimizer=opt,
                         training=training)


PRESETS = tuple(f"{base}{size}" for base in ("exprgan", "proposed", "proposed_no_unsharp")
                for size in ("", "-small"))


def get_preset(name: str) -> ExprGANConfig:
    """Return a preset: ``exprgan``, ``proposed``, ``proposed_no_unsharp``, each
    optionally with ``-small`` (64x64, half widths, for CPU)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {list(PRESETS)}")
    return _preset(name)
