"""Where faces change with expression, as maps over the (aligned) face.

- :func:`expression_map` - the mean deviation of each pixel within groups of one
  person's faces in several expressions, scaled to mean 1 (the L1 weights of
  ``training.expression_regions``);
- :func:`expression_regions` - the same measured on the built-in set's posed partners
  (a face's subject in the other expressions, in that face's own pose, light and gain,
  without noise: nothing but the expression differs), turned into a [0, 1] mask. The
  editor pastes G's face into the input through it (``model.edit_regions``): the input
  is kept wherever expressions do not change it;
- :func:`change_maps` - per pair of faces, the pixels where a posed partner differs from
  the noise-free capture of its own face (the L1 weights of ``training.pair_change``).
"""

from __future__ import annotations

import functools

import numpy as np


def expression_map(groups, symmetric: bool = True, sigma: float = 1.0) -> np.ndarray:
    """Where faces change with expression: ``[S, S]``, scaled to mean 1.

    Each group holds the faces of one person (under one lighting) in several
    expressions; whatever differs between them is the expression. The map is the mean
    over groups of each pixel's mean absolute deviation from its group's mean face
    (averaged over channels), made left-right symmetric (training flips faces), smoothed
    by a Gaussian of ``sigma`` pixels and divided by its mean.

    Args:
        groups: an iterable of float ``[n, S, S, C]`` arrays, one per group; groups of
            fewer than two faces are skipped.
        symmetric: average the map with its mirror image.
        sigma: Gaussian smoothing in pixels (0: none).

    Example:
        >>> import numpy as np
        >>> a = np.zeros((2, 4, 4, 3), "float32"); a[1, 1:3, 1:3] = 1.0  # a change
        >>> m = expression_map([a], sigma=0)
        >>> float(m.mean()), float(m[1, 1]), float(m[0, 0])
        (1.0, 4.0, 0.0)
    """
    from scipy.ndimage import gaussian_filter

    total, used = None, 0
    for faces in groups:
        faces = np.asarray(faces, np.float64)
        if len(faces) < 2:
            continue
        dev = np.abs(faces - faces.mean(0)).mean(axis=(0, 3))
        total = dev if total is None else total + dev
        used += 1
    if not used:
        raise ValueError("expression_map needs a group with at least two faces.")
    m = total / used
    if symmetric:
        m = (m + m[:, ::-1]) / 2
    if sigma > 0:
        m = gaussian_filter(m, sigma, mode="reflect")
    if m.mean() <= 0:
        raise ValueError("expression_map: the faces of every group are identical.")
    return (m / m.mean()).astype(np.float32)


def regions_from_map(m, percentile: float = 90.0, sigma: float = 1.0) -> np.ndarray:
    """A [0, 1] mask from an :func:`expression_map` ``m``: 0 at the map's median (the
    face's typical pixel, which expressions barely move) and below, 1 from its
    ``percentile``-th percentile up, linear between; then smoothed by a Gaussian of
    ``sigma`` pixels so the paste has no seam.

    Example:
        >>> m = np.array([[0., 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]])
        >>> [round(float(v), 2) for v in regions_from_map(m, 75, sigma=0)[0]]  # median 1.5, 75th 2.25
        [0.0, 0.0, 0.67, 1.0]
    """
    from scipy.ndimage import gaussian_filter

    if not 50.0 < percentile <= 100.0:
        raise ValueError("percentile must be in (50, 100] (the mask is 0 at the map's "
                         f"median). Received: percentile={percentile!r}")
    m = np.asarray(m, np.float64)
    low, high = np.median(m), np.percentile(m, percentile)
    if high <= low:
        raise ValueError("regions_from_map: the map is flat above its median; no region "
                         "changes more than the rest.")
    r = np.clip((m - low) / (high - low), 0.0, 1.0)
    if sigma > 0:
        r = gaussian_filter(r, sigma, mode="reflect")
    return r.astype(np.float32)


# The map is measured at this size and resized to others: it is smooth, and rendering
# the partners at 128 px costs far more than at 64.
_MAP_SIZE = 64


