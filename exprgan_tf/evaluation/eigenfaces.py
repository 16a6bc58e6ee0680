"""PCA eigenface recognition with a minimum-distance classifier (the paper's Table I row 2).

Turk & Pentland (1991): eigenfaces are the principal components of a *gallery* of known
faces; a face class is the mean of its gallery images projected onto the first ``k``
eigenfaces; a probe face is assigned to the class whose mean is nearest (Euclidean) in
that ``k``-dimensional face space.

The paper generated 6 persons x 6 expressions = 36 faces and asked whether they are
still recognised as their persons; it reports the accuracy and the number of eigenfaces
at which it is reached ("100% with 10 eigenfaces"). :func:`eigenface_accuracy` gives the
accuracy for every ``k = 1 .. max_components`` and the smallest ``k`` reaching the best.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.evaluation.eigenfaces import eigenface_accuracy
    >>> gallery = np.array([[0., 0.], [0., 1.], [5., 0.], [5., 1.]])
    >>> r = eigenface_accuracy(gallery, [0, 0, 1, 1], [[0.2, 0.5], [4.9, 0.4]], [0, 1],
    ...                        standardize=False)
    >>> r.accuracies, r.best_accuracy, r.best_components
    ([1.0, 1.0], 1.0, 1)
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class EigenfaceResult:
    """Accuracy of eigenface recognition.

    Attributes:
        accuracies: ``accuracies[k - 1]`` = accuracy with ``k`` eigenfaces.
        best_accuracy: the highest accuracy over ``k``.
        best_components: the smallest ``k`` reaching ``best_accuracy``.
        predictions: class predicted for each probe with ``best_components`` eigenfaces.
    """

    accuracies: list
    best_accuracy: float
    best_components: int
    predictions: list


def flatten_faces(images, standardize: bool = True) -> np.ndarray:
    """Images ``[N, ...]`` -> float64 rows ``[N, P]``; with ``standardize`` every image is
    scaled to zero mean and unit variance (removes global brightness/contrast, the usual
    eigenface normalisation)."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    if standardize:
        x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
    return x


def fit_eigenfaces(gallery, max_components=None):
    """Principal components of ``gallery`` rows ``[N, P]``.

    Returns:
        ``(mean [P], components [K, P])``, components orthonormal, by decreasing variance;
        ``K = min(max_components, N - 1, P)``.
    """
    gallery = np.asarray(gallery, np.float64)
    mean = gallery.mean(0)
    _, s, vt = np.linalg.svd(gallery - mean, full_matrices=False)
    keep = min(len(gallery) - 1, gallery.shape[1])
    keep = int(np.sum(s[:keep] > 1e-10 * max(s[0], 1e-300))) if len(s) else 0
    if max_components is not None:
        keep = min(keep, int(max_components))
    return mean, vt[:keep]


def eigenface_accuracy(gallery_images, gallery_labels, probe_images, probe_labels,
                       max_components=None, standardize: bool = True) -> EigenfaceResult:
    """Minimum-distance classification of probes in eigenface space, for k = 1..K.

    Args:
        gallery_images: known faces ``[N, ...]`` (images or feature rows); they define the
            eigenfaces and the class means.
        gallery_labels: class of each gallery face ``[N]`` (e.g. the person).
        probe_images: faces to classify ``[M, ...]`` (e.g. generated faces).
        probe_labels: their true classes ``[M]``.
        max_components: largest ``k`` tried (``None``: every non-degenerate component,
            at most ``N - 1``).
        standardize: per-image zero mean / unit variance first (see :func:`flatten_faces`).

    Returns:
        :class:`EigenfaceResult`.
    """
    g = flatten_faces(gallery_images, standardize)
    p = flatten_faces(probe_images, standardize)
    gy, py = np.asarray(gallery_labels), np.asarray(probe_labels)
    if len(g) != len(gy) or len(p) != len(py):
        raise ValueError("images and labels must have the same length. Received: "
                         f"{len(g)} gallery images / {len(gy)} labels, {len(p)} probes / "
                         f"{len(py)} labels")
    if g.shape[1] != p.shape[1]:
        raise ValueError("gallery and probe images must have the same size. Received: "
                         f"{g.shape[1]} and {p.shape[1]} values per image")
    classes = np.unique(gy)
    mean, comps = fit_eigenfaces(g, max_components)
    if len(comps) == 0:
        raise ValueError("The gallery has no variance: no eigenfaces to fit.")
    zg, zp = (g - mean) @ comps.T, (p - mean) @ comps.T
    centres = np.stack([zg[gy == c].mean(0) for c in classes])       # [C, K]
    accuracies, preds = [], []
    for k in range(1, len(comps) + 1):
        d = ((zp[:, None, :k] - centres[None, :, :k]) ** 2).sum(-1)  # [M, C]
        pred = classes[d.argmin(1)]
        preds.append(pred)
        accuracies.append(float(np.mean(pred == py)))
    best = max(accuracies)
    k_best = accuracies.index(best) + 1
    return EigenfaceResult(accuracies=accuracies, best_accuracy=best, best_components=k_best,
                           predictions=preds[k_best - 1].tolist())
