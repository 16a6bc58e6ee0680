"""The frozen expression network behind ``losses.expression``."""

import numpy as np
import pytest

from exprgan_tf.evaluation.classifier import build_expression_classifier
from exprgan_tf.training.expression_features import expression_feature_model


def test_each_map_is_about_one_on_the_reference_faces():
    net = build_expression_classifier(32, filters=(4, 4, 4, 4), dense_units=8, seed=0)
    faces = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3)).astype("uint8")
    model = expression_feature_model(net, ("relu1", "dense"), faces)
    maps = model(faces.astype("float32") / 127.5 - 1.0)
    assert [tuple(m.shape) for m in maps] == [(6, 16, 16, 4), (6, 8)]
    np.testing.assert_allclose([float(np.mean(m)) for m in maps], [1.0, 1.0], rtol=1e-4)
    assert model.trainable_weights == []
    with pytest.raises(ValueError, match=r"layers must name layers of the expression "
                                         r"network .* Received: \['conv9'\]"):
        expression_feature_model(net, ("conv9",), faces)


def test_a_missing_network_file_is_named(tmp_path):
    from exprgan_tf.training.expression_features import build_expression_features

    faces = np.zeros((2, 32, 32, 3), "uint8")
    with pytest.raises(FileNotFoundError, match=r"training.expression_network='.*nope.keras'"
                                                r": no such file"):
        build_expression_features(str(tmp_path / "nope.keras"), tmp_path, 32, reference=faces)


def test_the_term_needs_a_network_and_the_paired_term():
    from exprgan_tf.config import get_preset

    preset = get_preset("proposed-small")
    with pytest.raises(ValueError, match=r"training.stage2.losses.expression=0.1: expected 0 "
                                         r"unless training.expression_network names"):
        preset.override(["training.stage2.losses.expression=0.1"])
    with pytest.raises(ValueError, match=r"training.stage3.losses.expression=0.1: expected 0 "
                                         r"unless training.stage3.losses.paired > 0"):
        preset.override(["training.expression_network=builtin",
                         "training.stage3.losses.paired=0",
                         "training.stage3.losses.expression=0.1"])
    ok = preset.override(["training.expression_network=builtin",
                          "training.stage3.losses.expression=0.1"])
    assert ok.training.stage3.losses.expression == 0.1


def test_builtin_takes_the_network_already_in_the_run_directory(tmp_path):
    """A resumed run (or stage 3) loads the run's own network instead of training one,
    and normalises its maps on the faces it is given."""
    from exprgan_tf.evaluation.classifier import save_classifier
    from exprgan_tf.training.expression_features import FILE_NAME, build_expression_features

    net = build_expression_classifier(32, filters=(4, 4, 4, 4), dense_units=8, seed=2)
    save_classifier(net, str(tmp_path / FILE_NAME))
    faces = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3)).astype("uint8")
    lines = []
    model = build_expression_features("builtin", tmp_path, 32, reference=faces,
                                      log=lines.append)
    maps = model(faces.astype("float32") / 127.5 - 1.0)
    np.testing.assert_allclose(float(np.mean(maps)), 1.0, rtol=1e-4)
    assert lines == ["L_expr_pair: the paired decode against its partner in the builtin "
                     "expression network's layers ['dense']."]


def test_the_grey_network_reads_a_face_and_its_grey_copy_alike():
    net = build_expression_classifier(32, filters=(4, 4, 4, 4), dense_units=8, seed=0)
    faces = np.random.default_rng(4).integers(0, 256, (6, 32, 32, 3)).astype("uint8")
    x = faces.astype("float32") / 127.5 - 1.0
    luma = faces.astype("float32") @ np.array([0.299, 0.587, 0.114], "float32")
    x_grey = np.repeat(luma[..., None], 3, -1) / 127.5 - 1.0
    colour = expression_feature_model(net, ("dense",), faces)
    grey = expression_feature_model(net, ("dense",), faces, grey=True)
    np.testing.assert_allclose(grey(x), grey(x_grey), rtol=1e-4, atol=1e-5)
    assert np.abs(colour(x) - colour(x_grey)).mean() > 0.01   # colour shows the tint
    np.testing.assert_allclose(float(np.mean(grey(x))), 1.0, rtol=1e-2)   # greyed reference


def test_builtin_grey_trains_its_own_network_on_grey_faces(tmp_path, monkeypatch):
    from exprgan_tf.evaluation import classifier
    from exprgan_tf.training import expression_features as ef

    faces = np.random.default_rng(5).integers(0, 256, (12, 32, 32, 3)).astype("uint8")
    shown = []

    def train_judge(images, labels, **kwargs):
        shown.append(images)
        kwargs.update(epochs=1, filters=(4, 4, 4, 4), dense_units=8)
        return real_train_judge(images, labels, **kwargs)

    real_train_judge = classifier.train_judge
    monkeypatch.setattr(classifier, "judge_training_faces",
                        lambda size: (faces, np.arange(12) % 6))
    monkeypatch.setattr(classifier, "train_judge", train_judge)
    lines = []
    ef.build_expression_features("builtin-grey", tmp_path, 32, log=lines.append)
    assert (tmp_path / "expression_network_grey.keras").is_file()
    assert not (tmp_path / ef.FILE_NAME).exists()
    assert len(shown) == 1 and (shown[0] == shown[0][..., :1]).all()
    assert (shown[0][..., 0] != faces[..., 0]).any()
    assert lines[0].startswith("Training the expression network for L_expr_pair (12 "
                               "training faces, in grey, ")
    assert lines[-1] == ("L_expr_pair: the paired decode against its partner in the "
                         "builtin-grey expression network's layers ['dense'].")
