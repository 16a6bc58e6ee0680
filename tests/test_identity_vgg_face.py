"""VGG-Face: golden parameter counts and the .mat / .h5 loaders on files written here in
MatConvNet's and Keras' layouts, with the real layer names (and real shapes for the conv
layers; the fully-connected layers are tested at reduced width to keep files small)."""

import importlib.util
import os

import h5py
import numpy as np
import pytest
import scipy.io

from exprgan_tf import identity
from exprgan_tf.config import IdentityConfig
from exprgan_tf.identity import vgg_face as vf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _random_arrays(width_divisor=1, include_top=False, seed=0):
    """Per-layer (kernel, bias) with VGG-Face's shapes, MatConvNet orientation."""
    rng = np.random.default_rng(seed)
    arrays, cin = {}, 3
    for b, (n, filters) in enumerate(vf.BLOCKS, 1):
        for i in range(1, n + 1):
            cout = filters // width_divisor
            arrays[f"conv{b}_{i}"] = (rng.normal(0, 0.05, (3, 3, cin, cout)).astype("f4"),
                                      rng.normal(0, 0.05, (cout,)).astype("f4"))
            cin = cout
    if include_top:
        units = vf.FC_UNITS // width_divisor
        for name, k, n_in in (("fc6", 7, cin), ("fc7", 1, units)):
            arrays[name] = (rng.normal(0, 0.02, (k, k, n_in, units)).astype("f4"),
                            rng.normal(0, 0.02, (units,)).astype("f4"))
        arrays["fc8"] = (rng.normal(0, 0.02, (1, 1, units, 2622)).astype("f4"),
                         np.zeros(2622, "f4"))
    return arrays


def _write_matconvnet(path, arrays):
    """vgg-face.mat layout: `layers` = cell array of structs (name, type, weights{W, b},
    stride, pad, ...) in network order, plus `meta.normalization`."""
    entries = []
    for b, (n, _) in enumerate(vf.BLOCKS, 1):
        for i in range(1, n + 1):
            entries.append(("conv", f"conv{b}_{i}"))
            entries.append(("relu", f"relu{b}_{i}"))
        entries.append(("pool", f"pool{b}"))
    if "fc6" in arrays:
        entries += [("conv", "fc6"), ("relu", "relu6"), ("conv", "fc7"), ("relu", "relu7"),
                    ("conv", "fc8"), ("softmax", "prob")]
    layers = np.empty((1, len(entries)), dtype=object)
    for j, (kind, name) in enumerate(entries):
        layer = {"name": name, "type": kind}
        if kind == "conv":
            w = np.empty((1, 2), dtype=object)
            w[0, 0], w[0, 1] = arrays[name][0], arrays[name][1].reshape(-1, 1)
            layer.update(weights=w, stride=np.array([[1.0, 1.0]]),
                         pad=np.array([[0.0, 0.0, 0.0, 0.0]] if name.startswith("fc")
                                      else [[1.0, 1.0, 1.0, 1.0]]))
        elif kind == "pool":
            layer.update(method="max", pool=np.array([[2.0, 2.0]]),
                         stride=np.array([[2.0, 2.0]]), pad=np.zeros((1, 4)))
        layers[0, j] = layer
    meta = {"normalization": {"averageImage": np.array(vf.MEAN_RGB).reshape(3, 1),
                              "imageSize": np.array([[224.0, 224.0, 3.0]])}}
    scipy.io.savemat(path, {"layers": layers, "meta": meta})


