import re

import numpy as np
import keras
import pytest
import tensorflow as tf

from exprgan_tf.layers import (CodeLevels, CodeMix, ConcatLabel, DilatedConv2D, MaskedBlend,
                               PasteRegions, PiecewiseLinear)
from helpers import check_layer


def _reference(x, kernel, bias, stride, dilation):
    """The slow definition: stride-1 dilated 'same' conv, keep every stride-th pixel.

    The dilation is written out as a dense kernel with zeros between the taps, so the
    reference (and its gradients) never needs a dilated-conv kernel: without oneDNN
    (x86 CPUs without AVX-512) TensorFlow has no dilated Conv2DBackpropInput."""
    k = kernel.shape[0]
    spread = tf.constant(np.eye((k - 1) * dilation + 1, dtype="float32")[::dilation])
    dense = tf.einsum("ai,bj,abcd->ijcd", spread, spread, kernel)
    y = tf.nn.conv2d(x, dense, strides=1, padding="SAME")
    return y[:, ::stride, ::stride, :] + bias


def test_reference_equals_tensorflows_dilated_conv():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, 11, 11, 2)).astype("float32"))
    kernel = tf.constant(rng.normal(size=(3, 3, 2, 4)).astype("float32"))
    y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME", dilations=3)  # forward only
    np.testing.assert_allclose(_reference(x, kernel, 0.0, 1, 3), y, atol=1e-5)


@pytest.mark.parametrize("size", [16, 13])
@pytest.mark.parametrize("stride, dilation, ksize", [(2, 2, 5), (2, 1, 5), (2, 3, 3),
                                                     (2, 4, 3), (1, 2, 5), (3, 3, 3)])
