"""The exported SavedModel, tested the way TF Serving uses it (docs/design.md, "Serving"):
``tf.saved_model.load`` + signatures, ``saved_model_cli show --all``, and a real
``tensorflow-serving-api`` PredictRequest over gRPC to a test-only PredictionService
that wraps the loaded SavedModel."""

import io
import json
import os
import re
import subprocess
import sys
from concurrent import futures

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from exprgan_tf.editor import ExpressionEditor
from exprgan_tf.preprocessing import to_display
from exprgan_tf.serving import export as export_lib



# Under pytest-xdist every test of this module runs on one worker, so the module
# fixtures below are built once (setup.cfg: --dist loadgroup).
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def editor(tiny_config):
    keras.utils.set_random_seed(2)
    return ExpressionEditor.from_config_tree(tiny_config("proposed-small"))


@pytest.fixture(scope="module")
def exported(editor, tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    path = export_lib.export_saved_model(editor, base)
    return base, path, tf.saved_model.load(path)


def _batch(n=3, height=32, width=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    return images, (np.arange(n) % 6).astype("int32"), np.linspace(0, 1, n).astype("float32")


def _encode(image, fmt):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt)
    return buf.getvalue()


def _decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _serve(loaded, images, expression, intensity):
    out = loaded.signatures["serving_default"](
        images=tf.constant(images), expression=tf.constant(expression),
        intensity=tf.constant(intensity))
    return out["images"].numpy()


def test_keras_tfsm_layer_calls_both_endpoints_with_a_dict(exported, editor):
    _, path, _ = exported
    images, expression, intensity = _batch()
    expected = to_display(editor([images, expression, intensity])).numpy()
    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    out = layer({"images": images, "expression": expression, "intensity": intensity})
    np.testing.assert_array_equal(out["images"].numpy(), expected)
    png = keras.layers.TFSMLayer(path, call_endpoint="edit_bytes")(
        {"image_bytes": tf.constant([_encode(images[1], "PNG")]),
         "expression": expression[1:2], "intensity": intensity[1:2]})
    np.testing.assert_array_equal(_decode(png["image_bytes"].numpy()[0]), expected[1])


def test_versioned_layout_and_metadata(exported, editor):
    base, path, _ = exported
    assert path == os.path.join(str(base), "1")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(path, "variables"))
    with open(os.path.join(path, "assets.extra", export_lib.METADATA_FILE)) as f:
        meta = json.load(f)
    assert meta["image_size"] == 32 and meta["unsharp_mask"] is True
    assert meta["expressions"][3] == "happiness"
    assert not [d for d in os.listdir(base) if d.startswith(".tmp")]
    assert export_lib.next_version(base) == 2
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lib.export_saved_model(editor, base, version=1)
    with pytest.raises(ValueError, match="Received: version=0"):
        export_lib.export_saved_model(editor, base, version=0)


def test_saved_model_equals_the_keras_model(exported, editor):
    _, _, loaded = exported
    images, expression, intensity = _batch()
    expected = to_display(editor.predict([images, expression, intensity], verbose=0)).numpy()
    got = _serve(loaded, images, expression, intensity)
    assert got.dtype == np.uint8 and got.shape == images.shape
    np.testing.assert_array_equal(got, expected)


def test_a_gated_paste_and_an_intensity_scale_are_exported_with_the_editor(tiny_config,
                                                                           tmp_path):
    keras.utils.set_random_seed(4)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90", "model.paste_gate=0.05",
                                         "model.intensity_scale=0.5"])
    gated = ExpressionEditor.from_config_tree(cfg)
    loaded = tf.saved_model.load(export_lib.export_saved_model(gated, tmp_path))
    images, expression, intensity = _batch()
    expected = to_display(gated.predict([images, expression, intensity], verbose=0)).numpy()
    got = _serve(loaded, images, expression, intensity)
    np.testing.assert_array_equal(got, expected)
    # the scale is in the graph: s is served as the unscaled editor's s / 2
    unscaled = ExpressionEditor.from_networks(cfg.override(["model.intensity_scale=1"]),
                                              gated.encoder, gated.decoder)
    half = to_display(unscaled.predict([images, expression, intensity / 2], verbose=0))
    assert np.abs(got.astype(int) - half.numpy()).max() <= 1
    assert intensity[0] == 0        # the zero code changes nothing: the input comes back
    np.testing.assert_array_equal(got[0], images[0])
    assert np.abs(got[2].astype(int) - images[2]).max() > 10


