"""ExpressionEditor: equals the hand-run chain, uint8 == float, .keras and run-dir loading,
readable errors. Tiny networks (32x32, a few channels) keep every test to seconds."""

import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from exprgan_tf import cpu, preprocessing
from exprgan_tf.controller import intensity_code
from exprgan_tf.editor import ExpressionEditor, ImagePreprocess
from exprgan_tf.editor_io import load_editor
from exprgan_tf.models import build_networks, decode

def _batch(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    expression = (np.arange(n) % 6).astype("int32")
    intensity = np.linspace(0.0, 1.0, n).astype("float32")
    return images, expression, intensity


# Under pytest-xdist every test of this module runs on one worker, so the module
# fixtures below are built once (setup.cfg: --dist loadgroup).
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module", params=["exprgan-small", "proposed-small"])
def setup(request, tiny_config):
    keras.utils.set_random_seed(1)
    cfg = tiny_config(request.param)
    nets = build_networks(cfg.model)
    return cfg, nets, ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)


def test_editor_equals_encoder_controller_decoder_by_hand(setup):
    cfg, nets, editor = setup
    images, expression, intensity = _batch()
    pre = cfg.preprocess
    x = preprocessing.preprocess_image(images, pre.unsharp_mask, pre.radius, pre.amount)
    z = nets.encoder(x)
    c = intensity_code(expression, intensity)
    expected = nets.decoder([z, c]).numpy()
    got = editor.predict([images, expression, intensity], verbose=0)
    assert got.shape == (3, 32, 32, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The intensity actually reaches the decoder: another intensity, another image.
    other = editor.predict([images, expression, 1.0 - intensity], verbose=0)
    assert np.abs(other - got).max() > 1e-4


def test_unsharp_mask_is_applied_for_the_proposed_preset(setup):
    cfg, _, editor = setup
    images, _, _ = _batch()
    x = editor.preprocess(images).numpy()
    plain = preprocessing.preprocess_image(images).numpy()
    if cfg.preprocess.unsharp_mask:
        assert np.abs(x - plain).max() > 0.01
    else:
        np.testing.assert_array_equal(x, plain)


def test_uint8_and_float_inputs_give_the_same_images(setup):
    _, _, editor = setup
    images, expression, intensity = _batch()
    as_uint8 = editor.predict([images, expression, intensity], verbose=0)
    as_float = editor.predict([images / 127.5 - 1.0, expression, intensity], verbose=0)
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-5)


def test_predict_any_batch_size_and_dict_inputs(setup):
    _, _, editor = setup
    images, expression, intensity = _batch(n=5)
    whole = editor([images, expression, intensity]).numpy()
    batched = editor.predict([images, expression, intensity], batch_size=2, verbose=0)
    one = editor.predict([images[:1], expression[:1], intensity[:1]], verbose=0)
    by_name = editor.predict({"images": images, "expression": expression,
                              "intensity": intensity}, verbose=0)
    np.testing.assert_allclose(batched, whole, atol=1e-5)
    np.testing.assert_allclose(one, whole[:1], atol=1e-5)
    np.testing.assert_allclose(by_name, whole, atol=1e-5)


def test_keras_save_load_round_trip_in_safe_mode(setup, tmp_path):
    cfg, _, editor = setup
    images, expression, intensity = _batch()
    path = str(tmp_path / "editor.keras")
    editor.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, ExpressionEditor)
    assert loaded.unsharp_mask == cfg.preprocess.unsharp_mask
    assert loaded.get_config()["radius"] == editor.get_config()["radius"]
    np.testing.assert_array_equal(loaded.predict([images, expression, intensity], verbose=0),
                                  editor.predict([images, expression, intensity], verbose=0))
    again = load_editor(path)
    np.testing.assert_array_equal(again([images, expression, intensity]).numpy(),
                                  editor([images, expression, intensity]).numpy())


def test_get_config_from_config_round_trip(setup):
    _, _, editor = setup
    clone = ExpressionEditor.from_config(editor.get_config())
    clone.set_weights(editor.get_weights())
    images, expression, intensity = _batch()
    np.testing.assert_array_equal(clone([images, expression, intensity]).numpy(),
                                  editor([images, expression, intensity]).numpy())
    layer = ImagePreprocess(True, 2.0, 0.5)
    assert ImagePreprocess.from_config(layer.get_config()).get_config() == layer.get_config()


