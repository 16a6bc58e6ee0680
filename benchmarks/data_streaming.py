#!/usr/bin/env python
"""Training from image folders of growing size: peak memory and images/s of the input
pipeline (:class:`~exprgan_tf.training.TrainingInputs`) and of a few training steps.

For every folder (written beforehand with ``scripts/prepare_data.py``; ``--generate``
writes the missing ones) and every cache mode, a fresh subprocess:

1. lists the training split (``data.list_split``: paths, labels, subjects);
2. builds ``TrainingInputs`` with the paired term's partners (``pair_groups``: every
   sample also reads its partner's file) and reads ``--batches`` batches of
   ``--batch-size`` from epoch 0 on (timed from the first batch to the last:
   decode + resize + pre-process + flip + batch, with prefetch);
3. builds the ``Trainer`` of stage 2 (``proposed-small``, identity network off) on the
   same files and runs ``--steps`` steps of ``Trainer.fit``; the step rate is the median
   of the steps after the first (which traces).

Peak RSS is the child's ``VmHWM`` after step 2 (pipeline) and at the end (training).
Modes: ``streamed`` (``cache_bytes=0``: every batch reads its files), ``default`` (the
2 GiB limit: cached when the pre-processed images fit) and ``cached`` (a limit above
the folder's size).

Writes ``benchmarks/results/data_streaming.{json,md}`` (or ``--out``).

Example:
    python benchmarks/data_streaming.py --generate --root /tmp/exprgan_stream \\
        --sizes 2000 20000 50000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _results import run_header, write_result  # noqa: E402

FACES_PER_SUBJECT = 18  # 6 expressions x 3 peak frames (prepare_data.py's default)


def folder_of(root, faces):
    return os.path.join(root, f"faces{faces}")


def generate(root, faces, size):
    """Write ``faces`` (rounded up to whole subjects) with prepare_data.py at ``size``."""
    out = folder_of(root, faces)
    if os.path.isdir(out) and os.path.exists(os.path.join(out, "manifest.csv")):
        return None
    subjects = math.ceil(faces / FACES_PER_SUBJECT)
    start = time.time()
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "prepare_data.py"),
                    "--out", out, "--size", str(size), "--num-subjects", str(subjects)],
                   check=True)
    return round(time.time() - start, 1)


def _peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return None


def child(spec):
    """One folder in one cache mode (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, REPO)
    import numpy as np
    import tensorflow as tf

    from exprgan_tf import data
    from exprgan_tf.config import get_preset
    from exprgan_tf.training import Trainer, TrainingInputs

    out = {"base_rss_mib": _peak_mib()}
    config = get_preset("proposed-small").override(spec["overrides"])
    size = config.model.image_size
    start = time.perf_counter()
    paths, labels, subjects = data.list_split(spec["folder"], "train")
    groups = data.pair_groups(spec["folder"], "train", subjects)
    out.update(train_images=len(paths), list_s=round(time.perf_counter() - start, 2),
               preprocessed_mib=round(len(paths) * size * size * 3 * 4 / 2**20))
    messages = []
    start = time.perf_counter()
    inputs = TrainingInputs(paths, labels, config, spec["batch"], pair_groups=groups,
                            cache_bytes=spec["cache_bytes"], log=messages.append)
    out.update(build_inputs_s=round(time.perf_counter() - start, 2),
               streamed=inputs.streamed, log=messages)
    taken, epoch, t_first, t_end = 0, 0, None, None
    start = time.perf_counter()
    while taken < spec["batches"]:
        for batch in inputs.epoch(epoch):
            taken += 1
            if t_first is None:  # the first batch: the epoch's plan and first reads
                t_first = time.perf_counter()
                out["first_batch_s"] = round(t_first - start, 3)
            if taken == spec["batches"]:
                break
        epoch += 1
    t_end = time.perf_counter()
    out["pipeline_img_per_s"] = round((taken - 1) * spec["batch"] / (t_end - t_first), 1)
    out["pipeline_batches"] = taken
    out["peak_rss_pipeline_mib"] = _peak_mib()
    del inputs, batch

    if spec["steps"]:
        stamps = []
        messages = []
        start = time.perf_counter()
        trainer = Trainer(config, spec["run_dir"], 2, paths, labels, batch_size=spec["batch"],
                          pair_groups=groups, cache_bytes=spec["cache_bytes"],
                          log=messages.append, strategy=tf.distribute.get_strategy())
        out["build_trainer_s"] = round(time.perf_counter() - start, 2)
        step = trainer.step

        def timed(batch):
            losses = step(batch)
            float(losses["loss_EG"])  # wait for the step
            stamps.append(time.perf_counter())
            return losses

        trainer.step = timed
        start = time.perf_counter()
        trainer.fit(epochs=1, max_steps=spec["steps"])
        trainer.close()
        gaps = np.diff([start] + stamps)
        out.update(first_step_s=round(float(gaps[0]), 2),
                   train_step_s=round(float(np.median(gaps[1:])), 3),
                   train_img_per_s=round(spec["batch"] / float(np.median(gaps[1:])), 1),
                   peak_rss_end_mib=_peak_mib())
    return out


