"""Keras port of dlib's ResNet-34 face descriptor (``dlib_face_recognition_resnet_model_v1``).

The network (dlib's ``dnn_face_recognition_ex.cpp``) maps an aligned 150x150 RGB face
chip to a 128-d descriptor; two chips of the same person lie closer than 0.6 (Euclidean).
Layout, in dlib's terms and with dlib's paddings (strided convs and pools use no padding):

* ``conv1``: 7x7/2 conv (32) + affine + ReLU -> 72x72, then 3x3/2 max-pool -> 35x35;
* five stages of residual blocks, each block ``conv3x3 -> affine -> ReLU -> conv3x3 ->
  affine`` added to its input, then ReLU. The first block of stages 2-5 downsamples with
  a stride-2 conv on the main path and a 2x2/2 average pool on the shortcut; dlib adds the
  two with zero padding where sizes or channel counts differ (:class:`PaddedAdd`):

  ======  ======  ======  =========
  stage   blocks  filters  output
  ======  ======  ======  =========
  1       3       32      35x35x32
  2       4       64      17x17x64
  3       3       128     8x8x128
  4       3       256     4x4x256
  5       1       256     2x2x256
  ======  ======  ======  =========

* global average pool, then a 256 -> 128 fully-connected layer without bias
  (``descriptor``). dlib does not normalise the descriptor.

Input handling: dlib subtracts the RGB mean (122.782, 117.001, 104.298) from 0-255 pixels
and divides by 256. The Keras model takes images in [-1, 1] of any size, resizes them
bilinearly to 150x150 and applies that normalisation.

Example:
    >>> model = dlib_resnet(weights=None)          # random weights
    >>> tuple(model(keras.ops.zeros((2, 64, 64, 3))).shape)
    (2, 128)
"""

from __future__ import annotations

import os

import keras
import numpy as np

from exprgan_tf.identity.layers import ChannelAffine, FaceNetInput, PaddedAdd

INPUT_SIZE = 150
MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SCALE = 1.0 / 256.0
DESCRIPTOR_DIM = 128
SAME_PERSON_THRESHOLD = 0.6
# (blocks, filters, downsample in first block) per stage.
STAGES = ((3, 32, False), (4, 64, True), (3, 128, True), (3, 256, True), (1, 256, True))
# Feature maps used by the identity loss by default: the pre-ReLU sum of the last block
# of stages 1-4 (35x35, 17x17, 8x8, 4x4) -- the analogue of VGG-Face's pre-ReLU conv
# maps -- and the 128-d descriptor itself (as a 1x1 map).
DEFAULT_FEATURE_LAYERS = ("stage1_block3_add", "stage2_block4_add", "stage3_block3_add",
                          "stage4_block3_add", "descriptor_map")
# Parameter count of the port (golden value: conv kernels + conv biases + affine
# gamma/beta + the 256x128 descriptor matrix, exactly the floats in dlib's .dat).
NUM_PARAMS = 5_614_592


def _conv(x, filters, kernel, stride, name, dtype):
    # dlib pads stride-1 3x3 convs by 1 ("same") and strided convs not at all ("valid").
    padding = "same" if stride == 1 else "valid"
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding,
                               name=name, dtype=dtype)(x)