def test_load_editor_from_a_training_run_dir(tmp_path, tiny_config):
    from exprgan_tf import run_dir

    cfg = tiny_config("proposed-small")
    nets = build_networks(cfg.model)
    try:  # checkpoints are kept per training stage; the newest stage is loaded
        directory = run_dir.ckpt_dir(tmp_path, stage=3)
    except TypeError:
        directory = run_dir.ckpt_dir(tmp_path)
    os.makedirs(directory)
    cfg.save(run_dir.config_path(tmp_path))
    ckpt = tf.train.Checkpoint(**nets.as_dict())
    tf.train.CheckpointManager(ckpt, directory, max_to_keep=1).save()
    editor = load_editor(tmp_path)
    assert editor.unsharp_mask and editor.image_size == 32
    images, expression, intensity = _batch()
    reference = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)
    np.testing.assert_array_equal(editor([images, expression, intensity]).numpy(),
                                  reference([images, expression, intensity]).numpy())


def test_load_editor_explains_what_it_accepts(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory, a .keras or .npz file"):
        load_editor(tmp_path / "missing")
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Received: path="):
        load_editor(tmp_path / "weights.h5")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="tf.saved_model.load"):
        load_editor(tmp_path / "sm")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_editor(tmp_path)


@pytest.mark.parametrize("change, message", [
    (dict(expression=np.array([0, 3, 6], "int32")), r"expression must be a class index in \[0, 6\)"),
    (dict(expression=np.array([-1, 3, 5], "int32")), r"expression must be a class index"),
    (dict(intensity=np.array([0.0, 0.5, 1.5], "float32")), r"intensity must be in \[0, 1\]"),
    (dict(intensity=np.array([0.0, 0.5], "float32")), r"intensity must have one entry per image"),
    (dict(images="float255"), r"float images must be in \[-1, 1\]"),
])
def test_invalid_values_fail_with_a_readable_message(setup, change, message):
    _, _, editor = setup
    images, expression, intensity = _batch()
    args = dict(images=images, expression=expression, intensity=intensity)
    args.update(change)
    if isinstance(args["images"], str):
        args["images"] = images.astype("float32")
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        editor([args["images"], args["expression"], args["intensity"]])


def test_wrong_image_size_or_dtype_is_a_value_error(setup):
    _, _, editor = setup
    images, expression, intensity = _batch(size=40)
    with pytest.raises(ValueError, match=r"images must have shape \[N, 32, 32, 3\]"):
        editor([images, expression, intensity])
    images, _, _ = _batch()
    with pytest.raises(ValueError, match="expression must be an integer"):
        editor([images, expression.astype("float32"), intensity])


PREDICT_TRAPS = [
    ("scalar expression", dict(expression=np.int32(3)),
     r"expression must have one entry per image \(shape \[N\] = \[3\]\). Received: "
     r"expression.shape=\(\)"),
    ("scalar intensity", dict(intensity=np.float32(1.0)),
     r"intensity must have one entry per image .* Received: intensity.shape=\(\)"),
    ("int64 class 2**32", dict(expression=np.array([2**32, 2**32 + 3, 1], "int64")),
     r"expression must be a class index in \[0, 6\) .* Received: values \[1, 4294967296"),
    ("image size", dict(images=np.zeros((3, 16, 16, 3), "uint8")),
     r"images must have shape \[N, 32, 32, 3\]. Received: images.shape=\(3, 16, 16, 3\)"),
]


@pytest.mark.parametrize("case, change, message", PREDICT_TRAPS, ids=[t[0] for t in PREDICT_TRAPS])
def test_predict_checks_its_inputs_before_keras_batches_them(setup, case, change, message):
    _, _, editor = setup
    images, expression, intensity = _batch()
    editor.predict([images, expression, intensity], verbose=0)  # a traced predict first
    args = dict(images=images, expression=expression, intensity=intensity)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        editor.predict([args["images"], args["expression"], args["intensity"]], verbose=0)


