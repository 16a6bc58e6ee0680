"""Evaluation building blocks against known answers: the Fig. 4 classifier's architecture,
eigenface recognition, the Fréchet distance, the table writer, the FID weights error."""

import os

import numpy as np
import pytest
from scipy import linalg

from exprgan_tf.evaluation import eigenfaces, fid, scores, table


# --- classifier -------------------------------------------------------------------------

def test_classifier_layers_and_parameter_count():
    from exprgan_tf.evaluation.classifier import build_expression_classifier

    model = build_expression_classifier(64)
    assert [layer.name for layer in model.layers] == [
        "image", "rescale",
        "conv0", "bn0", "relu0", "pool0", "conv1", "bn1", "relu1", "pool1",
        "conv2", "bn2", "relu2", "pool2", "conv3", "bn3", "relu3", "pool3",
        "flatten", "dropout0", "dense", "dropout", "probs"]
    # by hand, 64x64x3 input:
    convs = 3 * 3 * 3 * 32 + 3 * 3 * 32 * 64 + 3 * 3 * 64 * 128 + 3 * 3 * 128 * 128  # no bias
    bns = 4 * (32 + 64 + 128 + 128)                    # gamma, beta, moving mean, var
    flat = 4 * 4 * 128                                 # 64 / 2**4 = 4
    dense = flat * 128 + 128
    probs = 128 * 6 + 6
    assert convs + bns + dense + probs == 504934
    assert model.count_params() == 504934
    assert model.output_shape == (None, 6)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4, rel=1e-6)
    assert model.get_layer("probs").activation.__name__ == "softmax"


def test_classifier_rejects_sizes_the_pools_cannot_halve():
    from exprgan_tf.evaluation.classifier import build_expression_classifier

    with pytest.raises(ValueError, match="divisible by 2\\*\\*4"):
        build_expression_classifier(40)


def test_classifier_trains_saves_and_loads(tmp_path):
    from exprgan_tf.evaluation import classifier

    rng = np.random.default_rng(0)
    labels = np.arange(48) % 6
    # class k = a bright square in a class-specific place: learnable in a few epochs
    images = rng.integers(0, 40, (48, 16, 16, 3)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 3)
        images[i, r * 8:r * 8 + 6, c * 5:c * 5 + 5] = 250
    path = str(tmp_path / "clf.keras")
    model = classifier.train_expression_classifier(images, labels, epochs=25, batch_size=16,
                                                   verbose=0, save_path=path)
    loaded = classifier.load_classifier(path)
    np.testing.assert_allclose(loaded.predict(images.astype("float32"), verbose=0),
                               model.predict(images.astype("float32"), verbose=0), atol=1e-6)
    assert classifier.accuracy(loaded, images, labels) >= 0.9     # chance: 1/6
    with pytest.raises(FileNotFoundError, match="No classifier"):
        classifier.load_classifier(str(tmp_path / "missing.keras"))


