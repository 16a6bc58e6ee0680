"""The package as a user gets it: `import exprgan_tf` alone loads a saved editor, a
built wheel carries the pretrained model and the commands, and plotting leaves the
caller's matplotlib alone. (A redirected training log: tests/test_training.py.)"""

import glob
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import pytest

from exprgan_tf.editor import ExpressionEditor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("exprgan-train", "exprgan-generate", "exprgan-export", "exprgan-evaluate",
            "exprgan-prepare-data", "exprgan-fetch-weights")


def _python(code, *args, cwd, env=None):
    """Run ``code`` in a fresh interpreter; its stdout, or a failure with its stderr."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_exprgan_tf_alone_loads_a_keras_file(tmp_path, tiny_config):
    keras.utils.set_random_seed(0)
    # proposed: the dilated encoder (DilatedConv2D) and the decoder's ConcatLabel.
    editor = ExpressionEditor.from_config_tree(tiny_config("proposed-small"))
    editor.save(tmp_path / "editor.keras")
    out = _python("import sys, keras, exprgan_tf\n"
                  "m = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
                  "print(type(m).__name__, m.count_params())",
                  str(tmp_path / "editor.keras"), cwd=tmp_path)
    assert out.split() == ["ExpressionEditor", str(editor.count_params())]


def test_loss_curves_leave_the_matplotlib_backend_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt
    from PIL import Image

    from exprgan_tf.visualize import plot_loss_curves

    history = tmp_path / "history.csv"
    history.write_text("stage,epoch,L1,L_Q\n2,1,0.5,0.1\n2,2,0.4,0.1\n3,1,0.3,0.2\n")
    previous = matplotlib.get_backend()
    matplotlib.use("pdf")
    try:
        figures = plt.get_fignums()
        path = plot_loss_curves(history, tmp_path / "curves.png")
        assert matplotlib.get_backend() == "pdf"
        assert plt.get_fignums() == figures
    finally:
        matplotlib.use(previous)
    assert Image.open(path).size == (1100, 400)   # two stage panels of 5.5 x 4 in at 100 dpi


@pytest.mark.slow
def test_wheel_carries_the_pretrained_model_and_the_commands(tmp_path):
    """pip wheel + install into a target folder, then use it from outside the source
    tree: the commands exist and the shipped model predicts."""
    src = tmp_path / "src"
    os.makedirs(src / "checkpoints")
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src)
    shutil.copytree(os.path.join(ROOT, "exprgan_tf"), src / "exprgan_tf",
                    ignore=shutil.ignore_patterns("__pycache__", "pretrained"))
    for path in glob.glob(os.path.join(ROOT, "checkpoints", "pretrained-*.npz")):
        shutil.copy(path, src / "checkpoints")
    shutil.copytree(os.path.join(ROOT, "checkpoints", "judges"), src / "checkpoints" / "judges")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = glob.glob(str(tmp_path / "dist" / "exprgan_tf-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "exprgan_tf/pretrained/pretrained-proposed-small.npz" in names
    assert not [n for n in names if "judge" in n]
    for command in COMMANDS:
        assert f"{command} = exprgan_tf.cli.".encode() in entry_points

    target = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(target), wheel], check=True)
    assert sorted(os.listdir(target / "bin")) == sorted(COMMANDS)
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("EXPRGAN_TF_CHECKPOINT", None)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    helped = subprocess.run([str(target / "bin" / "exprgan-generate"), "--help"], env=env,
                            cwd=outside, capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "--expression" in helped.stdout, helped.stderr[-2000:]
    out = _python(
        "import numpy as np, exprgan_tf\n"
        "editor = exprgan_tf.load_editor()\n"
        "faces = np.full((2, 64, 64, 3), 128, np.uint8)\n"
        "out = editor.predict([faces, np.array([3, 5]), np.array([1.0, 0.5], 'float32')],\n"
        "                     verbose=0)\n"
        "print(exprgan_tf.__file__)\nprint(exprgan_tf.find_checkpoint())\n"
        "print(out.shape, bool(np.abs(out).max() <= 1.0), bool(out.std() > 0.01))",
        cwd=outside, env=env).splitlines()
    assert out[0] == str(target / "exprgan_tf" / "__init__.py")
    assert out[1] == str(target / "exprgan_tf" / "pretrained" / "pretrained-proposed-small.npz")
    assert out[2] == "(2, 64, 64, 3) True True"
