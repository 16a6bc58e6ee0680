"""Scores the paper does not report, which make Table I trustworthy.

* **Identity similarity** - does the edited face still show the input's person? Cosine
  similarity of the identity network's descriptors of input and output (dlib's ResNet-34
  or VGG-Face, ``exprgan_tf.identity``), and for dlib also the share of pairs dlib would
  call the same person (descriptor distance < 0.6).
* **Ground truth** (built-in face set only) - the renderer knows every subject's true face
  in every expression: the edit of a test face to expression ``e`` at intensity 1 is
  compared with ``FaceSet.true_face(subject, e, 1.0, lighting=<the input's lighting>)``:
  mean absolute error (L1, in [0, 1] pixel units) and SSIM (scikit-image, per RGB
  image, data range 255). The target is the clean render (no pose jitter, no noise), so
  even a perfect editor keeps the small error of the input's own jitter; the "input
  unchanged" baseline of :func:`ground_truth_scores` puts numbers in perspective.
* **Intensity faithfulness** (built-in face set only) - a test subject's clean neutral
  face is edited to each expression at requested intensities ``s``; the intensity that
  came out is estimated as
  the ``t`` of the subject's true face (same expression and lighting) nearest in L1 on
  a ladder ``t = 0, 0.1, ..., 1`` (all ladder faces share identity and lighting, so the
  nearest one is decided by the expression). Reported: mean ``|t_hat - s|`` (0 is
  perfect; always answering 0.5 scores 0.3 on s = 0, .25, .5, .75, 1) and the Pearson
  correlation of ``t_hat`` with ``s`` (1 = intensity follows the request; 0 = unrelated),
  and the Spearman rank correlation (1 = a stronger request never comes out weaker;
  it does not ask for a linear relation). Checked on the true faces themselves (8 test subjects x 6
  expressions x the 5 ``s``):
  mean error 0.02, correlation 0.996 for clean renders - but 0.27 / 0.54 for renders
  with pose jitter, which is why the edited input is the clean neutral face.
  That reading needs each stroke at its exact pixel: a true expression drawn one pixel
  lower reads as about a fifth of itself. :data:`TOLERANT_READING` (both sides blurred
  by 1 pixel, the best of the shifts by up to 1 pixel) reads strength instead; the
  learning report gives both.

Example:
    >>> import numpy as np
    >>> from exprgan_tf.evaluation.scores import ground_truth_scores
    >>> a = np.zeros((2, 16, 16, 3), np.uint8)
    >>> s = ground_truth_scores(a, a)
    >>> s["l1"], s["ssim"]
    (0.0, 1.0)
"""

from __future__ import annotations

import numpy as np

INTENSITY_LADDER = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
REQUESTED_INTENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _as_uint8(images):
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Expected uint8 images. Received: dtype={images.dtype}")
    return images


def l1_error(a, b) -> np.ndarray:
    """Per-image mean absolute difference of uint8 images, in [0, 1] units; ``[N]``."""
    a, b = _as_uint8(a).astype(np.float32), _as_uint8(b).astype(np.float32)
    return np.abs(a - b).reshape(len(a), -1).mean(1) / 255.0


def ssim(a, b) -> np.ndarray:
    """Per-image SSIM of uint8 RGB images (scikit-image defaults, 7x7 window); ``[N]``."""
    from skimage.metrics import structural_similarity

    a, b = _as_uint8(a), _as_uint8(b)
    return np.array([structural_similarity(x, y, channel_axis=2, data_range=255)
                     for x, y in zip(a, b)], np.float64)


def ground_truth_scores(generated, truth, inputs=None) -> dict:
    """Mean L1 and SSIM of ``generated`` against ``truth`` (uint8, same shape).

    With ``inputs`` (the unedited faces, one per generated face) also the same scores
    of returning the input unchanged: ``l1_input``, ``ssim_input``.
    """
    out = {"l1": float(np.mean(l1_error(generated, truth))),
           "ssim": float(np.mean(ssim(generated, truth)))}
    if inputs is not None:
        out["l1_input"] = float(np.mean(l1_error(inputs, truth)))
        out["ssim_input"] = float(np.mean(ssim(inputs, truth)))
    return out


def l1_excess_map(edits, truth, inputs) -> np.ndarray:
    """Where edits lose to the unchanged input: per pixel, the mean over the faces of
    ``|edit - truth| - |input - truth|`` (channel mean, 0-255 units), ``[S, S]`` float.
    Above 0 the edits are further from their true targets than the inputs are; its mean
    is the edits' L1 minus the input-unchanged L1 (x 255).

    Example:
        >>> import numpy as np
        >>> truth = np.zeros((2, 1, 2, 3), np.uint8)
        >>> inputs = np.full((2, 1, 2, 3), 4, np.uint8)
        >>> edits = inputs.copy(); edits[:, 0, 0] = 0; edits[0, 0, 1] = 10
        >>> l1_excess_map(edits, truth, inputs).tolist()
        [[-4.0, 3.0]]
    """
    shapes = {np.shape(edits), np.shape(truth), np.shape(inputs)}
    if len(shapes) != 1:
        raise ValueError("edits, truth and inputs must hold faces of one shape. Received: "
                         f"{np.shape(edits)}, {np.shape(truth)}, {np.shape(inputs)}")
    t = _as_uint8(truth).astype(np.float64)
    err = lambda x: np.abs(_as_uint8(x).astype(np.float64) - t).mean(-1)  # noqa: E731
    return (err(edits) - err(inputs)).mean(0)


