"""benchmarks/intensity_sweep.py: the intensity test's ceiling and its per-class table."""

import numpy as np
import pytest

from exprgan_tf.data.regions import expression_regions
from exprgan_tf.evaluation import scores
from exprgan_tf.evaluation.learning import TRAINING_PROBE, heldout_set
from helpers import load_benchmark

sweep = load_benchmark("intensity_sweep")
reading = load_benchmark("intensity_reading")


@pytest.mark.parametrize("subjects", [None, TRAINING_PROBE], ids=["held-out", "training"])
def test_a_perfect_editor_follows_the_requested_intensity_in_every_class(subjects):
    """The true renders at each requested s, read off the test's ladders, give back s
    to within a ladder step: the estimator can see intensity, so a low Spearman is the
    model's. On the training subjects (``--subjects training``) too: the true faces are
    rendered from the subjects swept."""
    h = heldout_set(32, subjects=subjects)
    it = h["intensity"]
    truth = sweep.true_sweep(h)
    assert truth.shape == it["ladders"].shape[:1] + it["ladders"].shape[2:]
    np.testing.assert_array_equal(truth[it["req"] == 0], it["ladders"][it["req"] == 0, 0])
    t = scores.estimate_intensity(truth, it["ladders"])
    assert np.abs(t - it["req"]).max() <= 0.1 + 1e-9
    for e in range(6):
        m = it["tgt"] == e
        c = sweep.by_class(it["req"][m], t[m])
        assert c["spearman"] > 0.98
        assert list(c["mean_t_hat_by_request"]) == ["0.0", "0.25", "0.5", "0.75", "1.0"]
    # the unchanged input: a constant estimate, Spearman undefined
    t_in = scores.estimate_intensity(it["neutral"][it["src"]], it["ladders"])
    assert sweep.by_class(it["req"], t_in)["spearman"] is None
    # read for strength, the true faces still come back to within a ladder step (on
    # the training subjects one of 240 does not: blurred, one subject's weak expression
    # is nearer a further rung)
    t_tol = scores.estimate_intensity(truth, it["ladders"], **scores.TOLERANT_READING)
    off = np.abs(t_tol - it["req"]) > 0.1 + 1e-9
    assert off.sum() == (0 if subjects is None else 1)
    assert scores.spearman(it["req"], t_tol) > 0.98


def test_read_for_strength_a_true_expression_a_pixel_off_is_still_itself():
    """The benchmark's faults at 32 px: exact pixels read a true expression one pixel
    lower, or the whole face one pixel lower, as hardly following s; the tolerant
    reading follows, and still reads an expression at half its contrast as weaker. The
    true change drawn on the average subject's resting face inside the paste map (a G
    that cannot see the hole) reads neutral faces as part-expressed; the true face pasted
    into the neutral one through the paste map, or the true peak faded in by s, still
    follows s; the neutral face warped along the optical flow to the peak does not."""
    h = heldout_set(32)
    it = h["intensity"]
    cases = reading.faults(sweep.true_sweep(h), it["neutral"][it["src"]],
                           reading.jittered_sweep(h), expression_regions(32, every=36),
                           it["ladders"][:, -1].astype(np.float32),
                           it["req"].astype(np.float32))
    assert len(cases) == 15 and cases["the change at half its contrast"][1] == "s / 2"

    def rho(name, **kw):
        return scores.spearman(it["req"], scores.estimate_intensity(
            cases[name][0], it["ladders"], **kw))

    for name in ("the change from neutral 1 px lower", "the whole face 1 px lower"):
        assert rho(name) < 0.3
        assert rho(name, **scores.TOLERANT_READING) > 0.9
    half = scores.estimate_intensity(cases["the change at half its contrast"][0],
                                     it["ladders"], **scores.TOLERANT_READING)
    full = scores.estimate_intensity(cases["true faces"][0], it["ladders"],
                                     **scores.TOLERANT_READING)
    assert half[it["req"] == 1].mean() < 0.7 < full[it["req"] == 1].mean()
    # the true change on the average subject's resting face: the neutral edits (s = 0)
    # no longer read as neutral, and the exact reading falls under the 0.8 bar
    rest = scores.estimate_intensity(
        cases["the change on the average resting face (paste map)"][0], it["ladders"])
    assert full[it["req"] == 0].max() == 0.0 and rest[it["req"] == 0].mean() > 0.2
    assert scores.spearman(it["req"], rest) < 0.8
    # the editor's soft paste map alone does not make an expression fainter
    assert rho("the true face pasted into the neutral one (paste map)") > 0.95
    # a perfect full edit faded in by s follows s; the input's pixels moved along the
    # flow onto the peak do not draw the expression (lips part, shading changes)
    assert rho("the true peak cross-faded from neutral by s", **scores.TOLERANT_READING) > 0.9
    assert rho("neutral warped towards the true peak by s x its optical flow") < 0.7


