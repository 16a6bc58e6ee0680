#!/usr/bin/env python
"""Where does intensity following fail? The learning report's intensity test, by class,
next to what a perfect editor scores on it, with the picture.

The learning report (``benchmarks/train_learning.py``, measure 6) edits each held-out
subject's clean neutral face to the six expressions at s = 0, .25, .5, .75, 1 and reads
the intensity that came out off a ladder of true faces (nearest by L1). This script
runs the same test on one model and adds:

1. the test's ceiling: the true render at each requested s, read off the same ladders
   (so a low Spearman is the model's, not the estimator's);
2. Spearman and the mean estimate per requested s for each target expression, at exact
   pixels and read for strength (``scores.TOLERANT_READING``,
   ``benchmarks/results/intensity_reading.md``);
3. the mean L1 (0-255) of each edit to its nearest ladder face and to the ladder face
   at the requested s (how far the edits are from every true face at all), beside the
   L1 between a ladder's two ends (how far apart the faces to be told apart are);
4. the (subject, expression) rows whose edits read as neutral at every s, and the
   Spearman of the other rows: a row that reads 0 throughout ties with every s = 0
   edit, so a few such rows cost more than a flat response spread over all of them;
5. the mean L1 of each full edit (s = 1) to the true face at the peak, beside the
   neutral face's (the ladder's length): the drawing's error against the size of the
   expression it should draw;
6. a picture: for two subjects, one row per expression, the edits at the five s and
   then the true faces at the same s.

``--variant V`` edits through one of ``benchmarks/edit_filters.py``'s edit-time variants
(``fade``, ``curve:0.5``, ...) instead of the model as it is; ``gain:G`` is
``--intensity-scale G`` (the editor's ``model.intensity_scale``).

Writes ``<out>.json``, ``<out>.md`` and ``<out>.png``.

Example:
    python benchmarks/intensity_sweep.py --checkpoint checkpoints/pretrained-proposed-small.npz \\
        --out benchmarks/results/intensity_sweep_shipped
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                  # _results
sys.path.insert(0, os.path.join(HERE, os.pardir))

from exprgan_tf.cli import add_edit_time_arguments, edit_time_settings  # noqa: E402
from exprgan_tf.config import EXPRESSIONS  # noqa: E402
from exprgan_tf.evaluation import scores  # noqa: E402
from exprgan_tf.evaluation.learning import TRAINING_PROBE, heldout_set  # noqa: E402
from _results import run_header, write_result  # noqa: E402


def load(args):
    """The ``ExpressionEditor`` of ``--checkpoint`` or ``--run-dir`` (with the map of
    ``--edit-regions``, the gate of ``--paste-gate`` and the scale of
    ``--intensity-scale`` when given)."""
    if args.checkpoint:
        from exprgan_tf.editor_io import load_editor

        editor = load_editor(args.checkpoint)
    else:
        from exprgan_tf.editor import ExpressionEditor
        from exprgan_tf.run_dir import load_networks

        config, nets = load_networks(args.run_dir, averaged=not args.trained_weights)
        editor = ExpressionEditor.from_networks(config, nets["encoder"], nets["decoder"])
    settings = edit_time_settings(args)
    return editor.with_settings(**settings) if settings else editor


def true_sweep(h):
    """The true render of every sweep edit: its subject at the requested expression and
    s, in the neutral input's lighting, clean (what a perfect editor gives)."""
    from exprgan_tf.data.faces import FaceSet

    it, rows = h["intensity"], h["rows"]
    src = [rows[h["first_face"][i]] for i in it["src"]]
    size = it["neutral"].shape[1]
    return FaceSet(seed=0, num_subjects=80).render_batch(
        [r["subject"] for r in src], it["tgt"].tolist(), it["req"].tolist(),
        [r["lighting"] for r in src], size, None)


def by_class(req, t_hat):
    """Per target expression: Spearman and the mean estimate at each requested s."""
    return {"spearman": scores.spearman(req, t_hat),
            "mean_t_hat_by_request": {str(r): round(float(t_hat[req == r].mean()), 3)
                                      for r in np.unique(req)}}


def neutral_rows(src, tgt, req, t_hat) -> dict:
    """The (subject, expression) rows of the sweep whose every edit reads 0.

    Returns:
        ``{"rows": [[subject, expression], ...], "of": number of rows, "spearman_without":
        Spearman(requested, estimated) over the other rows (None when undefined)}``.
    """
    pairs = sorted({(int(a), int(b)) for a, b in zip(src, tgt)})
    flat = [[a, b] for a, b in pairs if not np.any(t_hat[(src == a) & (tgt == b)])]
    keep = np.ones(len(req), bool)
    for a, b in flat:
        keep &= ~((src == a) & (tgt == b))
    return {"rows": flat, "of": len(pairs),
            "spearman_without": scores.spearman(req[keep], t_hat[keep])}