def _residual_block(x, filters, downsample, name, dtype):
    shortcut = x
    y = _conv(x, filters, 3, 2 if downsample else 1, f"{name}_conv1", dtype)
    y = ChannelAffine(name=f"{name}_affine1", dtype=dtype)(y)
    y = keras.layers.ReLU(name=f"{name}_relu1", dtype=dtype)(y)
    y = _conv(y, filters, 3, 1, f"{name}_conv2", dtype)
    y = ChannelAffine(name=f"{name}_affine2", dtype=dtype)(y)
    if downsample:
        shortcut = keras.layers.AveragePooling2D(2, 2, padding="valid",
                                                 name=f"{name}_pool", dtype=dtype)(shortcut)
    y = PaddedAdd(name=f"{name}_add", dtype=dtype)([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out", dtype=dtype)(y)


def dlib_resnet(weights=None, dtype=None, name="dlib_resnet"):
    """Builds the dlib face-descriptor ResNet as a frozen Keras functional model.

    Args:
        weights: ``None`` for random weights, or a path to a Keras weights file written
            by :func:`save_dlib_weights` / ``scripts/fetch_weights.py`` (``.weights.h5``),
            or to dlib's own ``dlib_face_recognition_resnet_model_v1.dat``.
        dtype: layer dtype policy (default: the global policy).
        name: model name.

    Returns:
        A ``keras.Model`` from images in [-1, 1], ``[N, H, W, 3]`` (any H, W), to the
        ``[N, 128]`` descriptor. Every layer is frozen (no trainable weights); gradients
        still flow to the input.
    """
    # === Functional Model ===
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Resizing(INPUT_SIZE, INPUT_SIZE, interpolation="bilinear",
                              name="resize", dtype=dtype)(inputs)
    x = FaceNetInput(MEAN_RGB, INPUT_SCALE, name="normalize", dtype=dtype)(x)
    x = _conv(x, 32, 7, 2, "conv1", dtype)
    x = ChannelAffine(name="conv1_affine", dtype=dtype)(x)
    x = keras.layers.ReLU(name="conv1_relu", dtype=dtype)(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="pool1", dtype=dtype)(x)
    for s, (blocks, filters, down) in enumerate(STAGES, start=1):
        for b in range(1, blocks + 1):
            x = _residual_block(x, filters, down and b == 1, f"stage{s}_block{b}", dtype)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool", dtype=dtype)(x)
    descriptor = keras.layers.Dense(DESCRIPTOR_DIM, use_bias=False, name="descriptor",
                                    dtype=dtype)(x)
    model = keras.Model(inputs, descriptor, name=name)
    if weights is not None:
        load_dlib_weights(model, weights)
    model.trainable = False
    return model


def dlib_resnet_features(base, layers=DEFAULT_FEATURE_LAYERS, name="dlib_resnet_features"):
    """Multi-output feature extractor sharing ``base``'s layers and weights.

    Args:
        base: a model built by :func:`dlib_resnet`.
        layers: names of the layers whose outputs to return; ``"descriptor_map"`` is the
            descriptor reshaped to ``[N, 1, 1, 128]`` so that every output is a map.

    Returns:
        A frozen ``keras.Model`` from [-1, 1] images to the list of ``[N, h, w, c]`` maps.
    """
    outputs = []
    for layer_name in layers:
        if layer_name == "descriptor_map":
            outputs.append(keras.layers.Reshape((1, 1, DESCRIPTOR_DIM), name="descriptor_map")(
                base.get_layer("descriptor").output))
            continue
        try:
            outputs.append(base.get_layer(layer_name).output)
        except ValueError:
            known = [l.name for l in base.layers]
            raise ValueError(f"Unknown dlib_resnet layer {layer_name!r}; known layers: "
                             f"{known + ['descriptor_map']}. Received: layers={layers!r}"
                             ) from None
    model = keras.Model(base.input, outputs, name=name)
    model.trainable = False
    return model


# --- weights ------------------------------------------------------------------------

def _assign(layer, values, source):
    expected = [tuple(w.shape) for w in layer.weights]
    got = [tuple(v.shape) for v in values]
    if expected != got:
        raise ValueError(f"{source}: layer {layer.name!r} expects weight shapes {expected}, "
                         f"the file gives {got}.")
    layer.set_weights(values)


def weights_from_dat(path):
    """Converts dlib's ``.dat`` parameters into ``{keras_layer_name: [arrays]}``.

    Args:
        path: ``dlib_face_recognition_resnet_model_v1.dat``.

    Returns:
        A dict mapping each weighted layer of :func:`dlib_resnet` to its weights in Keras
        layout (conv kernels HWIO, dense kernel ``[in, out]``).

    Raises:
        ValueError: the file does not hold this architecture.
    """
    from exprgan_tf.identity.dlib_dat import read_dlib_dnn

    dnn = read_dlib_dnn(path)
    weighted = [l for l in dnn if l.kind in ("con", "affine", "fc")]
    names = ["conv1", "conv1_affine"]
    for s, (blocks, _, _) in enumerate(STAGES, start=1):
        for b in range(1, blocks + 1):
            p = f"stage{s}_block{b}"
            names += [f"{p}_conv1", f"{p}_affine1", f"{p}_conv2", f"{p}_affine2"]
    names.append("descriptor")
    if len(weighted) != len(names) or dnn[0].attrs.get("size") != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"{path}: expected dlib's face-recognition ResNet ({len(names)} "
                         f"weighted layers, {INPUT_SIZE}x{INPUT_SIZE} input); found "
                         f"{len(weighted)} weighted layers, input {dnn[0].attrs}.")
    out = {}
    for name, layer in zip(names, weighted):
        p = layer.params
        if layer.kind == "con":
            n, k, r, c = layer.attrs["filters_shape"]
            kernel = p[: n * k * r * c].reshape(n, k, r, c).transpose(2, 3, 1, 0)
            bias = p[n * k * r * c:] if layer.attrs["use_bias"] else np.zeros(n, np.float32)
            out[name] = [np.ascontiguousarray(kernel), bias.copy()]
        elif layer.kind == "affine":
            ch = layer.attrs["channels"]
            out[name] = [p[:ch].copy(), p[ch:2 * ch].copy()]
        else:
            out[name] = [p.reshape(layer.attrs["num_inputs"], layer.attrs["num_outputs"])]
    return out


def load_dlib_weights(model, path):
    """Loads weights into a :func:`dlib_resnet` model from a ``.weights.h5`` or ``.dat``.

    Args:
        model: the model from :func:`dlib_resnet`.
        path: a Keras weights file from :func:`save_dlib_weights`, or dlib's ``.dat``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file does not match the architecture.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"dlib_resnet weights not found at {path!r}. Obtain them "
                                f"with: python scripts/fetch_weights.py dlib_resnet")
    if path.endswith(".dat"):
        for name, values in weights_from_dat(path).items():
            _assign(model.get_layer(name), values, path)
        return
    try:
        model.load_weights(path)
    except Exception as e:  # Keras raises several types for a mismatching file.
        raise ValueError(f"{path}: not a dlib_resnet weights file ({type(e).__name__}: "
                         f"{e}). Re-create it with: python scripts/fetch_weights.py "
                         f"dlib_resnet --force") from None


def save_dlib_weights(model, path):
    """Writes ``model``'s weights to a Keras ``.weights.h5`` file at ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save_weights(path)


# --- metric -------------------------------------------------------------------------

def dlib_distance(a, b):
    """Euclidean distance between descriptors, dlib's face-verification metric.

    Args:
        a: descriptors ``[..., 128]``.
        b: descriptors ``[..., 128]``, broadcastable with ``a``.

    Returns:
        Distances ``[...]``; below :data:`SAME_PERSON_THRESHOLD` (0.6) means "same person".
    """
    a = keras.ops.convert_to_tensor(a, "float32")
    b = keras.ops.convert_to_tensor(b, "float32")
    return keras.ops.sqrt(keras.ops.sum(keras.ops.square(a - b), axis=-1))
