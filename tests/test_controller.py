import numpy as np
import pytest

import keras
from exprgan_tf.controller import (ExpressionCode, intensity_code, sample_latent_prior,
                                   sample_training_code)


def test_intensity_code_layout():
    c = intensity_code([2, 0], [0.25, 1.0]).numpy()
    assert c.shape == (2, 30)
    expected0 = np.full(30, -0.25, np.float32)
    expected0[10:15] = 0.25
    np.testing.assert_array_equal(c[0], expected0)
    assert (c[1, :5] == 1.0).all() and (c[1, 5:] == -1.0).all()
    np.testing.assert_array_equal(intensity_code([4], 0.0).numpy(), np.zeros((1, 30)))
    per_dim = intensity_code([1], [[0.1, 0.2, 0.3, 0.4, 0.5]]).numpy()[0]
    np.testing.assert_allclose(per_dim[5:10], [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(per_dim[25:30], [-0.1, -0.2, -0.3, -0.4, -0.5])


def test_intensity_code_errors():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 6\). Received: labels=\[6\]"):
        intensity_code([6], [0.5])
    with pytest.raises(ValueError, match=r"intensity must be in \[0, 1\]. Received: "
                                         r"intensity=\[1.5\]"):
        intensity_code([1], [1.5])


def test_training_sampler_follows_original():
    labels = np.array([0, 5, 3, 3])
    c = sample_training_code(labels, [3, 7]).numpy().reshape(4, 6, 5)
    for i, y in enumerate(labels):
        target = c[i, y]
        assert (target >= 0).all() and (target <= 1).all()
        for k in range(6):
            if k != y:
                np.testing.assert_array_equal(c[i, k], -target)
    onehot = np.eye(6, dtype="float32")[labels]
    again = sample_training_code(onehot, [3, 7]).numpy()
    np.testing.assert_array_equal(again.reshape(4, 6, 5), c)  # same seed -> same codes
    other = sample_training_code(onehot, [3, 8]).numpy()
    assert not np.allclose(other.reshape(4, 6, 5), c)
    z = sample_latent_prior([1, 2], 1000, 50).numpy()
    assert z.shape == (1000, 50) and z.min() >= -1 and z.max() <= 1
    assert abs(z.mean()) < 0.02


def test_expression_code_layer_matches_function(tmp_path):
    labels = keras.Input((), dtype="int32", name="expression")
    inten = keras.Input((), dtype="float32", name="intensity")
    model = keras.Model([labels, inten], ExpressionCode(name="ctrl")([labels, inten]))
    y = np.array([0, 3, 5], "int32")
    s = np.array([0.0, 0.5, 1.0], "float32")
    np.testing.assert_allclose(model([y, s]), intensity_code(y, s))
    path = tmp_path / "c.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded([y, s]), intensity_code(y, s))
    # out-of-range intensities are clipped inside graphs
    np.testing.assert_allclose(model([y, np.array([-1, 2, 0.5], "float32")]),
                               intensity_code(y, [0.0, 1.0, 0.5]))


def test_expression_code_scale_is_the_code_at_scale_times_s(tmp_path):
    y = np.array([0, 3, 5], "int32")
    s = np.array([0.0, 0.5, 1.0], "float32")
    layer = ExpressionCode(scale=0.75, name="ctrl")
    np.testing.assert_allclose(layer([y, s]), intensity_code(y, 0.75 * s), rtol=1e-6)
    # the clip comes first: 2 is 1, then scaled
    np.testing.assert_allclose(layer([y, np.full(3, 2.0, "float32")]),
                               intensity_code(y, np.full(3, 0.75)), rtol=1e-6)
    again = ExpressionCode.from_config(layer.get_config())
    assert again.scale == 0.75
    np.testing.assert_allclose(again([y, s]), layer([y, s]))

