#!/usr/bin/env python
"""Before/after speed of one train step, measured in one process with interleaved calls.

On a shared CPU the speed of a step drifts by 2-4x within minutes, which drowns a few
per cent of difference between two separate runs. Here every variant gets its own
:class:`~exprgan_tf.training.Trainer` in the same process, and their steps are called
in alternation (A B, B A, A B, ...) on one fixed batch, so the variants see the same
load; the report gives each variant's median step time and, per pair, the ratio to
the first variant (median and quartiles).

A variant is ``LABEL[:ITEM,ITEM,...]``; an item is a config override ``KEY=VALUE`` or
one of these switches that put back what this branch changed, to measure it:

- ``dense_terms``: keep the zero-weight loss terms in the differentiated sums;
- ``old_subsample``: the previous ``DilatedConv2D`` (pad the full map, strided slice);
- ``no_identity_cache``: compute the real images' identity features in every step;
- ``synced_bn``: BatchNorm with synchronised statistics on one replica (as before
  issue 18; now they are synchronised only with several replicas).

Examples:
    python benchmarks/step_ab.py --preset proposed-small --stage 2 --batch 16 \\
        --variant before:dense_terms,old_subsample --variant after
    python benchmarks/step_ab.py --preset proposed --stage 3 --batch 16 \\
        --variant float32 --variant bf16:training.precision=mixed_bfloat16
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The package before TensorFlow, as its commands do (it may set the oneDNN default).
from exprgan_tf.models import _blocks, decoder  # noqa: E402  (switch synced_bn)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from exprgan_tf.config import get_preset  # noqa: E402
from exprgan_tf.data import training_data  # noqa: E402
from exprgan_tf.layers import DilatedConv2D  # noqa: E402
from exprgan_tf.training import Trainer  # noqa: E402
from _results import run_header, write_result  # noqa: E402

SWITCHES = ("dense_terms", "old_subsample", "no_identity_cache", "synced_bn")


def _previous_dilated_call(self, inputs):
    """DilatedConv2D.call before this branch: pad the full-resolution map, then take
    every ``strides``-th pixel with a strided slice."""
    s, d = self.strides, self.dilation_rate
    p = d * (self.kernel_size - 1) // 2
    x = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
    if d == 1:
        y = ops.conv(x, self.kernel, strides=s, padding="valid")
    elif d % s == 0:
        y = ops.conv(x[:, ::s, ::s, :], self.kernel, strides=1, padding="valid",
                     dilation_rate=d // s)
    else:
        y = ops.conv(x, self.kernel, strides=1, padding="valid", dilation_rate=d)
        y = y[:, ::s, ::s, :]
    if self.use_bias:
        y = y + self.bias
    return self.activation(y)


def parse_variant(text):
    label, _, items = text.partition(":")
    items = [i for i in items.split(",") if i]
    bad = [i for i in items if "=" not in i and i not in SWITCHES]
    if not label or bad:
        raise argparse.ArgumentTypeError(
            f"variant must be LABEL[:KEY=VALUE|{'|'.join(SWITCHES)},...]. Received: {text!r}")
    return dict(label=label, overrides=[i for i in items if "=" in i],
                switches=[i for i in items if "=" not in i])


def build(args, variant, run_dir, data_cache):
    overrides = list(args.set) + variant["overrides"]
    if args.identity != "none":
        overrides.append(f"identity.network={args.identity}")
    config = get_preset(args.preset).override(overrides)
    # the training split and the Trainer's inputs as scripts/train.py builds them, once
    # per set of overrides (variants that differ only in switches share them)
    key = tuple(overrides)
    if key not in data_cache:
        data_cache[key] = training_data(config, args.stage)
    images, labels, _, inputs = data_cache[key]
    keras.utils.set_random_seed(0)
    previous = _blocks.synchronized_batch_norm
    if "synced_bn" in variant["switches"]:  # the builders read it while the Trainer builds
        _blocks.synchronized_batch_norm = decoder.synchronized_batch_norm = lambda: True
    try:
        trainer = Trainer(config, run_dir, args.stage, images, labels, batch_size=args.batch,
                          cache_identity="no_identity_cache" not in variant["switches"],
                          log=lambda *a: None, **inputs)
    finally:
        _blocks.synchronized_batch_norm = decoder.synchronized_batch_norm = previous
    if "dense_terms" in variant["switches"]:
        trainer.step = trainer.step.rebuilt(skip_zero_weight_terms=False)
    if "old_subsample" in variant["switches"]:
        for layer in trainer.nets.encoder.layers:
            if isinstance(layer, DilatedConv2D):
                layer.call = types.MethodType(_previous_dilated_call, layer)
    return trainer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="proposed-small")
    p.add_argument("--stage", type=int, default=2, choices=(1, 2, 3))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--identity", default="none", choices=("none", "dlib_resnet", "vgg_face"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every variant")
    p.add_argument("--variant", dest="variants", action="append", type=parse_variant,
                   required=True, help="LABEL[:ITEM,...]; the first is the reference")
    p.add_argument("--pairs", type=int, default=15, help="timed rounds (one call per variant)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per variant")
    p.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    args = p.parse_args(argv)

    load_before = os.getloadavg()[0]
    trainers, batches, first_call, data_cache = [], [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, v in enumerate(args.variants):
            t = build(args, v, os.path.join(tmp, str(i)), data_cache)
            batch = next(iter(t.strategy.experimental_distribute_dataset(t.inputs.epoch(0))))
            start = time.perf_counter()
            [float(x) for x in t.step(batch).values()]
            first_call.append(time.perf_counter() - start)
            for _ in range(args.warmup):
                [float(x) for x in t.step(batch).values()]
            trainers.append(t)
            batches.append(batch)
        times = [[] for _ in args.variants]
        order = list(range(len(args.variants)))
        for r in range(args.pairs):
            for i in (order if r % 2 == 0 else order[::-1]):
                start = time.perf_counter()
                [float(x) for x in trainers[i].step(batches[i]).values()]
                times[i].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]

    ref = np.array(times[0])
    results = []
    for v, ts, fc, t in zip(args.variants, times, first_call, trainers):
        ts = np.array(ts)
        ratios = ts / ref
        results.append(dict(label=v["label"], overrides=v["overrides"], switches=v["switches"],
                            median_s=round(float(np.median(ts)), 4),
                            img_per_s=round(args.batch / float(np.median(ts)), 2),
                            first_call_s=round(fc, 2), trace_count=t.step.trace_count,
                            ratio_median=round(float(np.median(ratios)), 3),
                            ratio_q1=round(float(np.quantile(ratios, 0.25)), 3),
                            ratio_q3=round(float(np.quantile(ratios, 0.75)), 3),
                            times=[round(float(x), 4) for x in ts]))
    header = run_header("step_ab.py", argv)
    command = header["command"]
    report = dict(date=header["date"], command=command, preset=args.preset, stage=args.stage, batch=args.batch,
                  identity=args.identity, set=args.set, pairs=args.pairs,
                  cores_usable=len(os.sched_getaffinity(0)), cpu_count=os.cpu_count(),
                  load_before=round(load_before, 2), load_after=round(load_after, 2),
                  peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  tensorflow=tf.__version__, python=platform.python_version(),
                  variants=results)
    lines = [
        f"# Step A/B: {args.preset}, stage {args.stage}, batch {args.batch}, identity "
        f"{args.identity}",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{command}`",
        f"- Machine: {os.cpu_count()} cores ({report['cores_usable']} usable by this run), "
        f"TF {tf.__version__}; 1-min load average {report['load_before']} before, "
        f"{report['load_after']} after; peak RSS {report['peak_rss_mib']} MiB (all variants).",
        f"- {args.pairs} interleaved rounds after {args.warmup} warm-up calls, one fixed "
        "batch; time per call includes reading the losses back.",
        "",
        "| variant | what | median s/step | img/s | ratio to first (median [q1, q3] of pairs) "
        "| first call s | traces |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        what = ", ".join(r["switches"] + r["overrides"]) or "this branch"
        lines.append(f"| {r['label']} | {what} | {r['median_s']:.4f} | {r['img_per_s']} | "
                     f"{r['ratio_median']:.3f} [{r['ratio_q1']:.3f}, {r['ratio_q3']:.3f}] | "
                     f"{r['first_call_s']} | {r['trace_count']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_result(args.out, report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
