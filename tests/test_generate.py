"""scripts/generate.py and exprgan_tf.photo on photos: output of the input's
size, the photo unchanged outside the face, the face changed, and clear failures.

Photos are made here from the built-in face renderer pasted on a noisy background (so
"unchanged" means something); the real photos in the ``face_recognition`` sdist are used
when PyPI is reachable. Detection tests need the optional ``mtcnn`` package."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from exprgan_tf.cli import generate
from exprgan_tf.editor import ExpressionEditor
from exprgan_tf import photo as photo_edit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "generate.py")

HAS_MTCNN = importlib.util.find_spec("mtcnn") is not None
needs_mtcnn = pytest.mark.skipif(not HAS_MTCNN, reason="face detection needs the optional "
                                 "'mtcnn' package (pip install mtcnn)")


# Under pytest-xdist every test of this module runs on one worker, so the module
# fixtures below are built once (setup.cfg: --dist loadgroup).
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_config):
    keras.utils.set_random_seed(3)
    editor = ExpressionEditor.from_config_tree(tiny_config("exprgan-small"))
    path = str(tmp_path_factory.mktemp("model") / "editor.keras")
    editor.save(path)
    return path


def _face(size, subject=3):
    from exprgan_tf.data.faces import FaceSet

    return FaceSet(seed=0).render(subject, "happiness", 0.3, lighting="strong", size=size)


def _photo(path, faces, shape=(300, 400), seed=0):
    """Noise background with rendered faces pasted at ``faces`` = [(top, left, size)]."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(60, 200, shape + (3,), dtype=np.uint8)
    for i, (top, left, size) in enumerate(faces):
        photo[top:top + size, left:left + size] = _face(size, subject=3 + i)
    Image.fromarray(photo).save(path)
    return photo


def _run(argv, capsys):
    code = generate.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _changed(a, b):
    return np.any(a != b, axis=-1)