def test_other_image_sizes_come_back_in_their_own_size(exported, editor):
    _, _, loaded = exported
    images, expression, intensity = _batch(n=2, height=48, width=40)
    got = _serve(loaded, images, expression, intensity)
    assert got.shape == (2, 48, 40, 3)
    # The same as editing the resized image by hand and resizing back.
    small = tf.cast(tf.round(tf.image.resize(tf.cast(images, tf.float32), [32, 32],
                                             antialias=True)), tf.uint8)
    edited = editor([small, expression, intensity])
    expected = to_display(tf.image.resize(edited, [48, 40], antialias=True)).numpy()
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_bytes_signature_takes_jpeg_and_png_and_returns_png(exported):
    _, _, loaded = exported
    images, expression, intensity = _batch(n=2)
    other = _batch(n=1, height=50, width=70, seed=3)[0][0]
    out = loaded.signatures["edit_bytes"](
        image_bytes=tf.constant([_encode(images[0], "PNG"), _encode(other, "JPEG")]),
        expression=tf.constant(expression), intensity=tf.constant(intensity))
    files = out["image_bytes"].numpy()
    assert all(f.startswith(b"\x89PNG") for f in files)
    first, second = _decode(files[0]), _decode(files[1])
    assert second.shape == (50, 70, 3)
    reference = _serve(loaded, images[:1], expression[:1], intensity[:1])[0]
    np.testing.assert_array_equal(first, reference)  # PNG in, PNG out: lossless


BAD_REQUESTS = [
    ("rank", dict(images=np.zeros((32, 32, 3), np.uint8)),
     r"Shape of tensor images \[32,32,3\] is not compatible with expected shape \[\?,\?,\?,3\]"),
    ("channels", dict(images=np.zeros((3, 32, 32, 4), np.uint8)),
     r"is not compatible with expected shape \[\?,\?,\?,3\]"),
    ("expression", dict(expression=np.array([0, 3, 6], np.int32)),
     r"expression must be a class index in \[0, 6\)"),
    ("intensity", dict(intensity=np.array([0.0, 0.5, 1.5], np.float32)),
     r"intensity must be in \[0, 1\]"),
    ("batch", dict(expression=np.array([0, 3], np.int32)),
     r"expression must have one entry per image"),
    ("tiny", dict(images=np.zeros((3, 4, 4, 3), np.uint8)),
     r"images must be at least 8x8 pixels"),
]


@pytest.mark.parametrize("case, change, message", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_inputs_fail_inside_the_graph_with_a_message(exported, case, change, message):
    _, _, loaded = exported
    images, expression, intensity = _batch()
    args = dict(images=images, expression=expression, intensity=intensity)
    args.update(change)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _serve(loaded, **args)


def test_batch_mismatch_is_reported_before_any_op_fails_on_it(exported):
    # The code layer multiplied expression by intensity before the check ran in 26 of
    # 30 calls ("Incompatible shapes" at expression_code/mul_1); all inputs now wait
    # for the checks.
    _, _, loaded = exported
    images, expression, intensity = _batch()
    for _ in range(20):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"expression must have one entry per image"):
            _serve(loaded, images, expression[:2], intensity)


def test_undecodable_bytes_fail_with_a_message(exported):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        loaded.signatures["edit_bytes"](image_bytes=tf.constant([b"not an image"]),
                                        expression=tf.constant([1]),
                                        intensity=tf.constant([0.5]))


def _cli_signatures(text):
    """{signature: {"inputs"/"outputs": {name: (dtype, shape)}}} from `show --all`."""
    result = {}
    for block in re.split(r"\nsignature_def\['", text)[1:]:
        name = block.split("'")[0]
        parts = {}
        for kind in ("input", "output"):
            section = re.search(rf"following {kind}\(s\):(.*?)(?:The given|Method name)",
                                block, re.S)
            entries = re.findall(rf"{kind}s\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+"
                                 r"shape: ([^\n]+)", section.group(1) if section else "")
            parts[kind + "s"] = {n: (d, s.strip()) for n, d, s in entries}
        result[name] = parts
    return result


