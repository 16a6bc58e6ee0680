"""Fréchet Inception Distance: InceptionV3 pool features and the Fréchet distance.

FID (Heusel et al. 2017) fits a Gaussian to the 2048-d global-average-pool features of
ImageNet InceptionV3 for real and for generated images and reports

    FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).

The features come from ``keras.applications.InceptionV3(include_top=False,
pooling="avg")`` with images resized (bilinear) to 299x299 and scaled to [-1, 1]
(``inception_v3.preprocess_input``). The paper used the ImageNet weights; so do we:

* ``weights="imagenet"``: Keras's file, from its cache (``~/.keras/models``) or
  downloaded where the internet is reachable;
* ``weights="/path/to/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"``: a
  local copy of that file (or any InceptionV3 no-top weights file);
* ``weights="random"``: random initialisation - for tests only; the numbers it gives are
  *not* FIDs comparable with anybody's.

Offline with no file, :func:`inception_feature_extractor` raises
:class:`InceptionWeightsError` saying how to provide one.

Note: this is Keras's InceptionV3, not the TF1 graph ``pt_inception-2015-12-05`` that
the reference ``TTUR``/``pytorch-fid`` implementations use, so absolute values differ
from theirs by a few points; comparisons between models scored here are sound.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.evaluation.fid import frechet_distance
    >>> mu, cov = np.zeros(2), np.eye(2)
    >>> round(frechet_distance(mu, cov, mu + [3.0, 4.0], cov), 6)
    25.0
"""

from __future__ import annotations

import os
import socket
import warnings

import numpy as np
from scipy import linalg

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
               + WEIGHTS_FILE)
WEIGHTS_ENV = "EXPRGAN_TF_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURE_DIM = 2048


class InceptionWeightsError(FileNotFoundError):
    """The ImageNet InceptionV3 weights are neither cached, nor given, nor downloadable,
    or the file given does not load into InceptionV3 (no top)."""


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2))``. When the product
    is singular (fewer samples than dimensions), ``eps * I`` is added to both
    covariances, as the reference implementation (TTUR) does; the tiny imaginary part
    ``sqrtm`` can return from round-off is dropped.

    Args:
        mu1, mu2: means, shape ``[D]``.
        sigma1, sigma2: covariances, shape ``[D, D]``.
        eps: regulariser used only when the matrix square root is not finite.

    Returns:
        The distance (a Python float, >= 0 up to round-off).

    Raises:
        ValueError: shapes that do not match, or a large imaginary component.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or \
            sigma1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError("frechet_distance expects means [D] and covariances [D, D] of the "
                         f"same D. Received: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)   # singular: handled below
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("frechet_distance: sqrtm(sigma1 @ sigma2) has a large imaginary "
                             f"component ({np.max(np.abs(covmean.imag)):.3g}); are both "
                             "covariances symmetric positive semi-definite?")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def gaussian_stats(features):
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, rows = samples) of features."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError("gaussian_stats expects features [N, D] with N >= 2. "
                         f"Received: shape={features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def fid_from_features(real_features, fake_features) -> float:
    """FID between two sets of features ``[N, D]``.

    With at least as many samples as dimensions in both sets this is
    :func:`frechet_distance` of their :func:`gaussian_stats`. With fewer (the usual
    case here: hundreds of faces, 2048 features) both covariances are low rank, and
    the trace term is computed exactly from the samples instead of from a ``D x D``
    matrix square root: with ``A``, ``B`` the centred features over ``sqrt(N - 1)``
    (so ``S_r = A^T A``, ``S_g = B^T B``), the non-zero eigenvalues of ``S_r S_g`` are
    the squared singular values of ``A B^T``, so ``Tr((S_r S_g)^(1/2))`` is the sum
    of the singular values of an ``N_r x N_g`` matrix. Same value (without the
    ``eps`` the singular case needs), seconds instead of minutes at D = 2048.
    """
    a = np.asarray(real_features, np.float64)
    b = np.asarray(fake_features, np.float64)
    for f in (a, b):
        if f.ndim != 2 or len(f) < 2:
            raise ValueError("fid_from_features expects features [N, D] with N >= 2. "
                             f"Received: shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError("fid_from_features expects features of the same D. Received: "
                         f"shapes {a.shape} and {b.shape}")
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = (a - mu_a) / np.sqrt(len(a) - 1)
    cb = (b - mu_b) / np.sqrt(len(b) - 1)
    trace_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.sum(ca * ca) + np.sum(cb * cb) - 2.0 * trace_sqrt)


