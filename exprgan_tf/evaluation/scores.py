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
  correlation of ``t_hat`` with ``s`` (1 = intensity follows the request; 0 = unrelated).
  Checked on the true faces themselves (8 test subjects x 6 expressions x the 5 ``s``):
  mean error 0.02, correlation 0.996 for clean renders - but 0.27 / 0.54 for renders
  with pose jitter, which is why the edited input is the clean neutral face.

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


def estimate_intensity(generated, ladders, ladder_intensities=INTENSITY_LADDER) -> np.ndarray:
    """The intensity of each generated face: the ``t`` of its nearest ladder face (L1).

    Args:
        generated: uint8 ``[N, H, W, 3]``.
        ladders: uint8 ``[N, L, H, W, 3]``: for face ``i`` the true faces of its subject
            and target expression at ``ladder_intensities``.
        ladder_intensities: ``[L]`` intensities of the ladder.

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
    d = np.abs(lad - g[:, None]).reshape(lad.shape[0], lad.shape[1], -1).mean(-1)
    return np.asarray(ladder_intensities, np.float64)[d.argmin(1)]


def intensity_scores(requested, estimated) -> dict:
    """``{"mae": mean |estimated - requested|, "corr": Pearson r (None if constant)}``."""
    r, e = np.asarray(requested, np.float64), np.asarray(estimated, np.float64)
    corr = None
    if r.std() > 0 and e.std() > 0:
        corr = float(np.corrcoef(r, e)[0, 1])
    return {"mae": float(np.mean(np.abs(e - r))), "corr": corr}


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

    def describe(images):
        out = []
        for s in range(0, len(images), batch_size):
            x = images[s:s + batch_size].astype(np.float32) / 127.5 - 1.0
            out.append(np.asarray(descriptor(x, training=False)))
        return np.concatenate(out)

    a, b = describe(_as_uint8(inputs)), describe(_as_uint8(outputs))
    result = {"cosine": float(np.mean(np.asarray(identity.identity_similarity(a, b)))),
              "same_person": None}
    if network == "dlib_resnet":
        result["same_person"] = float(np.mean(np.asarray(identity.same_person(a, b))))
    return result
