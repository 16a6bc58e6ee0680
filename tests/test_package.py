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

from exprgan_tf.config import get_preset
from exprgan_tf.editor import ExpressionEditor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["model.image_size=32", "model.encoder_filters=[4,8,8,16,16]",
        "model.decoder_start_filters=16", "model.decoder_filters=[16,8,8,8,4]",
        "model.decoder_final_filters=4"]
COMMANDS = ("exprgan-train", "exprgan-generate", "exprgan-export", "exprgan-evaluate",
            "exprgan-prepare-data", "exprgan-fetch-weights")


def _python(code, *args, cwd, env=None):
    """Run ``code`` in a fresh interpreter; its stdout, or a failure with its stderr."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_exprgan_tf_alone_loads_a_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    # proposed: the dilated encoder (DilatedConv2D) and the decoder's ConcatLabel.
    editor = ExpressionEditor.from_config_tree(get_preset("proposed-small").override(TINY))
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
