"""VGG-Face (Parkhi et al. 2015) in Keras, with loaders for its usual weight files.

The network is VGG-16 shaped: 13 3x3 convs (``conv1_1`` ... ``conv5_3``) in five blocks
with 2x2 max-pools, then ``fc6`` (7x7 conv, 4096), ``fc7`` (1x1 conv, 4096) and the
2622-way ``fc8`` classifier, which is not built (no use for identity features). fc6/fc7
are convolutions, as in MatConvNet, so the same arrays load from both file layouts.

The identity loss of ExprGAN uses ``conv1_2, conv2_2, conv3_2, conv4_2, conv5_2`` before
their ReLU; the input handling is the original's: [-1, 1] -> 0-255, bilinear resize to
224x224, subtract the RGB mean (129.1863, 104.7624, 93.5940).

Weights (about 500 MB, non-commercial licence) are not downloadable here; bring
``vgg-face.mat`` (MatConvNet, http://www.vlfeat.org/matconvnet/pretrained/) or a Keras
``.h5`` (e.g. keras-vggface's ``rcmalli_vggface_tf_vgg16.h5``) and either point
``identity.weights_path`` at it or import it once with
``python scripts/fetch_weights.py vgg_face --from FILE``.

Example:
    >>> model = vgg_face(weights=None, include_top=False, width_divisor=16)
    >>> [t.shape for t in vgg_face_features(model).outputs][0]
    (None, 224, 224, 4)
"""

from __future__ import annotations

import os

import keras
import numpy as np

from exprgan_tf.identity.layers import FaceNetInput

INPUT_SIZE = 224
MEAN_RGB = (129.1863, 104.7624, 93.5940)
BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
CONV_LAYERS = tuple(f"conv{b}_{i}" for b, (n, _) in enumerate(BLOCKS, 1)
                    for i in range(1, n + 1))
TOP_LAYERS = ("fc6", "fc7")
DEFAULT_FEATURE_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
DESCRIPTOR_LAYER = "fc7"
FC_UNITS = 4096
# Golden parameter counts of the full-width network.
NUM_PARAMS_CONV = 14_714_688
NUM_PARAMS_TOP = 134_260_544


