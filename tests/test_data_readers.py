"""Dataset readers: Oulu-CASIA and generic layouts, bad input, split by subject,
load_split, prepare_data and the optional face cropper."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from exprgan_tf.data import builtin, load_split, readers
from exprgan_tf.data.detect import FaceCropper, FaceNotFoundError
from exprgan_tf.data.readers import UnreadableImagesWarning

OULU_NAMES = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")


def _png(path, value=0, size=(12, 12), mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(np.full(shape, value, np.uint8), mode=None).convert(mode).save(path)


def _oulu(root, subjects=("P001", "P002", "P003", "P004"), frames=5, names=OULU_NAMES):
    """Subject s, expression e, frame f has pixel value 10*s + e... encoded per file."""
    for si, s in enumerate(subjects):
        for ei, e in enumerate(names):
            for f in range(frames):
                # Frame names without zero padding exercise the numeric ordering.
                _png(os.path.join(root, s, e, f"{f}.jpeg" if f % 2 else f"{f}.png"),
                     value=40 * si + 6 * ei + f)
    return root


@pytest.fixture
def oulu_root(tmp_path):
    return _oulu(str(tmp_path / "oulu"), frames=11)


def test_oulu_keeps_last_three_frames_in_numeric_order(oulu_root):
    records = readers.scan(oulu_root)
    assert len(records) == 4 * 6 * 3
    anger = [r for r in records if r.subject == "P001" and r.label == 0]
    assert [os.path.basename(r.path) for r in anger] == ["8.png", "9.jpeg", "10.png"]
    assert [r.frame for r in anger] == [8, 9, 10]
    assert readers.detect_layout(oulu_root) == "oulu"


def test_oulu_frames_zero_keeps_every_frame(oulu_root):
    assert len(readers.scan_oulu(oulu_root, frames=0)) == 4 * 6 * 11


def test_oulu_folder_names_are_case_insensitive_with_synonyms(tmp_path):
    root = _oulu(str(tmp_path / "o"), subjects=("P001",), frames=1,
                 names=("anger", "DISGUST", "Fear", "happy", "Sad", "surprised"))
    assert sorted(r.label for r in readers.scan(root)) == [0, 1, 2, 3, 4, 5]


def test_unknown_expression_folder_is_an_error(oulu_root):
    _png(os.path.join(oulu_root, "P002", "Neutral", "0.png"))
    with pytest.raises(ValueError) as e:
        readers.scan(oulu_root)
    assert "Unknown expression folder(s)" in str(e.value)
    assert "['P002/Neutral']" in str(e.value)
    assert "['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise']" in str(e.value)
    assert len(readers.scan(oulu_root, ignore_folders=["neutral"])) == 72


def test_empty_dataset_is_an_error(tmp_path):
    os.makedirs(tmp_path / "P001" / "Anger")
    with pytest.raises(ValueError, match="No images found in"):
        readers.scan_oulu(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No folders found in"):
        readers.scan(str(empty))
    with pytest.raises(ValueError, match="Dataset root must be an existing directory"):
        load_split(str(tmp_path / "missing"))


def test_unrecognised_layout_is_an_error(tmp_path):
    _png(str(tmp_path / "cats" / "a.png"))
    with pytest.raises(ValueError) as e:
        readers.detect_layout(str(tmp_path))
    assert "Could not recognise the layout" in str(e.value) and "['cats']" in str(e.value)


def test_oulu_upper_folders_get_a_pointer_to_the_subject_level(tmp_path):
    for light in ("Dark", "Strong", "Weak"):
        _oulu(str(tmp_path / "VL" / light), subjects=("P001",), frames=1)
    with pytest.raises(ValueError) as e:
        readers.detect_layout(str(tmp_path / "VL"))
    assert "['Dark', 'Strong', 'Weak'], the upper levels of Oulu-CASIA" in str(e.value)
    assert len(readers.scan(str(tmp_path / "VL" / "Strong"))) == 6


def test_corrupt_and_non_image_files_are_skipped_with_one_warning(oulu_root):
    bad = os.path.join(oulu_root, "P001", "Anger", "99.jpeg")
    with open(bad, "wb") as f:
        f.write(b"this is not a jpeg")
    with open(os.path.join(oulu_root, "P001", "Anger", "notes.txt"), "w") as f:
        f.write("x")
    with open(os.path.join(oulu_root, "P001", "Anger", "Thumbs.db"), "w") as f:
        f.write("x")
    with pytest.warns(UnreadableImagesWarning) as caught:
        images, labels, subjects = load_split(oulu_root, split="all", image_size=8)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0] == f"Skipped 1 non-image file(s): {os.path.join('P001', 'Anger', 'notes.txt')}"
    assert messages[1].startswith("Skipped 1 unreadable image file(s): ")
    assert "99.jpeg" in messages[1]
    # The corrupt file was one of P001/Anger's last three frames: the other two remain.
    assert images.shape == (71, 8, 8, 3)
    assert ((labels == 0) & (subjects == "P001")).sum() == 2


def test_grayscale_rgba_and_odd_sizes_are_converted(tmp_path):
    root = tmp_path / "g"
    _png(str(root / "happy" / "S1_a.png"), value=200, size=(37, 23), mode="L")
    _png(str(root / "happy" / "S2_a.png"), value=100, size=(10, 10), mode="RGBA")
    _png(str(root / "sad" / "S1_b.png"), value=50, size=(64, 64))
    images, labels, subjects = load_split(str(root), split="all", image_size=16)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [3, 3, 4] and subjects.tolist() == ["S1", "S2", "S1"]
    assert (images[0] == 200).all() and (images[1] == 100).all()


def test_generic_layout_subject_from_pattern_and_manifest(tmp_path):
    root = tmp_path / "generic"
    for i, (expr, name) in enumerate([("anger", "S005_001_0011.png"),
                                      ("fear", "S005-2.png"), ("fear", "S010 x.png")]):
        _png(str(root / expr / name), value=i)
    assert readers.detect_layout(str(root)) == "generic"
    records = readers.scan(str(root))
    assert [(r.label, r.subject) for r in records] == [(0, "S005"), (2, "S005"), (2, "S010")]
    records = readers.scan(str(root), subject_pattern=r"S(?P<subject>\d+)")
    assert [r.subject for r in records] == ["005", "005", "010"]
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject"])
        w.writerows([["anger/S005_001_0011.png", "alice"], ["fear/S005-2.png", "bob"],
                     ["fear/S010 x.png", "bob"]])
    records = readers.scan(str(root), manifest=str(manifest))
    assert [r.subject for r in records] == ["alice", "bob", "bob"]


def test_generic_layout_file_without_subject_is_an_error(tmp_path):
    _png(str(tmp_path / "anger" / "_x.png"))
    with pytest.raises(ValueError, match=r"No subject id for 1 file\(s\)"):
        readers.scan(str(tmp_path), subject_pattern=r"^(?P<subject>[A-Z]\d+)")


def test_split_is_by_subject_and_matches_exprgan_for_80_subjects():
    subjects = [f"P{i:03d}" for i in range(80, 0, -1)] * 2
    train, test = readers.split_subjects(subjects)
    assert train == [f"P{i:03d}" for i in range(1, 73)]
    assert test == [f"P{i:03d}" for i in range(73, 81)]
    train, test = readers.split_subjects(["b", "a", "c"], test_subjects=["a"])
    assert (train, test) == (["b", "c"], ["a"])
    with pytest.raises(ValueError, match=r"test_subjects not found in the data: \['z'\]"):
        readers.split_subjects(["a"], test_subjects=["z"])


def test_split_sets_are_disjoint_on_disk(oulu_root):
    _, _, train_s = load_split(oulu_root, "train", image_size=8)
    _, _, test_s = load_split(oulu_root, "test", image_size=8)
    assert set(train_s) == {"P001", "P002", "P003"} and set(test_s) == {"P004"}
    assert len(train_s) == 54 and len(test_s) == 18


def test_split_with_no_subjects_is_an_error(tmp_path):
    root = _oulu(str(tmp_path / "one"), subjects=("P001",), frames=1)
    with pytest.raises(ValueError) as e:
        load_split(root, "train", image_size=8)
    assert str(e.value).startswith("The 'train' split has no subjects: found 1 subject(s) "
                                   "['P001']")
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'all'. "
                                         "Received: split='val'"):
        load_split(root, "val")


def test_builtin_load_split_counts_and_disjoint_subjects():
    kw = dict(image_size=16, num_subjects=10, seed=3)
    x_tr, y_tr, s_tr = load_split(None, "train", **kw)
    x_te, y_te, s_te = load_split(None, "test", **kw)
    assert x_tr.shape == (9 * 18, 16, 16, 3) and x_te.shape == (18, 16, 16, 3)
    assert y_tr.dtype == np.int32 and np.bincount(y_tr).tolist() == [27] * 6
    assert set(s_te) == {"P010"} and "P010" not in set(s_tr)
    again, _, _ = load_split(None, "test", **kw)
    assert again.tobytes() == x_te.tobytes()


def test_prepare_data_writes_oulu_layout_and_manifest(tmp_path):
    out = tmp_path / "faces"
    rows = builtin.write_builtin(str(out), size=16, num_subjects=3, seed=2)
    assert len(rows) == 3 * 6 * 3
    assert (out / "P001" / "Anger" / "000.png").is_file()
    assert (out / "P003" / "Surprise" / "002.png").is_file()
    with open(out / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert tuple(manifest[0]) == builtin.MANIFEST_COLUMNS
    assert manifest[0] == dict(path="P001/Anger/000.png", subject="P001", expression="Anger",
                               label="0", frame="0", intensity="0.8",
                               lighting=manifest[0]["lighting"], jitter_seed="0",
                               split="train")
    assert {r["split"] for r in manifest if r["subject"] == "P003"} == {"test"}
    # Reading the folder back gives exactly the in-memory set (PNG is lossless).
    disk = load_split(str(out), "all", image_size=16)
    memory = load_split(None, "all", image_size=16, num_subjects=3, seed=2)
    assert disk[0].tobytes() == memory[0].tobytes()
    assert disk[1].tolist() == memory[1].tolist() and disk[2].tolist() == memory[2].tolist()
    with pytest.raises(ValueError, match="is not empty; pass overwrite=True"):
        builtin.write_builtin(str(out), size=16, num_subjects=3)


def test_prepare_data_script_main(tmp_path, capsys):
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "prepare_data.py")
    spec = importlib.util.spec_from_file_location("prepare_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "d"), "--size", "8", "--num-subjects", "2",
                        "--frames", "1", "--lighting", "dark", "--no-jitter"]) == 0
    out = capsys.readouterr().out
    assert "Wrote 12 images" in out and "test: 6 images, subjects P002-P002" in out
    assert module.main(["--out", str(tmp_path / "d"), "--size", "8"]) == 2


class _FakeDetector:
    def __init__(self, faces):
        self.faces = faces

    def detect_faces(self, image):
        return self.faces


def test_face_cropper_crops_square_around_best_face():
    image = np.zeros((100, 80, 3), np.uint8)
    image[40:60, 30:50] = 255
    crop = FaceCropper(margin=0.5, detector=_FakeDetector([
        {"box": [30, 40, 20, 20], "confidence": 0.99},
        {"box": [0, 0, 5, 5], "confidence": 0.95}]))
    out = crop(image)
    assert out.shape == (40, 40, 3)
    assert (out[10:30, 10:30] == 255).all() and out[:10].max() == 0


def test_face_cropper_pads_at_borders_and_handles_missing_faces():
    image = np.arange(30 * 30, dtype=np.uint8).reshape(30, 30)
    crop = FaceCropper(margin=0.0, detector=_FakeDetector([{"box": [-5, 20, 20, 20],
                                                            "confidence": 1.0}]))
    assert crop(image).shape == (20, 20, 3)
    keep = FaceCropper(detector=_FakeDetector([{"box": [0, 0, 9, 9], "confidence": 0.1}]))
    assert keep(image).shape == (30, 30, 3) and keep.num_missing == 1
    skip = FaceCropper(on_missing="skip", detector=_FakeDetector([]))
    with pytest.raises(FaceNotFoundError, match="No face found in the image"):
        skip(image)


def test_read_images_reports_images_without_a_face(tmp_path):
    _png(str(tmp_path / "a.png"))
    records = [readers.Record(str(tmp_path / "a.png"), 0, "S1")]
    cropper = FaceCropper(detector=_FakeDetector([]))
    with pytest.warns(UnreadableImagesWarning, match=r"No face found in 1 of 1 image\(s\)"):
        images, kept = readers.read_images(records, 8, cropper)
    assert images.shape == (1, 8, 8, 3)


@pytest.mark.slow
def test_mtcnn_finds_a_face_in_a_rendered_face():
    pytest.importorskip("mtcnn")
    from exprgan_tf.data.faces import FaceSet
    image = FaceSet(seed=0).render(4, "happiness", 1.0, "strong", 128, jitter_seed=1)
    cropper = FaceCropper(min_confidence=0.9)
    top, left, side = cropper.box(image)
    assert 60 < side < 160 and abs(top + side / 2 - 64) < 20 and abs(left + side / 2 - 64) < 20
    assert cropper(image).shape == (side, side, 3)


def _gray16(path, values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint16)).save(path)
    return path


def test_16_bit_grayscale_is_scaled_to_8_bits_in_every_reader(tmp_path):
    # convert("RGB") clipped I;16 values to 255: the whole image came out white
    from exprgan_tf.photo import read_photo

    ramp = np.tile(np.array([0, 257 * 64, 257 * 128, 65535], np.uint16), (4, 1))
    path = _gray16(str(tmp_path / "ramp.png"), ramp)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # what Pillow makes of a 16-bit PNG
    expected = np.repeat(np.array([0, 64, 128, 255], np.uint8)[None, :, None], 4, 0)
    expected = np.repeat(expected, 3, -1)
    np.testing.assert_array_equal(readers.load_image(path), expected)
    np.testing.assert_array_equal(read_photo(path), expected)
    root = tmp_path / "set"
    _gray16(str(root / "happy" / "S1_a.png"), np.full((8, 8), 257 * 100))
    _png(str(root / "sad" / "S2_b.png"), value=50, size=(8, 8))
    images, _, _ = load_split(str(root), split="all", image_size=8)
    assert images[0].min() == images[0].max() == 100


def test_float_images_outside_0_1_are_refused_not_clipped(tmp_path):
    path = str(tmp_path / "f.tiff")
    Image.fromarray(np.full((4, 4), 7.5, np.float32)).save(path)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]; this one spans \[7.5, 7.5\]"):
        readers.load_image(path)
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(path)
    assert (readers.load_image(path) == 128).all()
