#!/usr/bin/env python
"""Our Table I: the three small presets trained with the same budget, then evaluated.

1. Train ``exprgan-small``, ``proposed_no_unsharp-small`` and ``proposed-small`` on the
   built-in face set, all three stages, the same epochs per stage (default 12 / 12 / 4,
   the budget of ``benchmarks/train_learning.py``), no identity loss (``identity.network=
   none``, as that benchmark), one preset after the other, into ``<runs>/<preset>``.
   A run directory that already holds the requested epochs is not retrained (the
   trainer resumes a stopped run exactly), and ``--reuse preset=DIR`` takes a run made
   elsewhere with the same budget (it is checked from its ``history.csv``).
2. ``scripts/evaluate.py`` on the three run directories -> ``benchmarks/results/table1.md``,
   ``.csv``, ``table1_details.json`` and the figures under ``benchmarks/results/table1/``.

Example:
    python benchmarks/table1.py --epochs 12 12 4 --fid-weights random
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRESETS = ("exprgan-small", "proposed_no_unsharp-small", "proposed-small")


def epochs_done(run_dir):
    """{stage: epochs} from a run's history.csv."""
    path = os.path.join(run_dir, "history.csv")
    done = {}
    if os.path.isfile(path):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    done[int(row["stage"])] = max(done.get(int(row["stage"]), 0),
                                                  int(float(row["epoch"])))
                except (TypeError, ValueError):
                    continue
    return done


def train(preset, run_dir, epochs):
    from exprgan_tf import data
    from exprgan_tf.config import get_preset
    from exprgan_tf.training import Trainer

    cfg = get_preset(preset).override(["identity.network=none"])
    size = cfg.model.image_size
    images, labels, _ = data.load_split(None, "train", size)
    test_images, _, _ = data.load_split(None, "test", size)
    seconds = {}
    for stage, n in zip((1, 2, 3), epochs):
        if epochs_done(run_dir).get(stage, 0) >= n:
            continue
        t0 = time.time()
        Trainer(cfg, run_dir, stage, images, labels, sample_images=test_images[::18][:8],
                **data.pair_inputs(None, "train", image_size=size,
                                   intensities=cfg.training.pair_intensities
                                   if stage > 1 else ())).fit(epochs=n)
        seconds[stage] = round(time.time() - t0, 1)
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, nargs=3, default=(12, 12, 4), metavar=("S1", "S2", "S3"))
    p.add_argument("--runs", default=os.path.join("runs", "table1"), help="run dirs root")
    p.add_argument("--reuse", action="append", default=[], metavar="PRESET=DIR",
                   help="copy an existing run dir with the same budget instead of training")
    p.add_argument("--fid-weights", default="imagenet")
    p.add_argument("--no-fid", action="store_true")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--train-only", action="store_true")
    args = p.parse_args(argv)

    reuse = dict(item.split("=", 1) for item in args.reuse)
    runs, timings = [], {}
    for preset in PRESETS:
        run_dir = os.path.join(args.runs, preset)
        if preset in reuse and not os.path.isdir(run_dir):
            shutil.copytree(reuse[preset], run_dir)
        done = epochs_done(run_dir)
        if preset in reuse and [done.get(s, 0) for s in (1, 2, 3)] != list(args.epochs):
            sys.exit(f"{reuse[preset]} was trained {done}, not {args.epochs}: same budget needed")
        print(f"== {preset}: {run_dir} (done so far: {done})", flush=True)
        timings[preset] = train(preset, run_dir, args.epochs)
        runs.append(run_dir)
    if args.train_only:
        return 0

    figures = os.path.join(args.out, "table1")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"), "--out", figures,
           "--classifier", os.path.join(args.runs, "classifier.keras")]   # weights: not in git
    for r in runs:
        cmd += ["--checkpoint", r]
    cmd += ["--no-fid"] if args.no_fid else ["--fid-weights", args.fid_weights]
    print(" ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    eval_s = round(time.time() - t0, 1)

    # move the table up next to the other results, with how it was made
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(os.path.join(figures, "table1.md"), encoding="utf-8") as f:
        md = f.read()
    header = [f"<!-- written by benchmarks/table1.py, {date} -->", "",
              f"Command: `python benchmarks/table1.py {' '.join(argv or sys.argv[1:])}` "
              f"({date}; tensorflow on {os.cpu_count()} shared CPU cores, no GPU).", "",
              f"Budget, every preset: stage 1/2/3 = {'/'.join(map(str, args.epochs))} epochs "
              "on the built-in face set (1296 training faces, 64x64), identity loss off; "
              f"training seconds per stage: {timings} (empty = already trained); "
              f"evaluation {eval_s} s.", ""]
    md = md.replace("# Table I - our measurement\n", "# Table I - our measurement\n\n"
                    + "\n".join(header), 1)
    fig_lines = ["", "## Figures", ""]
    for preset in PRESETS:
        fig_lines += [f"### {preset}", "",
                      f"![Fig. 6 {preset}](table1/fig6_{preset}.png)", "",
                      f"![Intensity sweep {preset}](table1/intensity_{preset}.png)", "",
                      f"![Fig. 7 {preset}](table1/fig7_{preset}.png)", "",
                      f"![Fig. 8 {preset}](table1/fig8_{preset}.png)", ""]
    with open(os.path.join(args.out, "table1.md"), "w", encoding="utf-8") as f:
        f.write(md + "\n".join(fig_lines))
    shutil.copy(os.path.join(figures, "table1.csv"), os.path.join(args.out, "table1.csv"))
    print(f"wrote {os.path.join(args.out, 'table1.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