def rho(value) -> str:
    """A Spearman correlation for the tables: three decimals, or ``"undefined"`` when the
    estimate is constant (a model that returns its input reads 0 at every s)."""
    return "undefined" if value is None else f"{value:.3f}"


def class_table(by_class_result, levels):
    """Markdown lines: per expression, the model's and a perfect editor's Spearman and the
    model's mean estimate at each requested s."""
    lines = ["| expression | Spearman, model | Spearman, perfect | mean estimate at s = "
             + " / ".join(f"{r:g}" for r in levels) + ", model |", "|---|---|---|---|"]
    for name, d in by_class_result.items():
        m = d["model"]
        lines.append(f"| {name} | {rho(m['spearman'])} | {rho(d['perfect']['spearman'])} | "
                     + " / ".join(f"{v:.2f}" for v in m["mean_t_hat_by_request"].values())
                     + " |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="FILE.npz", help="a compact editor")
    src.add_argument("--run-dir", help="a training run (its weight average when it keeps "
                     "one; see --trained-weights)")
    p.add_argument("--trained-weights", action="store_true",
                   help="with --run-dir: the trained weights of a run that keeps a weight "
                        "average (training.ema_momentum), not the average")
    p.add_argument("--variant", help="an edit-time variant of benchmarks/edit_filters.py "
                   "(e.g. gain:2), applied in this process before the model is loaded")
    add_edit_time_arguments(p, "edit")
    p.add_argument("--subjects", choices=("held-out", "training"), default="held-out",
                   help="sweep the held-out subjects' faces (P073-P080, the result) or eight "
                        "training subjects' (P001-P008: for choosing edit-time settings "
                        "without looking at the held-out faces, never a result)")
    p.add_argument("--out", required=True, help="output stem (.json, .md, .png)")
    args = p.parse_args(argv)
    if args.trained_weights and not args.run_dir:
        p.error("--trained-weights needs --run-dir (a compact editor holds one set of "
                "weights)")
    header = run_header("intensity_sweep.py", argv)
    if args.variant:
        from edit_filters import intensity_scale_of, use_variant

        scale = intensity_scale_of(args.variant)
        if scale is not None and args.intensity_scale is not None:
            p.error("--variant gain:G is --intensity-scale G; give one of them")
        if scale is not None:
            args.intensity_scale = scale
        else:
            use_variant(args.variant)

    editor = load(args)
    h = heldout_set(editor.image_size, subjects=(TRAINING_PROBE if args.subjects == "training"
                                                 else None))
    it = h["intensity"]
    req, tgt, ladders = it["req"], it["tgt"], it["ladders"]
    edits = editor.edit(it["neutral"][it["src"]], tgt, req)
    truth = true_sweep(h)
    t_hat = scores.estimate_intensity(edits, ladders)
    t_true = scores.estimate_intensity(truth, ladders)
    tol_hat = scores.estimate_intensity(edits, ladders, **scores.TOLERANT_READING)
    tol_true = scores.estimate_intensity(truth, ladders, **scores.TOLERANT_READING)
    dist = np.abs(ladders.astype(np.float32) - edits.astype(np.float32)[:, None]).mean((2, 3, 4))
    at_s = np.round(req / (scores.INTENSITY_LADDER[1] - scores.INTENSITY_LADDER[0])).astype(int)
    result = {**header, "model": args.checkpoint or args.run_dir, "subjects": args.subjects,
              "trained_weights": bool(args.trained_weights), "variant": args.variant,
              "edit_regions": editor.edit_regions, "paste_gate": editor.paste_gate,
              "intensity_scale": editor.intensity_scale,
              "edits": int(len(req)),
              "model_scores": scores.intensity_scores(req, t_hat),
              "perfect_editor": scores.intensity_scores(req, t_true),
              "by_class": {EXPRESSIONS[e]: {"model": by_class(req[tgt == e], t_hat[tgt == e]),
                                            "perfect": by_class(req[tgt == e], t_true[tgt == e])}
                           for e in range(6)},
              "tolerant": {"reading": dict(scores.TOLERANT_READING),
                           "model_scores": scores.intensity_scores(req, tol_hat),
                           "perfect_editor": scores.intensity_scores(req, tol_true),
                           "by_class": {EXPRESSIONS[e]: {
                               "model": by_class(req[tgt == e], tol_hat[tgt == e]),
                               "perfect": by_class(req[tgt == e], tol_true[tgt == e])}
                               for e in range(6)}},
              "l1_to_nearest_ladder_face": float(dist.min(1).mean()),
              "l1_to_ladder_face_at_s": float(dist[np.arange(len(dist)), at_s].mean()),
              "l1_ladder_ends": float(np.abs(ladders[:, 0].astype(np.float32)
                                             - ladders[:, -1]).mean()),
              "l1_full_edit_to_peak": float(np.abs(
                  edits[req == 1].astype(np.float32) - ladders[req == 1, -1]).mean()),
              "l1_neutral_to_peak": float(np.abs(
                  ladders[req == 1, 0].astype(np.float32) - ladders[req == 1, -1]).mean()),
              "neutral_rows": {"exact": neutral_rows(it["src"], tgt, req, t_hat),
                               "strength": neutral_rows(it["src"], tgt, req, tol_hat)}}

    levels = np.unique(req)
    md = [f"# Intensity sweep: {result['model']}", "",
          f"- Date: {header['date']}; load {header['load_start']}",
          f"- Command: `{header['command']}`",
          *(["- Weights: the trained weights (`--trained-weights`), not their average"]
            if args.trained_weights else []),
          *([f"- Edited through `benchmarks/edit_filters.py {args.variant}`"]
            if args.variant else []),
          *([f"- Pasted through the map of `model.edit_regions={editor.edit_regions:g}`"]
            if editor.edit_regions else []),
          *([f"- Pasted only where the code changes G's drawing (`model.paste_gate="
             f"{editor.paste_gate:g}`)"] if editor.paste_gate else []),
          *([f"- Intensity s drawn with G's code at {editor.intensity_scale:g} s "
             f"(`model.intensity_scale={editor.intensity_scale:g}`)"]
            if editor.intensity_scale != 1 else []),
          f"- {len(req)} edits: 8 {args.subjects} subjects' clean neutral faces x 6 "
          "expressions x "
          f"s = {', '.join(f'{r:g}' for r in levels)}", "",
          f"Spearman(requested, estimated): model {rho(result['model_scores']['spearman'])}, "
          f"perfect editor {rho(result['perfect_editor']['spearman'])}. Mean L1 (0-255) of "
          f"an edit to its nearest ladder face {result['l1_to_nearest_ladder_face']:.2f}, "
          f"to the ladder face at the requested s {result['l1_to_ladder_face_at_s']:.2f}; "
          f"between a ladder's two ends (t = 0 and 1) {result['l1_ladder_ends']:.2f}.", "",
          f"The full edits (s = 1) are {result['l1_full_edit_to_peak']:.2f} from the true "
          f"face at the peak, the neutral face {result['l1_neutral_to_peak']:.2f}. "
          + "; ".join(f"{name}: {len(r['rows'])} of {r['of']} (subject, expression) rows "
                      f"read 0 at every s, Spearman {rho(r['spearman_without'])} without them"
                      for name, r in (("exact", result["neutral_rows"]["exact"]),
                                      ("for strength", result["neutral_rows"]["strength"])))
          + ".", "",
          *class_table(result["by_class"], levels)]
    tol = result["tolerant"]
    md += ["", "Read for strength (`scores.TOLERANT_READING`: edit and ladder blurred by "
           f"{tol['reading']['blur']:g} px, the best shift within "
           f"{tol['reading']['max_shift']} px; `benchmarks/results/intensity_reading.md`): "
           f"Spearman model {rho(tol['model_scores']['spearman'])}, perfect editor "
           f"{rho(tol['perfect_editor']['spearman'])}.", "",
           *class_table(tol["by_class"], levels)]
    md += ["", f"![sweep]({os.path.basename(args.out)}.png)", "",
           "Picture: two subjects, one row per expression (EXPRESSIONS order); left the "
           "edits at the five s, right the true faces at the same s.", ""]

    from PIL import Image
    from exprgan_tf.visualize import image_grid

    rows = []
    for s in (0, 3):
        for e in range(6):
            k = np.flatnonzero((it["src"] == s) & (tgt == e))
            rows.append(np.concatenate([edits[k], truth[k]]))
    Image.fromarray(image_grid(np.stack(rows))).save(args.out + ".png")
    write_result(args.out, result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
