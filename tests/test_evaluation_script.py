"""scripts/evaluate.py end to end on two tiny run directories made here (slow: trains
and runs the script twice), and its refusals, called in this process (fast)."""

import csv
import os
import subprocess
import sys

import pytest

from exprgan_tf.cli.evaluate import main
from exprgan_tf.data import load_split
from exprgan_tf.run_dir import config_path
from exprgan_tf.training import Trainer
from helpers import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "evaluate.py")


def make_run(path, preset, tiny_config):
    # one face in 27 leaves almost no subject in two expressions: the tiny config has
    # the paired term off
    cfg = tiny_config(preset)
    images, labels, _ = load_split(None, "train", 32)
    images, labels = images[::27], labels[::27]                 # 48 faces
    for stage in (1, 2):
        Trainer(cfg, path, stage, images, labels, batch_size=16, log=quiet).fit(epochs=1)
    return str(path)


# Under pytest-xdist every test of this module runs on one worker, so the module
# fixtures below are built once (setup.cfg: --dist loadgroup).
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("runs")
    return [make_run(root / "a", "exprgan-small", tiny_config),
            make_run(root / "b", "proposed-small", tiny_config)]


def run_script(*args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, env=env)


def run_main(capsys, *args):
    """``exprgan-evaluate`` in this process: its exit code, stdout and stderr."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow  # trains 2 presets x 2 stages, then two evaluations in subprocesses
def test_evaluate_writes_table_figures_and_progress(runs, tmp_path):
    out = tmp_path / "eval"
    clf = tmp_path / "clf.keras"
    r = run_script("--checkpoint", runs[0], "--checkpoint", runs[1], "--out", str(out),
                   "--no-fid", "--identity", "dlib_resnet", "--classifier", str(clf),
                   "--classifier-epochs", "1", "--pca-persons", "3",
                   # an empty weights cache: identity is skipped, not an error (a missing
                   # file given with --identity-weights is refused up front instead)
                   env={**os.environ, "EXPRGAN_TF_CACHE": str(tmp_path / "empty_cache")})
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


def test_evaluate_fails_fast_without_fid_weights(tmp_path, tiny_config, capsys):
    run = tmp_path / "run"
    run.mkdir()
    tiny_config().save(config_path(run))   # checked before the FID weights
    code, _, err = run_main(capsys, "--checkpoint", str(run), "--out", str(tmp_path / "e"),
                            "--fid-weights", str(tmp_path / "none.h5"))
    assert code == 2
    assert "InceptionV3 weights file not found" in err and "--no-fid" in err
    assert not (tmp_path / "e" / "table1.md").exists()


def test_evaluate_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = run_main(capsys, "--checkpoint", str(tmp_path), "--no-fid")
    assert code == 2 and "not a run directory" in err
    code, _, err = run_main(capsys, "--checkpoint", str(tmp_path / "nope"), "--no-fid")
    assert code == 2 and "is not a directory" in err