def vgg_face(weights=None, include_top=True, width_divisor=1, dtype=None, name="vgg_face"):
    """Builds VGG-Face as a frozen Keras functional model.

    Args:
        weights: ``None`` (random) or a weights file: MatConvNet ``.mat`` or a Keras
            ``.h5`` in the common layer-name layout (``scripts/fetch_weights.py
            vgg_face`` writes one into the cache).
        include_top: also build ``fc6``/``fc7`` (needed for the descriptor, not for L_id).
        width_divisor: divide every channel count by this (tests only; real weights need
            1). Layer names stay the real ones.
        dtype: layer dtype policy.
        name: model name.

    Returns:
        A ``keras.Model`` from [-1, 1] images ``[N, H, W, 3]`` (any H, W) to ``pool5``
        (``[N, 7, 7, 512]``) or, with ``include_top``, the ``fc7`` descriptor
        ``[N, 4096]`` (after its ReLU, as the usual face descriptor).
    """
    if width_divisor < 1 or 64 % width_divisor:
        raise ValueError(f"width_divisor must divide 64. Received: width_divisor={width_divisor}")
    if weights is not None and width_divisor != 1:
        raise ValueError("Pretrained weights need width_divisor=1. Received: "
                         f"width_divisor={width_divisor}")
    # === Functional Model ===
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Resizing(INPUT_SIZE, INPUT_SIZE, interpolation="bilinear",
                              name="resize", dtype=dtype)(inputs)
    x = FaceNetInput(MEAN_RGB, 1.0, name="normalize", dtype=dtype)(x)
    for b, (n, filters) in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            x = keras.layers.Conv2D(filters // width_divisor, 3, padding="same",
                                    name=f"conv{b}_{i}", dtype=dtype)(x)
            x = keras.layers.ReLU(name=f"relu{b}_{i}", dtype=dtype)(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"pool{b}", dtype=dtype)(x)
    if include_top:
        units = FC_UNITS // width_divisor
        x = keras.layers.Conv2D(units, 7, padding="valid", name="fc6", dtype=dtype)(x)
        x = keras.layers.ReLU(name="relu6", dtype=dtype)(x)
        x = keras.layers.Conv2D(units, 1, name="fc7", dtype=dtype)(x)
        x = keras.layers.ReLU(name="relu7", dtype=dtype)(x)
        x = keras.layers.Flatten(name="descriptor", dtype=dtype)(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_vgg_face_weights(model, weights)
    model.trainable = False
    return model


def vgg_face_features(base, layers=DEFAULT_FEATURE_LAYERS, name="vgg_face_features"):
    """Multi-output extractor of the (pre-ReLU) maps ``layers`` of a :func:`vgg_face` model.

    Args:
        base: a model from :func:`vgg_face`.
        layers: layer names, e.g. the original's ``conv1_2 ... conv5_2``.

    Returns:
        A frozen ``keras.Model`` sharing ``base``'s weights.
    """
    outputs = []
    for layer_name in layers:
        try:
            outputs.append(base.get_layer(layer_name).output)
        except ValueError:
            raise ValueError(f"Unknown vgg_face layer {layer_name!r}; known layers: "
                             f"{[l.name for l in base.layers]}. Received: layers={layers!r}"
                             ) from None
    model = keras.Model(base.input, outputs, name=name)
    model.trainable = False
    return model


# --- loaders ------------------------------------------------------------------------

def _set(model, name, kernel, bias, source):
    try:
        layer = model.get_layer(name)
    except ValueError:
        return False  # e.g. fc6/fc7 in a file, model without top
    k_shape, b_shape = (tuple(w.shape) for w in layer.weights)
    kernel = np.asarray(kernel, np.float32)
    bias = np.asarray(bias, np.float32).reshape(-1)
    # Conv kernels must match exactly ([h, w, in, out] in both MatConvNet and Keras);
    # a 2-D Dense kernel [h * w * in, out] of fc6/fc7 reshapes (row-major, H, W, C) to
    # the equivalent convolution.
    fits = kernel.shape == k_shape or (kernel.ndim == 2 and kernel.shape[-1] == k_shape[-1]
                                       and kernel.size == int(np.prod(k_shape)))
    if not fits or bias.shape != b_shape:
        raise ValueError(f"{source}: layer {name!r} has kernel {kernel.shape} and bias "
                         f"{bias.shape}; VGG-Face expects kernel {k_shape} and bias "
                         f"{b_shape}.")
    layer.set_weights([kernel.reshape(k_shape), bias])
    return True


def _expected_layers(model):
    return [n for n in CONV_LAYERS + TOP_LAYERS if any(l.name == n for l in model.layers)]


def _unwrap(x):
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.reshape(-1)[0]
    return x


def _field(struct, name):
    """Field of a loadmat struct (record array or mat_struct), unwrapped."""
    if isinstance(struct, np.ndarray) and struct.dtype.names:
        if name not in struct.dtype.names:
            return None
        value = struct[name]
        while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
            value = value.reshape(-1)[0]
        return value
    return getattr(struct, name, None)


def _text(x):
    x = _unwrap(x)
    if isinstance(x, np.ndarray):
        x = x.reshape(-1)[0] if x.size else ""
    return str(x)


def read_matconvnet(path) -> dict:
    """Reads the conv/fc weights of a MatConvNet VGG-Face ``.mat``.

    Understands the layout of ``vgg-face.mat`` (top-level ``layers``: a cell array of
    structs with ``name``, ``type``, ``weights`` = {W [h, w, in, out], b}) and of the
    older ``vgg_face.mat`` (the same under ``net``; weights either in ``weights`` or in
    ``filters``/``biases``).

    Returns:
        ``{layer_name: (W, b)}`` for every layer of type ``conv``.

    Raises:
        ValueError: the file has no such ``layers`` array.
    """
    import scipy.io

    data = scipy.io.loadmat(os.fspath(path))
    layers = data.get("layers")
    if layers is None and "net" in data:
        layers = _field(_unwrap(data["net"]), "layers")
    if layers is None:
        raise ValueError(f"{path}: not a MatConvNet model: no `layers` (or `net.layers`) "
                         f"variable; found {sorted(k for k in data if not k.startswith('__'))}.")
    out = {}
    for layer in np.asarray(layers, dtype=object).reshape(-1):
        layer = _unwrap(layer)
        if _text(_field(layer, "type")) != "conv":
            continue
        weights = _field(layer, "weights")
        if weights is not None:
            weights = np.asarray(weights, dtype=object).reshape(-1)
            kernel, bias = weights[0], weights[1]
        else:
            kernel, bias = _field(layer, "filters"), _field(layer, "biases")
        out[_text(_field(layer, "name"))] = (np.asarray(kernel), np.asarray(bias))
    return out


def read_keras_h5(path) -> dict:
    """Reads VGG-Face weights from a Keras HDF5 file, by layer name.

    Understands the common (Keras 2 / ``tf.keras``) layout, with or without the
    ``model_weights`` group of a whole-model file: ``<layer>/<layer>/kernel:0`` and
    ``bias:0``, as in keras-vggface's files and :func:`save_vgg_face_h5`. Dense ``fc6``
    kernels ``[25088, 4096]`` and ``fc7`` ``[4096, 4096]`` are accepted and reshaped to
    the equivalent convolutions.

    Returns:
        ``{layer_name: (kernel, bias)}``.
    """
    import h5py

    wanted = set(CONV_LAYERS + TOP_LAYERS)
    found = {}
    with h5py.File(os.fspath(path), "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            parts = name.split("/")
            layer = next((p for p in reversed(parts[:-1]) if p in wanted), None)
            leaf = parts[-1]
            slot = 0 if leaf.startswith("kernel") else 1 if leaf.startswith("bias") else None
            if layer is not None and slot is not None:
                found.setdefault(layer, [None, None])[slot] = obj[()]
        f.visititems(visit)
    return {k: tuple(v) for k, v in found.items() if v[0] is not None and v[1] is not None}


def save_vgg_face_h5(model, path):
    """Writes a :func:`vgg_face` model's weights in the common Keras ``.h5`` layout.

    Groups are named by layer (``conv1_1/conv1_1/kernel:0``, ...), so the file loads
    into models with or without ``fc6``/``fc7`` and into other Keras VGG-Face code.
    """
    import h5py

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    names = _expected_layers(model)
    with h5py.File(os.fspath(path), "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            kernel, bias = model.get_layer(name).get_weights()
            group = f.create_group(name)
            weight_names = [f"{name}/kernel:0", f"{name}/bias:0"]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            group.create_dataset(weight_names[0], data=kernel)
            group.create_dataset(weight_names[1], data=bias)


def read_vgg_face_arrays(path) -> dict:
    """Reads ``{layer_name: (kernel, bias)}`` from a VGG-Face ``.mat`` or Keras ``.h5``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown file type, or a file that does not read as its type.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No VGG-Face weights at {path}. Bring vgg-face.mat or a "
                                f"Keras VGG-Face .h5 and import it with: python "
                                f"scripts/fetch_weights.py vgg_face --from FILE")
    if path.endswith(".mat"):
        reader = read_matconvnet
    elif path.endswith(".h5") or path.endswith(".hdf5"):
        reader = read_keras_h5
    else:
        raise ValueError(f"VGG-Face weights must be a MatConvNet .mat or a Keras .h5 file. "
                         f"Received: path={path!r}")
    try:
        return reader(path)
    except OSError as e:  # h5py / scipy on a file that is not what its name says
        raise ValueError(f"{path} cannot be read as a {os.path.splitext(path)[1]} file "
                         f"({e}); is it the VGG-Face weights file, complete?") from None


def load_vgg_face_weights(model, path, arrays=None):
    """Loads VGG-Face weights from ``.mat`` or ``.h5`` into a :func:`vgg_face` model.

    Layers present in the file but not in the model (``fc6``/``fc7`` for a model
    without top, ``fc8``) are ignored; every layer of the model must be in the file.

    Args:
        model: a model from :func:`vgg_face`.
        path: the weights file.
        arrays: already read arrays of ``path`` (from :func:`read_vgg_face_arrays`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file misses a layer or a shape differs, naming both.
    """
    path = os.fspath(path)
    if arrays is None:
        arrays = read_vgg_face_arrays(path)
    expected = _expected_layers(model)
    missing = [n for n in expected if n not in arrays]
    if missing:
        raise ValueError(f"{path}: missing VGG-Face layers {missing}; expected {expected}, "
                         f"found {sorted(arrays)}.")
    for name in expected:
        _set(model, name, *arrays[name], source=path)