def test_predict_on_an_empty_batch_is_empty(setup):
    _, _, editor = setup
    images, expression, intensity = _batch()
    out = editor.predict([images[:0], expression[:0], intensity[:0]], verbose=0)
    assert out.shape == (0, 32, 32, 3) and out.dtype == np.float32


def test_int64_classes_do_not_wrap_inside_the_graph(setup):
    _, _, editor = setup
    images, _, intensity = _batch()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expression must be a class index"):
        editor([images, tf.constant([2**32, 3, 2**32 + 3], tf.int64), intensity])


def test_damaged_editor_files_are_refused_naming_the_file(setup, tmp_path):
    from exprgan_tf.editor_io import save_compact

    _, _, editor = setup
    path = save_compact(editor, str(tmp_path / "e.npz"), "float32")
    arrays = dict(np.load(path))
    arrays["w0001"] = arrays["w0001"].copy()
    arrays["w0001"].flat[0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(ValueError, match=rf"nan.npz'?: weight w0001 \({editor.weights[1].path}\) "
                                         r"holds 1 NaN/Inf value"):
        load_editor(tmp_path / "nan.npz")
    for name in ("e.npz", "e.keras"):
        full = tmp_path / name
        if name.endswith(".keras"):
            editor.save(full)
        data = full.read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[:len(data) // 2])
        with pytest.raises(ValueError, match=rf"cut_{re.escape(name)}'? (is not a readable|"
                                             r"cannot be read).*(truncated or corrupt)"):
            load_editor(tmp_path / f"cut_{name}")


def test_compact_file_is_exact_in_float32_and_close_in_float16(setup, tmp_path):
    from exprgan_tf.editor_io import save_compact

    _, _, editor = setup
    images, expression, intensity = _batch()
    reference = editor([images, expression, intensity]).numpy()
    exact = load_editor(save_compact(editor, str(tmp_path / "e32.npz"), "float32"))
    np.testing.assert_array_equal(exact([images, expression, intensity]).numpy(), reference)
    half_path = save_compact(editor, str(tmp_path / "e16.npz"))
    half = load_editor(half_path)
    assert isinstance(half, ExpressionEditor) and half.unsharp_mask == editor.unsharp_mask
    np.testing.assert_allclose(half([images, expression, intensity]).numpy(), reference,
                               atol=2e-2)
    assert os.path.getsize(half_path) < 0.6 * os.path.getsize(tmp_path / "e32.npz")
    with pytest.raises(ValueError, match="Received: path="):
        save_compact(editor, str(tmp_path / "e.keras"))


def _fake_run(path, stage):
    """A run directory whose newest checkpoint is of ``stage`` (files only, no weights)."""
    from exprgan_tf import run_dir

    directory = run_dir.ckpt_dir(path, stage=stage)
    os.makedirs(directory)
    (path / "config.json").write_text("{}")
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-1"\n')
    open(os.path.join(directory, "ckpt-1.index"), "w").close()


def test_find_checkpoint_prefers_the_shipped_model_and_skips_non_editors(setup, tmp_path,
                                                                          monkeypatch):
    from exprgan_tf.editor_io import find_checkpoint, pretrained_path, save_compact

    monkeypatch.delenv("EXPRGAN_TF_CHECKPOINT", raising=False)
    # Without a folder: the shipped model, whatever runs sit beside it in checkpoints/.
    assert find_checkpoint() == pretrained_path("proposed-small")
    # In a folder: the first editor by name. A stage-1 run (untrained encoder) and a
    # .keras file holding another model (the benchmarks' judge) are not editors.
    assert find_checkpoint(tmp_path / "none") is None
    _fake_run(tmp_path / "a-stage1", stage=1)
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(tmp_path / "b.keras")
    assert find_checkpoint(tmp_path) is None
    save_compact(setup[2], str(tmp_path / "d.npz"))
    assert find_checkpoint(tmp_path) == str(tmp_path / "d.npz")
    _fake_run(tmp_path / "c-stage2", stage=2)
    assert find_checkpoint(tmp_path) == str(tmp_path / "c-stage2")
    monkeypatch.setenv("EXPRGAN_TF_CHECKPOINT", "/elsewhere/editor.keras")
    assert find_checkpoint(tmp_path) == find_checkpoint() == "/elsewhere/editor.keras"


def test_pretrained_names_and_the_error_when_nothing_is_found(setup, tmp_path, monkeypatch):
    from exprgan_tf import editor_io as editor_module

    _, _, editor = setup
    images, expression, intensity = _batch()
    monkeypatch.delenv("EXPRGAN_TF_CHECKPOINT", raising=False)
    # An editor in the cache folder loads by name.
    monkeypatch.setenv("EXPRGAN_TF_CACHE", str(tmp_path / "cache"))
    os.makedirs(tmp_path / "cache" / "editors")
    editor_module.save_compact(editor, str(tmp_path / "cache" / "editors" / "pretrained-tiny.npz"),
                               "float32")
    loaded = load_editor("pretrained:tiny")
    np.testing.assert_array_equal(loaded([images, expression, intensity]).numpy(),
                                  editor([images, expression, intensity]).numpy())
    with pytest.raises(FileNotFoundError, match="pretrained-nope.npz is in none of"):
        load_editor("pretrained:nope")
    # Nothing to fall back on: the error names what was searched.
    monkeypatch.setattr(editor_module, "pretrained_dirs", lambda: [str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError) as err:
        load_editor(None)
    assert "$EXPRGAN_TF_CHECKPOINT (not set)" in str(err.value)
    assert str(tmp_path / "empty") in str(err.value)


def test_summary_lists_every_part_before_and_after_a_call(setup):
    _, nets, editor = setup
    fresh = ExpressionEditor.from_networks(setup[0], nets.encoder, nets.decoder)

    def summary():
        lines = []
        fresh.summary(print_fn=lambda text, **kwargs: lines.append(text))
        return "\n".join(lines)

    before = summary()
    fresh(list(_batch()))
    after = summary()
    assert before == after
    assert "(None, 30)" in after and "(None, 32, 32, 3)" in after   # code, preprocess
    assert "unbuilt" not in after
    total = nets.encoder.count_params() + nets.decoder.count_params()
    assert f"Total params: {total:,}" in after
    assert f"{nets.encoder.count_params():,}" in after


def test_dtype_policy_is_the_networks_or_refused(setup):
    cfg, nets, _ = setup
    with pytest.raises(ValueError, match="Received: dtype='mixed_bfloat16'"):
        ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder, dtype="mixed_bfloat16")
    half = ExpressionEditor.from_config_tree(cfg, dtype="mixed_bfloat16")
    assert half.dtype_policy.name == "mixed_bfloat16"
    assert half.encoder.layers[1].compute_dtype == "bfloat16"
    flags = cpu.cpu_flags()
    if ({"avx512_bf16", "amx_bf16"} & set(flags) and cpu.onednn_enabled()
            and not cpu.bfloat16_units(flags)):
        pytest.skip("ONEDNN_MAX_CPU_ISA hides this CPU's bfloat16 units from oneDNN but "
                    "not from TensorFlow, which then hands oneDNN bfloat16 convolutions it "
                    "refuses (an artefact of the cap; README, Performance)")
    out = half(list(_batch()))
    assert out.dtype == tf.float32 and out.shape == (3, 32, 32, 3)
    clone = ExpressionEditor.from_config(half.get_config())
    assert clone.dtype_policy.name == "mixed_bfloat16"


def test_load_editor_warns_about_a_stage1_only_run(tmp_path, tiny_config):
    from exprgan_tf import run_dir

    try:
        directory = run_dir.ckpt_dir(tmp_path, stage=1)
    except TypeError:
        pytest.skip("this run-dir layout has no per-stage checkpoints")
    cfg = tiny_config("exprgan-small")
    nets = build_networks(cfg.model)
    os.makedirs(directory)
    cfg.save(run_dir.config_path(tmp_path))
    tf.train.CheckpointManager(tf.train.Checkpoint(**nets.as_dict()), directory, 1).save()
    with pytest.warns(UserWarning, match="encoder is untrained"):
        load_editor(tmp_path)


def _editor_over_the_face(tiny_config, setting):
    """An untrained editor whose G takes the face (``setting``: a ``blend`` or
    ``residual`` G, or one that sees the face), checked to give G's output over the
    pre-processed face; returns it with what it needs."""
    keras.utils.set_random_seed(4)
    cfg = tiny_config("proposed-small", [setting])
    nets = build_networks(cfg.model)
    editor = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)
    images, expression, intensity = _batch()
    x = editor.preprocess(images)
    by_hand = decode(nets.decoder, nets.encoder(x), intensity_code(expression, intensity), x)
    got = editor.predict([images, expression, intensity], verbose=0)
    np.testing.assert_allclose(got, by_hand, atol=1e-5)
    assert np.abs(got - x).mean() > 0.05
    return cfg, nets, editor, (images, expression, intensity), x


def test_blend_editor_decodes_over_the_preprocessed_face(tiny_config):
    cfg, nets, editor, (images, expression, intensity), x = _editor_over_the_face(
        tiny_config, "model.decoder_output=blend")
    # With its mask at 1 everywhere the editor gives the pre-processed face back.
    mask = nets.decoder.get_layer("G_conv_mask")
    mask.set_weights([np.zeros_like(mask.get_weights()[0]), np.array([60.0], "float32")])
    np.testing.assert_allclose(editor.predict([images, expression, intensity], verbose=0),
                               x, atol=1e-6)
    # A G trained towards the faces without the unsharp mask blends over those, and
    # the editor keeps that through a .keras round trip.
    soft = ExpressionEditor.from_networks(
        cfg.override(["preprocess.sharpen_targets=false"]), nets.encoder, nets.decoder)
    rescaled = preprocessing.preprocess_image(images)
    assert np.abs(rescaled - x).mean() > 0.05
    np.testing.assert_allclose(soft.predict([images, expression, intensity], verbose=0),
                               rescaled, atol=1e-6)
    again = ExpressionEditor.from_config(soft.get_config())
    assert again.sharpen_targets is False and again.base is not None


def test_residual_editor_draws_on_the_preprocessed_face(tiny_config):
    _, nets, editor, (images, expression, intensity), x = _editor_over_the_face(
        tiny_config, "model.decoder_output=residual")
    # With no change drawn the editor gives the pre-processed face back.
    out = nets.decoder.get_layer("G_conv_out")
    out.set_weights([np.zeros_like(w) for w in out.get_weights()])
    np.testing.assert_allclose(editor.predict([images, expression, intensity], verbose=0),
                               x, atol=1e-6)



def test_editor_gives_a_g_that_sees_the_face_the_preprocessed_face(tiny_config):
    _, nets, editor, (images, expression, intensity), x = _editor_over_the_face(
        tiny_config, "model.decoder_sees_face=true")
    # The face reaches G: without it (a zero face) G's output is another one.
    alone = decode(nets.decoder, nets.encoder(x), intensity_code(expression, intensity))
    assert np.abs(editor.predict([images, expression, intensity], verbose=0)
                  - alone).mean() > 1e-3


def test_edit_regions_paste_g_into_the_rescaled_input_and_travel_with_the_editor(
        tiny_config, tmp_path):
    from exprgan_tf.editor_io import save_compact
    from exprgan_tf.evaluation.learning import editor_networks

    keras.utils.set_random_seed(5)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90"])
    nets = build_networks(cfg.model)
    whole = ExpressionEditor.from_networks(cfg.override(["model.edit_regions=0"]),
                                           nets.encoder, nets.decoder)
    regions = np.zeros((32, 32), "float32")
    regions[:, :16] = 1.0
    regions[:, 16] = 0.5
    editor = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder, regions=regions)
    images, expression, intensity = _batch()
    drawn = whole.predict([images, expression, intensity], verbose=0)
    got = editor.predict([images, expression, intensity], verbose=0)
    rescaled = preprocessing.preprocess_image(images).numpy()  # not unsharp-masked
    np.testing.assert_allclose(got[:, :, :16], drawn[:, :, :16], atol=1e-6)
    np.testing.assert_allclose(got[:, :, 17:], rescaled[:, :, 17:], atol=1e-6)
    np.testing.assert_allclose(got[:, :, 16], (drawn[:, :, 16] + rescaled[:, :, 16]) / 2,
                               atol=1e-6)
    assert editor.edit_regions == 90.0 and whole.paste is None
    assert len(editor.weights) == len(whole.weights) + 1
    # the map is a weight: config round trip, .keras, compact .npz
    clone = ExpressionEditor.from_config(editor.get_config())
    clone.set_weights(editor.get_weights())
    path = str(tmp_path / "paste.keras")
    editor.save(path)
    for other in (clone, keras.saving.load_model(path, safe_mode=True),
                  load_editor(save_compact(editor, str(tmp_path / "paste.npz"), "float32"))):
        assert other.edit_regions == 90.0
        np.testing.assert_allclose(other.predict([images, expression, intensity], verbose=0),
                                   got, atol=1e-6)
    # the learning report's config of a compact editor keeps its paste and targets
    config, _, _ = editor_networks(ExpressionEditor.from_networks(
        cfg.override(["preprocess.sharpen_targets=false"]), nets.encoder, nets.decoder,
        regions=regions))
    assert config.model.edit_regions == 90.0 and config.preprocess.sharpen_targets is False