def test_dilated_conv_equals_slow_reference(size, stride, dilation, ksize):
    rng = np.random.default_rng(size + stride + dilation)
    x = rng.normal(size=(2, size, size, 3)).astype("float32")
    layer = DilatedConv2D(4, ksize, strides=stride, dilation_rate=dilation,
                          kernel_initializer="random_normal", bias_initializer="random_normal")
    y = layer(x).numpy()
    ref = _reference(x, layer.kernel, layer.bias, stride, dilation).numpy()
    assert y.shape == (2, -(-size // stride), -(-size // stride), 4)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_dilated_conv_gradients_match_reference():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(1, 12, 12, 2)).astype("float32"))
    layer = DilatedConv2D(3, 5, strides=2, dilation_rate=2, kernel_initializer="random_normal")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a = tf.reduce_sum(layer(x) ** 2)
        b = tf.reduce_sum(_reference(x, layer.kernel, layer.bias, 2, 2) ** 2)
    np.testing.assert_allclose(tape.gradient(a, x), tape.gradient(b, x), atol=1e-4)
    np.testing.assert_allclose(tape.gradient(a, layer.kernel), tape.gradient(b, layer.kernel),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [16, 13])
def test_dilated_conv_fast_subsampling_is_bit_exact(size):
    """Subsampling before padding (a reshape + slice when the size is even) gives the
    very values and gradients of padding the full map and taking every 2nd pixel."""
    rng = np.random.default_rng(size)
    x = tf.constant(rng.normal(size=(2, size, size, 6)).astype("float32"))
    layer = DilatedConv2D(4, 5, strides=2, dilation_rate=2, kernel_initializer="random_normal",
                          bias_initializer="random_normal")

    def padded_then_strided(x):  # the layer's previous formulation
        x = tf.pad(x, [[0, 0], [4, 4], [4, 4], [0, 0]])[:, ::2, ::2, :]
        return tf.nn.conv2d(x, layer.kernel, strides=1, padding="VALID") + layer.bias

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a = layer(x)
        b = padded_then_strided(x)
        la, lb = tf.reduce_sum(a ** 2), tf.reduce_sum(b ** 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tape.gradient(la, x), tape.gradient(lb, x))
    np.testing.assert_array_equal(tape.gradient(la, layer.kernel), tape.gradient(lb, layer.kernel))


def test_dilated_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd kernel_size.*Received: kernel_size=4"):
        DilatedConv2D(4, 4)
    with pytest.raises(ValueError, match="dilation_rate must be a positive integer. Received: "
                                         "dilation_rate=0"):
        DilatedConv2D(4, 3, dilation_rate=0)


def test_concat_label_vector_and_map():
    label = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    v = np.array([[5.0], [6.0]], "float32")
    np.testing.assert_array_equal(ConcatLabel(duplicate=2)([v, label]),
                                  [[5, 1, 0, 1, 0], [6, 0, 1, 0, 1]])
    fmap = np.zeros((2, 3, 4, 1), "float32")
    out = ConcatLabel()([fmap, label]).numpy()
    assert out.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(out[0, :, :, 1:], np.broadcast_to([1, 0], (3, 4, 2)))
    np.testing.assert_array_equal(out[1, 2, 3], [0, 0, 1])
    cfg = ConcatLabel(duplicate=3, name="c").get_config()
    assert ConcatLabel.from_config(cfg).duplicate == 3
    with pytest.raises(ValueError, match="duplicate must be an integer >= 1. Received: "
                                         "duplicate=0"):
        ConcatLabel(duplicate=0)


def _every_custom_layer():
    """(id, layer, inputs, output shape) for each serialisable layer of the package."""
    from exprgan_tf.controller import ExpressionCode
    from exprgan_tf.editor import ImagePreprocess
    from exprgan_tf.identity.layers import ChannelAffine, FaceNetInput, PaddedAdd

    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.normal(size=shape).astype("float32")

    return [
        ("DilatedConv2D", DilatedConv2D(4, 5, strides=2, dilation_rate=2, activation="relu",
                                        bias_initializer="random_normal"),
         normal(2, 16, 16, 3), (2, 8, 8, 4)),
        ("ConcatLabel", ConcatLabel(duplicate=2),
         [normal(2, 8, 8, 3), np.eye(6, dtype="float32")[:2]], (2, 8, 8, 15)),
        ("ExpressionCode", ExpressionCode(6, 5),
         [np.array([1, 4], "int32"), np.array([0.25, 1.0], "float32")], (2, 30)),
        ("ImagePreprocess", ImagePreprocess(unsharp_mask=True, radius=1.5, amount=2.0),
         rng.integers(0, 256, (2, 8, 8, 3)).astype("uint8"), (2, 8, 8, 3)),
        ("FaceNetInput", FaceNetInput(mean=(129.1863, 104.7624, 93.594), scale=0.5),
         np.tanh(normal(2, 8, 8, 3)), (2, 8, 8, 3)),
        ("ChannelAffine", ChannelAffine(), normal(2, 4, 4, 3), (2, 4, 4, 3)),
        ("PaddedAdd", PaddedAdd(), [normal(2, 4, 5, 2), normal(2, 5, 4, 3)], (2, 5, 5, 3)),
        ("MaskedBlend", MaskedBlend(),
         [normal(2, 4, 4, 3), rng.uniform(size=(2, 4, 4, 1)).astype("float32"),
          normal(2, 4, 4, 3)], (2, 4, 4, 3)),
        ("PasteRegions", PasteRegions(), [normal(2, 4, 5, 3), normal(2, 4, 5, 3)], (2, 4, 5, 3)),
        ("PiecewiseLinear", PiecewiseLinear(5, gain=4.0), np.tanh(normal(2, 30)), (2, 30)),
        ("CodeMix", CodeMix(3), [normal(2, 4, 4, 12), np.tanh(normal(2, 3))], (2, 4, 4, 3)),
        ("CodeLevels", CodeLevels(3, 4), np.tanh(normal(2, 6)), (2, 12)),
    ]


@pytest.mark.parametrize("index", range(len(_every_custom_layer())),
                         ids=[c[0] for c in _every_custom_layer()])
def test_custom_layer_shapes_config_and_keras_file(index, tmp_path):
    _, layer, inputs, shape = _every_custom_layer()[index]
    layer(inputs)
    # weights that are not the initial ones, so that a lost weight shows
    layer.set_weights([np.random.default_rng(1).normal(size=w.shape).astype(w.dtype)
                       for w in layer.get_weights()])
    check_layer(layer, inputs, shape, tmp_path)


def test_dilated_conv_keeps_its_arguments_in_the_config():
    layer = DilatedConv2D(4, 5, strides=2, dilation_rate=2, activation="relu")
    clone = DilatedConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides, clone.dilation_rate) == (4, 5, 2, 2)


def test_masked_blend_keeps_the_base_where_the_mask_is_one():
    color = np.full((1, 1, 3, 2), 0.5, "float32")
    base = np.full((1, 1, 3, 2), -0.25, "float32")
    mask = np.array([1.0, 0.0, 0.25], "float32").reshape(1, 1, 3, 1)
    out = np.asarray(MaskedBlend()([color, mask, base]))
    np.testing.assert_allclose(out[0, 0], [[-0.25, -0.25], [0.5, 0.5], [0.3125, 0.3125]])


def test_paste_regions_draws_inside_the_map_and_keeps_the_face_outside():
    drawn = np.full((2, 1, 3, 2), 0.5, "float32")
    face = np.full((2, 1, 3, 2), -0.25, "float32")
    paste = PasteRegions()
    paste.build([drawn.shape, face.shape])
    # a fresh layer's map is zeros: the face, whatever G drew
    np.testing.assert_array_equal(np.asarray(paste([drawn, face])), face)
    paste.regions.assign(np.array([1.0, 0.0, 0.25], "float32").reshape(1, 3, 1))
    out = np.asarray(paste([drawn, face]))
    np.testing.assert_allclose(out[:, 0, :, 0], [[0.5, -0.25, -0.0625]] * 2)
    assert paste.trainable_weights == [] and len(paste.weights) == 1
    with pytest.raises(ValueError, match="PasteRegions needs a known height and width"):
        PasteRegions().build([(None, None, None, 3), (None, None, None, 3)])


def test_code_mix_adds_each_group_of_maps_times_its_code_entry():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 3, 4, 4 * 2)).astype("float32")      # C = 2, code size 3
    code = np.array([[1.0, 0.0, -0.5], [0.25, 2.0, 0.0]], "float32")
    out = np.asarray(CodeMix(2)([maps, code]))
    g = maps.reshape(2, 3, 4, 4, 2)
    want = g[:, :, :, 0] + np.einsum("nhwkc,nk->nhwc", g[:, :, :, 1:], code)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], g[1, :, :, 0] + 0.25 * g[1, :, :, 1] + 2 * g[1, :, :, 2],
                               rtol=1e-5, atol=1e-6)
    # linear in the code: half a code is half way from the zero code's maps
    half = np.asarray(CodeMix(2)([maps, code / 2]))
    np.testing.assert_allclose(half, (out + g[:, :, :, 0]) / 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("(1 + code size) * channels = 4 * 3 map "
                                                   "channels. Received: 8")):
        CodeMix(3)([maps, code])
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="channels must be an integer >= 1"):
            CodeMix(bad)


