"""Each loss pinned to a value worked out by hand on small fixed tensors."""

import math

import numpy as np
import pytest
import tensorflow as tf

from exprgan_tf import losses


def test_pixel_loss():
    real = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    fake = np.array([[1.0, 1.0], [0.0, 3.0]]).reshape(1, 2, 2, 1)
    assert float(losses.pixel_loss(real, fake)) == pytest.approx(0.75)  # (1+0+2+0)/4


def test_identity_feature_loss_normalises_by_map_area():
    real = [np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1), np.array([[1.0, 1.0, 1.0]])]
    fake = [np.zeros((1, 2, 2, 1)), np.array([[0.0, 0.0, 4.0]])]
    # map: mean |.| = 2.5, / (2*2) = 0.625; vector: mean(1, 1, 3) = 5/3, area 1
    assert float(losses.identity_feature_loss(real, fake)) == pytest.approx(0.625 + 5 / 3)
    assert float(losses.identity_feature_loss(real, fake, [2.0, 0.5])) == \
        pytest.approx(2 * 0.625 + 0.5 * 5 / 3)
    with pytest.raises(ValueError, match="one weight per feature map"):
        losses.identity_feature_loss(real, fake, [1.0])


def test_identity_loss_with_extractor_and_gradient():
    def extractor(images):  # two "layers": the image and its 2x2 average pool
        return [images, tf.nn.avg_pool2d(images, 2, 2, "VALID")]
    real = tf.zeros((2, 4, 4, 3))
    fake = tf.Variable(tf.fill((2, 4, 4, 3), 0.5))
    with tf.GradientTape() as tape:
        loss = losses.identity_loss(extractor, real, fake)
    # 0.5 / 16 + 0.5 / 4
    assert float(loss) == pytest.approx(0.5 / 16 + 0.5 / 4)
    grad = tape.gradient(loss, fake)
    assert np.isfinite(grad.numpy()).all() and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_q_loss_sums_classes_and_averages_batch():
    pred = np.array([[1.0, 0.0, 0.0, 0.0]])
    code = np.array([[0.0, 0.0, 0.0, 2.0]])
    # class 0: (1 + 0) / 2 = 0.5; class 1: (0 + 4) / 2 = 2
    assert float(losses.q_loss(pred, code, num_classes=2)) == pytest.approx(2.5)
    both = losses.q_loss(np.concatenate([pred, code]), np.concatenate([code, code]), 2)
    assert float(both) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="multiple of num_classes=6"):
        losses.q_loss(np.zeros((1, 4)), np.zeros((1, 4)))


def test_adversarial_losses():
    ln2 = math.log(2.0)
    assert float(losses.discriminator_loss([[0.0]], [[0.0]])) == pytest.approx(2 * ln2)
    # BCE(2, 1) = log(1 + e^-2); BCE(-1, 0) = log(1 + e^-1)
    assert float(losses.discriminator_loss([[2.0]], [[-1.0]])) == \
        pytest.approx(math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)), rel=1e-6)
    assert float(losses.generator_loss([[0.0], [2.0]])) == \
        pytest.approx((ln2 + math.log1p(math.exp(-2))) / 2, rel=1e-6)


def test_adversarial_losses_weight_faces():
    """With ``weights``, each face's BCE (its logits' mean) is weighted over the faces: a
    0 leaves a face out, and no face at all gives 0, not NaN."""
    logits = [[0.3, 0.5], [-1.0, -1.0], [2.0, 4.0]]
    bce = [np.mean(np.log1p(np.exp(-np.asarray(row)))) for row in logits]  # target 1
    assert float(losses.real_loss(logits, [1.0, 0.0, 1.0])) == \
        pytest.approx((bce[0] + bce[2]) / 2, rel=1e-6)
    assert float(losses.generator_loss(logits, [2.0, 1.0, 1.0])) == \
        pytest.approx((2 * bce[0] + bce[1] + bce[2]) / 4, rel=1e-6)
    assert float(losses.real_loss(logits, [1.0, 1.0, 1.0])) == \
        pytest.approx(float(losses.real_loss(logits)), rel=1e-6)
    assert float(losses.fake_loss(logits, [0.0, 0.0, 0.0])) == 0.0


def test_total_variation():
    img = np.array([[0.0, 1.0, 3.0], [1.0, 1.0, 1.0]]).reshape(1, 2, 3, 1)
    # dy = (1, 0, -2): sum sq 5 -> l2 2.5 / H=2; dx = (1, 2, 0, 0): 5 -> 2.5 / W=3
    expected = 2.5 / 2 + 2.5 / 3
    assert float(losses.total_variation(img)) == pytest.approx(expected)
    assert float(losses.total_variation(np.concatenate([img, img]))) == pytest.approx(expected)