def test_trained_weights_are_refused_for_a_compact_editor(capsys):
    """A compact editor holds one set of weights: asking for the trained ones beside an
    average is a usage error, said before anything is loaded."""
    with pytest.raises(SystemExit) as e:
        sweep.main(["--checkpoint", "missing.npz", "--trained-weights", "--out", "unused"])
    assert e.value.code == 2
    assert "--trained-weights needs --run-dir" in capsys.readouterr().err


def test_a_variant_is_checked_before_the_model_is_loaded():
    """``--variant`` goes through edit_filters' own check, before any file is read."""
    with pytest.raises(SystemExit) as e:
        sweep.main(["--checkpoint", "missing.npz", "--variant", "gain:-1", "--out", "unused"])
    assert str(e.value) == "the number in 'gain:-1' must be > 0. Received: '-1'"


def test_a_constant_estimate_is_written_as_undefined_not_a_crash():
    """A model that returns its input reads 0 at every s, so its Spearman is None; the
    tables say so (the markdown writer used to raise on it after the edits were made)."""
    copy = sweep.by_class(np.array([0.0, 0.5, 1.0]), np.zeros(3))
    perfect = sweep.by_class(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 1.0]))
    lines = sweep.class_table({"anger": {"model": copy, "perfect": perfect}}, [0.0, 0.5, 1.0])
    assert lines[2] == "| anger | undefined | 1.000 | 0.00 / 0.00 / 0.00 |"
    assert sweep.rho(0.12345) == "0.123"


def test_the_editor_settings_given_override_the_models_own(tiny_config, tmp_path):
    """``--edit-regions``, ``--paste-gate`` and ``--intensity-scale`` rebuild the editor
    of a compact file with those settings; without them it is the file's editor."""
    import argparse

    from exprgan_tf.editor import ExpressionEditor
    from exprgan_tf.editor_io import save_compact

    path = save_compact(ExpressionEditor.from_config_tree(
        tiny_config("proposed-small", ["model.edit_regions=90"])), str(tmp_path / "e.npz"))
    args = argparse.Namespace(checkpoint=path, run_dir=None, trained_weights=False,
                              edit_regions=None, paste_gate=None, intensity_scale=None)
    own = sweep.load(args)
    assert (own.edit_regions, own.paste_gate, own.intensity_scale) == (90.0, 0.0, 1.0)
    args.edit_regions, args.paste_gate, args.intensity_scale = 95, 0.03, 0.75
    other = sweep.load(args)
    assert (other.edit_regions, other.paste_gate, other.intensity_scale) == (95.0, 0.03, 0.75)
    assert np.asarray(other.paste.regions).mean() < np.asarray(own.paste.regions).mean()


def test_neutral_rows_are_the_subject_expression_pairs_that_read_zero_at_every_s():
    """Two subjects x two expressions x three s; one pair reads 0 throughout. It is named,
    and the Spearman of the other rows is computed without it."""
    req = np.tile([0.0, 0.5, 1.0], 4)
    src = np.repeat([0, 0, 1, 1], 3)
    tgt = np.repeat([0, 1, 0, 1], 3)
    t_hat = np.array([0, .3, .6, 0, 0, 0, 0, .2, .5, 0, .4, .4])
    r = sweep.neutral_rows(src, tgt, req, t_hat)
    assert r["rows"] == [[0, 1]] and r["of"] == 4
    keep = ~((src == 0) & (tgt == 1))
    assert r["spearman_without"] == pytest.approx(scores.spearman(req[keep], t_hat[keep]))
    assert r["spearman_without"] > scores.spearman(req, t_hat)
    none_flat = sweep.neutral_rows(src, tgt, req, t_hat + req)
    assert none_flat["rows"] == []
