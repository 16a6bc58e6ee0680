"""The real FID path, ``--fid-weights FILE``, on a small InceptionV3 weights file made
here (random initialisation, saved with ``save_weights``): the file is really loaded,
a set against itself scores ~0 and two different sets more, and a missing or wrong
file stops with a clear error."""

import numpy as np
import pytest

from exprgan_tf.evaluation import fid

SIZE = 75   # InceptionV3's smallest input: ~16x cheaper than 299, same weights


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(SIZE, SIZE, 3))
    path = tmp_path_factory.mktemp("inception") / "inception_notop.weights.h5"
    model.save_weights(str(path))
    return str(path), model


def _faces(seed, offset, n=6):
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 120, (n, 32, 32, 3)) + offset, 0, 255).astype(np.uint8)


def test_fid_from_a_weights_file(weights_file):
    path, model = weights_file
    extractor = fid.inception_feature_extractor(path, download=False, input_size=SIZE)
    a, b = _faces(0, 0), _faces(1, 120)
    fa = fid.inception_features(extractor, a, batch_size=4)
    fb = fid.inception_features(extractor, b, batch_size=4)
    assert fa.shape == (6, fid.FEATURE_DIM) and np.isfinite(fa).all()
    # the file's weights, not a fresh random initialisation: the saved model itself
    # gives the same features on the same resized, rescaled faces
    import keras
    x = keras.layers.Resizing(SIZE, SIZE, interpolation="bilinear")(a.astype("float32"))
    np.testing.assert_allclose(fa, np.asarray(model(x / 127.5 - 1.0)), rtol=1e-4, atol=1e-6)
    same = fid.fid_from_features(fa, fa)
    different = fid.fid_from_features(fa, fb)
    assert abs(same) < 1e-9
    assert different > 1e-6 and different > 1e4 * abs(same)
    # symmetric, and the per-set statistics are what the distance is made of
    assert fid.fid_from_features(fb, fa) == pytest.approx(different, rel=1e-6)


def test_missing_or_wrong_weights_file_is_a_clear_error(tmp_path, weights_file):
    import keras

    with pytest.raises(fid.InceptionWeightsError, match="file not found") as e:
        fid.inception_feature_extractor(str(tmp_path / "none.weights.h5"), input_size=SIZE)
    assert "--no-fid" in str(e.value)
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an HDF5 file" * 10)
    with pytest.raises(fid.InceptionWeightsError,
                       match="garbage.weights.h5 does not load as InceptionV3") as e:
        fid.inception_feature_extractor(str(garbage), input_size=SIZE)
    assert fid.WEIGHTS_URL in str(e.value)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    other.save_weights(str(tmp_path / "dense.weights.h5"))
    with pytest.raises(fid.InceptionWeightsError, match="dense.weights.h5 does not load"):
        fid.inception_feature_extractor(str(tmp_path / "dense.weights.h5"), input_size=SIZE)


def test_table1_refuses_a_missing_fid_file_before_training(tmp_path, capsys):
    from helpers import load_benchmark

    table1 = load_benchmark("table1")
    code = table1.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
                        "--fid-weights", str(tmp_path / "none.h5")])
    err = capsys.readouterr().err
    assert code == 2
    assert "InceptionV3 weights file not found" in err and "--no-fid" in err
    assert not (tmp_path / "runs").exists()       # nothing trained, nothing created
