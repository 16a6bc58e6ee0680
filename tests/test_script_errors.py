"""Every script turns a bad argument or an unusable path into one message naming it and a
non-zero status, never a raw traceback (issue 14's "small traps"). Each case fails before
any model work, so the table runs in seconds."""

import importlib.util
import os
import re

import numpy as np
import pytest
from PIL import Image

from helpers import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}",
                                                  os.path.join(ROOT, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def paths(tmp_path):
    """A plain file, a run directory with a config, a small dataset and a photo."""
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "garbage.h5").write_text("not HDF5")
    run = tmp_path / "run"
    run.mkdir()
    tiny_config("exprgan-small").save(run / "config.json")
    for s in range(1, 5):
        for expression in ("happy", "sad"):
            folder = tmp_path / "data" / expression
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), 40 * s, np.uint8)).save(folder / f"S{s}_a.png")
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "photo.png")
    return {k: str(v) for k, v in dict(tmp=tmp_path, file=tmp_path / "file", run=run,
                                       data=tmp_path / "data", photo=tmp_path / "photo.png",
                                       garbage=tmp_path / "garbage.h5").items()}


EVALUATE = ["--checkpoint", "{run}", "--no-fid", "--identity", "none", "--out", "{tmp}/ev"]
TRAPS = [
    ("prepare_data --out unwritable", "prepare_data", ["--out", "/proc/nope", "--size", "32",
                                                        "--num-subjects", "2"],
     2, r"cannot write the face set to /proc/nope"),
    ("export --export-dir under a file", "export", ["--checkpoint", "{tmp}/editor.npz",
                                                    "--export-dir", "{file}/x"],
     1, r"error: .*{file}/x"),
    ("evaluate --out under a file", "evaluate", EVALUATE[:-1] + ["{file}/x"],
     2, r"error: .*{file}/x"),
    ("evaluate --batch-size 0", "evaluate", EVALUATE + ["--batch-size", "0"],
     2, r"batch_size must be a positive integer. Received: batch_size=0"),
    ("evaluate missing --identity-weights", "evaluate",
     EVALUATE[:3] + ["--identity", "dlib_resnet", "--identity-weights", "{tmp}/none.npz"]
     + EVALUATE[5:], 2, r"identity_weights='{tmp}/none.npz' does not exist \(given explicitly"),
    ("evaluate --grid-subject 99", "evaluate", EVALUATE + ["--data", "{data}", "--grid-subject",
                                                          "99", "--classifier-epochs", "1"],
     2, r"grid_subject=99 but the test split has 1 subjects \(indices 0-0\)"),
    ("fetch_weights garbage .h5", "fetch_weights", ["vgg_face", "--from", "{garbage}",
                                                    "--dest", "{tmp}/vgg.h5"],
     1, r"{garbage} cannot be read as a .h5 file"),
    ("train --run-dir a file", "train", ["--stage", "1", "--run-dir", "{file}"],
     2, r"The run directory {file} is a file"),
    ("generate --face-box outside", "generate", ["--image", "{photo}", "--expression", "fear",
                                                 "--face-box", "30,10,30,20"],
     2, r"--face-box 30,10,30,20 reaches x=60, y=30, outside the 50x40 photo"),
]


@pytest.mark.parametrize("case, name, argv, status, message", TRAPS, ids=[t[0] for t in TRAPS])
def test_script_error_is_a_message_and_a_status(paths, capsys, case, name, argv, status, message):
    if "{tmp}/editor.npz" in argv:
        from exprgan_tf.editor import ExpressionEditor
        from exprgan_tf.editor_io import save_compact

        editor = ExpressionEditor.from_config_tree(tiny_config("exprgan-small"))
        save_compact(editor, os.path.join(paths["tmp"], "editor.npz"))
    argv = [a.format(**paths) for a in argv]
    assert script(name).main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(message.format(**{k: re.escape(v) for k, v in paths.items()}), err), err
