"""Identity networks: shapes, golden parameter counts, layers, freezing, gradients of L_id,
serialisation and error messages. Random weights only; no network access."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from exprgan_tf import identity, losses
from exprgan_tf.config import IdentityConfig
from exprgan_tf.identity import dlib_resnet as dr
from exprgan_tf.identity import vgg_face as vf
from exprgan_tf.identity.dlib_dat import _Reader
from exprgan_tf.identity.layers import ChannelAffine, FaceNetInput, PaddedAdd


@pytest.fixture(scope="module")
def dlib_features():
    return identity.build_identity_features(IdentityConfig(network="dlib_resnet"),
                                            pretrained=False)


# --- layers ----------------------------------------------------------------------------

def test_face_net_input_maps_unit_range_to_normalised_pixels():
    layer = FaceNetInput(mean=(10.0, 20.0, 30.0), scale=0.5)
    x = np.array([-1.0, 0.0, 1.0], np.float32).reshape(1, 1, 1, 3)
    # pixels 0, 127.5, 255 minus (10, 20, 30), times 0.5
    np.testing.assert_allclose(layer(x).numpy().ravel(), [-5.0, 53.75, 112.5])
    with pytest.raises(ValueError, match="Received: mean="):
        FaceNetInput(mean=(1.0, 2.0))


def test_channel_affine():
    layer = ChannelAffine()
    layer.build((None, 1, 1, 2))
    layer.set_weights([np.array([2.0, 3.0]), np.array([1.0, -1.0])])
    y = layer(np.array([[[[1.0, 1.0]]]], np.float32))
    np.testing.assert_allclose(y.numpy().ravel(), [3.0, 2.0])


def test_padded_add_zero_pads_like_dlib_add_prev():
    a = np.ones((1, 2, 2, 2), np.float32)               # main path: smaller map, more channels
    b = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)  # shortcut
    y = PaddedAdd()([a, b]).numpy()
    assert y.shape == (1, 3, 3, 2)
    np.testing.assert_allclose(y[0, :, :, 0], [[1, 2, 2], [4, 5, 5], [6, 7, 8]])
    np.testing.assert_allclose(y[0, :, :, 1], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_dlib_integer_and_float_encoding():
    assert _Reader(b"\x02\x80\x12", "x").int() == 4736
    assert _Reader(b"\x81\x1c", "x").int() == -28
    # dlib writes 0.6 as mantissa 0x99999a, exponent -24
    assert _Reader(b"\x03\x9a\x99\x99\x81\x18", "x").float() == pytest.approx(0.6, abs=1e-7)


# --- dlib ResNet -----------------------------------------------------------------------

def test_dlib_resnet_structure_and_golden_param_count():
    model = dr.dlib_resnet()
    assert model.count_params() == dr.NUM_PARAMS == 5_614_592
    assert model.trainable_weights == []
    assert len([l for l in model.layers if isinstance(l, keras.layers.Conv2D)]) == 29
    assert model.get_layer("descriptor").kernel.shape == (256, 128)
    out = model(np.zeros((2, 48, 40, 3), np.float32))  # any input size
    assert out.shape == (2, 128)


def test_dlib_features_shapes(dlib_features):
    assert dlib_features.trainable_weights == []
    maps = dlib_features(np.zeros((2, 64, 64, 3), np.float32))
    assert [tuple(m.shape) for m in maps] == [
        (2, 35, 35, 32), (2, 17, 17, 64), (2, 8, 8, 128), (2, 4, 4, 256), (2, 1, 1, 128)]


def test_l_id_gradient_reaches_generated_image(dlib_features):
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (2, 64, 64, 3)), tf.float32)
    fake = tf.Variable(rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = losses.identity_loss(dlib_features, real, fake)
    grad = tape.gradient(loss, fake).numpy()
    assert float(loss) > 0
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_vgg_l_id_gradient_reaches_generated_image():
    base = vf.vgg_face(include_top=False, width_divisor=16)
    features = vf.vgg_face_features(base)
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)), tf.float32)
    fake = tf.Variable(rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = losses.identity_loss(features, real, fake)
    grad = tape.gradient(loss, fake).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_dlib_keras_round_trip(tmp_path):
    model = dr.dlib_resnet()
    rebuilt = keras.Model.from_config(model.get_config())
    assert [l.name for l in rebuilt.layers] == [l.name for l in model.layers]
    path = str(tmp_path / "dlib.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode: no Lambda layers
    x = np.random.default_rng(2).uniform(-1, 1, (1, 150, 150, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_dlib_weights_file_round_trip(tmp_path):
    model = dr.dlib_resnet()
    path = str(tmp_path / "dlib.weights.h5")
    dr.save_dlib_weights(model, path)
    other = identity.build_identity_descriptor(
        IdentityConfig(network="dlib_resnet", weights_path=path))
    x = np.random.default_rng(3).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(other(x).numpy(), model(x).numpy(), atol=1e-6)


# --- metric ----------------------------------------------------------------------------

def test_similarity_and_distance_values():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    np.testing.assert_allclose(identity.identity_similarity(a, b).numpy(), [0.0, 1.0],
                               atol=1e-6)
    np.testing.assert_allclose(identity.dlib_distance(a, b).numpy(),
                               [np.sqrt(5.0), np.sqrt(2.0)], rtol=1e-6)
    assert identity.same_person(a[1], a[1] + 0.1).numpy()
    assert not identity.same_person(a[0], b[0]).numpy()


# --- builder API and errors ------------------------------------------------------------

def test_none_network_builds_nothing():
    assert identity.build_identity_features(IdentityConfig(network="none")) is None
    with pytest.raises(ValueError, match="Received: network='none'"):
        identity.build_identity_descriptor(IdentityConfig(network="none"))


def test_missing_weights_error_names_path_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRGAN_TF_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        identity.build_identity_features(IdentityConfig(network="dlib_resnet"))
    assert str(tmp_path / "identity" / "dlib_resnet.weights.h5") in str(err.value)
    assert "python scripts/fetch_weights.py dlib_resnet" in str(err.value)
    with pytest.raises(FileNotFoundError, match="fetch_weights.py vgg_face --from"):
        identity.build_identity_features(
            IdentityConfig(network="vgg_face", weights_path=str(tmp_path / "no.mat")))


def test_unknown_layer_is_rejected():
    with pytest.raises(ValueError, match="Unknown dlib_resnet layer 'nope'"):
        identity.build_identity_features(IdentityConfig(network="dlib_resnet"),
                                         layers=("nope",), pretrained=False)


def test_custom_layers_are_selectable():
    features = identity.build_identity_features(
        IdentityConfig(network="dlib_resnet"), layers=("stage5_block1_add", "global_pool"),
        pretrained=False)
    maps = features(np.zeros((1, 150, 150, 3), np.float32))
    assert [tuple(m.shape) for m in maps] == [(1, 2, 2, 256), (1, 256)]