def _saved_and_loaded(editor, folder):
    """``editor`` saved as ``.keras`` and as a float32 compact ``.npz``, loaded back."""
    from exprgan_tf.editor_io import save_compact

    path = str(folder / "editor.keras")
    editor.save(path)
    return (keras.saving.load_model(path, safe_mode=True),
            load_editor(save_compact(editor, str(folder / "editor.npz"), "float32")))


def test_paste_gate_keeps_the_input_where_the_code_changes_nothing(tiny_config, tmp_path):
    from exprgan_tf.editor import change_gate
    from exprgan_tf.evaluation.learning import editor_networks

    keras.utils.set_random_seed(5)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90"])
    nets = build_networks(cfg.model)
    plain = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)
    gated = ExpressionEditor.from_networks(cfg.override(["model.paste_gate=0.05"]),
                                           nets.encoder, nets.decoder)
    images, expression, intensity = _batch()
    face = np.asarray(plain.face(images))
    # intensity 0 is the zero code, G's own rest: nothing changes, the input comes back
    zero = np.zeros_like(intensity)
    np.testing.assert_allclose(gated.predict([images, expression, zero], verbose=0), face,
                               atol=1e-6)
    assert np.abs(plain.predict([images, expression, zero], verbose=0) - face).max() > 0.01
    # elsewhere the map times the gate of G's change from its drawing at the zero code
    x = plain.preprocess(images)
    z = nets.encoder(x)
    drawn = decode(nets.decoder, z, plain.code([expression, intensity]), x)
    rest = decode(nets.decoder, z, plain.code([expression, zero]), x)
    gate = np.asarray(change_gate(drawn, rest, 0.05))
    assert 0 < gate.mean() < 1
    regions = np.asarray(plain.paste.regions) * gate
    got = gated.predict([images, expression, intensity], verbose=0)
    np.testing.assert_allclose(got, face + regions * (np.asarray(drawn) - face), atol=1e-5)
    # a tiny tau lets every change through: the plain paste (intensity[0] is 0)
    tiny = ExpressionEditor.from_networks(cfg.override(["model.paste_gate=1e-9"]),
                                          nets.encoder, nets.decoder)
    assert intensity[0] == 0 and np.all(intensity[1:] > 0)
    np.testing.assert_allclose(tiny.predict([images, expression, intensity], verbose=0)[1:],
                               plain.predict([images, expression, intensity], verbose=0)[1:],
                               atol=1e-5)
    # the gate travels with the editor: config, .keras, compact .npz, the report's config
    for other in _saved_and_loaded(gated, tmp_path):
        assert other.paste_gate == 0.05
        np.testing.assert_allclose(other.predict([images, expression, intensity], verbose=0),
                                   got, atol=1e-5)
    assert editor_networks(gated)[0].model.paste_gate == 0.05