def _run_child(spec):
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return {}
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines()
                  if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines()
                  if l.startswith("flags")), [])
    simd = sorted(f for f in flags if f.startswith(("avx", "fma", "amx", "sse4")))
    return {"cpu_model": model, "cpu_simd_flags": simd}


def markdown(result):
    lines = ["# Training from image folders: memory and images/s by dataset size", "",
             f"- Date: {result['date']}; {result['cpu_count']} CPU cores "
             f"({result['cpu_model']}; {', '.join(result['cpu_simd_flags'])}), no GPU, "
             "shared with other jobs.",
             f"- Load (1-min average): {result['load_start']} at the start, "
             f"{result['load_end']} at the end.",
             f"- Command: `{result['command']}`",
             f"- Faces: {result['image_size']}x{result['image_size']} PNG written by "
             "`scripts/prepare_data.py` (6 expressions x 3 frames per subject, the last "
             "10% of subjects held out); batch "
             f"{result['batch_size']}; pipeline: {result['batches']} batches with the "
             "paired term's partners (two files read per sample); training: stage 2 "
             f"of `proposed-small` (identity network off), {result['steps']} steps.",
             "- Raw numbers: `data_streaming.json` beside this file.", "",
             "| faces in folder | training faces | mode | pre-processed size | cached? | "
             "pipeline img/s | peak RSS after pipeline | train img/s | peak RSS at end |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(
            f"| {r['faces']:,} | {r['train_images']:,} | {r['mode']} | "
            f"{r['preprocessed_mib']:,} MiB | {'no' if r['streamed'] else 'yes'} | "
            f"{r['pipeline_img_per_s']:,} | {r['peak_rss_pipeline_mib']:,} MiB | "
            f"{r.get('train_img_per_s', '-')} | {r.get('peak_rss_end_mib', '-'):,} MiB |")
    lines += ["", "Notes:", "",
              "- The folders hold whole subjects of 18 faces: 2,016 / 20,016 / 50,004 "
              "faces for 2,000 / 20,000 / 50,000.",
              "- Streamed, the peak memory does not grow with the folder (the plan of an "
              "epoch is a few bytes per image); cached, it grows by the pre-processed "
              "size. In the cached rows the peak at the end counts two caches: the "
              "benchmark builds the pipeline it measures and then the trainer's, in one "
              "process.",
              "- The machine ran other training jobs (see the load): the train step here "
              "is several times slower than on an idle core (README, Performance), and "
              "the rates move between rows for that reason alone."]
    if result.get("generate_s"):
        lines += ["", "Writing the folders (prepare_data.py, s): " + ", ".join(
            f"{k}: {v}" for k, v in result["generate_s"].items() if v is not None)]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="/tmp/exprgan_stream",
                   help="where the folders faces<N> are (or are written)")
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 50000],
                   help="faces per folder (rounded up to whole subjects of 18)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--generate", action="store_true", help="write the missing folders")
    p.add_argument("--modes", nargs="+", default=["streamed", "default", "cached"],
                   choices=("streamed", "default", "cached"))
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--steps", type=int, default=6, help="training steps (0: none)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "data_streaming"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("\nRESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return 0

    result = dict(**run_header("data_streaming.py", argv), cpu_count=os.cpu_count(),
                  **_cpu_flags(), image_size=args.image_size, batch_size=args.batch_size,
                  batches=args.batches, steps=args.steps, generate_s={}, runs=[])
    overrides = [f"model.image_size={args.image_size}", "identity.network=none"]
    for faces in args.sizes:
        if args.generate:
            result["generate_s"][faces] = generate(args.root, faces, args.image_size)
        folder = folder_of(args.root, faces)
        seen = set()
        for mode in args.modes:
            limit = {"streamed": 0, "default": 2 << 30, "cached": 1 << 50}[mode]
            spec = dict(folder=folder, overrides=overrides, batch=args.batch_size,
                        batches=args.batches, steps=args.steps, cache_bytes=limit,
                        run_dir=os.path.join(args.root, f"run-{faces}-{mode}"))
            size = faces * args.image_size ** 2 * 3 * 4 * 0.9
            kind = "streamed" if size > limit else "cached"
            if kind in seen:  # "default" is one of the other two
                continue
            seen.add(kind)
            run = dict(faces=faces, mode=mode, **_run_child(spec))
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
            subprocess.run(["rm", "-rf", spec["run_dir"]], check=False)
    result["load_end"] = round(os.getloadavg()[0], 2)
    write_result(args.out, result, markdown(result))
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