def test_saved_model_cli_lists_the_signatures(exported):
    _, path, _ = exported
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                           "show", "--all", "--dir", path],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sigs = _cli_signatures(proc.stdout)
    assert sigs["serving_default"] == {
        "inputs": {"images": ("DT_UINT8", "(-1, -1, -1, 3)"),
                   "expression": ("DT_INT32", "(-1)"),
                   "intensity": ("DT_FLOAT", "(-1)")},
        "outputs": {"images": ("DT_UINT8", "(-1, -1, -1, 3)")}}
    assert sigs["edit_bytes"] == {
        "inputs": {"image_bytes": ("DT_STRING", "(-1)"),
                   "expression": ("DT_INT32", "(-1)"),
                   "intensity": ("DT_FLOAT", "(-1)")},
        "outputs": {"image_bytes": ("DT_STRING", "(-1)")}}
    assert "Method name is: tensorflow/serving/predict" in proc.stdout


# --- a real TF Serving client over gRPC ---------------------------------------------

def _grpc_modules():
    grpc = pytest.importorskip("grpc", reason="grpcio is not installed")
    apis = pytest.importorskip(
        "tensorflow_serving.apis.prediction_service_pb2_grpc",
        reason="tensorflow-serving-api is not installed "
               "(pip install --no-deps tensorflow-serving-api)")
    from tensorflow_serving.apis import predict_pb2
    return grpc, apis, predict_pb2


def _prediction_service(grpc, apis, predict_pb2, loaded, model_name):
    """Test-only stand-in for tensorflow_model_server: Predict on a loaded SavedModel.

    Like the model server it looks the signature up by name, binds the request's
    TensorProtos to its inputs and returns every output; graph errors come back as
    INVALID_ARGUMENT with the error's message. The other RPCs stay UNIMPLEMENTED.
    """

    class Service(_SavedModelPredictionService, apis.PredictionServiceServicer):
        pass

    return Service(grpc, predict_pb2, loaded, model_name)


