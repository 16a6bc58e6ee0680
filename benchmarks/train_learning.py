#!/usr/bin/env python
"""Does training learn to edit the expression *and* keep the person? Trains the three
stages of a preset on the built-in face set (or scores an existing run or a compact
editor) and writes the learning report of :mod:`exprgan_tf.evaluation.learning` on the
8 held-out subjects (P073-P080), every number beside its input-unchanged baseline:
requested-expression accuracy (the judge: the Fig. 4 CNN of
``checkpoints/judges/judge-64.keras``), PCA eigenface recognition, nearest-true-target
identity (pixels and dlib), dlib same-person rate, L1/SSIM to the true target,
intensity following (Spearman) and the z spread of the decoder.

Writes ``<out>.json``, ``<out>.md``, ``<out>_edits.png`` (per held-out subject: the
input, then per expression the true target and the edit) and ``<out>_l1_map.png``
(where the edits lose L1 to the unchanged input).

Examples:
    # train 15/15/5 epochs, then score
    python benchmarks/train_learning.py --run-dir runs/bench --fresh \\
        --out benchmarks/results/recipe/01_defaults
    # score a run written by scripts/train.py, no training
    python benchmarks/train_learning.py --run-dir runs/e1 --score-only \\
        --out benchmarks/results/recipe/e1
    # score a compact editor
    python benchmarks/train_learning.py --checkpoint checkpoints/pretrained-proposed-small.npz \\
        --out benchmarks/results/recipe/00_shipped_before
    # the same report on eight training subjects: how much of a miss is generalisation
    python benchmarks/train_learning.py --run-dir runs/e1 --score-only --subjects training \\
        --out benchmarks/results/recipe/e1_training_subjects
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                  # _results
sys.path.insert(0, os.path.join(HERE, os.pardir))
from _results import run_header, write_result  # noqa: E402


def config_overrides(config) -> list:
    """``key=value`` of every config value that differs from the config's own preset."""
    from exprgan_tf.config import get_preset

    try:
        base = get_preset(config.name).to_dict()
    except (ValueError, KeyError):
        return []
    out = []

    def walk(a, b, prefix):
        for k in sorted(set(a) | set(b)):
            va, vb = a.get(k), b.get(k)
            if isinstance(va, dict) and isinstance(vb, dict):
                walk(va, vb, f"{prefix}{k}.")
            elif va != vb:
                out.append(f"{prefix}{k}={json.dumps(va)}")

    walk(config.to_dict(), base, "")
    return [o for o in out if not o.startswith("name=")]


def history_summary(run_dir) -> dict:
    """Per stage: epochs, steps and wall seconds from the run's ``history.csv``."""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        return {}
    stages = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            s = stages.setdefault(f"stage{row['stage']}", {"epochs": 0, "steps": 0,
                                                           "seconds": 0.0})
            s["epochs"] = max(s["epochs"], int(row["epoch"]))
            s["steps"] = max(s["steps"], int(row["global_step"]))
            s["seconds"] = round(s["seconds"] + float(row["seconds"] or 0.0), 1)
    return stages


def edits_sheet(report, heldout, out_png):
    """Per held-out subject (its first face): input, then true target + edit for each
    expression. Columns = subjects."""
    from exprgan_tf.config import EXPRESSIONS
    from exprgan_tf.visualize import labelled_grid, save_png

    edits, src, tgt, truth = report["_edits"], heldout["src"], heldout["tgt"], heldout["truth"]
    faces = heldout["first_face"]
    rows, names = [heldout["x"][faces]], ["input"]
    for e, name in enumerate(EXPRESSIONS):
        pick = [int(np.flatnonzero((src == i) & (tgt == e))[0]) for i in faces]
        rows += [truth[pick], edits[pick]]
        names += [f"{name[:5]} true", f"{name[:5]} edit"]
    return save_png(labelled_grid(np.stack(rows), names, heldout["subject_ids"]), out_png)


L1_MAP_SCALE = 10.0
"""Full colour in the L1 map at this many 0-255 levels of excess or gain."""