def test_batch_norm_recalibration_sets_the_data_statistics():
    import keras

    from exprgan_tf.evaluation import classifier

    model = classifier.build_expression_classifier(16, seed=0)
    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3)).astype(np.uint8)
    classifier.recalibrate_batch_norm(model, images, batch_size=8)   # one chunk: exact
    conv0 = keras.Model(model.input, model.get_layer("conv0").output)
    act = np.asarray(conv0(images.astype("float32")))
    bn0 = model.get_layer("bn0")
    np.testing.assert_allclose(bn0.moving_mean.numpy(), act.mean((0, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(bn0.moving_variance.numpy(), act.var((0, 1, 2)), rtol=1e-3,
                               atol=1e-5)
    assert bn0.momentum == 0.99                                       # restored


# --- eigenfaces -------------------------------------------------------------------------

def test_eigenfaces_one_component_misses_what_two_components_see():
    # Class 0 at x1 = -1, class 1 at x1 = +1; x2 is a large nuisance (variance 26 vs 1)
    # with class means +1 / -1. The first eigenface is (almost) the x2 axis: along it the
    # probes at x2 = -0.5 (class 0) and +0.5 (class 1) are nearer the other class's mean
    # (x2 = -1 / +1). With both eigenfaces (plain Euclidean distance) all four are right.
    gallery = np.array([[-1, 6], [-1, -4], [1, 4], [1, -6]], float)
    probes = np.array([[-1, 0.5], [1, -0.5], [-1, -0.5], [1, 0.5]])
    r = eigenfaces.eigenface_accuracy(gallery, [0, 0, 1, 1], probes, [0, 1, 0, 1],
                                      standardize=False)
    assert r.accuracies == [0.5, 1.0]
    assert (r.best_accuracy, r.best_components) == (1.0, 2)
    assert r.predictions == [0, 1, 0, 1]


def test_eigenfaces_recognise_noisy_copies_of_six_persons():
    rng = np.random.default_rng(0)
    persons = rng.normal(0, 1, (6, 20, 20))                   # six "faces"
    gallery = np.repeat(persons, 3, 0) + rng.normal(0, 0.05, (18, 20, 20))
    probes = np.repeat(persons, 6, 0) + rng.normal(0, 0.05, (36, 20, 20))   # 6 x 6
    r = eigenfaces.eigenface_accuracy(gallery, np.repeat(np.arange(6), 3), probes,
                                      np.repeat(np.arange(6), 6))
    assert len(r.accuracies) == 17                            # N - 1 = 17 eigenfaces
    assert r.best_accuracy == 1.0
    assert r.accuracies[r.best_components - 1] == 1.0
    assert all(a < 1.0 for a in r.accuracies[:r.best_components - 1])
    assert r.best_components <= 5                              # 6 classes span 5 dims


def test_eigenfaces_max_components_and_bad_input():
    gallery = np.eye(5)
    r = eigenfaces.eigenface_accuracy(gallery, [0, 1, 2, 3, 4], gallery, [0, 1, 2, 3, 4],
                                      max_components=2, standardize=False)
    assert len(r.accuracies) == 2
    with pytest.raises(ValueError, match="same length"):
        eigenfaces.eigenface_accuracy(gallery, [0, 1], gallery, [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="no variance"):
        eigenfaces.eigenface_accuracy(np.ones((3, 4)), [0, 1, 2], np.ones((1, 4)), [0],
                                      standardize=False)


# --- Fréchet distance -------------------------------------------------------------------

def test_frechet_distance_of_identical_sets_is_zero():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 8))
    mu, cov = fid.gaussian_stats(feats)
    assert abs(fid.frechet_distance(mu, cov, mu, cov)) < 1e-8
    assert abs(fid.fid_from_features(feats, feats)) < 1e-8


def test_frechet_distance_diagonal_closed_form():
    # d^2 = |mu1 - mu2|^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i))
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 + 4 - 4) + (4 + 1 - 4) + 0      # = 7
    assert fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(7.0,
                                                                                     abs=1e-9)
    assert expected == 7


def test_frechet_distance_non_diagonal_closed_form():
    # Same covariance S (non-diagonal): the trace term is Tr(2S - 2S) = 0.
    S = np.array([[2.0, 0.8], [0.8, 1.0]])
    assert fid.frechet_distance([0, 0], S, [3, 4], S) == pytest.approx(25.0, abs=1e-9)
    # Commuting covariances S and 4S: Tr(S + 4S - 2*2S) = Tr(S) = 3.
    assert fid.frechet_distance([1, 1], S, [1, 1], 4 * S) == pytest.approx(3.0, abs=1e-9)
    # A rotated pair: S1 = R diag(1, 9) R^T, S2 = I -> Tr(S1) + 2 - 2 Tr(S1^(1/2)) =
    # 10 + 2 - 2 (1 + 3) = 4, plus |mu|^2 = 2.
    c, s = np.cos(0.3), np.sin(0.3)
    R = np.array([[c, -s], [s, c]])
    S1 = R @ np.diag([1.0, 9.0]) @ R.T
    assert fid.frechet_distance([1, 1], S1, [0, 0], np.eye(2)) == pytest.approx(6.0, abs=1e-9)
    # General case against the definition with scipy's sqrtm.
    A = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.5]])
    B = np.array([[2.0, -0.4, 0.2], [-0.4, 1.0, 0.0], [0.2, 0.0, 0.7]])
    ref = 1.0 + np.trace(A + B - 2 * linalg.sqrtm(A @ B).real)
    assert fid.frechet_distance([1, 0, 0], A, [0, 0, 0], B) == pytest.approx(ref, abs=1e-9)


