"""`ExpressionEditor`: one Keras model that edits the expression of face images.

The editor chains the trained networks the way ExprGAN uses them at test time::

    image --ImagePreprocess--> x in [-1, 1] --encoder--> z
    (expression, intensity) --ExpressionCode--> c
    (z, c) --decoder--> edited image in [-1, 1]

Inputs (a list ``[images, expression, intensity]`` or a dict with those keys):

- ``images``: ``[N, S, S, 3]`` with ``S = image_size`` of the networks (64 for the
  ``-small`` presets, 128 otherwise), either **uint8 0-255** or **float in [-1, 1]**
  (``uint8 / 127.5 - 1``). Both give the same result: the editor applies the
  configuration's pre-processing (the optional unsharp mask, then [-1, 1]) inside the
  model, exactly as training saw it, so never sharpen the images yourself.
- ``expression``: int ``[N]``, the target class index into
  :data:`exprgan_tf.EXPRESSIONS` (0 anger, 1 disgust, 2 fear, 3 happiness,
  4 sadness, 5 surprise).
- ``intensity``: float ``[N]`` in [0, 1] (0 = the neutral-most code shared by every
  class, 1 = the strongest; see :mod:`exprgan_tf.controller` for the mapping).

Output: float32 ``[N, S, S, 3]`` in [-1, 1]; :func:`exprgan_tf.preprocessing.to_display`
turns it into uint8. Invalid values (an expression outside ``[0, num_classes)``, an
intensity outside [0, 1], float images outside [-1, 1], a batch-size mismatch) raise
``tf.errors.InvalidArgumentError`` with a message naming the input when the editor is
called on tensors and inside an exported SavedModel; ``editor.predict`` on arrays checks
them first and raises ``ValueError`` with the same messages (an empty batch gives an
empty result).

Example:
    >>> import numpy as np
    >>> from exprgan_tf.config import get_preset
    >>> from exprgan_tf.editor import ExpressionEditor
    >>> editor = ExpressionEditor.from_config_tree(get_preset("exprgan-small"))
    >>> faces = np.zeros((2, 64, 64, 3), "uint8")
    >>> out = editor.predict([faces, np.array([3, 5]), np.array([1.0, 0.5], "float32")],
    ...                      verbose=0)
    >>> out.shape
    (2, 64, 64, 3)
"""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from exprgan_tf import preprocessing
from exprgan_tf.config import EXPRESSIONS, ExprGANConfig
from exprgan_tf.controller import ExpressionCode
from exprgan_tf.layers import PACKAGE, PasteRegions
from exprgan_tf.models.decoder import decode, takes_base

INPUT_NAMES = ("images", "expression", "intensity")
# Float images may overshoot [-1, 1] by rounding (uint8 / 127.5 - 1 and back).
_FLOAT_RANGE_SLACK = 1e-3


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagePreprocess(keras.layers.Layer):
    """The training pre-processing as a layer: uint8 or [-1, 1] float -> [-1, 1] float.

    uint8 images are read as 0-255 (``x / 255``), float images as [-1, 1]
    (``(x + 1) / 2``); then the optional unsharp mask of
    :func:`exprgan_tf.preprocessing.unsharp_mask` is applied in [0, 1] and the result
    is rescaled to [-1, 1]. For uint8 input this is the very op sequence of
    :func:`exprgan_tf.preprocessing.preprocess_image`, which the training pipeline uses.

    Args:
        unsharp_mask: bool, sharpen before rescaling (the ``proposed`` presets).
        radius: float >= 0, Gaussian sigma of the unsharp mask.
        amount: float, strength of the unsharp mask.
        **kwargs: base ``Layer`` arguments.
    """

    def __init__(self, unsharp_mask=False, radius=1.0, amount=1.0, **kwargs):
        kwargs.setdefault("autocast", False)  # keep uint8 inputs uint8
        super().__init__(**kwargs)
        if radius < 0:
            raise ValueError(f"radius must be >= 0. Received: radius={radius!r}")
        self.unsharp_mask = bool(unsharp_mask)
        self.radius = float(radius)
        self.amount = float(amount)

    def call(self, images):
        if images.dtype == tf.uint8:
            x01 = preprocessing.to_float01(images)
        else:
            x01 = (tf.cast(images, tf.float32) + 1.0) / 2.0
        if self.unsharp_mask:
            x01 = preprocessing.unsharp_mask(x01, radius=self.radius, amount=self.amount)
        return preprocessing.to_model_range(x01)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"unsharp_mask": self.unsharp_mask, "radius": self.radius,
                       "amount": self.amount})
        return config


