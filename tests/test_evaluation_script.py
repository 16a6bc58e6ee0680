"""scripts/evaluate.py end to end on two tiny run directories made here in seconds."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from exprgan_tf.config import get_preset
from exprgan_tf.data import load_split
from exprgan_tf.training import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "evaluate.py")
TINY = ["model.image_size=32", "model.encoder_filters=[8,8,16,16,16]",
        "model.decoder_start_filters=16", "model.decoder_filters=[16,16,8,8,8]",
        "model.decoder_final_filters=4", "model.dimg_filters=[4,8,8,8]", "model.dimg_dense=16",
        "model.q_shared_units=16", "model.q_head_units=8", "training.sample_every=100",
        # one face in 27 leaves almost no subject in two expressions: no pairs
        "training.stage2.losses.paired=0", "training.stage3.losses.paired=0"]


def quiet(*args):
    pass


def make_run(path, preset):
    cfg = get_preset(preset).override(TINY)
    images, labels, _ = load_split(None, "train", 32)
    images, labels = images[::27], labels[::27]                 # 48 faces
    for stage in (1, 2):
        Trainer(cfg, path, stage, images, labels, batch_size=16, log=quiet).fit(epochs=1)
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [make_run(root / "a", "exprgan-small"), make_run(root / "b", "proposed-small")]


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


def test_evaluate_writes_table_figures_and_progress(runs, tmp_path):
    out = tmp_path / "eval"
    clf = tmp_path / "clf.keras"
    r = run_script("--checkpoint", runs[0], "--checkpoint", runs[1], "--out", str(out),
                   "--no-fid", "--identity", "dlib_resnet", "--identity-weights",
                   str(tmp_path / "missing.weights.h5"), "--classifier", str(clf),
                   "--classifier-epochs", "1", "--pca-persons", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    # progress while generating and scoring
    assert "[1/2] exprgan-small" in r.stdout and "[2/2] proposed-small" in r.stdout
    assert "edits: 864/864" in r.stdout
    md = (out / "table1.md").read_text()
    assert "| - | Metric | exprgan-small | proposed-small |" in md
    assert "| CNN Expression Classifier | Accuracy (↑) |" in md
    assert "Identity similarity: skipped, no dlib_resnet weights" in md
    assert "FID: not measured" in md
    rows = list(csv.reader(open(out / "table1.csv", encoding="utf-8")))
    assert rows[0] == ["group", "metric", "exprgan-small", "proposed-small"]
    metrics = [row[1] for row in rows[1:]]
    assert metrics == ["Accuracy", "Recognition accuracy (best)", "Eigenfaces to reach it",
                       "L1 to true face", "SSIM to true face", "Mean abs(t_hat - s)",
                       "Correlation of t_hat with s"]
    values = {row[1]: [float(v) for v in row[2:]] for row in rows[1:]}
    for name in ("Accuracy", "Recognition accuracy (best)", "SSIM to true face"):
        assert all(0.0 <= v <= 1.0 for v in values[name]), (name, values[name])
    assert all(0 < v < 1 for v in values["L1 to true face"])
    assert all(1 <= v <= 50 for v in values["Eigenfaces to reach it"])  # gallery 3 x 17 - 1
    for model in ("exprgan-small", "proposed-small"):
        for fig in ("fig6", "fig7", "intensity", "fig8"):
            assert (out / f"{fig}_{model}.png").stat().st_size > 1000
    assert clf.is_file()
    # the saved classifier is reused the second time (no training)
    r2 = run_script("--checkpoint", runs[0], "--out", str(tmp_path / "again"), "--no-fid",
                    "--identity", "none", "--classifier", str(clf), "--pca-persons", "3")
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert f"loading {clf}" in r2.stdout
    again = list(csv.reader(open(tmp_path / "again" / "table1.csv", encoding="utf-8")))
    assert float(again[1][2]) == values["Accuracy"][0]


def test_evaluate_fails_fast_without_fid_weights(runs, tmp_path):
    r = run_script("--checkpoint", runs[0], "--out", str(tmp_path / "e"), "--fid-weights",
                   str(tmp_path / "none.h5"))
    assert r.returncode == 2
    assert "InceptionV3 weights file not found" in r.stderr and "--no-fid" in r.stderr
    assert not (tmp_path / "e" / "table1.md").exists()


def test_evaluate_rejects_a_folder_that_is_not_a_run(tmp_path):
    r = run_script("--checkpoint", str(tmp_path), "--no-fid")
    assert r.returncode == 2 and "not a run directory" in r.stderr
    r = run_script("--checkpoint", str(tmp_path / "nope"), "--no-fid")
    assert r.returncode == 2 and "is not a directory" in r.stderr
