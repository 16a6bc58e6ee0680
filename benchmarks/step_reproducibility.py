#!/usr/bin/env python
"""Do two identical processes train the same weights? Stage 3 from one checkpoint, again.

Copies a run directory's stages 1-2 (checkpoints, config, history) once per repeat and
runs ``scripts/train.py --stage 3 --max-steps STEPS --config <run>/config.json`` on each
copy in a fresh process, under each ``--variant``'s environment. Then it compares every
floating-point variable of the stage-3 checkpoints (networks, weight averages and
optimiser states) between all the runs, and groups runs whose variables are identical
bit for bit. Variants run interleaved (A B, A B, ...), so they share the machine's load.

A variant is ``LABEL`` or ``LABEL:ENV=VALUE,ENV=VALUE``, e.g.
``det:TF_DETERMINISTIC_OPS=1``; ``LABEL:--set=training.stage3.losses.edit=0`` passes a
config override instead.

Example (a run directory that has finished stage 2):
    python benchmarks/step_reproducibility.py --run-dir runs/R --steps 5 --repeats 2 \\
        --variant plain --variant det:TF_DETERMINISTIC_OPS=1 \\
        --variant one_thread:TF_NUM_INTRAOP_THREADS=1,TF_NUM_INTEROP_THREADS=1 \\
        --out benchmarks/results/step_reproducibility
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks._results import run_header, write_result  # noqa: E402


def parse_variant(text: str):
    label, _, items = text.partition(":")
    env, sets = {}, []
    for item in filter(None, items.split(",")):
        key, _, value = item.partition("=")
        if key == "--set":
            sets.append(value)
        else:
            env[key] = value
    return label, env, sets


def copy_stage2(run_dir: str, dest: str) -> None:
    """``run_dir`` without anything of stage 3."""
    os.makedirs(os.path.join(dest, "ckpt"))
    for stage in ("stage1", "stage2"):
        src = os.path.join(run_dir, "ckpt", stage)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, "ckpt", stage))
    shutil.copy(os.path.join(run_dir, "config.json"), dest)
    history = os.path.join(run_dir, "history.csv")
    if os.path.isfile(history):  # absent when no epoch has finished
        with open(history) as f:
            lines = f.readlines()
        with open(os.path.join(dest, "history.csv"), "w") as f:
            f.writelines(lines[:1] + [line for line in lines[1:] if not line.startswith("3,")])


def train(dest: str, steps: int, env: dict, sets: list) -> None:
    cmd = [sys.executable, os.path.join(REPO, "scripts", "train.py"), "--stage", "3",
           "--config", os.path.join(dest, "config.json"), "--run-dir", dest,
           "--max-steps", str(steps)]
    for item in sets:
        cmd += ["--set", item]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, **env}, cwd=dest)
    if out.returncode != 0:
        raise SystemExit(f"error: stage 3 failed in {dest}:\n{out.stdout[-2000:]}"
                         f"{out.stderr[-2000:]}")


def variables(dest: str) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(dest, "ckpt", "stage3")))
    out = {}
    for name in reader.get_variable_to_shape_map():
        if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        value = reader.get_tensor(name)
        if getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
            out[name] = value
    return out


def compare(a: dict, b: dict):
    """(number of variables that differ, largest absolute difference)."""
    import numpy as np

    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    largest = max((float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in differ),
                  default=0.0)
    return len(differ), largest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, help="a run directory that has finished stage 2")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variant", action="append", default=None,
                   help="LABEL[:ENV=VALUE,...] (repeatable; default: one variant, 'plain')")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results",
                                                 "step_reproducibility"))
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.run_dir, "config.json")):
        print(f"error: {args.run_dir} has no config.json (not a run directory)", file=sys.stderr)
        return 2
    if args.repeats < 2:
        print("error: --repeats must be at least 2 to compare runs", file=sys.stderr)
        return 2
    from exprgan_tf import cpu

    flags = cpu.cpu_flags()
    header = {**run_header("step_reproducibility.py", argv), "cpu_count": os.cpu_count(),
              "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags}
    variants = [parse_variant(v) for v in (args.variant or ["plain"])]
    work = tempfile.mkdtemp(prefix="step_repro_")
    runs = {}
    for r in range(args.repeats):
        for label, env, sets in variants:
            dest = os.path.join(work, f"{label}_{r}")
            copy_stage2(args.run_dir, dest)
            train(dest, args.steps, env, sets)
            runs[(label, r)] = variables(dest)
            print(f"{label} run {r + 1}: done", flush=True)
    # identical groups over all runs, in order of first appearance
    groups = []
    for key, vals in runs.items():
        for group in groups:
            if compare(runs[group[0]], vals)[0] == 0:
                group.append(key)
                break
        else:
            groups.append([key])
    group_of = {key: i + 1 for i, group in enumerate(groups) for key in group}
    rows, result = [], {**header, "run_dir": args.run_dir, "steps": args.steps,
                        "repeats": args.repeats, "variants": []}
    for label, env, sets in variants:
        keys = [(label, r) for r in range(args.repeats)]
        n, largest = compare(runs[keys[0]], runs[keys[1]])
        same = sum(compare(runs[keys[0]], runs[k])[0] == 0 for k in keys[1:])
        entry = {"label": label, "env": env, "sets": sets, "groups": [group_of[k] for k in keys],
                 "first_two_differ_in": n, "variables": len(runs[keys[0]]),
                 "largest_difference": largest, "repeats_equal_to_first": same}
        result["variants"].append(entry)
        setting = " ".join([f"{k}={v}" for k, v in env.items()] + [f"--set {s}" for s in sets]) \
            or "nothing set"
        rows.append(f"| {label} | `{setting}` | {same} of {args.repeats - 1} | "
                    f"{n} of {len(runs[keys[0]])}, up to {largest:.1e} | "
                    f"{', '.join(str(g) for g in entry['groups'])} |")
    md = [f"# Step reproducibility: {args.steps} stage-3 steps from one checkpoint", "",
          f"- Date: {header['date']}; load at start {header['load_start']}; "
          f"{header['cpu_count']} CPUs, AVX-512 {'yes' if header['avx512'] else 'no'}, "
          f"avx512_bf16 {'yes' if header['avx512_bf16'] else 'no'}",
          f"- Command: `{header['command']}`", f"- Run directory: `{args.run_dir}`", "",
          "| variant | environment | repeats identical to the first | first two differ in "
          "(variables, largest difference) | identical group of each repeat |",
          "|---|---|---|---|---|", *rows, "",
          "Runs in the same group are identical bit for bit, across variants too."]
    write_result(args.out, result, md)
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