def _keras_cache_file():
    root = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(root, "models", WEIGHTS_FILE)


def how_to_provide() -> str:
    return (f"Download {WEIGHTS_URL} on a machine with internet access and either pass its "
            f"path (scripts/evaluate.py --fid-weights FILE, or "
            f"inception_feature_extractor(weights=FILE)), set {WEIGHTS_ENV}=FILE, or copy it "
            f"to {_keras_cache_file()} where Keras looks first. scripts/evaluate.py --no-fid "
            "skips the FID row.")


def resolve_inception_weights(weights="imagenet", download: bool = True,
                              timeout: float = 20.0):
    """What to pass as ``InceptionV3(weights=...)``: a file path, or ``None`` (random).

    Args:
        weights: ``"imagenet"``, ``"random"`` or a path to a weights file.
        download: for ``"imagenet"`` with nothing cached: try Keras's download.
        timeout: socket timeout (seconds) of that download.

    Raises:
        InceptionWeightsError: the weights are not available; the message says how to
            provide them.
    """
    if weights == "random":
        return None
    if weights != "imagenet":
        path = os.path.expanduser(os.fspath(weights))
        if not os.path.isfile(path):
            raise InceptionWeightsError(f"InceptionV3 weights file not found: {path}. "
                                        + how_to_provide())
        return path
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return resolve_inception_weights(env, download=False)
    cached = _keras_cache_file()
    if os.path.isfile(cached):
        return cached
    if download:
        import keras
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            return keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models",
                                        file_hash="bcbd6486424b2319ff4ef7d526e38f63")
        except Exception as e:  # no route, DNS, proxy refusal, timeout, bad hash ...
            reason = f"downloading it failed ({type(e).__name__}: {str(e)[:200]})"
        finally:
            socket.setdefaulttimeout(old)
    else:
        reason = "download disabled"
    raise InceptionWeightsError("FID needs the ImageNet weights of InceptionV3 and none are "
                                f"available: not in {cached}, {reason}. " + how_to_provide())


def inception_feature_extractor(weights="imagenet", download: bool = True,
                                input_size: int = INPUT_SIZE):
    """InceptionV3 pool features of uint8 images.

    Args:
        weights: ``"imagenet"`` (cache or download), a weights file path (Keras's
            legacy ``.h5`` download, or a ``.weights.h5`` that Keras 3's
            ``save_weights`` wrote), or ``"random"`` (tests only).
        download: allow Keras's download when ``"imagenet"`` is not cached.
        input_size: the size images are resized to. FID is defined at 299; a smaller
            size (>= 75, InceptionV3's minimum) only makes tests of this path faster -
            its numbers are not FIDs.

    Returns:
        A ``keras.Model`` from uint8/float 0-255 images ``[N, H, W, 3]`` (any size) to
        ``[N, 2048]`` float32 features.

    Raises:
        InceptionWeightsError: no weights, or a file that does not load into
            InceptionV3 without its top (the message names the file and says how to
            provide the right one).
    """
    import keras

    path = resolve_inception_weights(weights, download=download)
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Resizing(input_size, input_size, interpolation="bilinear",
                              name="resize")(inputs)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_pm1")(x)
    try:
        with warnings.catch_warnings():   # a wrong file warns per layer before failing
            warnings.simplefilter("ignore", UserWarning)
            base = keras.applications.InceptionV3(include_top=False, weights=path,
                                                  pooling="avg",
                                                  input_shape=(input_size, input_size, 3))
    except (OSError, ValueError) as e:     # not HDF5 / not these layers
        if path is None:
            raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise InceptionWeightsError(
            f"{path} does not load as InceptionV3 weights without the top "
            f"(include_top=False): {type(e).__name__}: {first}. Expected "
            f"{WEIGHTS_FILE} or a file of InceptionV3(include_top=False).save_weights. "
            + how_to_provide()) from None
    outputs = base(x)
    return keras.Model(inputs, outputs, name="inception_v3_pool")


def inception_features(extractor, images, batch_size: int = 32, progress=None) -> np.ndarray:
    """Features ``[N, D]`` of uint8 ``images`` by batches (``progress(n_done)`` after each)."""
    images = np.asarray(images)
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        out.append(np.asarray(extractor(batch, training=False)))
        if progress:
            progress(min(start + batch_size, len(images)))
    return np.concatenate(out).astype(np.float64)
