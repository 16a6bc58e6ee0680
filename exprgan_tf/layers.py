"""Custom Keras layers of exprgan_tf, all registered serialisable (no Lambda layers).

- :class:`DilatedConv2D`: a convolution that is strided *and* dilated at once, which
  ``keras.layers.Conv2D`` refuses. It is the building block of the paper's second
  encoder channel.
- :class:`ConcatLabel`: concatenates a label vector (optionally tiled) to a vector, or
  broadcasts it over a feature map and concatenates it on the channel axis. The decoder
  uses it with the 30-d expression code, D_img with the 6-d one-hot label.
- :class:`MaskedBlend`: ``mask * base + (1 - mask) * color``, the last layer of the
  ``blend`` decoder (``model.decoder_output="blend"``, not in the original).
- :class:`PasteRegions`: G's face inside a fixed map of where expressions change, the
  input outside it; the editor's last step with ``model.edit_regions`` (not in the
  original).
- :class:`BlankRegions`: the face with that map's regions blanked, which the decoder of
  ``model.decoder_face_hole`` sees (not in the original).
- :class:`CodeMix` and :class:`CodeLevels`: the decoder of ``model.code_at="output"``
  mixes its last maps by the code, or (``model.code_levels``) by the code's intensity
  per class spread on a few levels (not in the original).
- :class:`PiecewiseLinear`: a learned piecewise-linear function of each entry, through
  which the decoder of ``model.code_knots`` reads the expression code (not in the
  original).

Example:
    >>> import numpy as np
    >>> from exprgan_tf.layers import DilatedConv2D, ConcatLabel
    >>> x = np.zeros((2, 32, 32, 3), "float32")
    >>> tuple(DilatedConv2D(8, 5, strides=2, dilation_rate=2)(x).shape)
    (2, 16, 16, 8)
    >>> tuple(ConcatLabel()([x, np.ones((2, 6), "float32")]).shape)
    (2, 32, 32, 9)
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "exprgan_tf"


def _every_nth_pixel(x, n):
    """``x[:, ::n, ::n, :]`` for NHWC maps. When the height, width and channels are
    known and the sizes divisible by ``n`` it is a reshape and a contiguous slice,
    whose gradient is a pad: on CPU several times faster than the strided slice's
    gradient (a scatter), with the same values."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if n == 1:
        return x
    if None in (h, w, c) or h % n or w % n:
        return x[:, ::n, ::n, :]
    x = ops.reshape(x, (-1, h // n, n, w // n, n * c))
    x = ops.slice(x, (0, 0, 0, 0, 0), (-1, h // n, 1, w // n, c))
    return ops.reshape(x, (-1, h // n, w // n, c))


def _check_int(name, value, least):
    """A layer argument that must be an integer (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package=PACKAGE)
class DilatedConv2D(keras.layers.Layer):
    """2-D convolution with a stride and a dilation rate at the same time.

    The output is exactly the strided dilated convolution with "centred" zero padding
    of ``dilation_rate * (kernel_size - 1) // 2`` on every side::

        out[i, j] = bias + sum_{a, b} kernel[a, b] . x_pad[s*i + d*a, s*j + d*b]

    which equals the stride-1 ``padding="same"`` dilated convolution keeping every
    ``strides``-th pixel (starting at pixel 0). The output size is
    ``ceil(input_size / strides)``. How it is computed:

    - ``dilation_rate == 1``: one strided convolution on the padded input.
    - ``dilation_rate % strides == 0`` (the paper's stride 2, dilation 2): take every
      ``strides``-th pixel of the padded input first, then a stride-1 convolution with
      dilation ``dilation_rate // strides``. Same result, ``strides**2`` times fewer
      multiply-adds than the dense reference, and only ops every backend supports.
      (The padding is a multiple of the stride here, so the input is subsampled
      first and the small map padded.)
    - otherwise: the stride-1 dilated convolution, then keep every ``strides``-th pixel.

    Note: for ``dilation_rate == 1`` this padding is symmetric, whereas TF's
    ``padding="same"`` with stride 2 pads one pixel more at the bottom/right; the two
    differ by a one-pixel shift of the sampling grid. The ``dilated`` encoder uses this
    layer for all of its channels so they sample the same grid.

    Args:
        filters: int, number of output channels.
        kernel_size: int, odd side of the square kernel.
        strides: int, stride in both spatial dimensions.
        dilation_rate: int, dilation in both spatial dimensions.
        activation: activation name or callable applied to the output.
        use_bias: bool, add a bias vector.
        kernel_initializer: initializer of the kernel.
        bias_initializer: initializer of the bias.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, filters, kernel_size, strides=2, dilation_rate=2, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("filters", filters), ("kernel_size", kernel_size),
                           ("strides", strides), ("dilation_rate", dilation_rate)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive integer. Received: {arg}={value!r}")
        if kernel_size % 2 == 0:
            raise ValueError("DilatedConv2D needs an odd kernel_size so that 'centred' "
                             f"padding exists. Received: kernel_size={kernel_size}")
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("DilatedConv2D needs a known number of input channels. "
                             f"Received: input_shape={input_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, inputs):
        s, d = self.strides, self.dilation_rate
        p = d * (self.kernel_size - 1) // 2
        if d % s == 0 and d > 1:
            # p is then a multiple of s, so every s-th pixel of the padded input is the
            # padded every-s-th pixel of the input: subsample first, pad the small map.
            q = p // s
            x = ops.pad(_every_nth_pixel(inputs, s), [[0, 0], [q, q], [q, q], [0, 0]])
            y = ops.conv(x, self.kernel, strides=1, padding="valid", dilation_rate=d // s)
        else:
            x = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
            if d == 1:
                y = ops.conv(x, self.kernel, strides=s, padding="valid")
            else:
                y = ops.conv(x, self.kernel, strides=1, padding="valid", dilation_rate=d)
                y = y[:, ::s, ::s, :]
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.strides
        out = lambda v: None if v is None else -(-v // s)  # ceil division
        return (n, out(h), out(w), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConcatLabel(keras.layers.Layer):
    """Concatenate a label vector to a vector or to every pixel of a feature map.

    Called on ``[x, label]`` with ``label`` of shape ``[N, L]``:

    - ``x`` of shape ``[N, D]`` -> ``[N, D + duplicate * L]`` (label tiled ``duplicate``
      times, as the original's decoder input ``z ++ c ++ c ...``);
    - ``x`` of shape ``[N, H, W, C]`` -> ``[N, H, W, C + duplicate * L]``, the label
      broadcast over the ``H x W`` positions.

    Args:
        duplicate: int >= 1, how many copies of the label are concatenated.
        **kwargs: base ``Layer`` arguments.
    """

    def __init__(self, duplicate=1, **kwargs):
        super().__init__(**kwargs)
        _check_int("duplicate", duplicate, 1)
        self.duplicate = duplicate

    def call(self, inputs):
        x, label = inputs
        label = ops.cast(label, x.dtype)
        if self.duplicate > 1:
            label = ops.tile(label, [1, self.duplicate])
        if len(x.shape) == 2:
            return ops.concatenate([x, label], axis=-1)
        if len(x.shape) != 4:
            raise ValueError("ConcatLabel expects x of rank 2 or 4. "
                             f"Received: x.shape={tuple(x.shape)}")
        shape = ops.shape(x)
        label = ops.reshape(label, (-1, 1, 1, label.shape[-1]))
        label = ops.broadcast_to(label, (shape[0], shape[1], shape[2], label.shape[-1]))
        return ops.concatenate([x, label], axis=-1)

    def compute_output_shape(self, input_shape):
        x_shape, label_shape = input_shape
        return tuple(x_shape[:-1]) + (x_shape[-1] + self.duplicate * label_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"duplicate": self.duplicate})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedBlend(keras.layers.Layer):
    """``mask * base + (1 - mask) * color``: keep ``base`` where the mask is 1 and draw
    ``color`` where it is 0.

    Called on ``[color [N, H, W, C], mask [N, H, W, 1], base [N, H, W, C]]``; the mask is
    broadcast over the channels. The ``blend`` decoder's last layer
    (:func:`~exprgan_tf.models.build_decoder`), with the input face as ``base``.
    """

    def call(self, inputs):
        color, mask, base = inputs
        mask = ops.cast(mask, color.dtype)
        return color + mask * (ops.cast(base, color.dtype) - color)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


def paste(drawn, face, regions):
    """``face + regions * (drawn - face)``, in ``drawn``'s dtype: the one paste of the
    package (the editor's :class:`PasteRegions`, and training through it with
    ``training.paste_regions``)."""
    face = ops.cast(face, drawn.dtype)
    return face + ops.cast(regions, drawn.dtype) * (drawn - face)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PasteRegions(keras.layers.Layer):
    """``face + regions * (drawn - face)``: ``drawn`` where the fixed map ``regions``
    is 1, ``face`` where it is 0, mixed between.

    Called on ``[drawn [N, H, W, C], face [N, H, W, C]]``, or with a third input, a
    per-face ``gate [N, H, W, 1]`` in [0, 1] that the map is multiplied by
    (``model.paste_gate``). ``regions`` (``[H, W, 1]``, in [0, 1]) is a non-trainable
    weight, created at build as zeros (the output is then
    ``face``) and set with ``set_weights`` or ``regions.assign``; it travels with the
    weights (``.keras``, ``.npz``, SavedModel). The editor pastes G's face into the
    input through :func:`exprgan_tf.data.regions.expression_regions` with it.

    Example:
        >>> import numpy as np
        >>> paste = PasteRegions()
        >>> drawn, face = np.ones((1, 1, 2, 3), "float32"), np.zeros((1, 1, 2, 3), "float32")
        >>> paste.build([drawn.shape, face.shape])
        >>> _ = paste.regions.assign(np.array([[[1.0], [0.25]]], "float32"))
        >>> np.asarray(paste([drawn, face]))[0, 0, :, 0].tolist()
        [1.0, 0.25]
    """

    def build(self, input_shape):
        h, w = input_shape[0][1], input_shape[0][2]
        if h is None or w is None:
            raise ValueError("PasteRegions needs a known height and width. Received: "
                             f"input_shape={input_shape}")
        self.regions = self.add_weight(shape=(h, w, 1), initializer="zeros",
                                       trainable=False, name="regions")

    def call(self, inputs):
        drawn, face, *gate = inputs
        regions = self.regions if not gate else self.regions * ops.cast(gate[0], "float32")
        return paste(drawn, face, regions)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package=PACKAGE)
class BlankRegions(PasteRegions):
    """``(1 - regions) * face``: a blank pasted into the face through the fixed map
    ``regions`` (a :class:`PasteRegions` whose drawing is zero). Called on one face
    ``[N, H, W, C]``. The decoder of ``model.decoder_face_hole`` sees the face it edits
    through it, so it cannot copy the input where the editor keeps its drawing.

    Example:
        >>> import numpy as np
        >>> blank = BlankRegions()
        >>> face = np.full((1, 1, 2, 3), 0.5, "float32")
        >>> blank.build(face.shape)
        >>> _ = blank.regions.assign(np.array([[[1.0], [0.25]]], "float32"))
        >>> np.asarray(blank(face))[0, 0, :, 0].tolist()
        [0.0, 0.375]
    """

    def build(self, input_shape):
        super().build([input_shape, input_shape])

    def call(self, face):
        return paste(ops.zeros_like(face), face, self.regions)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def _hat_weights(t, first, count):
    """Linear-interpolation weights of positions ``t`` (any shape) on the integer grid
    ``first, ..., first + count - 1``: shape ``t.shape + (count,)``, each node's hat
    ``max(0, 1 - |t - node|)``."""
    grid = ops.arange(first, first + count, dtype=t.dtype)
    return ops.relu(1.0 - ops.abs(t[..., None] - grid))


@keras.saving.register_keras_serializable(package=PACKAGE)
class CodeMix(keras.layers.Layer):
    """Maps mixed by a code: ``[maps [N, H, W, (1 + D) * C], code [N, D]]`` ->
    ``maps_0 + sum_d code_d * maps_(d+1)``, ``[N, H, W, C]``, where ``maps_k`` is the
    ``k``-th group of ``C`` channels. The result is linear in the code: half a code
    moves every value half as far from ``maps_0``.

    The decoder of ``model.code_at="output"`` (not in the original) reads the
    expression code only here, at its output, so G's response to an intensity ``s``
    is ``tanh(A + s * D)``: every pixel moves monotonically from the zero code's face
    ``A`` towards the expression's.

    Example:
        >>> import numpy as np
        >>> maps = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)  # C = 2, D = 2
        >>> code = np.array([[0.5, -1.0]], "float32")
        >>> np.asarray(CodeMix(channels=2)([maps, code])).ravel().tolist()
        [-3.0, -2.5]
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        _check_int("channels", channels, 1)
        self.channels = channels

    def call(self, inputs):
        maps, code = inputs
        code = ops.cast(code, maps.dtype)
        groups = code.shape[-1] + 1
        if maps.shape[-1] != groups * self.channels:
            raise ValueError(f"CodeMix needs (1 + code size) * channels = {groups} * "
                             f"{self.channels} map channels. Received: {maps.shape[-1]}")
        shape = ops.shape(maps)
        maps = ops.reshape(maps, (shape[0], shape[1], shape[2], groups, self.channels))
        weights = ops.concatenate([ops.ones_like(code[:, :1]), code], axis=-1)
        return ops.einsum("nhwkc,nk->nhwc", maps, weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class CodeLevels(keras.layers.Layer):
    """A code's intensity per class as weights on ``levels`` evenly spaced levels:
    ``[N, classes * block]`` -> ``[N, classes * levels]``. Each class's entry ``m`` is
    the mean of its block of the code; its ``levels`` outputs are ``sign(m) *
    hat_k(|m|)``, the hat of level ``k`` (``k = 1 .. levels``) peaking at ``|m| = k /
    levels`` and falling to 0 at the neighbouring levels. At ``|m| = 0`` every output
    is 0, on a level only that level's is non-zero (``sign(m)``), between two levels
    the two share it linearly.

    The decoder of ``model.code_levels`` (not in the original) feeds
    :class:`CodeMix` these weights instead of the code, so G's output is ``tanh(A +
    sum_k hat_k(s) D_k)`` at intensity ``s``: a map of its own at each level (the
    expression's shapes can move as it grows), piecewise linear between levels.

    Example:
        >>> import numpy as np
        >>> code = np.array([[0.5, 0.5, -0.5, -0.5]], "float32")  # 2 classes, blocks of 2
        >>> (np.asarray(CodeLevels(classes=2, levels=4)(code)) + 0.0).ravel().tolist()
        [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]
    """

    def __init__(self, classes, levels, **kwargs):
        super().__init__(**kwargs)
        _check_int("classes", classes, 1)
        _check_int("levels", levels, 1)
        self.classes = classes
        self.levels = levels

    def call(self, code):
        size = code.shape[-1]
        if size is None or size % self.classes:
            raise ValueError(f"CodeLevels needs a code whose size is a multiple of "
                             f"classes={self.classes}. Received: {size}")
        blocks = ops.reshape(code, (-1, self.classes, size // self.classes))
        m = ops.mean(blocks, axis=-1)                                  # [N, classes]
        hats = _hat_weights(ops.clip(ops.abs(m), 0.0, 1.0) * self.levels, 1, self.levels)
        return ops.reshape(ops.sign(m)[..., None] * hats, (-1, self.classes * self.levels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.classes * self.levels,)

    def get_config(self):
        config = super().get_config()
        config.update({"classes": self.classes, "levels": self.levels})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class PiecewiseLinear(keras.layers.Layer):
    """A learned piecewise-linear function of each entry of a vector: ``knots`` points
    evenly spaced on [-1, 1], a trainable value per entry and knot (``values``,
    ``[D, knots]``), linear interpolation between them; inputs are clipped to [-1, 1].
    The values start at the knots, so the layer starts as the identity.

    The decoder of ``model.code_knots`` reads the expression code through it (not in
    the original): with the code fed in as it is, every layer of G responds to an
    intensity linearly before its ReLU, so what G learns for a weak expression pulls on
    the same weights as the peak; here each knot's values are weights of their own.

    Example:
        >>> import numpy as np
        >>> layer = PiecewiseLinear(5)
        >>> x = np.array([[-1.0, 0.25, 0.6]], "float32")
        >>> np.asarray(layer(x)).astype(float).round(4).tolist()
        [[-1.0, 0.25, 0.6]]
        >>> _ = layer.values.assign(np.square(layer.values))   # f(x) = x^2 at the knots (gain 1)
        >>> np.asarray(layer(x)).astype(float).round(4).tolist()
        [[1.0, 0.125, 0.4]]

    Args:
        knots: int >= 2, the number of knots.
        gain: float > 0. The weight holds the knot values divided by ``gain`` and the
            layer multiplies them back, so an optimiser like Adam, which moves every
            weight by about its learning rate per step, moves the knots ``gain`` times
            as fast. The function computed is the same for any gain.
    """

    def __init__(self, knots=9, gain=1.0, **kwargs):
        super().__init__(**kwargs)
        _check_int("knots", knots, 2)
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0:
            raise ValueError(f"gain must be a number > 0. Received: gain={gain!r}")
        self.knots = knots
        self.gain = float(gain)

    def build(self, input_shape):
        grid = [(-1.0 + 2.0 * j / (self.knots - 1)) / self.gain for j in range(self.knots)]
        self.values = self.add_weight(
            name="values", shape=(input_shape[-1], self.knots),
            initializer=keras.initializers.Constant([grid] * input_shape[-1]))

    def call(self, x):
        # each entry's position on the knot grid, and its hat weights on the knots
        t = (ops.clip(x, -1.0, 1.0) + 1.0) * (0.5 * (self.knots - 1))
        hats = _hat_weights(t, 0, self.knots)                         # [N, D, knots]
        return ops.sum(hats * ops.cast(self.values, x.dtype), axis=-1) * self.gain

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"knots": self.knots, "gain": self.gain})
        return config