def test_intensity_scale_draws_s_with_the_code_of_k_times_s(tiny_config, tmp_path):
    from exprgan_tf.evaluation.learning import editor_networks

    keras.utils.set_random_seed(6)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90", "model.paste_gate=0.05"])
    nets = build_networks(cfg.model)
    plain = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)
    scaled = ExpressionEditor.from_networks(cfg.override(["model.intensity_scale=0.5"]),
                                            nets.encoder, nets.decoder)
    assert plain.intensity_scale == 1.0 and scaled.intensity_scale == 0.5
    images, expression, intensity = _batch()
    got = scaled.predict([images, expression, intensity], verbose=0)
    # the code is linear in s: s at scale 0.5 is the plain editor at s / 2, 0 stays the input
    np.testing.assert_allclose(got, plain.predict([images, expression, intensity / 2],
                                                  verbose=0), atol=1e-6)
    np.testing.assert_allclose(got[0], np.asarray(plain.face(images))[0], atol=1e-6)
    assert np.abs(got[2] - plain.predict([images, expression, intensity], verbose=0)[2]
                  ).max() > 1e-3
    # it travels with the editor: .keras, compact .npz, the report's config
    for other in _saved_and_loaded(scaled, tmp_path):
        assert other.intensity_scale == 0.5
        np.testing.assert_allclose(other.predict([images, expression, intensity], verbose=0),
                                   got, atol=1e-5)
    assert editor_networks(scaled)[0].model.intensity_scale == 0.5
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="intensity_scale must be a number > 0"):
            ExpressionEditor(nets.encoder, nets.decoder, intensity_scale=bad)
    with pytest.raises(ValueError, match=r"Invalid config value model.intensity_scale=0.0: "
                                         r"expected a positive number"):
        cfg.override(["model.intensity_scale=0"])