def _check_edit(original, edited, inside):
    """Same size; unchanged outside ``inside`` = (top, left, bottom, right); the face
    centre changed."""
    assert edited.shape == original.shape
    top, left, bottom, right = inside
    outside = np.ones(original.shape[:2], bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(edited[outside], original[outside])
    cy, cx = (top + bottom) // 2, (left + right) // 2
    centre = (slice(cy - 8, cy + 8), slice(cx - 8, cx + 8))
    assert _changed(edited[centre], original[centre]).mean() > 0.9
    assert np.abs(edited[centre].astype(int) - original[centre]).mean() > 5


def test_face_box_edit_changes_only_the_face(tmp_path, model_file, capsys):
    photo = _photo(tmp_path / "p.png", [(60, 120, 128)])
    out = tmp_path / "out.png"
    box = "145,80,70,95"  # the rendered face inside its 128 px square
    code, stdout, err = _run(["--image", str(tmp_path / "p.png"), "--checkpoint", model_file,
                              "--expression", "surprise", "--intensity", "0.8",
                              "--face-box", box, "-o", str(out)], capsys)
    assert code == 0, err
    assert "surprise at 0.8" in stdout
    edited = _read(out)
    # The crop square: side 95 * 1.5 centred on the box -> everything else is untouched.
    side = 95 * 1.5
    cx, cy = 145 + 35, 80 + 47.5
    inside = (int(cy - side / 2), int(cx - side / 2), int(cy + side / 2) + 1,
              int(cx + side / 2) + 1)
    _check_edit(photo, edited, inside)
    # The mask is an ellipse inside the square: its corners are untouched as well.
    assert not _changed(edited, photo)[inside[0]:inside[0] + 10, inside[1]:inside[1] + 10].any()


def test_photo_editor_batches_settings_and_blends_like_single_edits(tmp_path, model_file):
    from exprgan_tf.editor_io import load_editor

    photo = _photo(tmp_path / "p.png", [(60, 120, 128)])
    tool = photo_edit.PhotoEditor(load_editor(model_file))
    face = photo_edit.Face((145, 80, 70, 95))
    many, _ = tool.edit_many(photo, [("anger", 1.0), ("happiness", 0.5)], faces=[face])
    one = tool.edit(photo, "happiness", 0.5, faces=[face])
    np.testing.assert_array_equal(many[1], one)
    assert _changed(many[0], many[1]).any()


def test_alignment_round_trip_and_rotation():
    al = photo_edit.Alignment(center=(100.0, 80.0), side=96.0, angle=0.3, size=64)
    for u, v in [(0, 0), (64, 0), (10, 50), (32, 32)]:
        x, y = al.to_photo(u, v)
        np.testing.assert_allclose(al.to_crop(x, y), (u, v), atol=1e-9)
    np.testing.assert_allclose(al.to_photo(32, 32), (100.0, 80.0))


def test_grid_of_all_expressions(tmp_path, model_file, capsys):
    _photo(tmp_path / "p.png", [(60, 120, 128)])
    out = tmp_path / "grid.png"
    code, stdout, err = _run(["--image", str(tmp_path / "p.png"), "--checkpoint", model_file,
                              "--expression", "all", "--sweep", "2", "--face-box",
                              "145,80,70,95", "--cell-size", "64", "-o", str(out)], capsys)
    assert code == 0, err
    assert "2 intensities x 6 expressions" in stdout
    grid = _read(out)
    head, side = generate.LABEL_HEIGHT, generate.LABEL_WIDTH
    assert grid.shape == (head + 2 * 66 + 2, side + 7 * 66 + 2, 3)
    cells = [grid[head + 2:head + 66, side + 2 + j * 66: side + 66 + j * 66] for j in range(7)]
    assert all(_changed(cells[0], c).mean() > 0.1 for c in cells[1:])


@pytest.mark.parametrize("argv, message", [
    (["--expression", "smile"], "unknown expression 'smile'"),
    (["--intensity", "1.5"], "intensities must be in [0, 1]"),
    (["--sweep", "1"], "--sweep needs N >= 2"),
    (["--face-box", "1,2,3"], "expected X,Y,W,H"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        generate.main(["--image", str(tmp_path / "p.png")] + argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_not_an_image_exits_1(tmp_path, model_file, capsys):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo")
    code, _, err = _run(["--image", str(path), "--checkpoint", model_file], capsys)
    assert code == 1
    assert "is not an image file that can be read" in err
    code, _, err = _run(["--image", str(tmp_path / "missing.png"), "--checkpoint", model_file],
                        capsys)
    assert code == 1 and "no such file" in err


def test_tiny_face_exits_1(tmp_path, model_file, capsys):
    _photo(tmp_path / "p.png", [(60, 120, 128)])
    code, _, err = _run(["--image", str(tmp_path / "p.png"), "--checkpoint", model_file,
                         "--expression", "fear", "--face-box", "150,90,20,24"], capsys)
    assert code == 1
    assert "too small to edit (24 px" in err and "--min-face-size" in err


def test_missing_model_exits_1(tmp_path, capsys, monkeypatch):
    _photo(tmp_path / "p.png", [(60, 120, 128)])
    monkeypatch.setenv("EXPRGAN_TF_CHECKPOINT", str(tmp_path / "nothing.keras"))
    code, _, err = _run(["--image", str(tmp_path / "p.png")], capsys)
    assert code == 1 and "cannot load the model" in err


def test_exit_status_of_the_real_process(tmp_path, model_file):
    path = tmp_path / "notes.png"
    path.write_bytes(b"\x00\x01 not an image")
    proc = subprocess.run([sys.executable, SCRIPT, "--image", str(path), "--checkpoint",
                           model_file], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "not an image file" in proc.stderr


# --- with face detection -------------------------------------------------------------

@needs_mtcnn
def test_detected_face_is_edited_and_the_rest_kept(tmp_path, model_file, capsys):
    photo = _photo(tmp_path / "p.png", [(60, 120, 128)])
    out = tmp_path / "out.png"
    code, stdout, err = _run(["--image", str(tmp_path / "p.png"), "--checkpoint", model_file,
                              "--expression", "sadness", "-o", str(out)], capsys)
    assert code == 0, err
    edited = _read(out)
    # Everything outside the pasted face square (with a small allowance) is untouched.
    _check_edit(photo, edited, (40, 100, 60 + 128 + 20, 120 + 128 + 20))


@needs_mtcnn
def test_several_faces_largest_or_all(tmp_path, model_file, capsys):
    photo = _photo(tmp_path / "two.png", [(40, 20, 144), (60, 240, 112)], shape=(260, 400))
    largest, every = tmp_path / "largest.png", tmp_path / "all.png"
    code, _, err = _run(["--image", str(tmp_path / "two.png"), "--checkpoint", model_file,
                         "--expression", "anger", "-o", str(largest)], capsys)
    assert code == 0, err
    assert "2 faces found; edited the largest" in err
    changed = _changed(_read(largest), photo)
    assert changed[:, :200].any() and not changed[:, 200:].any()
    code, stdout, err = _run(["--image", str(tmp_path / "two.png"), "--checkpoint", model_file,
                              "--expression", "anger", "--faces", "all", "-o", str(every)],
                             capsys)
    assert code == 0, err
    assert "2 face(s) edited" in stdout
    changed = _changed(_read(every), photo)
    assert changed[:, :200].any() and changed[:, 200:].any()


@needs_mtcnn
def test_no_face_exits_1(tmp_path, model_file, capsys):
    y, x = np.mgrid[0:240, 0:320]
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).save(
        tmp_path / "wall.png")
    code, _, err = _run(["--image", str(tmp_path / "wall.png"), "--checkpoint", model_file],
                        capsys)
    assert code == 1
    assert "No face found in" in err and "--face-box" in err


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory):
    """The test photos inside the face_recognition 1.3.0 sdist (needs PyPI)."""
    import tarfile

    dest = tmp_path_factory.mktemp("sdist")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                           "--no-binary", ":all:", "face_recognition==1.3.0", "-d", str(dest),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    archives = [f for f in os.listdir(dest) if f.endswith(".tar.gz")]
    if proc.returncode != 0 or not archives:
        pytest.skip("PyPI unreachable: cannot fetch the face_recognition sdist's photos")
    photos = {}
    with tarfile.open(dest / archives[0]) as tar:
        for member in tar.getmembers():
            if "/tests/test_images/" in member.name and member.name.endswith(".jpg"):
                tar.extract(member, dest, filter="data")
                photos[os.path.basename(member.name)] = str(dest / member.name)
    return photos


@pytest.mark.network
@needs_mtcnn
def test_real_photo(real_photos, tmp_path, model_file, capsys):
    path = real_photos["obama.jpg"]
    original = photo_edit.read_photo(path)
    out = tmp_path / "obama_edit.png"
    code, stdout, err = _run(["--image", path, "--checkpoint", model_file, "--expression",
                              "surprise", "-o", str(out)], capsys)
    assert code == 0, err
    edited = _read(out)
    changed = _changed(edited, original)
    ys, xs = np.nonzero(changed)
    # Only a face-sized region changed, around the face (obama.jpg: 910 x 1137).
    assert edited.shape == original.shape
    assert 0.02 < changed.mean() < 0.25
    assert 250 < xs.mean() < 650 and 100 < ys.mean() < 450
    centre = (slice(int(ys.mean()) - 10, int(ys.mean()) + 10),
              slice(int(xs.mean()) - 10, int(xs.mean()) + 10))
    assert _changed(edited[centre], original[centre]).all()


@needs_mtcnn
def test_eye_aligned_crop_matches_the_training_face():
    """A built-in face pasted into a photo, detected and cropped, looks like the render
    the model was trained on (the 'eyes' layout is calibrated on those renders)."""
    from exprgan_tf.data.faces import FaceSet

    class _Size32:  # PhotoEditor only needs the model size to crop
        image_size = 32

    faces = FaceSet(seed=0)
    for subject, expression in ((5, "surprise"), (8, "anger")):
        render = faces.render(subject, expression, 0.7, lighting="strong", size=120)
        photo = np.random.default_rng(subject).integers(60, 200, (260, 300, 3), dtype=np.uint8)
        photo[70:190, 90:210] = render
        scores = {}
        for mode in ("eyes", "box"):
            tool = photo_edit.PhotoEditor(_Size32(), crop=mode)
            crop = tool.crop(photo, tool.alignment(tool.detect(photo)[0])).astype(float)
            target = faces.render(subject, expression, 0.7, lighting="strong", size=32)
            scores[mode] = np.corrcoef(crop.ravel(), target.astype(float).ravel())[0, 1]
        assert scores["eyes"] > 0.8, scores
        assert scores["eyes"] > scores["box"], scores
