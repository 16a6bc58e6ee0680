#!/usr/bin/env python
"""How close to the true target can an edit come? The floor under the learning report's
L1 and SSIM bars.

The learning report (``benchmarks/train_learning.py``) compares every held-out edit with
its true target: the clean, centred render of the input's subject at the requested
expression (``FaceSet.true_face``). The input carries pose jitter, a light and gain
change and sensor noise that the target does not, so part of the input-unchanged
baseline (L1 0.0379) is not the expression at all. This script scores, on the same 864
edits and true targets:

1. the unchanged input (the report's baseline);
2. perfect editors that keep the input's capture: the same subject re-rendered at the
   requested expression in the input's own pose, light and gain (``FaceSet.render_batch
   (..., poses_of=...)``), without noise, and with the input's own noise added back;
3. linear codes: each held-out input reconstructed from its first ``k`` principal
   components (fitted on the 1,296 training faces), ``k`` = z's size (50) and more -
   the reconstruction an encoder-decoder of that code size should reach at least,
   scored on the edits that keep the input's expression (the report's
   "reconstructions" row).

Writes ``benchmarks/results/ground_truth_floor.{json,md}``.

Example:
    python benchmarks/ground_truth_floor.py --size 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf import data  # noqa: E402
from exprgan_tf.data.faces import FaceSet  # noqa: E402
from exprgan_tf.evaluation import scores  # noqa: E402
from exprgan_tf.evaluation.learning import heldout_set  # noqa: E402
from _results import run_header, write_result  # noqa: E402


def posed_edits(faces, rows, src, tgt, size):
    """Each edit's subject at the requested expression (intensity 1) in the input's own
    pose, light and gain, without sensor noise."""
    r = [rows[i] for i in src]
    return faces.render_batch([x["subject"] for x in r], np.asarray(tgt).tolist(),
                              [1.0] * len(r), [x["lighting"] for x in r], size,
                              [x["jitter_seed"] for x in r],
                              poses_of=[(x["label"], x["intensity"]) for x in r])


def pca_reconstructions(train, test, k):
    """``test`` (uint8) through the first ``k`` principal components of ``train``."""
    from sklearn.decomposition import PCA

    flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
    pca = PCA(k, random_state=0).fit(flat(train))
    out = pca.inverse_transform(pca.transform(flat(test))).reshape(test.shape)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--components", type=int, nargs="+", default=[50, 128, 300])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "ground_truth_floor"))
    args = parser.parse_args(argv)
    result = run_header("ground_truth_floor.py", argv)
    t0 = time.time()
    h = heldout_set(args.size)
    x, y, rows, src, tgt, truth = h["x"], h["y"], h["rows"], h["src"], h["tgt"], h["truth"]
    own = tgt == y[src]
    faces = FaceSet(seed=0, num_subjects=80)

    def score(name, edits, note):
        all_ = scores.ground_truth_scores(edits, truth)
        rec = scores.ground_truth_scores(edits[own], truth[own])
        row = {"what": name, "l1": all_["l1"], "ssim": all_["ssim"],
               "l1_reconstruction": rec["l1"], "ssim_reconstruction": rec["ssim"],
               "note": note}
        print(f"{name}: L1 {row['l1']:.4f}, SSIM {row['ssim']:.3f} (own expression: L1 "
              f"{row['l1_reconstruction']:.4f})", flush=True)
        return row

    table = [score("input unchanged", x[src], "the learning report's baseline")]
    posed = posed_edits(faces, rows, src, tgt, args.size)
    table.append(score("perfect editor keeping the input's pose, light and gain", posed,
                       "no sensor noise"))
    own_posed = posed_edits(faces, rows, np.arange(len(x)), y, args.size)
    noise = x.astype(np.int16) - own_posed.astype(np.int16)
    noisy = np.clip(posed.astype(np.int16) + noise[src], 0, 255).astype(np.uint8)
    table.append(score("the same with the input's own noise", noisy,
                       "all the input keeps but its expression"))
    train, _, _ = data.load_split(None, "train", args.size)
    for k in args.components:
        rec = pca_reconstructions(train, x, k)
        table.append(score(f"the input through {k} principal components", rec[src],
                           "fitted on the training faces; the expression is the input's"))
    result.update({"size": args.size, "edits": int(len(src)), "table": table,
                   "seconds": round(time.time() - t0, 1)})
    md = [f"# How close an edit can come to its true target ({args.size} px)", "",
          f"- Date: {result['date']}; load average at start {result['load_start']}",
          f"- Command: `{result['command']}`",
          f"- {len(src)} edits of the 144 held-out faces (P073-P080), every face to each "
          "of the six expressions at intensity 1; true target = the clean centred render",
          "", "| edits | L1 | SSIM | L1, own expression | note |", "|---|---|---|---|---|"]
    md += [f"| {r['what']} | {r['l1']:.4f} | {r['ssim']:.3f} | "
           f"{r['l1_reconstruction']:.4f} | {r['note']} |" for r in table]
    write_result(args.out, result, md + [""])
    print("\n".join(md))


if __name__ == "__main__":
    main()
