#!/usr/bin/env python
"""Does the intensity test read how strong an expression is, or where its pixels are?

The learning report's intensity test (``benchmarks/train_learning.py``, measure 6) edits
each held-out subject's clean neutral face to the six expressions at s = 0, .25, .5, .75,
1 and reads the intensity that came out as the ``t`` of the nearest (L1) of the
subject's true renders at t = 0, 0.1, ..., 1
(:func:`exprgan_tf.evaluation.scores.estimate_intensity`). This script feeds that test
faces whose answer is known - the true renders, and the true renders with a fault that
leaves the expression's strength alone (noise, a pixel of shift, a slight blur, the
capture's pose jitter), halves it, pastes it into the neutral input through the
editor's paste map (as the editor pastes G's face), or draws it exactly but on a
resting face that is not the person's own inside the editor's paste map (the average
subject's, or the person's own seen through ``model.decoder_hole_blur``'s cell means:
what a G that cannot see the hole gets wrong) - and two ways of making the weaker
faces from the full expression: a cross-fade of the neutral face into the true peak
(what the editor's fade does with a perfect G), and the neutral face moved towards the
peak by ``s`` times a TV-L1 optical flow between them (what a G that only warps the
input could reach) - and reads them with each setting of the reading:

- **exact pixels** (``blur=0, max_shift=0``, the test as it was);
- **for strength** (:data:`~exprgan_tf.evaluation.scores.TOLERANT_READING`: both sides
  blurred by 1 pixel, the best shift within 1 pixel), and two neighbours of it.

A reading that calls a true expression one pixel lower "a fifth of an expression"
measures registration, not intensity. Writes ``<out>.json`` and ``<out>.md`` (about a
minute).

Example:
    python benchmarks/intensity_reading.py --out benchmarks/results/intensity_reading
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                  # _results, intensity_sweep
sys.path.insert(0, os.path.join(HERE, os.pardir))

from _results import run_header, write_result  # noqa: E402

READINGS = {"exact pixels": dict(blur=0.0, max_shift=0),
            "blur 1 px": dict(blur=1.0, max_shift=0),
            "for strength (TOLERANT_READING)": None,   # filled in from scores
            "blur 1.5 px, shift 1 px": dict(blur=1.5, max_shift=1)}


def faults(truth, neutral, jittered, regions, peak, requested, seed=0):
    """Name -> (uint8 faces, what they should read as: "s" or "s / 2").

    ``regions`` is the editor's paste map ``[S, S]`` (where a hole G draws the face
    itself, resting features included); ``peak`` the true face at s = 1 of each row and
    ``requested`` its s."""
    import scipy.ndimage

    truth = truth.astype(np.float32)
    neutral = neutral.astype(np.float32)
    change = truth - neutral
    hole = np.asarray(regions, np.float32)[None, :, :, None]

    def on_rest(rest):   # the true change drawn on another resting face inside the map
        return truth + hole * (rest - neutral)

    average = neutral.mean(0, keepdims=True)   # the average subject's resting face
    cells4 = cell_means(neutral, 4)
    top = np.arange(truth.shape[1])[None, :, None, None] < 0.625 * truth.shape[1]

    rng = np.random.default_rng(seed)

    def lower(a):   # one pixel down, the top row repeated
        return np.concatenate([a[:, :1], a[:, :-1]], axis=1)

    def right(a):
        return np.concatenate([a[:, :, :1], a[:, :, :-1]], axis=2)

    out = {
        "true faces": (truth, "s"),
        "+ noise (sd 8, 0-255)": (truth + rng.normal(0, 8, truth.shape), "s"),
        "the change from neutral 1 px lower": (neutral + lower(change), "s"),
        "the change from neutral 1 px to the right": (neutral + right(change), "s"),
        "the whole face 1 px lower": (lower(truth), "s"),
        "the change blurred (sd 0.8 px)": (
            neutral + scipy.ndimage.gaussian_filter(change, (0, 0.8, 0.8, 0)), "s"),
        "the capture's pose jitter, light and noise": (jittered, "s"),
        "the change at half its contrast": (neutral + 0.5 * change, "s / 2"),
        # the editor's paste of a G that drew the true face: the map's soft edge keeps
        # part of the neutral input wherever it is below 1
        "the true face pasted into the neutral one (paste map)": (
            neutral + hole * change, "s"),
        # what a G that cannot see the hole gets wrong even when it draws the change
        # exactly: the person's own eyes, brows and mouth at rest
        "the change on the average resting face (paste map)": (
            on_rest(average), "s"),
        "the change on the resting face's 4 x 4 cell means (paste map)": (
            on_rest(cells4), "s"),
        "the change on the resting face's 8 x 8 cell means (paste map)": (
            on_rest(cell_means(neutral, 8)), "s"),
        # model.decoder_hole_blur=4 with decoder_hole_blur_above=0.625: the mouth and
        # jaw (from 5/8 of the height down) drawn from nothing of the person's
        "the change on the 4 x 4 cell means above 5/8 of the height, the average below": (
            on_rest(np.where(top, cells4, average)), "s"),
        "the true peak cross-faded from neutral by s": (
            neutral + requested[:, None, None, None] * (peak - neutral), "s"),
        "neutral warped towards the true peak by s x its optical flow": (
            warped(neutral, peak.astype(np.float32), requested), "s"),
    }
    return {k: (np.clip(np.round(v), 0, 255).astype(np.uint8), w) for k, (v, w) in out.items()}


def warped(neutral, peak, fractions):
    """Each neutral face (float 0-255) resampled along ``fraction`` times the TV-L1
    optical flow that carries it onto its ``peak`` (grey levels; scikit-image), edges
    repeated: the best a decoder that only moves the input's pixels could draw."""
    from skimage.registration import optical_flow_tvl1
    from skimage.transform import warp

    rows, cols = np.meshgrid(*map(np.arange, neutral.shape[1:3]), indexing="ij")
    out = np.empty_like(neutral)
    for i, (n, p, f) in enumerate(zip(neutral, peak, fractions)):
        v, u = optical_flow_tvl1(p.mean(-1) / 255, n.mean(-1) / 255)
        coords = np.array([rows + f * v, cols + f * u])
        out[i] = np.stack([warp(n[..., c], coords, mode="edge", preserve_range=True)
                           for c in range(n.shape[-1])], -1)
    return out