def _validation_ops(images, expression, intensity, num_classes, image_shape):
    """In-graph checks of the editor's inputs; each fails with a readable message.

    ``expression`` is checked in its own integer dtype (an int64 class of 2**32 must
    not wrap around to class 0 in an int32 cast).
    """
    checks = [
        tf.debugging.assert_equal(
            tf.shape(images)[1:], tf.constant(image_shape, tf.int32),
            message=f"images must have shape [N, {', '.join(map(str, image_shape))}]"),
        tf.debugging.assert_equal(
            tf.shape(expression)[0], tf.shape(images)[0],
            message="expression must have one entry per image (shape [N])"),
        tf.debugging.assert_equal(
            tf.shape(intensity)[0], tf.shape(images)[0],
            message="intensity must have one entry per image (shape [N])"),
        tf.debugging.assert_greater_equal(
            expression, tf.constant(0, expression.dtype),
            message=f"expression must be a class index in [0, {num_classes}) "
                    f"({', '.join(f'{i}={n}' for i, n in enumerate(EXPRESSIONS))})"),
        tf.debugging.assert_less(
            expression, tf.constant(num_classes, expression.dtype),
            message=f"expression must be a class index in [0, {num_classes}) "
                    f"({', '.join(f'{i}={n}' for i, n in enumerate(EXPRESSIONS))})"),
        tf.debugging.assert_greater_equal(
            intensity, 0.0, message="intensity must be in [0, 1]"),
        tf.debugging.assert_less_equal(
            intensity, 1.0, message="intensity must be in [0, 1]"),
    ]
    if images.dtype != tf.uint8:
        bound = 1.0 + _FLOAT_RANGE_SLACK
        checks += [
            tf.debugging.assert_greater_equal(
                images, tf.constant(-bound, images.dtype),
                message="float images must be in [-1, 1] (pass uint8 for 0-255 images)"),
            tf.debugging.assert_less_equal(
                images, tf.constant(bound, images.dtype),
                message="float images must be in [-1, 1] (pass uint8 for 0-255 images)"),
        ]
    return checks


def _network_policy(model) -> str:
    """The dtype policy a network computes in: that of its first layer with weights
    (a deserialised functional model's own policy is the global one, not its layers')."""
    for layer in model._flatten_layers(include_self=False):
        if layer.weights:
            return layer.dtype_policy.name
    return model.dtype_policy.name


def change_gate(drawn, rest, tau: float):
    """Where G's code changes its drawing: ``clip(mean_c |drawn - rest| / tau, 0, 1)``,
    blurred by 1 px, ``[N, H, W, 1]`` float32 (``model.paste_gate``).

    ``drawn`` is G's face at the requested code, ``rest`` at the zero code (both in G's
    [-1, 1] units); a change of ``tau`` or more lets G's face through in full.

    Example:
        >>> import numpy as np
        >>> rest = np.zeros((1, 4, 4, 3), "float32")
        >>> drawn = np.full((1, 4, 4, 3), 0.05, "float32")
        >>> round(float(change_gate(drawn, rest, 0.1)[0, 0, 0, 0]), 6)   # half the way
        0.5
        >>> round(float(change_gate(drawn, rest, 0.01)[0, 0, 0, 0]), 6)  # all the way
        1.0
    """
    change = tf.reduce_mean(tf.abs(tf.cast(drawn, tf.float32) - tf.cast(rest, tf.float32)),
                            -1, keepdims=True)
    return preprocessing.gaussian_blur(tf.clip_by_value(change / tau, 0.0, 1.0), 1.0)


