"""Every ExprGAN loss as a pure function of tensors, with the original's normalisations.

Each returns a float32 scalar averaged over the batch it is given. Under a
``tf.distribute`` strategy every replica sees its share of the batch; the training
step divides the per-replica losses by the number of replicas (see the trainer).

====================  ==========================================================
function              formula
====================  ==========================================================
``pixel_loss``        mean |x - G|
``identity_loss``     sum_l beta_l * mean|phi_l(x) - phi_l(G)| / (h_l * w_l)
``q_loss``            sum over classes of mean (Q_k - c_k)^2   (L_Q)
``real_loss``         mean BCE(logits, 1)
``fake_loss``         mean BCE(logits, 0)
``discriminator_loss`` real_loss(real) + fake_loss(fake)        (D_img, D_z)
``generator_loss``    mean BCE(fake, 1)                        (G_img, E_z)
``total_variation``   (sum dy^2 / 2 / H + sum dx^2 / 2 / W) / N
====================  ==========================================================

BCE is the sigmoid cross-entropy on logits. ``h_l * w_l`` is the spatial size of
layer ``l``'s feature map (the original divides conv1_2 by 224*224, ..., conv5_2 by
14*14).

Example:
    >>> import numpy as np
    >>> from exprgan_tf import losses
    >>> float(losses.pixel_loss(np.zeros((1, 2, 2, 1)), np.ones((1, 2, 2, 1))))
    1.0
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf


def _f32(x):
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def pixel_loss(real, fake, weights=None) -> tf.Tensor:
    """L1 reconstruction loss ``mean |real - fake|``, or ``mean(weights * |real - fake|)``
    with per-pixel ``weights`` that broadcast against the images (e.g. ``[H, W, 1]``)."""
    diff = tf.abs(_f32(real) - _f32(fake))
    if weights is not None:
        diff = diff * _f32(weights)
    return tf.reduce_mean(diff)


def change_weights(changes, k) -> tf.Tensor:
    """Per-pixel L1 weights ``(1 + k * m) / (1 + k * mean(m))`` of ``changes`` ``m``
    (``[N, H, W, 1]`` in {0, 1}, one map per image: ``training.pair_change``), so each
    image's mean weight is 1 and its ``m = 1`` pixels weigh ``1 + k`` times the others.

    Example:
        >>> import numpy as np
        >>> m = np.zeros((1, 1, 4, 1), "float32"); m[0, 0, 0] = 1   # one of 4 pixels
        >>> [round(float(w), 4) for w in change_weights(m, 3.0).numpy().ravel()]  # 16/7, 4/7
        [2.2857, 0.5714, 0.5714, 0.5714]
    """
    m = _f32(changes)
    return (1.0 + k * m) / (1.0 + k * tf.reduce_mean(m, axis=[1, 2, 3], keepdims=True))


def gradient_loss(real, fake, weights=None) -> tf.Tensor:
    """Image-gradient L1 (the gradient difference loss of Mathieu et al., 2016):
    ``(mean |dy(real) - dy(fake)| + mean |dx(real) - dx(fake)|) / 2`` over the
    differences of vertically (``dy``) and horizontally (``dx``) adjacent pixels. An edge
    G draws where the target has none, or misses where it has one, costs it; a stripe
    pattern costs twice its amplitude at every row it flips. ``weights`` (``[H, W, 1]``
    or broadcastable, as :func:`pixel_loss`) weigh each difference by the mean of its
    two pixels' weights.

    Example:
        >>> import numpy as np
        >>> flat = np.zeros((1, 4, 4, 1), "float32")
        >>> stripes = flat.copy(); stripes[:, ::2] = 0.5  # rows alternate 0.5 / 0
        >>> float(gradient_loss(flat, stripes)), float(pixel_loss(flat, stripes))
        (0.25, 0.25)
        >>> step = flat.copy(); step[:, 2:] = 0.5           # one edge, same L1
        >>> round(float(gradient_loss(flat, step)), 4)
        0.0833
    """
    real, fake = _f32(real), _f32(fake)

    def diffs(t):
        return t[:, 1:] - t[:, :-1], t[:, :, 1:] - t[:, :, :-1]

    (ry, rx), (fy, fx) = diffs(real), diffs(fake)
    dy, dx = tf.abs(ry - fy), tf.abs(rx - fx)
    if weights is not None:
        w = _f32(weights)
        if w.shape.rank is not None and w.shape.rank >= 3 and w.shape[-3] not in (None, 1):
            dy = dy * (w[..., 1:, :, :] + w[..., :-1, :, :]) / 2.0
            dx = dx * (w[..., :, 1:, :] + w[..., :, :-1, :]) / 2.0
        else:
            dy, dx = dy * w, dx * w
    return (tf.reduce_mean(dy) + tf.reduce_mean(dx)) / 2.0


def identity_feature_loss(real_features: Sequence, fake_features: Sequence,
                          layer_weights: Sequence[float] | None = None) -> tf.Tensor:
    """L_id from precomputed feature maps.

    Args:
        real_features: list of maps ``[N, h_l, w_l, c_l]`` (or vectors ``[N, d]``, for
            which ``h*w`` counts as 1) of the real images.
        fake_features: the same layers for the generated images.
        layer_weights: beta_l per layer; ``None`` or empty = all 1 (the original).

    Returns:
        ``sum_l beta_l * mean |real_l - fake_l| / (h_l * w_l)``.
    """
    if len(real_features) != len(fake_features):
        raise ValueError("real_features and fake_features must list the same layers. "
                         f"Received: {len(real_features)} and {len(fake_features)} maps")
    weights = list(layer_weights) if layer_weights else [1.0] * len(real_features)
    if len(weights) != len(real_features):
        raise ValueError(f"layer_weights needs one weight per feature map ({len(real_features)})."
                         f" Received: layer_weights={list(layer_weights)}")
    total = tf.constant(0.0, tf.float32)
    for w, real, fake in zip(weights, real_features, fake_features):
        real, fake = _f32(real), _f32(fake)
        area = 1.0
        if real.shape.rank == 4:
            area = float(real.shape[1] * real.shape[2])
        total += w * tf.reduce_mean(tf.abs(real - fake)) / area
    return total


def feature_loss(real_features: Sequence, fake_features: Sequence) -> tf.Tensor:
    """``mean_l mean |real_l - fake_l|`` over the maps of a frozen network (the real
    ones are not differentiated): ``L_expr_pair`` of ``losses.expression``, whose maps
    are normalised to about 1 on real faces, so each layer counts alike.

    Example:
        >>> import numpy as np
        >>> a, b = [np.ones((1, 2, 2, 1), "float32")] * 2, [np.zeros((1, 2, 2, 1), "float32")] * 2
        >>> float(feature_loss(a, b))
        1.0
    """
    if len(real_features) != len(fake_features) or not len(real_features):
        raise ValueError("real_features and fake_features must list the same layers. "
                         f"Received: {len(real_features)} and {len(fake_features)} maps")
    total = tf.constant(0.0, tf.float32)
    for real, fake in zip(real_features, fake_features):
        total += tf.reduce_mean(tf.abs(tf.stop_gradient(_f32(real)) - _f32(fake)))
    return total / float(len(real_features))


def identity_loss(feature_fn: Callable, real, fake,
                  layer_weights: Sequence[float] | None = None) -> tf.Tensor:
    """L_id with a feature extractor.

    Args:
        feature_fn: callable (e.g. a frozen Keras model) mapping [-1, 1] images to a
            list of feature maps.
        real: input images.
        fake: generated images.
        layer_weights: beta_l per layer (``None`` = all 1).
    """
    real_features = feature_fn(real)
    fake_features = feature_fn(fake)
    if not isinstance(real_features, (list, tuple)):
        real_features, fake_features = [real_features], [fake_features]
    return identity_feature_loss([tf.stop_gradient(_f32(f)) for f in real_features],
                                 fake_features, layer_weights)


def q_loss(predicted_code, code, num_classes: int = 6) -> tf.Tensor:
    """L_Q: the sum over classes of the mean squared error between Q's head and the
    code's block for that class.

    Args:
        predicted_code: Q's output ``[N, num_classes * intensity_dim]``.
        code: the code c the images were generated with, same shape.
        num_classes: number of blocks.
    """
    predicted_code, code = _f32(predicted_code), _f32(code)
    dims = predicted_code.shape[-1]
    if dims is None or dims % num_classes:
        raise ValueError(f"The code size must be a multiple of num_classes={num_classes}. "
                         f"Received: code shape {predicted_code.shape}")
    diff = tf.reshape(predicted_code - code, [-1, num_classes, dims // num_classes])
    return tf.reduce_sum(tf.reduce_mean(tf.square(diff), axis=[0, 2]))


def _bce(logits, target: float, weights=None) -> tf.Tensor:
    logits = _f32(logits)
    per_logit = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), target), logits=logits)
    if weights is None:
        return tf.reduce_mean(per_logit)
    # One weight per face: the mean over each face's logits, weighted over the faces.
    # No weight at all (no face counts) gives 0, not NaN.
    per_face = tf.reduce_mean(tf.reshape(per_logit, [tf.shape(per_logit)[0], -1]), axis=1)
    weights = _f32(weights)
    return tf.math.divide_no_nan(tf.reduce_sum(weights * per_face), tf.reduce_sum(weights))


def real_loss(logits, weights=None) -> tf.Tensor:
    """mean BCE(logits, 1): "these are real". ``weights`` ``[N]`` (optional): the
    faces' weights in the mean (0 leaves a face out)."""
    return _bce(logits, 1.0, weights)


def fake_loss(logits, weights=None) -> tf.Tensor:
    """mean BCE(logits, 0): "these are fake"; ``weights`` as in :func:`real_loss`."""
    return _bce(logits, 0.0, weights)


def discriminator_loss(real_logits, fake_logits) -> tf.Tensor:
    """A discriminator's loss: real -> 1, fake -> 0 (D_img, and D_z with the prior as
    "real" and the encoder's codes as "fake")."""
    return real_loss(real_logits) + fake_loss(fake_logits)


def generator_loss(fake_logits, weights=None) -> tf.Tensor:
    """The generator's (G_img) or encoder's (E_z) adversarial loss: fake -> 1;
    ``weights`` as in :func:`real_loss`."""
    return real_loss(fake_logits, weights)


def total_variation(images) -> tf.Tensor:
    """The original's TV term: ``(l2(dy) / H + l2(dx) / W) / N`` with
    ``l2(t) = sum(t**2) / 2``, for images ``[N, H, W, C]``."""
    images = _f32(images)
    shape = tf.shape(images)
    n, h, w = (tf.cast(shape[i], tf.float32) for i in range(3))
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return (tf.nn.l2_loss(dy) / h + tf.nn.l2_loss(dx) / w) / n