class _SavedModelPredictionService:
    def __init__(self, grpc, predict_pb2, loaded, model_name):
        self.grpc, self.predict_pb2 = grpc, predict_pb2
        self.loaded, self.model_name = loaded, model_name

    def Predict(self, request, context):
        if request.model_spec.name != self.model_name:
            context.abort(self.grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: {request.model_spec.name}")
        name = request.model_spec.signature_name or "serving_default"
        if name not in self.loaded.signatures:
            context.abort(self.grpc.StatusCode.INVALID_ARGUMENT,
                          f"Serving signature name: \"{name}\" not found in signature def")
        fn = self.loaded.signatures[name]
        expected = set(fn.structured_input_signature[1])
        if set(request.inputs) != expected:
            context.abort(self.grpc.StatusCode.INVALID_ARGUMENT,
                          f"input keys {sorted(request.inputs)} do not match the signature "
                          f"inputs {sorted(expected)}")
        try:
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            outputs = fn(**inputs)
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
            context.abort(self.grpc.StatusCode.INVALID_ARGUMENT,
                          getattr(e, "message", None) or str(e))
        response = self.predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@pytest.fixture(scope="module")
def grpc_stub(exported):
    grpc, apis, predict_pb2 = _grpc_modules()
    _, _, loaded = exported
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    apis.add_PredictionServiceServicer_to_server(
        _prediction_service(grpc, apis, predict_pb2, loaded, "exprgan"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield grpc, apis.PredictionServiceStub(channel), predict_pb2
    channel.close()
    server.stop(grace=None)


def _request(predict_pb2, signature="serving_default", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "exprgan"
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_grpc_predict_request_gets_the_edited_images(grpc_stub, editor):
    _, stub, predict_pb2 = grpc_stub
    images, expression, intensity = _batch()
    response = stub.Predict(_request(predict_pb2, images=images, expression=expression,
                                     intensity=intensity), timeout=120)
    got = tf.make_ndarray(response.outputs["images"])
    expected = to_display(editor.predict([images, expression, intensity], verbose=0)).numpy()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    assert response.model_spec.signature_name == "serving_default"


def test_grpc_bytes_signature(grpc_stub, exported):
    _, stub, predict_pb2 = grpc_stub
    images, expression, intensity = _batch(n=1)
    request = _request(predict_pb2, "edit_bytes",
                       image_bytes=np.array([_encode(images[0], "PNG")], dtype=object),
                       expression=expression, intensity=intensity)
    response = stub.Predict(request, timeout=120)
    files = tf.make_ndarray(response.outputs["image_bytes"])
    np.testing.assert_array_equal(_decode(files[0]),
                                  _serve(exported[2], images, expression, intensity)[0])


@pytest.mark.parametrize("case, change, message", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_grpc_bad_requests_are_errors_with_messages(grpc_stub, case, change, message):
    grpc, stub, predict_pb2 = grpc_stub
    images, expression, intensity = _batch()
    args = dict(images=images, expression=expression, intensity=intensity)
    args.update(change)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request(predict_pb2, **args), timeout=120)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(message, info.value.details()), info.value.details()
    # The server survives the bad request.
    ok = stub.Predict(_request(predict_pb2, images=images, expression=expression,
                               intensity=intensity), timeout=120)
    assert tf.make_ndarray(ok.outputs["images"]).shape == images.shape


def test_grpc_wrong_dtype_is_refused(grpc_stub):
    grpc, stub, predict_pb2 = grpc_stub
    images, expression, intensity = _batch()
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request(predict_pb2, images=images.astype(np.float32),
                              expression=expression, intensity=intensity), timeout=120)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "uint8" in info.value.details() or "float" in info.value.details()


def test_export_script_writes_versions(tmp_path, editor, capsys):
    from exprgan_tf.cli import export as export_script

    model = str(tmp_path / "editor.keras")
    editor.save(model)
    base = tmp_path / "models" / "exprgan"
    assert export_script.main(["--checkpoint", model, "--export-dir", str(base)]) == 0
    assert "serving_default" in capsys.readouterr().out
    assert export_script.main(["--checkpoint", model, "--export-dir", str(base)]) == 0
    assert sorted(os.listdir(base)) == ["1", "2"]
    assert export_script.main(["--checkpoint", model, "--export-dir", str(base),
                               "--version", "2"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    compact = str(tmp_path / "editor.npz")
    assert export_script.main(["--checkpoint", model, "--compact", compact]) == 0
    assert "float16 weights" in capsys.readouterr().out
    assert export_script.main(["--checkpoint", model, "--compact", compact]) == 1
    with pytest.raises(SystemExit):
        export_script.main(["--checkpoint", model])
    loaded = tf.saved_model.load(str(base / "2"))
    images, expression, intensity = _batch()
    np.testing.assert_array_equal(
        _serve(loaded, images, expression, intensity),
        to_display(editor([images, expression, intensity])).numpy())


def test_export_script_sets_the_edit_time_settings(tmp_path, tiny_config, capsys):
    from exprgan_tf.cli import export as export_script
    from exprgan_tf.editor_io import load_editor

    keras.utils.set_random_seed(8)
    editor = ExpressionEditor.from_config_tree(
        tiny_config("proposed-small", ["model.edit_regions=90"]))
    model = str(tmp_path / "editor.keras")
    editor.save(model)
    compact = str(tmp_path / "gated.npz")
    assert export_script.main(["--checkpoint", model, "--compact", compact,
                               "--paste-gate", "0.03", "--intensity-scale", "0.75",
                               "--edit-regions", "93"]) == 0
    assert (f"{compact}: editor of {model} (edit_regions=93, paste_gate=0.03, "
            "intensity_scale=0.75), float16 weights") in capsys.readouterr().out
    got = load_editor(compact)
    assert (got.edit_regions, got.paste_gate, got.intensity_scale) == (93.0, 0.03, 0.75)
    expected = editor.with_settings(edit_regions=93, paste_gate=0.03, intensity_scale=0.75)
    images, expression, intensity = _batch()
    np.testing.assert_allclose(got.predict([images, expression, intensity], verbose=0),
                               expected.predict([images, expression, intensity], verbose=0),
                               atol=0.02)   # float16 weights
    # a gate needs a paste: the editor's error, not a traceback
    assert export_script.main(["--checkpoint", model, "--compact", str(tmp_path / "x.npz"),
                               "--edit-regions", "0", "--paste-gate", "0.03"]) == 1
    assert "paste_gate must be 0, or a number > 0 with edit_regions set" in \
        capsys.readouterr().err