def cell_means(faces, k):
    """Faces (float 0-255) average-pooled over ``k x k`` cells and resized back
    bilinearly: what ``model.decoder_hole_blur=k`` shows G of the hole."""
    import keras

    pooled = keras.layers.AveragePooling2D(k)(faces)
    size = faces.shape[1]
    return keras.ops.convert_to_numpy(keras.layers.Resizing(size, size, "bilinear")(pooled))


def jittered_sweep(h):
    """The true sweep rendered as the data set captures faces: each subject's pose
    jitter, light change and sensor noise (jitter seed 7), same s and lighting."""
    from exprgan_tf.data import builtin_rows
    from exprgan_tf.data.faces import FaceSet

    it, rows = h["intensity"], builtin_rows(split="test")
    src = [rows[h["first_face"][i]] for i in it["src"]]
    return FaceSet(seed=0, num_subjects=80).render_batch(
        [r["subject"] for r in src], it["tgt"].tolist(), it["req"].tolist(),
        [r["lighting"] for r in src], it["neutral"].shape[1], [7] * len(src))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "results", "intensity_reading"))
    args = p.parse_args(argv)
    header = run_header("intensity_reading.py", argv)

    from exprgan_tf.evaluation import scores
    from exprgan_tf.evaluation.learning import heldout_set
    from intensity_sweep import true_sweep

    readings = dict(READINGS)
    readings["for strength (TOLERANT_READING)"] = dict(scores.TOLERANT_READING)
    h = heldout_set(64)
    it = h["intensity"]
    req, ladders = it["req"], it["ladders"]
    from exprgan_tf.data.regions import expression_regions

    cases = faults(true_sweep(h), it["neutral"][it["src"]], jittered_sweep(h),
                   expression_regions(it["neutral"].shape[1], 90.0),
                   ladders[:, -1].astype(np.float32), req.astype(np.float32))
    levels = [f"{r:g}" for r in np.unique(req)]
    table = {}
    for name, (faces, want) in cases.items():
        table[name] = {"should_read": want}
        for rname, kw in readings.items():
            t = scores.estimate_intensity(faces, ladders, **kw)
            table[name][rname] = {"spearman": scores.spearman(req, t),
                                  "mean_by_request": dict(zip(levels, [
                                      round(float(t[req == r].mean()), 3)
                                      for r in np.unique(req)]))}
        print(name, {r: round(v["spearman"], 3) for r, v in table[name].items()
                     if r != "should_read"}, flush=True)
    result = {**header, "readings": readings, "faults": table}

    md = ["# Reading intensity: exact pixels or strength", "",
          f"- Date: {header['date']}; load {header['load_start']}",
          f"- Command: `{header['command']}`",
          "- Faces: the learning report's intensity test with known answers: 8 held-out "
          f"subjects x 6 expressions x s = {' / '.join(levels)} (240 faces), the true renders "
          "and copies of them with one fault each", "",
          "Spearman(requested s, reading) and, in brackets, the mean reading at s = 1:", "",
          "| faces | should read | " + " | ".join(readings) + " |",
          "|---|---|" + "---|" * len(readings)]
    for name, row in table.items():
        md.append(f"| {name} | {row['should_read']} | " + " | ".join(
            f"{row[r]['spearman']:.3f} ({row[r]['mean_by_request']['1']:.2f})"
            for r in readings) + " |")
    md += ["", "The last rows keep the true change and replace the person's resting face "
           "inside the editor's paste map (percentile 90) by the average of the 8 held-out "
           "subjects' neutral faces, or by the person's own neutral face average-pooled "
           "over k x k cells and resized back (what `model.decoder_hole_blur=k` shows G), "
           "or by those cell means above 5/8 of the height and the average below (what "
           "`model.decoder_hole_blur_above=0.625` shows G, with the resting mouth drawn "
           "as the average one). The two after them make the weaker faces from the true "
           "peak: a cross-fade from the neutral face (what the editor's fade reads with a "
           "perfect G), and the neutral face warped along s times the TV-L1 optical flow "
           "(scikit-image) that carries it onto the peak (what a G that only moves the "
           "input's pixels could reach at best).",
           "", "Readings: " + "; ".join(f"{k}: {v}" for k, v in readings.items()) + ".", ""]
    write_result(args.out, result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