EDIT_TIME_SETTINGS = {"edit_regions": 0.0, "paste_gate": 0.0, "intensity_scale": 1.0}
"""The editor's settings that use the trained networks as they are, with their values
when off (:meth:`ExpressionEditor.with_settings`; the ``model.*`` options of those
names)."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExpressionEditor(keras.Model):
    """Edit faces: ``[images, expression, intensity] -> edited images`` (see module doc).

    Args:
        encoder: the trained encoder, ``[N, S, S, 3]`` in [-1, 1] -> z.
        decoder: the trained decoder, ``[z, code] -> [N, S, S, 3]`` in [-1, 1].
        num_classes: expression classes of the code (6).
        intensity_dim: code dims per class (5).
        unsharp_mask: apply the unsharp mask in the pre-processing.
        radius: unsharp-mask Gaussian sigma.
        amount: unsharp-mask strength.
        sharpen_targets: ``preprocess.sharpen_targets``: whether G was trained to give
            back sharpened faces; a blend G (``model.decoder_output="blend"``) then
            blends over the sharpened input, else over the input without the mask.
        edit_regions: ``model.edit_regions``. ``0`` (the original): an edit is G's whole
            face. A percentile in (50, 100]: the edit is G's face where the map of
            :func:`exprgan_tf.data.regions.expression_regions` at that percentile is 1
            and the input (rescaled, not sharpened) where it is 0
            (:class:`~exprgan_tf.layers.PasteRegions`; the map is a weight, so saved
            and exported editors carry it).
        regions: with ``edit_regions``, the ``[S, S]`` map to use instead of computing
            it (a few seconds, once per process).
        paste_gate: ``model.paste_gate``, with ``edit_regions``: ``0``: paste through
            the whole map. ``tau > 0``: only where the code changes G's drawing from
            its drawing at the zero code (:func:`change_gate`); at intensity 0 the
            edit is the input.
        intensity_scale: ``model.intensity_scale``: a requested intensity ``s`` is drawn
            with G's code at ``intensity_scale * s`` (> 0; ``1``: as requested).
        dtype: ``None`` (the default) or the dtype policy the encoder and decoder were
            built under; the editor computes in their policy and raises ``ValueError``
            for another one (``from_config_tree(config, dtype=...)`` builds networks
            under a policy).
        **kwargs: base ``keras.Model`` arguments (``name``, ...).

    Example:
        >>> import numpy as np
        >>> from exprgan_tf.config import get_preset
        >>> from exprgan_tf.models import build_networks
        >>> cfg = get_preset("exprgan-small")
        >>> nets = build_networks(cfg.model)
        >>> editor = ExpressionEditor(nets.encoder, nets.decoder)
        >>> editor.image_size
        64
    """

    def __init__(self, encoder, decoder, num_classes=6, intensity_dim=5, unsharp_mask=False,
                 radius=1.0, amount=1.0, sharpen_targets=True, edit_regions=0.0, regions=None,
                 paste_gate=0.0, intensity_scale=1.0, dtype=None, **kwargs):
        if not isinstance(encoder, keras.Model) or not isinstance(decoder, keras.Model):
            raise ValueError("encoder and decoder must be keras.Model instances. Received: "
                             f"encoder={type(encoder).__name__}, "
                             f"decoder={type(decoder).__name__}")
        # The networks arrive built, in the dtype policy they were built under; the
        # editor reports that policy and refuses another one rather than ignore it.
        policy = _network_policy(encoder)
        if dtype is not None and keras.dtype_policies.get(dtype).name != policy:
            raise ValueError(
                f"The encoder and decoder compute in the dtype policy '{policy}', so the "
                "editor does too. Build them under the policy you want "
                "(ExpressionEditor.from_config_tree(config, dtype=...)). "
                f"Received: dtype={dtype!r}")
        kwargs.setdefault("name", "expression_editor")
        # Inputs pass through uncast: uint8 images stay uint8, and intensities stay
        # float32 whatever the networks compute in.
        kwargs.setdefault("autocast", False)
        super().__init__(dtype=policy, **kwargs)
        shape = tuple(encoder.input_shape)
        if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
            raise ValueError("encoder must take square images [N, S, S, C]. "
                             f"Received: encoder.input_shape={shape}")
        code_dim = decoder.input_shape[1][-1]
        if code_dim != num_classes * intensity_dim:
            raise ValueError(
                f"decoder expects a {code_dim}-d code but num_classes * intensity_dim = "
                f"{num_classes * intensity_dim}. Received: num_classes={num_classes}, "
                f"intensity_dim={intensity_dim}")
        # === Layers ===
        self.encoder = encoder
        self.decoder = decoder
        self.preprocess = ImagePreprocess(unsharp_mask, radius, amount, name="preprocess")
        # The face a blend G keeps, in the form G was trained to give back.
        self.base = (ImagePreprocess(False, name="base")
                     if unsharp_mask and not sharpen_targets and takes_base(decoder) else None)
        intensity_scale = float(intensity_scale)
        if not (np.isfinite(intensity_scale) and intensity_scale > 0):
            raise ValueError("intensity_scale must be a number > 0. "
                             f"Received: intensity_scale={intensity_scale}")
        self.code = ExpressionCode(num_classes, intensity_dim, scale=intensity_scale,
                                   name="expression_code", dtype="float32")
        # G's face pasted into the input where expressions change (model.edit_regions).
        self.face = self.paste = None
        edit_regions = float(edit_regions)
        if edit_regions and regions is None:
            from exprgan_tf.data.regions import expression_regions

            regions = expression_regions(shape[1], edit_regions)
        if regions is not None:
            if not edit_regions:
                raise ValueError("regions is the map of edit_regions; set edit_regions (a "
                                 "percentile in (50, 100]) with it.")
            regions = np.asarray(regions, np.float32)
            if regions.shape != shape[1:3] or not np.all((regions >= 0) & (regions <= 1)):
                raise ValueError(f"regions must be a [{shape[1]}, {shape[2]}] map in [0, 1] "
                                 f"(the image size). Received: shape={regions.shape}")
            self.face = ImagePreprocess(False, name="face")
            self.paste = PasteRegions(name="paste_regions", dtype="float32")
        paste_gate = float(paste_gate)
        if not (np.isfinite(paste_gate) and paste_gate >= 0) or (
                paste_gate and self.paste is None):
            raise ValueError("paste_gate must be 0, or a number > 0 with edit_regions set "
                             f"(it gates that paste). Received: paste_gate={paste_gate}, "
                             f"edit_regions={edit_regions}")
        # === Config ===
        self.paste_gate = paste_gate
        self.intensity_scale = intensity_scale
        self.num_classes = int(num_classes)
        self.intensity_dim = int(intensity_dim)
        self.unsharp_mask = bool(unsharp_mask)
        self.radius = float(radius)
        self.amount = float(amount)
        self.sharpen_targets = bool(sharpen_targets)
        self.edit_regions = edit_regions
        self.image_size = int(shape[1])
        self.channels = int(shape[3])
        # Every trained weight lives in the (built) encoder and decoder (the paste's map
        # is a fixed one); building the other layers with their shapes lets summary()
        # show them before a call.
        self.preprocess.build(shape)
        if self.base is not None:
            self.base.build(shape)
        self.code.build([(None,), (None,)])
        if self.paste is not None:
            self.face.build(shape)
            self.paste.build([shape, shape])
            self.paste.regions.assign(regions[..., None])
        self.built = True

    # --- construction helpers -------------------------------------------------------
    @classmethod
    def from_networks(cls, config: ExprGANConfig, encoder, decoder, **kwargs):
        """The editor of trained networks, with ``config``'s code layout and
        pre-processing."""
        pre, m = config.preprocess, config.model
        return cls(encoder, decoder, num_classes=m.num_classes,
                   intensity_dim=m.intensity_dim, unsharp_mask=pre.unsharp_mask,
                   radius=pre.radius, amount=pre.amount, sharpen_targets=pre.sharpen_targets,
                   edit_regions=m.edit_regions, paste_gate=m.paste_gate,
                   intensity_scale=m.intensity_scale, **kwargs)

    def with_settings(self, **settings) -> "ExpressionEditor":
        """This editor's networks under other edit-time settings: a new editor sharing
        the encoder and decoder, with any of ``edit_regions``, ``paste_gate`` and
        ``intensity_scale`` changed (the rest as they are). Settings that would need
        other weights (the pre-processing, the code layout) are refused.

        Example:
            >>> from exprgan_tf.config import get_preset
            >>> editor = ExpressionEditor.from_config_tree(get_preset("proposed-small"))
            >>> gated = editor.with_settings(paste_gate=0.03, intensity_scale=0.75)
            >>> gated.paste_gate, gated.intensity_scale, gated.decoder is editor.decoder
            (0.03, 0.75, True)
        """
        unknown = sorted(set(settings) - set(EDIT_TIME_SETTINGS))
        if unknown:
            raise ValueError(f"with_settings changes {list(EDIT_TIME_SETTINGS)} only. "
                             f"Received: {unknown}")
        config = {k: v for k, v in self.get_config().items()
                  if k not in ("encoder", "decoder", "name", "trainable")}
        config.update(settings)
        if self.paste is not None and config["edit_regions"] == self.edit_regions:
            config["regions"] = np.asarray(self.paste.regions)[..., 0]
        return type(self)(self.encoder, self.decoder, **config)

    @classmethod
    def from_config_tree(cls, config: ExprGANConfig, dtype=None, **kwargs):
        """A freshly initialised (untrained) editor for ``config``; for tests and
        benchmarks. ``dtype`` (e.g. ``"mixed_bfloat16"``) builds the networks under
        that Keras dtype policy."""
        import contextlib

        from exprgan_tf.models import build_decoder, build_encoder
        from exprgan_tf.training.precision import dtype_policy

        with dtype_policy(dtype) if dtype is not None else contextlib.nullcontext():
            encoder, decoder = build_encoder(config.model), build_decoder(config.model)
        return cls.from_networks(config, encoder, decoder, dtype=dtype, **kwargs)

    # --- model ----------------------------------------------------------------------
    def build(self, input_shape=None):
        # Encoder and decoder are functional models, built when constructed; the other
        # layers have no weights.
        self.built = True

    def _split_inputs(self, inputs):
        if isinstance(inputs, dict):
            missing = [k for k in INPUT_NAMES if k not in inputs]
            if missing:
                raise ValueError(f"ExpressionEditor inputs need the keys {list(INPUT_NAMES)}. "
                                 f"Received: keys={sorted(inputs)}")
            return tuple(inputs[k] for k in INPUT_NAMES)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 3:
            return tuple(inputs)
        raise ValueError("ExpressionEditor expects [images, expression, intensity] or a dict "
                         f"with keys {list(INPUT_NAMES)}. Received: inputs={inputs!r}")

    def call(self, inputs):
        images, expression, intensity = self._split_inputs(inputs)
        images = tf.convert_to_tensor(images)
        if images.dtype not in (tf.uint8, tf.float16, tf.bfloat16, tf.float32, tf.float64):
            raise ValueError("images must be uint8 (0-255) or float ([-1, 1]). "
                             f"Received: images.dtype={images.dtype.name}")
        expression = tf.convert_to_tensor(expression)
        if not expression.dtype.is_integer:
            raise ValueError("expression must be an integer class index. "
                             f"Received: expression.dtype={expression.dtype.name}")
        expression = tf.reshape(expression, [-1])
        intensity = tf.cast(tf.convert_to_tensor(intensity), tf.float32)
        if intensity.shape.rank == 2 and intensity.shape[-1] == 1:
            intensity = tf.reshape(intensity, [-1])
        expected = (self.image_size, self.image_size, self.channels)
        if images.shape.rank is not None and (
                images.shape.rank != 4 or not images.shape[1:].is_compatible_with(expected)):
            raise ValueError(f"images must have shape [N, {self.image_size}, "
                             f"{self.image_size}, {self.channels}]. Received: "
                             f"images.shape={images.shape} (edit photos of other sizes "
                             "with exprgan_tf.photo)")
        # Every input waits for every check: no op can fail on a bad shape first.
        with tf.control_dependencies(_validation_ops(images, expression, intensity,
                                                     self.num_classes, expected)):
            images = tf.identity(images)
            expression = tf.cast(expression, tf.int32)
            intensity = tf.identity(intensity)
        x = self.preprocess(images)
        z = self.encoder(x)
        c = self.code([expression, intensity])
        sees = x if self.base is None else self.base(images)
        out = decode(self.decoder, z, c, sees)
        if self.paste is None:
            return out
        if not self.paste_gate:
            return self.paste([out, self.face(images)])
        rest = decode(self.decoder, z, self.code([expression, tf.zeros_like(intensity)]),
                      sees)
        return self.paste([out, self.face(images), change_gate(out, rest, self.paste_gate)])

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """``keras.Model.predict``, with the inputs checked first (array inputs).

        The checks of :meth:`call` run inside the compiled graph; Keras' batching runs
        before it and fails on inputs it cannot split (a scalar expression, an empty
        batch) with errors that do not say what is wrong. Here such inputs raise a
        ``ValueError`` naming the input, and an empty batch gives an empty result.
        """
        if isinstance(x, (list, tuple, dict)):
            images, expression, intensity = (np.asarray(v) for v in self._split_inputs(x))
            self._check_arrays(images, expression, intensity)
            if len(images) == 0:
                return np.zeros((0, self.image_size, self.image_size, self.channels),
                                "float32")
            x = [images, expression, intensity]
        return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps,
                               callbacks=callbacks)

    def _check_arrays(self, images, expression, intensity):
        expected = (self.image_size, self.image_size, self.channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"images must have shape [N, {self.image_size}, "
                             f"{self.image_size}, {self.channels}]. Received: "
                             f"images.shape={images.shape} (edit photos of other sizes "
                             "with exprgan_tf.photo)")
        n = len(images)
        for name, value in (("expression", expression), ("intensity", intensity)):
            if value.shape not in ((n,), (n, 1)):
                raise ValueError(f"{name} must have one entry per image (shape [N] = "
                                 f"[{n}]). Received: {name}.shape={value.shape}")
        if not np.issubdtype(expression.dtype, np.integer):
            raise ValueError("expression must be an integer class index. "
                             f"Received: expression.dtype={expression.dtype}")
        classes = ", ".join(f"{i}={n}" for i, n in enumerate(EXPRESSIONS))
        if n and (expression.min() < 0 or expression.max() >= self.num_classes):
            raise ValueError(f"expression must be a class index in [0, {self.num_classes}) "
                             f"({classes}). Received: values {sorted(set(expression.ravel().tolist()))[:10]}")
        if n and not (np.all(intensity >= 0.0) and np.all(intensity <= 1.0)):
            raise ValueError("intensity must be in [0, 1] (and not NaN). Received: "
                             f"min={np.nanmin(intensity)}, max={np.nanmax(intensity)}")

    def edit(self, images, expression, intensity=1.0, batch_size: int = 64,
             progress=None):
        """Edit uint8 faces eagerly, ``batch_size`` at a time: the one way the package
        edits faces outside a graph (evaluation, the learning report, training's sample
        grids).

        Args:
            images: uint8 ``[N, S, S, 3]``.
            expression: target class, one for all or ``[N]``.
            intensity: in [0, 1], one for all or ``[N]``.
            batch_size: faces per forward pass.
            progress: called with the number of faces done after each batch.

        Returns:
            uint8 ``[N, S, S, 3]``.
        """
        import numpy as np

        images = np.asarray(images)
        n = len(images)
        expression = np.broadcast_to(np.asarray(expression, np.int32), (n,))
        intensity = np.broadcast_to(np.asarray(intensity, np.float32), (n,))
        out = []
        for s in range(0, n, batch_size):
            part = slice(s, s + batch_size)
            edited = self([images[part], expression[part], intensity[part]], training=False)
            out.append(preprocessing.to_display(edited).numpy())
            if progress:
                progress(min(s + batch_size, n))
        return np.concatenate(out) if out else np.zeros((0,) + images.shape[1:], np.uint8)

    @property
    def _default_save_signature(self):
        # Keras would trace a float32-only signature when a SavedModel is written; the
        # serving signatures come from exprgan_tf.serving.export instead.
        return None

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0] if isinstance(input_shape, (list, tuple)) else None
        return (batch, self.image_size, self.image_size, self.channels)

    def get_config(self):
        config = super().get_config()   # name, trainable, dtype
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "num_classes": self.num_classes,
            "intensity_dim": self.intensity_dim,
            "unsharp_mask": self.unsharp_mask,
            "radius": self.radius,
            "amount": self.amount,
            "sharpen_targets": self.sharpen_targets,
            "edit_regions": self.edit_regions,   # (the map itself is a weight)
            "paste_gate": self.paste_gate,
            "intensity_scale": self.intensity_scale,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        if config.get("edit_regions"):  # the map is filled when the weights are loaded
            size = config["encoder"].input_shape[1]
            config["regions"] = np.zeros((size, size), np.float32)
        return cls(**config)


__all__ = ["EDIT_TIME_SETTINGS", "ExpressionEditor", "ImagePreprocess", "INPUT_NAMES",
           "change_gate"]