def test_with_settings_shares_the_networks_and_changes_only_edit_time_settings(tiny_config):
    keras.utils.set_random_seed(7)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90"])
    nets = build_networks(cfg.model)
    editor = ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)
    gated = editor.with_settings(paste_gate=0.05, intensity_scale=0.5)
    assert gated.encoder is editor.encoder and gated.decoder is editor.decoder
    assert (gated.edit_regions, gated.paste_gate, gated.intensity_scale) == (90.0, 0.05, 0.5)
    assert (gated.unsharp_mask, gated.radius, gated.amount) == (
        editor.unsharp_mask, editor.radius, editor.amount)
    np.testing.assert_array_equal(np.asarray(gated.paste.regions),
                                  np.asarray(editor.paste.regions))
    images, expression, intensity = _batch()
    expected = ExpressionEditor.from_networks(
        cfg.override(["model.paste_gate=0.05", "model.intensity_scale=0.5"]),
        nets.encoder, nets.decoder)
    np.testing.assert_array_equal(gated.predict([images, expression, intensity], verbose=0),
                                  expected.predict([images, expression, intensity], verbose=0))
    whole = editor.with_settings(edit_regions=0)
    assert whole.paste is None and editor.paste is not None
    with pytest.raises(ValueError, match=r"with_settings changes \['edit_regions', "
                                         r"'paste_gate', 'intensity_scale'\] only. "
                                         r"Received: \['radius'\]"):
        editor.with_settings(radius=2.0)
    with pytest.raises(ValueError, match="paste_gate must be 0, or a number > 0"):
        whole.with_settings(paste_gate=0.05)