def fine_detail(images, reference) -> dict:
    """How much fine detail ``images`` carry next to ``reference`` (uint8 ``[N, S, S, 3]``
    each), in each direction: the power of their grey levels at spatial frequencies of
    at least ``S / 4`` cycles per side (periods of 2-4 pixels), summed over those
    frequencies and averaged over the images, divided by the same for ``reference``.

    ``"down"`` is the detail from row to row (horizontal stripes raise it), ``"across"``
    from column to column (vertical stripes). 1 is the reference's level; a blurred face
    scores below 1, sensor noise above 1 in both directions, horizontal stripes above
    1 down only.

    Example:
        >>> import numpy as np
        >>> ref = np.full((1, 8, 8, 3), 100, np.uint8); ref[:, :, ::2] = 110  # columns
        >>> ref[:, ::2] += 10                                                # rows
        >>> striped = ref.copy(); striped[:, ::2] += 10  # twice the row-to-row step
        >>> {k: round(v, 2) for k, v in fine_detail(striped, ref).items()}
        {'down': 4.0, 'across': 1.0}
    """
    def power(x, axis):
        grey = _as_uint8(x).astype(np.float64).mean(-1)
        size = grey.shape[axis]
        p = np.abs(np.fft.rfft(grey, axis=axis)) ** 2
        return np.take(p, np.arange(size // 4, size // 2 + 1), axis=axis).sum() / len(grey)

    if np.shape(images)[1:] != np.shape(reference)[1:]:
        raise ValueError("images and reference must hold faces of one shape. Received: "
                         f"{np.shape(images)}, {np.shape(reference)}")
    return {"down": float(power(images, 1) / power(reference, 1)),
            "across": float(power(images, 2) / power(reference, 2))}


TOLERANT_READING = {"blur": 1.0, "max_shift": 1}
"""The settings of :func:`estimate_intensity` that read how strong an expression is
rather than where its pixels are (``benchmarks/results/intensity_reading.md``): on the
held-out true faces they read as exactly as the exact-pixel reading (Spearman 0.994),
and they still read a true expression drawn one pixel lower or slightly blurred (0.96 /
0.99, against 0.41 / 0.67 exact) and one at half its contrast as half."""


def estimate_intensity(generated, ladders, ladder_intensities=INTENSITY_LADDER, *,
                       blur: float = 0.0, max_shift: int = 0) -> np.ndarray:
    """The intensity of each generated face: the ``t`` of its nearest ladder face (L1).

    Args:
        generated: uint8 ``[N, H, W, 3]``.
        ladders: uint8 ``[N, L, H, W, 3]``: for face ``i`` the true faces of its subject
            and target expression at ``ladder_intensities``.
        ladder_intensities: ``[L]`` intensities of the ladder.
        blur: Gaussian standard deviation in pixels applied to the generated faces and
            the ladders alike before comparing (0: exact pixels). Neighbouring ladder
            faces differ by about 0.15 (0-255, mean over a 64-pixel face), so with exact
            pixels a true expression drawn one pixel lower is nearest the neutral end;
            blurred, a stroke a pixel off still overlaps its true place.
        max_shift: also compare each generated face shifted by up to this many pixels
            in x and y (edge pixels repeat); each ladder face counts at its nearest shift.

    Returns:
        float ``[N]``.
    """
    g = _as_uint8(generated).astype(np.float32)
    lad = _as_uint8(ladders).astype(np.float32)
    if lad.shape[0] != g.shape[0] or lad.shape[2:] != g.shape[1:] or \
            lad.shape[1] != len(ladder_intensities):
        raise ValueError("ladders must be [N, L, H, W, 3] matching generated [N, H, W, 3] "
                         f"and L = len(ladder_intensities). Received: {lad.shape}, "
                         f"{g.shape}, L={len(ladder_intensities)}")
    if not blur >= 0 or isinstance(max_shift, bool) or not isinstance(max_shift, int) \
            or max_shift < 0:
        raise ValueError("blur must be >= 0 and max_shift an integer >= 0. Received: "
                         f"blur={blur!r}, max_shift={max_shift!r}")
    if blur:
        from scipy.ndimage import gaussian_filter

        g = gaussian_filter(g, (0, blur, blur, 0))
        lad = gaussian_filter(lad, (0, 0, blur, blur, 0))
    h, w = g.shape[1:3]
    padded = np.pad(g, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)), mode="edge")
    d = None
    for dy in range(2 * max_shift + 1):
        for dx in range(2 * max_shift + 1):
            shifted = padded[:, dy:dy + h, dx:dx + w]
            ds = np.abs(lad - shifted[:, None]).reshape(lad.shape[0], lad.shape[1], -1).mean(-1)
            d = ds if d is None else np.minimum(d, ds)
    return np.asarray(ladder_intensities, np.float64)[d.argmin(1)]