def l1_map(report, heldout, out_png):
    """Where the edits lose L1 to the unchanged input (``scores.l1_excess_map`` over the
    864 edits): red where the edits are further from their true targets than the inputs,
    blue where nearer, full colour at :data:`L1_MAP_SCALE` levels; 4x size."""
    from exprgan_tf.evaluation.scores import l1_excess_map
    from exprgan_tf.visualize import save_png

    excess = l1_excess_map(report["_edits"], heldout["truth"], heldout["x"][heldout["src"]])
    rgb = np.zeros(excess.shape + (3,))
    rgb[..., 0] = np.clip(excess / L1_MAP_SCALE, 0, 1)
    rgb[..., 2] = np.clip(-excess / L1_MAP_SCALE, 0, 1)
    big = (rgb * 255).round().astype(np.uint8).repeat(4, 0).repeat(4, 1)
    return save_png(big, out_png)


def train(args, cfg):
    from exprgan_tf import data
    from exprgan_tf.training import Trainer

    if args.fresh and os.path.isdir(args.run_dir):
        shutil.rmtree(args.run_dir)
    test_images, _, _ = data.load_split(None, "test", cfg.model.image_size)
    timings, loaded = {}, {}
    for stage, epochs in zip((1, 2, 3), args.epochs):
        t0 = time.time()
        if (stage > 1) not in loaded:  # stages 2 and 3 train on the same data
            loaded[stage > 1] = data.training_data(cfg, stage)
        images, labels, _, inputs = loaded[stage > 1]
        trainer = Trainer(cfg, args.run_dir, stage, images, labels,
                          sample_images=test_images[::18][:8], **inputs)
        trainer.fit(epochs=epochs)
        timings[f"stage{stage}"] = {"epochs": epochs, "steps": int(trainer.global_step),
                                    "seconds": round(time.time() - t0, 1)}
    return (trainer.config, *trainer.editing_networks(), timings)


