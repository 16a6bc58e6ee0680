"""benchmarks/edit_filters.py: the edit-time variants change the edit as their doc says."""

import keras
import numpy as np
import pytest

from exprgan_tf import controller, editor as editor_module
from exprgan_tf.editor import ExpressionEditor
from exprgan_tf.models import build_networks
from helpers import load_benchmark

filters = load_benchmark("edit_filters")


@pytest.fixture
def restore(monkeypatch):
    """Every attribute a variant replaces, put back after the test (monkeypatch undoes
    its own settings, so setting each to itself records the original)."""
    monkeypatch.setattr(controller.ExpressionCode, "call", controller.ExpressionCode.call)
    monkeypatch.setattr(editor_module.ExpressionEditor, "call",
                        editor_module.ExpressionEditor.call)


@pytest.fixture(scope="module")
def editor(tiny_config):
    keras.utils.set_random_seed(3)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90"])
    nets = build_networks(cfg.model)
    return ExpressionEditor.from_networks(cfg, nets.encoder, nets.decoder)


def test_curve_gives_g_the_code_at_the_intensity_to_a_power(restore, editor, tiny_data):
    images, _ = tiny_data(4)
    expression = np.array([1, 2, 4, 5], np.int32)
    at = lambda s: np.asarray(editor([images, expression, np.full(4, s, np.float32)]))  # noqa: E731
    before_half, before_one = at(0.5), at(1.0)
    filters.use_variant("curve:0.5")
    code = controller.ExpressionCode(6, 5)
    np.testing.assert_allclose(np.asarray(code([expression, np.full(4, 0.25, np.float32)])),
                               np.asarray(code([expression, np.full(4, 1.0, np.float32)])) * 0.5,
                               rtol=1e-6)
    np.testing.assert_allclose(at(0.25), before_half, atol=1e-5)   # 0.25 ** 0.5 = 0.5
    np.testing.assert_array_equal(at(1.0), before_one)
    assert np.abs(before_half - before_one).max() > 1e-3


def test_gain_is_the_editors_intensity_scale(monkeypatch):
    """``gain:G`` runs the report with ``--intensity-scale G`` (the editor's
    ``model.intensity_scale``, tested in test_editor) instead of patching the code."""
    import sys
    import types

    assert filters.intensity_scale_of("gain:0.75") == 0.75
    assert filters.intensity_scale_of("curve:0.5") is None
    assert filters.intensity_scale_of("mirror") is None
    with pytest.raises(SystemExit, match="must be > 0"):
        filters.intensity_scale_of("gain:0")
    with pytest.raises(SystemExit, match="pass --intensity-scale 2 instead"):
        filters.use_variant("gain:2")
    calls = []
    fake = types.SimpleNamespace(main=lambda argv, command: calls.append((argv, command)))
    monkeypatch.setitem(sys.modules, "train_learning", fake)
    argv = ["gain:0.75", "--run-dir", "R", "--score-only", "--out", "O"]
    filters.main(argv)
    assert calls == [(["--run-dir", "R", "--score-only", "--out", "O",
                       "--intensity-scale", "0.75"], ("edit_filters.py", argv))]
    with pytest.raises(SystemExit, match="give one of them"):
        filters.main(["gain:0.75", "--intensity-scale", "0.5"])


def test_fade_is_the_face_at_zero_and_the_full_edit_at_one(restore, editor, tiny_data):
    images, _ = tiny_data(2)
    expression = np.array([1, 2], np.int32)
    full = np.asarray(editor([images, expression, np.ones(2, np.float32)]))
    face = np.asarray(editor.face(images))
    filters.use_variant("fade")
    np.testing.assert_allclose(
        np.asarray(editor([images, expression, np.zeros(2, np.float32)])), face, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(editor([images, expression, np.full(2, 0.25, np.float32)])),
        face + 0.25 * (full - face), atol=1e-5)


def test_gate_source_gives_the_input_back_when_asked_for_its_own_code(restore, editor,
                                                                      tiny_data):
    images, _ = tiny_data(3)
    x = editor.preprocess(images)
    pick = np.asarray(filters._source_pick(editor, x, editor.encoder(x))[1])
    own = np.maximum(pick - 1, 0).astype(np.int32)          # the code the pick stands for
    s = (pick > 0).astype(np.float32)                       # pick 0: the zero code
    other = ((own + 1) % 6).astype(np.int32)
    plain = np.asarray(editor([images, other, np.ones(3, np.float32)]))
    filters.use_variant("gate-source:1e-9")
    # another code changes the drawing everywhere: the plain paste
    np.testing.assert_allclose(np.asarray(editor([images, other, np.ones(3, np.float32)])),
                               plain, atol=1e-5)
    # its own code changes nothing (up to the round-off of decoding 7 codes at once)
    filters.use_variant("gate-source:1e-4")
    np.testing.assert_allclose(np.asarray(editor([images, own, s])),
                               np.asarray(editor.face(images)), atol=1e-3)
    assert np.abs(plain - np.asarray(editor.face(images))).max() > 0.1


def test_delta_adds_g_s_change_from_the_picked_source_code(restore, editor, tiny_data):
    import tensorflow as tf

    from exprgan_tf.models import decode

    images, _ = tiny_data(3)
    ones = np.ones(3, np.float32)
    x = editor.preprocess(images)
    z = editor.encoder(x)
    every, pick = filters._source_pick(editor, x, z)
    expression = (np.asarray(pick) % 6).astype(np.int32)   # never the picked code (pick - 1)
    source = tf.gather(tf.transpose(every, [1, 0, 2, 3, 4]), pick, batch_dims=1)
    target = decode(editor.decoder, z, editor.code([expression, ones]), x)
    face = np.asarray(editor.face(images))
    expected = face + np.asarray(editor.paste.regions) * np.asarray(target - source)
    filters.use_variant("delta")
    np.testing.assert_allclose(np.asarray(editor([images, expression, ones])), expected,
                               atol=1e-6)
    assert np.abs(expected - face).max() > 0.05


@pytest.mark.parametrize("variant, message", [
    ("gain:0", "the number in 'gain:0' must be > 0. Received: '0'"),
    ("gain:x", "the number in 'gain:x' must be > 0. Received: 'x'"),
    ("lowpass:-1", "the number in 'lowpass:-1' must be > 0. Received: '-1'"),
    ("gate-source:0", "the number in 'gate-source:0' must be > 0. Received: '0'"),
    ("curve:-1", "the number in 'curve:-1' must be > 0. Received: '-1'"),
    ("gain", "variant must be lowpass:SIGMA, highpass:SIGMA, mirror, fade, delta, gain:G, "
             "curve:P or gate-source:TAU. Received: 'gain'"),
])
def test_a_variant_without_its_number_is_refused(restore, variant, message):
    with pytest.raises(SystemExit) as err:
        filters.use_variant(variant)
    assert str(err.value) == message