def spearman(a, b):
    """Spearman rank correlation of ``a`` and ``b`` (ties get their mean rank), or
    ``None`` when either is constant (the correlation is undefined)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length. Received: {len(a)}, {len(b)}")
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(spearmanr(a, b).statistic)


def intensity_scores(requested, estimated) -> dict:
    """``{"mae": mean |estimated - requested|, "corr": Pearson r, "spearman": Spearman
    rho}`` (a correlation is ``None`` when either side is constant)."""
    r, e = np.asarray(requested, np.float64), np.asarray(estimated, np.float64)
    corr = None
    if r.std() > 0 and e.std() > 0:
        corr = float(np.corrcoef(r, e)[0, 1])
    return {"mae": float(np.mean(np.abs(e - r))), "corr": corr, "spearman": spearman(r, e)}


def nearest_true_target_rate(probes, bank, candidates, target) -> float:
    """Share of probes whose nearest candidate (Euclidean) is the right one.

    Args:
        probes: ``[N, D]`` vectors (e.g. standardised pixels or descriptors of edits).
        bank: ``[M, D]`` vectors of the true faces, in the same space.
        candidates: int ``[N, K]``: for probe ``i`` the rows of ``bank`` it is compared
            with (e.g. the true faces of every held-out subject at the requested
            expression and the input's lighting).
        target: int ``[N]``: the column of ``candidates[i]`` that is correct (the
            input's own subject).

    Returns:
        The share in [0, 1]; ties go to the first candidate. Chance is ``1 / K``.
    """
    probes = np.asarray(probes, np.float64)
    bank = np.asarray(bank, np.float64)
    candidates = np.asarray(candidates, np.int64)
    target = np.asarray(target, np.int64)
    if probes.ndim != 2 or bank.ndim != 2 or probes.shape[1] != bank.shape[1]:
        raise ValueError("probes [N, D] and bank [M, D] must be 2-d with the same D. "
                         f"Received: {probes.shape}, {bank.shape}")
    if candidates.ndim != 2 or len(candidates) != len(probes) or \
            target.shape != (len(probes),):
        raise ValueError("candidates must be [N, K] and target [N] for N probes. Received: "
                         f"{candidates.shape}, {target.shape}, N={len(probes)}")
    d = np.stack([((probes - bank[candidates[:, k]]) ** 2).sum(1)     # [N, K]; a loop
                  for k in range(candidates.shape[1])], 1)             # keeps memory N x D
    return float(np.mean(d.argmin(1) == target))


def z_spread(samples) -> float:
    """How much a decoder's output depends on z at a fixed code.

    Args:
        samples: ``[C, Z, ...]``: for each of ``C`` codes, ``Z`` outputs from different
            prior draws z (any value range; ``G``'s [-1, 1] output for the report).

    Returns:
        Mean over codes of the per-value (pixel) standard deviation over the ``Z`` draws
        (population std, ``ddof=0``); 0 when G ignores z.
    """
    x = np.asarray(samples, np.float64)
    if x.ndim < 3 or x.shape[1] < 2:
        raise ValueError("samples must be [C, Z, ...] with at least 2 draws. Received: "
                         f"shape={x.shape}")
    return float(x.std(axis=1).reshape(x.shape[0], -1).mean(1).mean())


def describe_faces(descriptor, images, batch_size: int = 32) -> np.ndarray:
    """Identity descriptors ``[N, D]`` of uint8 faces (fed in [-1, 1], in batches)."""
    images = _as_uint8(images)
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s:s + batch_size].astype(np.float32) / 127.5 - 1.0
        out.append(np.asarray(descriptor(x, training=False)))
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out)


def identity_scores(descriptor, inputs, outputs, network: str, batch_size: int = 32) -> dict:
    """Identity kept by an edit.

    Args:
        descriptor: a model from ``exprgan_tf.identity.build_identity_descriptor``.
        inputs: uint8 faces ``[N, H, W, 3]``.
        outputs: uint8 edits ``[N, H, W, 3]``, ``outputs[i]`` made from ``inputs[i]``.
        network: ``"dlib_resnet"`` adds ``same_person`` (share with distance < 0.6).

    Returns:
        ``{"cosine": mean cosine similarity, "same_person": share or None}``.
    """
    from exprgan_tf import identity

    a = describe_faces(descriptor, inputs, batch_size)
    b = describe_faces(descriptor, outputs, batch_size)
    result = {"cosine": float(np.mean(np.asarray(identity.identity_similarity(a, b)))),
              "same_person": None}
    if network == "dlib_resnet":
        result["same_person"] = float(np.mean(np.asarray(identity.same_person(a, b))))
    return result