def _write_keras_h5(path, arrays, model_file=False):
    """Common Keras HDF5 layout (as keras-vggface): fully-connected layers are Dense."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if model_file else f
        root.attrs["layer_names"] = np.array([n.encode() for n in arrays])
        for name, (kernel, bias) in arrays.items():
            if name.startswith("fc"):
                kernel = kernel.reshape(-1, kernel.shape[-1])  # Flatten + Dense
            g = root.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(),
                                                f"{name}/bias:0".encode()])
            g.create_dataset(f"{name}/kernel:0", data=kernel)
            g.create_dataset(f"{name}/bias:0", data=bias)


def _assert_loaded(model, arrays):
    for layer in model.layers:
        if layer.name in arrays:
            kernel, bias = layer.get_weights()
            np.testing.assert_array_equal(kernel, arrays[layer.name][0].reshape(kernel.shape))
            np.testing.assert_array_equal(bias, arrays[layer.name][1])


def test_golden_parameter_count_conv():
    assert vf.vgg_face(include_top=False).count_params() == vf.NUM_PARAMS_CONV == 14_714_688


@pytest.mark.slow  # allocates the 134 M parameters of fc6/fc7 (about 0.5 GB)
def test_golden_parameter_count_with_top():
    # VGG-16's well-known 138,357,544 minus its 1000-way fc8 (4096 * 1000 + 1000); VGG-Face
    # only differs there (2622 identities), and fc8 is not built.
    assert vf.vgg_face(include_top=True).count_params() == vf.NUM_PARAMS_TOP
    assert vf.NUM_PARAMS_TOP == 138_357_544 - (4096 * 1000 + 1000)


def test_features_are_the_original_pre_relu_maps():
    base = vf.vgg_face(include_top=False, width_divisor=16)
    features = vf.vgg_face_features(base)
    assert features.trainable_weights == []
    maps = features(np.zeros((1, 64, 64, 3), np.float32))
    assert [tuple(m.shape) for m in maps] == [(1, 224, 224, 4), (1, 112, 112, 8),
                                              (1, 56, 56, 16), (1, 28, 28, 32),
                                              (1, 14, 14, 32)]
    # pre-ReLU: a conv with negative bias on a zero-mean input gives negative values
    assert base.get_layer("relu1_2").input is features.outputs[0]


def test_matconvnet_and_keras_h5_round_trip_real_shapes(tmp_path):
    arrays = _random_arrays()
    mat, h5 = str(tmp_path / "vgg-face.mat"), str(tmp_path / "vgg_face.h5")
    _write_matconvnet(mat, arrays)
    _write_keras_h5(h5, arrays, model_file=True)
    for path in (mat, h5):
        model = vf.vgg_face(weights=path, include_top=False)
        _assert_loaded(model, arrays)


def test_top_layers_load_from_both_layouts_and_agree(tmp_path):
    arrays = _random_arrays(width_divisor=16, include_top=True, seed=1)
    mat, h5 = str(tmp_path / "small.mat"), str(tmp_path / "small.h5")
    _write_matconvnet(mat, arrays)
    _write_keras_h5(h5, arrays)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    outs = []
    for path in (mat, h5):
        model = vf.vgg_face(include_top=True, width_divisor=16)
        vf.load_vgg_face_weights(model, path)
        _assert_loaded(model, arrays)
        outs.append(model(x).numpy())
    assert outs[0].shape == (2, 256)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    assert np.abs(outs[0]).sum() > 0


def test_loader_errors_name_file_and_expectation(tmp_path):
    arrays = _random_arrays(width_divisor=16)
    del arrays["conv3_3"]
    path = str(tmp_path / "partial.mat")
    _write_matconvnet(path, {**arrays, "conv3_3": arrays["conv3_1"]})
    model = vf.vgg_face(include_top=False, width_divisor=16)
    with pytest.raises(ValueError, match=r"partial\.mat: layer 'conv3_3' has kernel"):
        vf.load_vgg_face_weights(model, path)
    h5 = str(tmp_path / "missing.h5")
    _write_keras_h5(h5, arrays)
    with pytest.raises(ValueError, match=r"missing\.h5: missing VGG-Face layers \['conv3_3'\]"):
        vf.load_vgg_face_weights(model, h5)
    with pytest.raises(ValueError, match="Received: path="):
        vf.load_vgg_face_weights(model, __file__)
    scipy.io.savemat(str(tmp_path / "other.mat"), {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="not a MatConvNet model"):
        vf.load_vgg_face_weights(model, str(tmp_path / "other.mat"))
    with pytest.raises(ValueError, match="Received: width_divisor=3"):
        vf.vgg_face(width_divisor=3)


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "fetch_weights", os.path.join(ROOT, "scripts", "fetch_weights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_script_requires_a_vgg_face_file(capsys):
    with pytest.raises(SystemExit):
        _load_script().main(["vgg_face"])
    assert "--from /path/to/vgg-face.mat" in capsys.readouterr().err


def test_fetch_script_imports_user_file_into_cache(tmp_path, monkeypatch, capsys):
    arrays = _random_arrays()
    mat = str(tmp_path / "vgg-face.mat")
    _write_matconvnet(mat, arrays)
    monkeypatch.setenv("EXPRGAN_TF_CACHE", str(tmp_path / "cache"))
    assert _load_script().main(["vgg_face", "--from", mat]) == 0   # in this process
    cached = str(tmp_path / "cache" / "identity" / "vgg_face.h5")
    assert capsys.readouterr().out.strip().splitlines()[-1] == cached
    features = identity.build_identity_features(IdentityConfig(network="vgg_face"))
    assert len(features.outputs) == 5
    _assert_loaded(features, arrays)