def test_code_levels_spread_each_class_mean_on_hat_functions():
    # 3 classes, blocks of 2: means 0.5, -0.875 and 0
    code = np.array([[0.25, 0.75, -1.0, -0.75, 0.5, -0.5]], "float32")
    out = np.asarray(CodeLevels(classes=3, levels=4)(code)).reshape(3, 4)
    np.testing.assert_allclose(out, [[0, 1, 0, 0], [0, 0, -0.5, -0.5], [0, 0, 0, 0]],
                               atol=1e-6)
    # past 1 the top level stays 1; a sweep of s moves its weight level to level
    assert np.asarray(CodeLevels(1, 2)(np.array([[1.7]], "float32"))).tolist() == [[0, 1]]
    s = np.linspace(0, 1, 9, dtype="float32")[:, None]
    sweep = np.asarray(CodeLevels(1, 4)(s))
    np.testing.assert_allclose(sweep.sum(axis=1), np.minimum(4 * s[:, 0], 1), atol=1e-6)
    np.testing.assert_allclose(sweep @ np.arange(1, 5) / 4, s[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="a multiple of classes=4. Received: 6"):
        CodeLevels(4, 2)(code)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="levels must be an integer >= 1"):
            CodeLevels(3, bad)


def test_piecewise_linear_starts_as_the_identity_and_interpolates_its_knot_values():
    layer = PiecewiseLinear(9)
    x = np.array([[-1.0, -0.3, 0.0, 0.25, 0.6, 1.0],
                  [-2.0, 0.1, 0.5, 0.75, 0.9, 3.0]], "float32")
    # starts as the identity on [-1, 1], clipped outside it
    np.testing.assert_allclose(layer(x), np.clip(x, -1, 1), atol=1e-6)
    grid = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(layer.values.numpy(), np.tile(grid, (6, 1)), atol=1e-7)
    # values of a cubic at the knots: exact on the knots, the chord between them
    layer.values.assign(np.tile(grid ** 3, (6, 1)).astype("float32"))
    out = np.asarray(layer(x))
    assert out[0, 3] == pytest.approx(0.25 ** 3) and out[1, 3] == pytest.approx(0.75 ** 3)
    assert out[0, 4] == pytest.approx(0.125 + (0.6 - 0.5) / 0.25 * (0.75 ** 3 - 0.125))
    assert out[1, 0] == pytest.approx(-1.0) and out[1, 5] == pytest.approx(1.0)
    # each entry has knot values of its own; an input on a knot moves only that knot's
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(np.array([[0.0, 0.0, 0.25, 0.0, 0.0, 1.0]], "float32")))
    grad = tape.gradient(y, layer.trainable_variables)[0].numpy()
    expected = np.zeros((6, 9))
    expected[[0, 1, 3, 4], 4] = 1.0
    expected[2, 5] = 1.0
    expected[5, 8] = 1.0
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    # a gain stores the values divided by it: the same function, Adam moves it faster
    fast = PiecewiseLinear(9, gain=10.0)
    np.testing.assert_allclose(fast(x), np.clip(x, -1, 1), atol=1e-6)
    np.testing.assert_allclose(fast.values.numpy(), np.tile(grid, (6, 1)) / 10, atol=1e-7)
    for layer in (PiecewiseLinear(9), fast):
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(layer(x))
        keras.optimizers.Adam(1e-3).apply_gradients(zip(tape.gradient(y, layer.trainable_variables),
                                 layer.trainable_variables))
    assert np.asarray(fast(x))[0, 3] == pytest.approx(0.25 - 10 * 1e-3, abs=1e-6)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match=f"knots must be an integer >= 2. Received: knots={bad!r}"):
            PiecewiseLinear(bad)
    with pytest.raises(ValueError, match="gain must be a number > 0. Received: gain=0"):
        PiecewiseLinear(9, gain=0)
