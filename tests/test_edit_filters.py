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


def test_register_moves_each_quarter_by_the_shift_that_fits_the_zero_code_drawing():
    """G's resting eye a pixel low in the top-left quarter and its mouth a pixel right
    in the bottom-right one: each quarter moves by its own shift, and the requested
    code's drawing moves with it; nothing moves farther than the radius."""
    import tensorflow as tf

    face = np.zeros((1, 8, 8, 1), np.float32)
    face[0, 2, 2] = face[0, 6, 5] = 1.0
    rest = np.zeros_like(face)
    rest[0, 3, 2] = rest[0, 6, 6] = 1.0
    out = rest * 2.0 + 0.5
    regions = np.ones((8, 8, 1), np.float32)
    r, o = (np.asarray(a)[0, ..., 0] for a in filters.register_shift(
        tf.constant(rest), tf.constant(out), tf.constant(face), regions, 1))
    assert np.argwhere(r == 1.0).tolist() == [[2, 2], [6, 5]]
    assert np.argwhere(o == 2.5).tolist() == [[2, 2], [6, 5]]
    far = np.zeros((1, 16, 16, 1), np.float32)
    far[0, 2, 2] = 1.0
    rest_far = np.roll(far, 3, axis=1)      # three rows low: out of reach at radius 1
    r, _ = filters.register_shift(tf.constant(rest_far), tf.constant(rest_far),
                                  tf.constant(far), np.ones((16, 16, 1), np.float32), 1)
    (y, x), = np.argwhere(np.asarray(r)[0, ..., 0] == 1.0).tolist()
    assert abs(y - 5) <= 1 and abs(x - 2) <= 1


def test_register_changes_the_edit_only_inside_the_paste_map(restore, editor, tiny_data):
    """The registered edit is the input outside the paste map, like the editor's, and
    differs from the editor's inside it (the untrained G's resting face fits the input
    better shifted)."""
    images, _ = tiny_data(3)
    expression, ones = np.array([0, 3, 5], np.int32), np.ones(3, np.float32)
    gated = editor.with_settings(paste_gate=0.03)
    plain = np.asarray(gated([images, expression, ones]))
    filters.use_variant("register:1")
    moved = np.asarray(gated([images, expression, ones]))
    outside = np.asarray(gated.paste.regions)[..., 0] == 0
    face = np.asarray(gated.face(images))
    np.testing.assert_allclose(moved[:, outside], face[:, outside], atol=1e-6)
    np.testing.assert_allclose(plain[:, outside], face[:, outside], atol=1e-6)
    assert np.abs(moved - plain).max() > 0.01


@pytest.mark.parametrize("variant, message", [
    ("gain:0", "the number in 'gain:0' must be > 0. Received: '0'"),
    ("gain:x", "the number in 'gain:x' must be > 0. Received: 'x'"),
    ("lowpass:-1", "the number in 'lowpass:-1' must be > 0. Received: '-1'"),
    ("gate-source:0", "the number in 'gate-source:0' must be > 0. Received: '0'"),
    ("curve:-1", "the number in 'curve:-1' must be > 0. Received: '-1'"),
    ("register:0", "the number in 'register:0' must be > 0. Received: '0'"),
    ("register:1.5", "the number in 'register:1.5' must be a whole number of pixels. "
                     "Received: '1.5'"),
    ("refine:0", "the number in 'refine:0' must be > 0. Received: '0'"),
    ("refine:2.5", "the steps in 'refine:2.5' must be a whole number. Received: '2.5'"),
    ("refine:3@0", "the number in 'refine:3@0' must be > 0. Received: '0'"),
    ("gain", "variant must be lowpass:SIGMA, highpass:SIGMA, mirror, fade, delta, gain:G, "
             "curve:P, gate-source:TAU, register:R or refine:N[@RATE]. Received: 'gain'"),
])
def test_a_variant_without_its_number_is_refused(restore, variant, message):
    with pytest.raises(SystemExit) as err:
        filters.use_variant(variant)
    assert str(err.value) == message


@pytest.fixture(scope="module")
def drawing_editor(tiny_config):
    """An editor whose G draws from z and the code (the untrained tiny G draws a flat
    face whatever its inputs): one dense layer to the image, tanh."""
    keras.utils.set_random_seed(4)
    cfg = tiny_config("proposed-small", ["model.edit_regions=90"])
    nets = build_networks(cfg.model)
    z = keras.Input((cfg.model.latent_dim,))
    code = keras.Input((nets.decoder.inputs[1].shape[-1],))
    flat = keras.layers.Dense(32 * 32 * 3, activation="tanh", kernel_initializer=keras.
                              initializers.RandomNormal(stddev=0.5))(
        keras.layers.Concatenate()([z, code]))
    decoder = keras.Model([z, code], keras.layers.Reshape((32, 32, 3))(flat))
    return ExpressionEditor.from_networks(cfg, nets.encoder, decoder)


