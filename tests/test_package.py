"""The package as a user gets it: `import exprgan_tf` alone loads a saved editor, a
built wheel carries the pretrained model and the commands, and neither plotting nor a
redirected training log leaves traces (a backend switch, terminal control codes)."""

import glob
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
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