def test_frechet_distance_singular_covariances_and_shapes():
    # fewer samples than dimensions: singular covariances still give a finite distance
    rng = np.random.default_rng(1)
    d = fid.fid_from_features(rng.normal(size=(5, 16)), rng.normal(size=(5, 16)) + 1)
    assert np.isfinite(d) and d > 0
    with pytest.raises(ValueError, match="same D"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_from_features_low_rank_path_equals_the_matrix_square_root():
    # fewer samples than dimensions: the trace term comes from the singular values of an
    # N1 x N2 matrix; it must equal Tr(sqrtm(S1 S2)) (up to the eps the sqrtm path adds)
    rng = np.random.default_rng(2)
    for n1, n2, d in ((5, 7, 16), (12, 9, 64), (3, 30, 16)):
        a, b = rng.normal(size=(n1, d)), 1.5 * rng.normal(size=(n2, d)) + 0.3
        ref = fid.frechet_distance(*fid.gaussian_stats(a), *fid.gaussian_stats(b))
        assert fid.fid_from_features(a, b) == pytest.approx(ref, rel=1e-6)
        assert fid.fid_from_features(b, a) == pytest.approx(ref, rel=1e-6)
        assert abs(fid.fid_from_features(a, a)) < 1e-9
    # N >= D takes the matrix path; in D = 1 it is |mu1 - mu2|^2 + (s1 - s2)^2
    assert fid.fid_from_features([[0.0], [2.0]], [[5.0], [9.0]]) == pytest.approx(
        (1 - 7) ** 2 + (np.sqrt(2) - np.sqrt(8)) ** 2)
    with pytest.raises(ValueError, match="same D"):
        fid.fid_from_features(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="N >= 2"):
        fid.fid_from_features(np.zeros((1, 4)), np.zeros((3, 4)))


def test_fid_without_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
    with pytest.raises(fid.InceptionWeightsError) as e:
        fid.inception_feature_extractor("imagenet", download=False)
    msg = str(e.value)
    assert fid.WEIGHTS_URL in msg and "--fid-weights FILE" in msg and "--no-fid" in msg
    assert os.path.join(str(tmp_path), "models", fid.WEIGHTS_FILE) in msg
    with pytest.raises(fid.InceptionWeightsError, match="not found: /nope.h5"):
        fid.inception_feature_extractor("/nope.h5")


def test_fid_weights_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
    assert fid.resolve_inception_weights("random") is None
    cached = tmp_path / "models" / fid.WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    assert fid.resolve_inception_weights("imagenet", download=False) == str(cached)
    other = tmp_path / "mine.h5"
    other.write_bytes(b"x")
    monkeypatch.setenv(fid.WEIGHTS_ENV, str(other))
    assert fid.resolve_inception_weights("imagenet", download=False) == str(other)


@pytest.mark.slow
def test_inception_features_random_weights_shape_and_fid():
    extractor = fid.inception_feature_extractor("random")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 32, 32, 3)).astype(np.uint8)
    feats = fid.inception_features(extractor, images, batch_size=2)
    assert feats.shape == (3, fid.FEATURE_DIM)
    assert np.isfinite(feats).all()
    assert abs(fid.fid_from_features(feats, feats)) < 1e-6


# --- scores -----------------------------------------------------------------------------

def test_ground_truth_and_intensity_scores():
    a = np.zeros((2, 16, 16, 3), np.uint8)
    b = np.full((2, 16, 16, 3), 51, np.uint8)
    s = scores.ground_truth_scores(a, b, inputs=b)
    assert s["l1"] == pytest.approx(0.2)
    assert s["l1_input"] == 0.0 and s["ssim_input"] == pytest.approx(1.0)
    assert s["ssim"] < 0.1
    # ladder of flat images at grey levels 0, 25.5, ... 255: nearest grey level wins
    lad = np.stack([np.full((16, 16, 3), round(t * 255), np.uint8)
                    for t in scores.INTENSITY_LADDER])
    gen = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (0, 130, 240)])
    t_hat = scores.estimate_intensity(gen, np.stack([lad] * 3))
    np.testing.assert_allclose(t_hat, [0.0, 0.5, 0.9])
    r = scores.intensity_scores([0.0, 0.5, 1.0], t_hat)
    assert r["mae"] == pytest.approx(0.1 / 3)
    assert r["corr"] == pytest.approx(np.corrcoef([0, 0.5, 1], [0, 0.5, 0.9])[0, 1])
    assert scores.intensity_scores([0.5, 0.5], [0.1, 0.9])["corr"] is None


