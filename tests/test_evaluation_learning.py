"""The learning report's metrics (hand-computed values) and one small end-to-end run."""

import numpy as np
import pytest

from exprgan_tf.config import EXPRESSIONS
from exprgan_tf.evaluation import scores


# --- nearest true target -------------------------------------------------------------
BANK = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def test_nearest_true_target_rate_counts_the_right_candidate():
    probes = np.array([[1.0, 0.0],    # cands 0, 1: d = 1, 81      -> column 0 (right)
                       [9.0, 1.0],    # cands 1, 2: d = 2, 162     -> column 0 (wrong: 1)
                       [1.0, 9.0]])   # cands 0, 2: d = 82, 2      -> column 1 (right)
    candidates = np.array([[0, 1], [1, 2], [0, 2]])
    assert scores.nearest_true_target_rate(probes, BANK, candidates, [0, 1, 1]) == \
        pytest.approx(2 / 3)
    assert scores.nearest_true_target_rate(probes, BANK, candidates, [1, 0, 0]) == \
        pytest.approx(1 / 3)


def test_nearest_true_target_only_looks_at_the_probe_candidates():
    # bank row 0 is nearest overall, but it is not a candidate: row 2 (column 1) wins
    probe = np.array([[0.0, 1.0]])
    assert scores.nearest_true_target_rate(probe, BANK, [[1, 2]], [1]) == 1.0
    assert scores.nearest_true_target_rate(probe, BANK, [[1, 2]], [0]) == 0.0


def test_nearest_true_target_ties_go_to_the_first_candidate():
    probe = np.array([[5.0, 0.0]])          # equidistant from rows 0 and 1
    assert scores.nearest_true_target_rate(probe, BANK, [[0, 1]], [0]) == 1.0
    assert scores.nearest_true_target_rate(probe, BANK, [[1, 0]], [0]) == 1.0
    assert scores.nearest_true_target_rate(probe, BANK, [[1, 0]], [1]) == 0.0


def test_nearest_true_target_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same D"):
        scores.nearest_true_target_rate(np.zeros((1, 3)), BANK, [[0, 1]], [0])
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        scores.nearest_true_target_rate(np.zeros((2, 2)), BANK, [[0, 1]], [0, 0])