def main(argv=None, command=None):
    """Train (unless told not to) and score; ``command``: the script and arguments the
    report names as its command, when another benchmark runs this one
    (``benchmarks/edit_filters.py``), else this script and ``argv``."""
    from exprgan_tf.cli import add_edit_time_arguments, edit_time_settings

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="proposed-small",
                   help="preset to train; with --checkpoint: the preset the editor was "
                        "trained with (its latent size and code layout are read from it)")
    p.add_argument("--epochs", type=int, nargs=3, default=(15, 15, 5),
                   metavar=("S1", "S2", "S3"))
    p.add_argument("--identity", default="none", choices=("none", "dlib_resnet", "vgg_face"),
                   help="identity.network for training (L_id)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override, as scripts/train.py")
    p.add_argument("--run-dir", default=os.path.join("runs", "benchmark_learning"))
    p.add_argument("--fresh", action="store_true", help="delete the run dir first")
    p.add_argument("--score-only", action="store_true",
                   help="score the networks already in --run-dir; no training")
    p.add_argument("--checkpoint", default=None, metavar="FILE.npz",
                   help="score this compact editor (exprgan_tf.load_editor); no training")
    p.add_argument("--judge", default=None,
                   help="expression judge (.keras); default checkpoints/judges/judge-<size>.keras, "
                        "trained there with the recipe when missing")
    p.add_argument("--dlib-weights", default=None,
                   help="dlib descriptor weights (default: the fetch_weights.py cache)")
    p.add_argument("--undo-sharpening", action="store_true",
                   help="score the edits after undoing the unsharp mask G was trained to "
                        "draw (exprgan_tf.preprocessing.undo_unsharp_mask; a diagnostic)")
    p.add_argument("--trained-weights", action="store_true",
                   help="with --score-only: score the trained weights of a run that keeps "
                        "a weight average (training.ema_momentum), not the average")
    add_edit_time_arguments(p, "score")
    p.add_argument("--subjects", choices=("held-out", "training"), default="held-out",
                   help="score on the held-out subjects (P073-P080, the result) or on "
                        "eight training subjects (P001-P008: a diagnostic of how well "
                        "the model fits faces it was trained on, never a result)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "train_learning"))
    args = p.parse_args(argv)
    if args.checkpoint and args.score_only:
        p.error("--checkpoint and --score-only are exclusive (a checkpoint is always "
                "only scored)")

    import tensorflow as tf

    from exprgan_tf.config import get_preset
    from exprgan_tf.evaluation import learning
    from exprgan_tf.evaluation.classifier import default_judge_path, load_or_train_judge

    t_start = time.time()
    meta = {**run_header(*(command or ("train_learning.py", argv))),
            "tensorflow": tf.__version__, "cpu_count": os.cpu_count()}
    if args.checkpoint:
        from exprgan_tf.editor_io import load_editor
        editor = load_editor(args.checkpoint)
        config, enc, dec = learning.editor_networks(editor, args.preset)
        meta.update(model=args.checkpoint, preset=args.preset, overrides=[], training={})
    elif args.score_only:
        from exprgan_tf.run_dir import load_networks
        config, nets = load_networks(args.run_dir, averaged=not args.trained_weights)
        enc, dec = nets["encoder"], nets["decoder"]
        meta.update(model=args.run_dir, preset=config.name,
                    weights=("trained" if args.trained_weights or not
                             config.training.ema_momentum else "average"),
                    overrides=config_overrides(config),
                    training=history_summary(args.run_dir))
    else:
        cfg = get_preset(args.preset).override([f"identity.network={args.identity}"]
                                               + args.overrides)
        config, enc, dec, timings = train(args, cfg)
        meta.update(model=args.run_dir, preset=config.name,
                    overrides=config_overrides(config), training=timings,
                    epochs=list(args.epochs))
    edit_time = [f"model.{k}={v:g}" for k, v in edit_time_settings(args).items()]
    if edit_time:
        config = config.override(edit_time)
        meta["overrides"] = config_overrides(config)
    size = config.model.image_size

    judge_path = args.judge or default_judge_path(size)
    judge = load_or_train_judge(size, judge_path)
    descriptor = learning.dlib_descriptor(args.dlib_weights)
    print(f"Scoring {meta['model']} (judge {os.path.relpath(judge_path)}, dlib "
          f"{'on' if descriptor is not None else 'MISSING'})", flush=True)
    seen = args.subjects == "training"
    heldout = learning.heldout_set(size, subjects=learning.TRAINING_PROBE if seen else None)
    meta["subjects"] = args.subjects
    report = learning.learning_report(enc, dec, config, judge=judge, descriptor=descriptor,
                                      heldout=heldout, undo_sharpening=args.undo_sharpening)
    png = edits_sheet(report, heldout, args.out + "_edits.png")
    where = l1_map(report, heldout, args.out + "_l1_map.png")
    meta["judge"] = os.path.relpath(judge_path, os.path.join(HERE, os.pardir))
    meta["seconds_total"] = round(time.time() - t_start, 1)
    result = {**meta, "report": learning.public(report)}

    md = [f"# Learning report: {os.path.basename(args.out)}", "",
          f"- Date: {meta['date']}; TF {meta['tensorflow']}, {meta['cpu_count']} CPUs",
          f"- Command: `{meta['command']}`",
          f"- Model: `{meta['model']}` (preset {meta['preset']})",
          f"- Config overrides vs the preset: "
          f"{', '.join(f'`{o}`' for o in meta['overrides']) or 'none'}"]
    if meta["training"]:
        md.append("- Training: " + "; ".join(
            f"{k} {v['epochs']} epochs / {v['steps']} steps / {v['seconds'] / 60:.1f} min"
            for k, v in meta["training"].items()))
    who = ("TRAINING subjects (seen in training: a diagnostic, not a result)" if seen
           else "Held-out subjects")
    md += [f"- Judge: `{meta['judge']}` (on the real faces scored "
           f"{report['expression']['judge_on_real']:.1%})",
           f"- {who}: {', '.join(report['heldout_subjects'])}; scoring took "
           f"{report['seconds']:.0f} s"]
    if meta.get("weights") == "average":
        md.append("- Weights: the average of the trained weights (training.ema_momentum = "
                  f"{config.training.ema_momentum:g})")
    elif meta.get("weights") == "trained" and config.training.ema_momentum:
        md.append("- Weights: the trained weights (`--trained-weights`), not their average")
    if report["undo_sharpening"]:
        md.append("- Edits scored after `undo_unsharp_mask` (radius "
                  f"{config.preprocess.radius}, amount {config.preprocess.amount}): the "
                  "sharpening G was trained to draw, undone")
    md += ["",
           learning.markdown_rows(report), "",
           "Input unchanged = the same measurement with the unedited input in place of the "
           "edit (for intensity: the clean neutral input).", "",
           f"![edits]({os.path.basename(png)})", "",
           "Where the edits lose L1 to the unchanged input (red: further from the true "
           "target than the input, blue: nearer; full colour at "
           f"{L1_MAP_SCALE:g} of 255 levels, mean over the edits):", "",
           f"![L1 map]({os.path.basename(where)})", ""]
    write_result(args.out, result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