def test_estimate_intensity_blur_and_shift_read_a_stroke_a_pixel_off():
    # a ladder of one dark stroke (rows 7-8) whose depth is t x 100 on grey 150
    lad = np.full((11, 16, 16, 3), 150.0)
    for k, t in enumerate(scores.INTENSITY_LADDER):
        lad[k, 7:9, 4:12] -= 100 * t
    lad = lad.astype(np.uint8)[None]
    low = np.full((1, 16, 16, 3), 150, np.uint8)
    low[0, 8:10, 4:12] = 50                        # the full stroke, one pixel lower
    # exact pixels: every ladder face is equally far (the stroke's shared row gains what
    # its other row loses), so the first, neutral, wins
    assert scores.estimate_intensity(low, lad)[0] == 0.0
    assert scores.estimate_intensity(low, lad, max_shift=1)[0] == 1.0
    assert scores.estimate_intensity(low, lad, blur=1.0)[0] == 0.5   # half overlaps
    half = np.full((1, 16, 16, 3), 150, np.uint8)
    half[0, 8:10, 4:12] = 100                      # half the depth, one pixel lower
    assert scores.estimate_intensity(half, lad, **scores.TOLERANT_READING)[0] == 0.5
    with pytest.raises(ValueError, match="blur must be >= 0 and max_shift an integer >= 0"):
        scores.estimate_intensity(low, lad, max_shift=-1)


# --- table ------------------------------------------------------------------------------

ROWS = [table.Row("CNN Expression Classifier", "Accuracy", [0.91, 0.94, 0.97], "{:.1%}",
                  "higher"),
        table.Row("PCA eigenfaces", "Eigenfaces to reach it", [10, 14, 10], "{:d}", "lower"),
        table.Row("FID", "FID score", [91.32, 84.734, None], "{:.2f}", "lower"),
        table.Row("Note", "text | cell", ["a", "b", "c"])]
COLUMNS = ["ExprGAN", "Proposed without unsharp masking", "Proposed"]


def test_markdown_table_exact():
    assert table.markdown_table(COLUMNS, ROWS) == (
        "| - | Metric | ExprGAN | Proposed without unsharp masking | Proposed |\n"
        "|---|---|---|---|---|\n"
        "| CNN Expression Classifier | Accuracy (↑) | 91.0% | 94.0% | 97.0% |\n"
        "| PCA eigenfaces | Eigenfaces to reach it (↓) | 10 | 14 | 10 |\n"
        "| FID | FID score (↓) | 91.32 | 84.73 | n/a |\n"
        "| Note | text \\| cell | a | b | c |")


def test_csv_table_exact_and_files(tmp_path):
    assert table.csv_table(COLUMNS, ROWS) == (
        "group,metric,ExprGAN,Proposed without unsharp masking,Proposed\n"
        "CNN Expression Classifier,Accuracy,0.91,0.94,0.97\n"
        "PCA eigenfaces,Eigenfaces to reach it,10,14,10\n"
        "FID,FID score,91.32,84.734,\n"
        "Note,text | cell,a,b,c\n")
    paths = table.write_table(COLUMNS, ROWS, tmp_path / "t1", title="T", notes=["n1"])
    md = open(paths["markdown"], encoding="utf-8").read()
    assert md == "# T\n\n" + table.markdown_table(COLUMNS, ROWS) + "\n\n- n1\n"
    assert open(paths["csv"], encoding="utf-8").read() == table.csv_table(COLUMNS, ROWS)


def test_table_rejects_rows_of_the_wrong_width():
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        table.markdown_table(COLUMNS, [table.Row("a", "b", [1, 2])])