# --- Spearman --------------------------------------------------------------------------
def test_spearman_hand_computed():
    # ranks of b: 1 2 4 3, d = 0 0 -1 1: rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert scores.spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    # ties get mean ranks: a = 1.5 1.5 3.5 3.5, b = 1.5 3.5 1.5 3.5 -> uncorrelated
    assert scores.spearman([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    assert scores.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert scores.spearman([1, 2, 3], [5, 5, 5]) is None


def test_intensity_scores_report_spearman_beside_pearson():
    s = [0.0, 0.25, 0.5, 0.75, 1.0]
    t = [0.0, 0.0, 0.1, 0.2, 1.0]           # monotone but far from linear
    out = scores.intensity_scores(s, t)
    # with ties rho is Pearson's r of the ranks: t -> 1.5 1.5 3 4 5, s -> 1 2 3 4 5;
    # centred: (-1.5 -1.5 0 1 2), (-2 -1 0 1 2): r = 9.5 / sqrt(9.5 * 10) = sqrt(0.95)
    assert out["spearman"] == pytest.approx(np.sqrt(0.95))
    assert out["corr"] < 0.9                 # Pearson ~0.87: Spearman asks less
    assert out["mae"] == pytest.approx((0 + .25 + .4 + .55 + 0) / 5)
    assert scores.intensity_scores(s, [0.0] * 5)["spearman"] is None


# --- fine detail (stripes) ----------------------------------------------------------
def test_fine_detail_sees_horizontal_stripes_down_only_and_noise_both_ways():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    smooth = 120 + 40 * np.sin(yy / 5.0) * np.cos(xx / 4.0)  # a face-like slow image
    truth = np.repeat(np.clip(smooth, 0, 255)[None, ..., None], 3, -1).astype(np.uint8)
    truth = np.repeat(truth, 4, 0)
    same = scores.fine_detail(truth, truth)
    assert same == {"down": 1.0, "across": 1.0}
    striped = truth.astype(int)
    striped[:, ::2] += 12                    # rows alternate: a horizontal stripe pattern
    fd = scores.fine_detail(np.clip(striped, 0, 255).astype(np.uint8), truth)
    assert fd["down"] > 5.0 and fd["across"] == pytest.approx(1.0, abs=1e-9)
    # the stripes' power at the Nyquist row frequency, by hand: 16 columns of a +-6
    # alternation over 16 rows have |rfft| = 16 * 6 at k = 8, i.e. 96^2 per column
    grey = truth.astype(float).mean(-1)
    base = sum((np.abs(np.fft.rfft(g, axis=0))[4:9] ** 2).sum() for g in grey) / 4
    extra = (np.abs(np.fft.rfft(grey[0] + 6 + 6 * (-1.0) ** yy, axis=0))[4:9] ** 2).sum()
    assert fd["down"] == pytest.approx(extra / base, rel=1e-9)
    noisy = np.clip(truth + rng.normal(0, 8, truth.shape), 0, 255).astype(np.uint8)
    fd = scores.fine_detail(noisy, truth)
    assert fd["down"] > 1.2 and fd["across"] > 1.2  # noise: both ways
    with pytest.raises(ValueError, match="faces of one shape"):
        scores.fine_detail(truth[:, :8], truth)


# --- z spread ------------------------------------------------------------------------
def test_l1_excess_map_averages_to_the_l1_the_edits_lose_to_the_input(tmp_path):
    from helpers import load_benchmark

    rng = np.random.default_rng(0)
    truth, inputs, edits = (rng.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
                            for _ in range(3))
    excess = scores.l1_excess_map(edits, truth, inputs)
    assert excess.shape == (6, 6)
    assert excess.mean() / 255 == pytest.approx(
        scores.l1_error(edits, truth).mean() - scores.l1_error(inputs, truth).mean())
    with pytest.raises(ValueError, match="edits, truth and inputs must hold faces of one"):
        scores.l1_excess_map(edits[:, :5], truth, inputs)
    # the benchmark's picture: red where the edits lose, blue where they gain, 4x size
    edits = inputs.copy()
    edits[:, 0, 0] = truth[:, 0, 0]                                  # exact: a gain
    edits[:, 5, 5] = np.where(truth[:, 5, 5] < 128, 255, 0)          # far off: a loss
    report = {"_edits": edits}
    heldout = {"truth": truth, "x": inputs, "src": np.arange(5)}
    png = load_benchmark("train_learning").l1_map(report, heldout, str(tmp_path / "m.png"))
    from PIL import Image
    picture = np.asarray(Image.open(png))
    assert picture.shape == (24, 24, 3)
    assert picture[0, 0, 0] == 0 and picture[0, 0, 2] > 0             # blue
    assert picture[23, 23, 0] > 0 and picture[23, 23, 2] == 0         # red
    assert picture[8:12, 8:12].max() == 0                             # unchanged: black


def test_z_spread_hand_computed():
    samples = np.array([[[0.0, 0.0], [2.0, 4.0]],     # code 0: std per pixel 1, 2 -> 1.5
                        [[1.0, 1.0], [1.0, 1.0]]])    # code 1: ignores z -> 0
    assert scores.z_spread(samples) == pytest.approx(0.75)
    assert scores.z_spread(samples[1:]) == 0.0
    with pytest.raises(ValueError, match="at least 2 draws"):
        scores.z_spread(samples[:, :1])


# --- the report, end to end on an untrained 32x32 model --------------------------------
def test_read_as_is_the_confusion_matrix_in_shares():
    from exprgan_tf.evaluation import learning
    requested = np.array([3, 3, 3, 3, 0, 0])
    pred = np.array([3, 2, 2, 4, 0, 0])  # happiness read as fear twice, sadness once
    read = learning._read_as(pred, requested)
    assert read == {"anger": {"anger": 1.0},
                    "happiness": {"fear": 0.5, "happiness": 0.25, "sadness": 0.25}}
    assert learning._misread(read, "happiness") == "; else read as fear 50.0%, sadness 25.0%"
    assert learning._misread(read, "anger") == "" and learning._misread(None, "anger") == ""


@pytest.mark.slow  # the whole held-out report, twice: about 60 s
def test_learning_report_end_to_end_without_dlib_weights():
    from exprgan_tf.config import get_preset
    from exprgan_tf.evaluation import learning
    from exprgan_tf.evaluation.classifier import build_expression_classifier
    from exprgan_tf.models import build_networks

    cfg = get_preset("proposed-small").override(["model.image_size=32"])
    nets = build_networks(cfg.model)
    judge = build_expression_classifier(32, seed=0)
    rep = learning.learning_report(nets.encoder, nets.decoder, cfg, judge=judge,
                                   descriptor=None, log=None)
    assert rep["edits"] == 864 and rep["_edits"].shape == (864, 32, 32, 3)
    assert rep["nearest_true_target"]["chance"] == 0.125
    # a face is much nearer its own subject's true face than the others': the input
    # unchanged baseline is far above chance in pixel space
    assert rep["nearest_true_target"]["pixels"]["input_unchanged"] > 0.5
    assert rep["nearest_true_target"]["dlib"] == learning.DLIB_NOT_MEASURED
    assert rep["same_person"] == learning.DLIB_NOT_MEASURED
    assert rep["ground_truth"]["l1_input"] < rep["ground_truth"]["l1"]
    h = learning.heldout_set(32)   # the 144 edits to the input's own expression
    own = h["tgt"] == h["y"][h["src"]]
    assert own.sum() == 144
    recon, edits = rep["ground_truth"]["reconstruction"], rep["_edits"]
    assert recon["l1"] == pytest.approx(float(np.mean(np.abs(
        edits[own].astype(float) - h["truth"][own].astype(float)))) / 255, rel=1e-5)
    assert recon["l1_input"] < rep["ground_truth"]["l1_input"]  # no expression change
    assert "edits to the input's own expression" in learning.markdown_rows(rep)
    # the other 720 edits: together with the 144 they make up the whole mean
    changed = rep["ground_truth"]["changed"]
    assert changed["l1"] == pytest.approx(float(np.mean(np.abs(
        edits[~own].astype(float) - h["truth"][~own].astype(float)))) / 255, rel=1e-5)
    assert (144 * recon["l1"] + 720 * changed["l1"]) / 864 == pytest.approx(
        rep["ground_truth"]["l1"], rel=1e-5)
    assert changed["l1_input"] > recon["l1_input"]
    assert f"| {changed['l1']:.4f} | {changed['l1_input']:.4f} |" in learning.markdown_rows(rep)
    sad = ~own & (h["tgt"] == EXPRESSIONS.index("sadness"))   # its 120 changed edits
    assert changed["per_class"]["sadness"]["l1"] == pytest.approx(float(np.mean(np.abs(
        edits[sad].astype(float) - h["truth"][sad].astype(float)))) / 255, rel=1e-5)
    assert np.mean([v["l1"] for v in changed["per_class"].values()]) == pytest.approx(
        changed["l1"], rel=1e-5)                                   # 120 edits each
    gap = changed["per_class"]["sadness"]["l1"] - changed["per_class"]["sadness"]["l1_input"]
    assert f"sadness {gap * 1e4:+.1f}e-4" in learning.markdown_rows(rep)
    fd = rep["ground_truth"]["fine_detail"]
    assert fd == scores.fine_detail(edits, h["truth"])
    assert rep["ground_truth"]["fine_detail_input"]["down"] > 1.0  # the inputs' noise
    assert f"| {fd['down']:.2f} / {fd['across']:.2f} |" in learning.markdown_rows(rep)
    assert rep["intensity"]["input_unchanged"]["spearman"] is None   # neutral stays 0
    tol = rep["intensity"]["tolerant"]
    assert tol["reading"] == scores.TOLERANT_READING
    assert tol["input_unchanged"]["spearman"] is None                 # read for strength too
    assert set(tol["mean_t_hat_by_request"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    assert "Intensity read for strength: Spearman" in learning.markdown_rows(rep)
    assert rep["z_spread"]["real_faces"] > 0.05
    # what each requested class was read as: shares that sum to 1, the diagonal being
    # the per-class accuracy; the table names the misreadings
    e = rep["expression"]
    for cls, shares in e["read_as"].items():
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares.get(cls, 0.0) == pytest.approx(e["per_class"][cls])
    md = learning.markdown_rows(rep)
    wrong = next(c for c, v in e["per_class"].items() if v < 1)
    worst = max((v, k) for k, v in e["read_as"][wrong].items() if k != wrong)[1]
    assert f"else read as {worst} " in md
    assert learning.DLIB_NOT_MEASURED in md and "accuracy at 10 eigenfaces" in md
    import json
    json.dumps(learning.public(rep))
    # --undo-sharpening: the same edits, with the unsharp mask the preset trains G to
    # draw undone
    from exprgan_tf.preprocessing import to_display, to_model_range, undo_unsharp_mask
    undone = learning.learning_report(nets.encoder, nets.decoder, cfg, judge=judge,
                                      descriptor=None, log=None, undo_sharpening=True)
    assert (rep["undo_sharpening"], undone["undo_sharpening"]) == (False, True)
    np.testing.assert_array_equal(undone["_edits"], to_display(to_model_range(
        undo_unsharp_mask(rep["_edits"], 1.0, 1.0))).numpy())


def test_the_training_subject_diagnostic_scores_exactly_those_subjects_faces():
    from exprgan_tf import data
    from exprgan_tf.evaluation import learning

    h = learning.heldout_set(32, subjects=learning.TRAINING_PROBE)
    assert h["subject_ids"] == [f"P00{i}" for i in range(1, 9)]
    x, y, subj = data.load_split(None, "train", 32)
    keep = np.isin(subj, learning.TRAINING_PROBE)
    np.testing.assert_array_equal(h["x"], x[keep])      # the very faces it trained on
    np.testing.assert_array_equal(h["y"], y[keep])
    assert len(h["src"]) == 6 * keep.sum() == 864
    assert [r["subject"] for r in h["rows"]] == subj[keep].tolist()
    assert h["pca"][0] == [f"P00{i}" for i in range(1, 7)]
    with pytest.raises(ValueError, match=r"unknown: \['P099'\]"):
        learning.heldout_set(32, subjects=["P001", "P099"])
    with pytest.raises(ValueError, match="at least 6 distinct subjects"):
        learning.heldout_set(32, subjects=["P001", "P002"])


# --- the judge's recipe ----------------------------------------------------------------
def test_augment_faces_flip_shift_and_brightness_by_hand():
    from exprgan_tf.evaluation.classifier import augment_faces

    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[0, 1, 0] = 200                      # one bright pixel at row 1, column 0
    flips = [augment_faces(img, np.random.default_rng(s), shift=0, brightness=0,
                           contrast=0) for s in range(8)]
    for out in flips:                       # unchanged, or mirrored to column 3
        assert (out[0, 1, 0, 0], out[0, 1, 3, 0]) in ((200, 0), (0, 200))
        assert out.sum() == img.sum()
    assert len({int(o[0, 1, 3, 0]) for o in flips}) == 2      # both happen over 8 seeds
    a = augment_faces(img, np.random.default_rng(3))
    b = augment_faces(img, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)     # a function of the seed
    flat = np.full((1, 4, 4, 3), 100, np.uint8)
    out = augment_faces(flat, np.random.default_rng(0), flip=False, shift=0, contrast=0,
                        brightness=20)
    assert len(np.unique(out)) == 1 and 80 <= int(out[0, 0, 0, 0]) <= 120   # 100 + b


def test_train_judge_is_deterministic_given_the_seed():
    from exprgan_tf.evaluation.classifier import train_judge

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 16, 16, 3)).astype(np.uint8)
    y = np.arange(48) % 6
    w1 = train_judge(x, y, epochs=2, batch_size=16, seed=5).get_weights()
    w2 = train_judge(x, y, epochs=2, batch_size=16, seed=5).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))


def test_train_judge_takes_the_widths_of_another_network():
    """The expression network of ``losses.expression`` is trained like the judge at
    other widths (``EXPRESSION_NETWORK``)."""
    from exprgan_tf.evaluation.classifier import train_judge

    x = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3)).astype(np.uint8)
    lines = []
    net = train_judge(x, np.arange(12) % 6, epochs=1, batch_size=12, seed=5,
                      filters=(3, 5, 7, 9), dense_units=11, name="expression network",
                      log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("expression network epoch 1/1: loss ")
    assert [net.get_layer(f"conv{i}").filters for i in range(4)] == [3, 5, 7, 9]
    # 3x3 convs without bias + 4 BatchNorm numbers per channel, dense 9 -> 11 -> 6:
    # 81+12 + 135+20 + 315+28 + 567+36 + 110 + 72
    assert net.get_layer("dense").units == 11 and net.count_params() == 1376
