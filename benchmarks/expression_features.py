#!/usr/bin/env python
"""What the expression network behind ``losses.expression`` charges for, against the pixel L1.

``L_expr_pair`` (``exprgan_tf.training.expression_features``) compares G's paired decode
with its partner in a frozen expression classifier's hidden layer instead of in pixels.
It helps only if that layer counts a change of expression or of its strength for more
than what G cannot or need not reproduce exactly. This script measures both kinds of
difference on training faces of the built-in set, in the network's normalised units
(each layer divided by its mean on the training faces) and in the pixel L1 (0-1
units, G's [-1, 1] halved):

- **what should not count**: a capture's sensor noise (the face against the same
  capture without noise) and the whole face one pixel lower;
- **what should**: the same capture (no noise) in another expression at its peak, and
  the peak against 0.5 and 0 of the same expression.

Then, on the held-out subjects, the shipped model's full edits (or ``--checkpoint F``'s)
against their true targets, per requested class, beside the unchanged input and the
subject's other true expressions: where a model's edits sit between "the right
expression" and "the next one"; and the judge on those edits and on the real held-out
faces in colour and in grey (a G trained against an expression network could carry a
class in a colour tint that a sibling judge reads; in grey only the shapes are left).
Writes ``<out>.json`` and ``<out>.md`` (about two
minutes, plus 3.5 minutes to train the network when ``--network`` is not given).

Example:
    python benchmarks/expression_features.py --out benchmarks/results/expression_features
    python benchmarks/expression_features.py --network RUN/expression_network.keras --out OUT
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                  # _results
sys.path.insert(0, os.path.join(HERE, os.pardir))

from _results import run_header, write_result  # noqa: E402

FACES = 96


def distances(features, a, b) -> dict:
    """Mean over faces of the feature distance (mean |a - b| over each layer, averaged
    over layers) and of the pixel L1 between uint8 faces ``a`` and ``b``."""
    import tensorflow as tf

    def maps(x):
        out = features(tf.convert_to_tensor(np.asarray(x, np.float32) / 127.5 - 1.0))
        return out if isinstance(out, (list, tuple)) else [out]

    fa, fb = maps(a), maps(b)
    feature = np.mean([np.mean(np.abs(p.numpy() - q.numpy())) for p, q in zip(fa, fb)])
    pixels = np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))) / 255.0
    return {"features": float(feature), "l1": float(pixels)}


def training_pairs(features, image_size: int, seed: int = 0) -> dict:
    """Name -> distances on :data:`FACES` random training faces (see the docstring)."""
    from exprgan_tf.config import EXPRESSIONS
    from exprgan_tf.data.builtin import builtin_rows, render_rows
    from exprgan_tf.data.faces import FaceSet

    rows = builtin_rows(split="train")
    rows = [rows[i] for i in np.random.default_rng(seed).choice(len(rows), FACES, replace=False)]
    faces = FaceSet(seed=0, num_subjects=80)

    def posed(label=None, t=None):   # each row's own capture, no noise
        return render_rows(faces, [dict(r, label=r["label"] if label is None else label,
                                         intensity=r["intensity"] if t is None else t,
                                         pose_of=(r["label"], r["intensity"])) for r in rows],
                           image_size)

    captured = render_rows(faces, rows, image_size)
    clean = posed()
    out = {"capture noise": distances(features, captured, clean),
           "whole face 1 px lower": distances(features, clean, np.roll(clean, 1, axis=1))}
    peaks = {k: posed(k, 1.0) for k in range(len(EXPRESSIONS))}
    others = [distances(features, peaks[k], peaks[j]) for k in peaks for j in peaks if j != k]
    out["another expression (mean of the 30 ordered pairs)"] = {
        key: float(np.mean([o[key] for o in others])) for key in ("features", "l1")}
    h, d = EXPRESSIONS.index("happiness"), EXPRESSIONS.index("disgust")
    out["smile against disgust"] = distances(features, peaks[h], peaks[d])
    for t in (0.5, 0.0):
        halves = [distances(features, peaks[k], posed(k, t)) for k in peaks]
        out[f"peak against the same expression at {t:g}"] = {
            key: float(np.mean([o[key] for o in halves])) for key in ("features", "l1")}
    out["smile against half a smile"] = distances(features, peaks[h], posed(h, 0.5))
    return out


def heldout_edits(features, checkpoint) -> dict:
    """Per requested class: the full edits, the unchanged input and the subject's other
    true expressions, each against the true target (features and L1)."""
    from exprgan_tf.config import EXPRESSIONS
    from exprgan_tf.data.faces import LIGHTINGS
    from exprgan_tf.editor_io import load_editor
    from exprgan_tf.evaluation import learning, protocol

    config, encoder, decoder = learning.editor_networks(load_editor(checkpoint))
    h = learning.heldout_set(config.model.image_size)
    x, src, tgt, rows = h["x"], h["src"], h["tgt"], h["rows"]
    edits = protocol.edit_faces(encoder, decoder, config, x[src], tgt, 1.0, 64)
    truth = h["bank"][h["candidates"][np.arange(len(src)), h["target"]]]
    keys = [(s, e, l) for s in h["subject_ids"] for e in range(6) for l in LIGHTINGS]
    index = {k: i for i, k in enumerate(keys)}
    out = {}
    for c, name in enumerate(EXPRESSIONS):
        k = (tgt == c) & (h["y"][src] != c)
        row = {"edit": distances(features, edits[k], truth[k]),
               "input unchanged": distances(features, x[src][k], truth[k])}
        for c2, other in enumerate(EXPRESSIONS):
            if c2 != c:
                idx = [index[(rows[i]["subject"], c2, rows[i]["lighting"])] for i in src[k]]
                row[f"true {other}"] = distances(features, h["bank"][idx], truth[k])
        out[name] = row
    return out


def judge_in_grey(checkpoint) -> dict:
    """The judge's accuracy (overall and per class) on the real held-out faces and on
    ``checkpoint``'s full edits to another expression, in colour and in grey."""
    from exprgan_tf.config import EXPRESSIONS
    from exprgan_tf.editor_io import load_editor
    from exprgan_tf.evaluation import learning, protocol
    from exprgan_tf.evaluation.classifier import load_or_train_judge, predict_classes
    from exprgan_tf.preprocessing import grey

    judge = load_or_train_judge(64)
    config, encoder, decoder = learning.editor_networks(load_editor(checkpoint))
    h = learning.heldout_set(config.model.image_size)
    x, y, src, tgt = h["x"], h["y"], h["src"], h["tgt"]
    k = y[src] != tgt
    edits = protocol.edit_faces(encoder, decoder, config, x[src][k], tgt[k], 1.0, 64)

    def read(images, labels):
        pred = predict_classes(judge, images)
        return {"accuracy": float(np.mean(pred == labels)),
                "per_class": {n: float(np.mean(pred[labels == c] == c))
                              for c, n in enumerate(EXPRESSIONS)}}

    return {"real faces": {"colour": read(x, y), "grey": read(grey(x), y)},
            "edits": {"colour": read(edits, tgt[k]), "grey": read(grey(edits), tgt[k])}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default=None,
                   help="a .keras expression classifier, or 'builtin-grey' (default: "
                        "'builtin'; a built-in one is trained into --work-dir, or the one "
                        "there is used: a run directory holds its own)")
    p.add_argument("--work-dir", default=os.path.join(HERE, os.pardir, "runs",
                                                      "expression_network"))
    p.add_argument("--checkpoint", default=None,
                   help="the editor whose held-out edits are measured (default: shipped)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "expression_features"))
    args = p.parse_args(argv)
    header = run_header("expression_features.py", argv)

    from exprgan_tf.editor_io import find_checkpoint
    from exprgan_tf.training.expression_features import (EXPRESSION_NETWORK,
                                                         build_expression_features)

    os.makedirs(args.work_dir, exist_ok=True)
    features = build_expression_features(args.network or "builtin", args.work_dir, 64)
    checkpoint = args.checkpoint or find_checkpoint()
    pairs = training_pairs(features, 64)
    edits = heldout_edits(features, checkpoint)
    greys = judge_in_grey(checkpoint)
    result = dict(header, network=args.network or "builtin", layers=list(
        EXPRESSION_NETWORK["layers"]), faces=FACES, checkpoint=os.fspath(checkpoint),
        training_pairs=pairs, heldout_edits=edits, judge_in_grey=greys)
    md = [f"# What the expression network charges for ({header['date']})", "",
          f"`{header['command']}`", "",
          f"Network: {result['network']}, layers {result['layers']}, units of each "
          "layer's mean on the training faces; L1 in 0-1 units.", "",
          f"## {FACES} training faces", "",
          "| pair | expression network | pixel L1 |", "|---|---|---|"]
    md += [f"| {name} | {d['features']:.3f} | {d['l1']:.4f} |" for name, d in pairs.items()]
    md += ["", f"## Held-out full edits of `{os.path.basename(os.fspath(checkpoint))}` "
           "against their true targets (expression network / L1)", "",
           "| requested | edit | input unchanged | nearest other true expression |",
           "|---|---|---|---|"]
    for name, row in edits.items():
        others = {k: v for k, v in row.items() if k.startswith("true ")}
        near = min(others, key=lambda k: others[k]["features"])
        md.append(f"| {name} | {row['edit']['features']:.3f} / {row['edit']['l1']:.4f} | "
                  f"{row['input unchanged']['features']:.3f} / "
                  f"{row['input unchanged']['l1']:.4f} | {near[5:]} "
                  f"{others[near]['features']:.3f} / {others[near]['l1']:.4f} |")
    md += ["", "## The judge in colour and in grey (held out; edits to another expression)",
           "", "| faces | colour (weakest class) | grey (weakest class) |", "|---|---|---|"]
    for name, row in greys.items():
        cells = []
        for key in ("colour", "grey"):
            weakest = min(row[key]["per_class"], key=row[key]["per_class"].get)
            cells.append(f"{row[key]['accuracy']:.1%} ({weakest} "
                         f"{row[key]['per_class'][weakest]:.1%})")
        md.append(f"| {name} | {cells[0]} | {cells[1]} |")
    write_result(args.out, result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