def test_refine_z_fits_g_s_drawing_to_the_face_inside_the_map(drawing_editor, tiny_data):
    """Adam on each face's own loss: a face G can draw (at z*) is found again inside the
    paste map, and an input's fit improves; one face's steps do not depend on the
    others', z stays in E's range, and 0 steps keep it."""
    import tensorflow as tf

    from exprgan_tf.models import decode

    ed = drawing_editor
    images, _ = tiny_data(4)
    x = ed.preprocess(images)
    z0 = ed.encoder(x)
    face = tf.cast(ed.face(images), tf.float32)
    codes = ed.code([np.zeros(4, np.int32), np.zeros(4, np.float32)])
    regions = np.asarray(ed.paste.regions, np.float32)

    def error(z):
        drawn = np.asarray(decode(ed.decoder, z, codes, x), np.float32)
        return (np.abs(drawn - np.asarray(face)) * regions).mean((1, 2, 3))

    z_star = np.clip(np.asarray(z0) + np.random.default_rng(0).normal(0, 0.3, z0.shape),
                     -0.9, 0.9).astype(np.float32)
    z_star = tf.constant(z_star)
    drawable = decode(ed.decoder, z_star, codes, x)
    found = filters.refine_z(ed, z0, x, drawable, codes, 50, 0.05)
    missed = lambda z: (np.abs(np.asarray(decode(ed.decoder, z, codes, x)) -  # noqa: E731
                               np.asarray(drawable)) * regions).mean((1, 2, 3))
    assert np.all(missed(found) < 0.2 * missed(z0))
    z20 = filters.refine_z(ed, z0, x, face, codes, 20, 0.05)
    assert np.all(error(z20) < error(z0))
    assert np.abs(np.asarray(z20)).max() <= 1.0
    alone = filters.refine_z(ed, z0[:1], x[:1], face[:1], codes[:1], 20, 0.05)
    np.testing.assert_allclose(np.asarray(alone), np.asarray(z20)[:1], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(filters.refine_z(ed, z0, x, face, codes, 0,
                                                              0.05)), np.asarray(z0))


def test_refine_edits_from_the_refined_code(restore, drawing_editor, tiny_data):
    """``refine:N`` is the editor's paste of G's drawing from :func:`refine_z`'s code,
    fitted at the code :func:`_source_pick` picks; one tiny step is the edit as it was."""
    from exprgan_tf.models import decode

    ed = drawing_editor
    images, _ = tiny_data(3)
    expression = np.array([0, 3, 5], np.int32)
    s = np.ones(3, np.float32)
    before = np.asarray(ed([images, expression, s]))
    filters.use_variant("refine:1@0.000001")
    np.testing.assert_allclose(np.asarray(ed([images, expression, s])), before, atol=1e-4)
    filters.use_variant("refine:4@0.05")
    x = ed.preprocess(images)
    z = ed.encoder(x)
    labels = np.asarray(filters._source_pick(ed, x, z)[1]) - 1
    own = ed.code([np.maximum(labels, 0).astype(np.int32), (labels >= 0).astype(np.float32)])
    face = ed.face(images)
    z4 = filters.refine_z(ed, z, x, face, own, 4, 0.05)
    want = np.asarray(ed.paste([decode(ed.decoder, z4, ed.code([expression, s]), x), face]))
    got = np.asarray(ed([images, expression, s]))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - before).max() > 1e-2


def test_register_shifts_are_each_quarters_best_fit_of_the_zero_code_drawing(editor):
    """``register-shifts`` reports, per neutral face and quarter, the shift that brings
    G's zero-code drawing nearest the input inside the paste map: checked against a
    search written out in numpy, on the held-out and the training probe's faces."""
    from exprgan_tf.evaluation.learning import TRAINING_PROBE, heldout_set
    from exprgan_tf.models import decode

    got = filters.register_shifts(editor, 1)
    for name, subjects in (("held-out", None), ("training", TRAINING_PROBE)):
        images = heldout_set(editor.image_size, subjects=subjects)["intensity"]["neutral"]
        n = len(images)
        x = editor.preprocess(images)
        rest = np.asarray(decode(editor.decoder, editor.encoder(x),
                                 editor.code([np.zeros(n, np.int32), np.zeros(n, np.float32)]),
                                 x if editor.base is None else editor.base(images)))
        face = np.asarray(editor.face(images))
        regions = np.asarray(editor.paste.regions)[..., 0]
        h, w = regions.shape
        cut = int(filters.REGISTER_CUT * h)
        quarters = [(slice(0, cut), slice(0, w // 2)), (slice(0, cut), slice(w // 2, w)),
                    (slice(cut, h), slice(0, w // 2)), (slice(cut, h), slice(w // 2, w))]
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert len(got[name]) == n == 8
        for i in range(n):
            for q, (rs, cs) in enumerate(quarters):
                costs = [(np.abs(np.roll(rest[i], s, (0, 1)) - face[i]).mean(-1)
                          * regions)[rs, cs].sum() for s in shifts]
                assert got[name][i][q] == shifts[int(np.argmin(costs))], (name, i, q)