@functools.lru_cache(maxsize=4)
def _posed_map(every: int) -> np.ndarray:
    from exprgan_tf.data.builtin import builtin_rows, render_pair_pool
    from exprgan_tf.data.faces import FaceSet

    rows = builtin_rows(split="train")[::every]
    pool = render_pair_pool(FaceSet(), rows, [1.0], _MAP_SIZE, "input")
    images = pool["images"].astype(np.float32) / 127.5 - 1.0
    sources = pool["sources"]
    return expression_map(images[sources == k] for k in np.unique(sources))


def expression_regions(image_size: int, percentile: float = 90.0, every: int = 6
                       ) -> np.ndarray:
    """Where the built-in faces change with expression, as a [0, 1] mask ``[S, S]``
    (:func:`regions_from_map` of the :func:`expression_map` of posed partners).

    Every ``every``-th face of the built-in training split (P001-P072; 216 faces by
    default) is rendered in the five other expressions at full intensity, in its own
    pose, light and gain and without noise (:func:`~exprgan_tf.data.pair_pool` with
    ``pose="input"``); each face's five renders form one group. Brows, eyes, mouth and
    jaw come out; background, hair, cheeks and forehead do not. The map fits faces
    centred and sized as the built-in ones (not measured on photos). It is
    measured at 64x64 (a few seconds), cached per process and resized (bilinear) to
    ``image_size``.

    Args:
        image_size: the map's height and width.
        percentile: of the map, from which a pixel is wholly G's (see
            :func:`regions_from_map`); lower gives G more of the face.
        every: use every ``every``-th training face (fewer renders, a noisier map).

    Example:
        >>> r = expression_regions(32, every=36)   # every 36th face: a quick map
        >>> r.shape, float(r.min()) < 0.01, float(r.max()) > 0.99
        ((32, 32), True, True)
        >>> bool(r[26, 16] > 0.5), bool(r[2, 2] < 0.01)   # the mouth, a corner
        (True, True)
    """
    if int(every) < 1:
        raise ValueError(f"every must be a positive integer. Received: every={every!r}")
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive integer. Received: "
                         f"image_size={image_size!r}")
    r = regions_from_map(_posed_map(int(every)), percentile)
    if int(image_size) != _MAP_SIZE:
        from PIL import Image

        r = np.asarray(Image.fromarray(r, mode="F").resize(
            (int(image_size),) * 2, Image.BILINEAR), np.float32)
    return np.clip(r, 0.0, 1.0)


def change_maps(a, b, threshold: float = 8.0, grow: int = 1) -> np.ndarray:
    """Where two faces differ: ``[N, S, S]`` uint8, 1 where any channel of ``a`` and
    ``b`` (uint8 ``[N, S, S, C]``) differs by more than ``threshold`` (0-255), grown by
    ``grow`` pixels in every direction (a maximum filter of ``2 * grow + 1``), so that a
    line drawn a pixel off still lies inside the map.

    For a posed partner and the noise-free capture of its own face (the same pose, light
    and gain) everything that differs is the expression: the lines of the face's own
    expression to take away and those of the partner's to draw.

    Example:
        >>> a = np.zeros((1, 5, 5, 3), np.uint8); b = a.copy(); b[0, 2, 2, 1] = 40
        >>> change_maps(a, b)[0]
        array([[0, 0, 0, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 0, 0, 0]], dtype=uint8)
        >>> int(change_maps(a, b, threshold=40).sum())   # more than 40 only
        0
    """
    from scipy.ndimage import maximum_filter

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError("a and b must be [N, S, S, C] arrays of one shape. Received: "
                         f"{a.shape} and {b.shape}")
    if int(grow) < 0:
        raise ValueError(f"grow must be an integer >= 0. Received: grow={grow!r}")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > threshold
    if grow:
        diff = maximum_filter(diff, size=(1, 2 * int(grow) + 1, 2 * int(grow) + 1))
    return diff.astype(np.uint8)


__all__ = ["change_maps", "expression_map", "expression_regions", "regions_from_map"]