def test_paste_gate_errors(tiny_config):
    cfg = tiny_config("exprgan-small")
    nets = build_networks(cfg.model)
    with pytest.raises(ValueError, match="paste_gate must be 0, or a number > 0 with "
                                         "edit_regions set"):
        ExpressionEditor(nets.encoder, nets.decoder, paste_gate=0.1)
    with pytest.raises(ValueError, match="paste_gate must be 0"):
        ExpressionEditor(nets.encoder, nets.decoder, edit_regions=90, paste_gate=-1)
    with pytest.raises(ValueError, match=r"Invalid config value model.paste_gate=0.1: "
                                         r"expected 0, or a number > 0 with "
                                         r"model.edit_regions > 0"):
        cfg.override(["model.paste_gate=0.1"])


def test_edit_regions_errors(tiny_config):
    cfg = tiny_config("exprgan-small")
    nets = build_networks(cfg.model)
    with pytest.raises(ValueError, match="regions is the map of edit_regions"):
        ExpressionEditor(nets.encoder, nets.decoder, regions=np.ones((32, 32)))
    for bad in (np.ones((16, 16)), np.full((32, 32), 1.5)):
        with pytest.raises(ValueError, match=r"regions must be a \[32, 32\] map in \[0, 1\]"):
            ExpressionEditor(nets.encoder, nets.decoder, edit_regions=90, regions=bad)
