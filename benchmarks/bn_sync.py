#!/usr/bin/env python
"""Synchronised against plain BatchNorm statistics on one replica, network by network.

Before issue 18 every BatchNorm was built with ``synchronized=True``; on one replica
that runs Keras's synchronised-moments path (sums, identity all-reduces, a one-pass
variance) where the plain path would do. This builds D_img and G (with
``decoder_batch_norm``) both ways with the same weights and times a compiled training
forward + backward of each, the two variants called in alternation (A B, B A, ...) in
one process so that they see the same load; the ratio per pair is plain / synced.
On a shared machine wall time swings with the other jobs, so TensorFlow runs on one
thread here (``--threads``) and each call is timed by this process's CPU time
(``time.process_time``), which other processes do not inflate; wall time is reported
beside it.

Example:
    python benchmarks/bn_sync.py --preset exprgan --batch 16 --pairs 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from exprgan_tf.models import _blocks, decoder  # noqa: E402  (before TensorFlow)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from exprgan_tf.config import get_preset  # noqa: E402
from exprgan_tf.models import build_decoder, build_image_discriminator  # noqa: E402
from _results import run_header, write_result  # noqa: E402


def _build(cfg, synced):
    previous = _blocks.synchronized_batch_norm
    if synced:
        _blocks.synchronized_batch_norm = decoder.synchronized_batch_norm = lambda: True
    try:
        return {"D_img": build_image_discriminator(cfg), "G": build_decoder(cfg)}
    finally:
        _blocks.synchronized_batch_norm = decoder.synchronized_batch_norm = previous


def _step(model):
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            loss = sum(tf.reduce_sum(o) for o in tf.nest.flatten(model(x, training=True)))
        return tape.gradient(loss, model.trainable_weights)[0]
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="exprgan")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1,
                   help="TensorFlow intra- and inter-op threads (CPU time is only a fair "
                        "measure without idle spinning threads)")
    p.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    args = p.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    header = run_header("bn_sync.py", argv)
    cfg = get_preset(args.preset).override(["model.dimg_normalization=batch",
                                            "model.decoder_batch_norm=true"]).model
    plain, synced = _build(cfg, False), _build(cfg, True)
    rng = np.random.default_rng(0)
    n = args.batch
    inputs = {"D_img": [rng.uniform(-1, 1, (n, cfg.image_size, cfg.image_size, 3)
                                    ).astype("float32"),
                        np.eye(cfg.num_classes, dtype="float32")[rng.integers(0, 6, n)]],
              "G": [rng.uniform(-1, 1, (n, cfg.latent_dim)).astype("float32"),
                    rng.uniform(-1, 1, (n, cfg.code_dim)).astype("float32")]}
    rows = []
    for net in ("D_img", "G"):
        synced[net].set_weights(plain[net].get_weights())
        fns = {"synced": _step(synced[net]), "plain": _step(plain[net])}
        x = [tf.constant(a) for a in inputs[net]]
        for f in fns.values():
            for _ in range(2):
                f(x).numpy()
        times = {k: [] for k in fns}
        walls = {k: [] for k in fns}
        for i in range(args.pairs):
            order = ("synced", "plain") if i % 2 == 0 else ("plain", "synced")
            for k in order:
                start, wall = time.process_time(), time.perf_counter()
                fns[k](x).numpy()
                times[k].append(time.process_time() - start)
                walls[k].append(time.perf_counter() - wall)
        ratios = np.array(times["plain"]) / np.array(times["synced"])
        rows.append(dict(net=net, synced_ms=round(1e3 * float(np.median(times["synced"])), 2),
                         plain_ms=round(1e3 * float(np.median(times["plain"])), 2),
                         synced_wall_ms=round(1e3 * float(np.median(walls["synced"])), 2),
                         plain_wall_ms=round(1e3 * float(np.median(walls["plain"])), 2),
                         ratio_median=round(float(np.median(ratios)), 3),
                         ratio_q1=round(float(np.quantile(ratios, 0.25)), 3),
                         ratio_q3=round(float(np.quantile(ratios, 0.75)), 3)))
        print(rows[-1], flush=True)
    result = dict(**header, preset=args.preset, batch=args.batch, pairs=args.pairs,
                  threads=args.threads,
                  load_end=round(os.getloadavg()[0], 2), rows=rows)
    lines = ["# Synchronised vs plain BatchNorm statistics, one replica", "",
             f"- Date: {result['date']}", f"- Command: `{result['command']}`",
             f"- `{args.preset}` networks with BatchNorm in D_img's trunk and in G, batch "
             f"{args.batch}; compiled training forward + backward; {args.pairs} "
             f"interleaved pairs; {args.threads} TensorFlow thread(s); times are this "
             "process's CPU time per call (wall time in brackets).",
             f"- Load: {result['load_start']} at the start, {result['load_end']} at the end.",
             "", "| network | synced CPU ms (median) | plain CPU ms (median) | plain / synced "
             "(median [q1, q3] of pairs) |", "|---|---|---|---|"]
    lines += [f"| {r['net']} | {r['synced_ms']} ({r['synced_wall_ms']}) | {r['plain_ms']} "
              f"({r['plain_wall_ms']}) | {r['ratio_median']} [{r['ratio_q1']}, "
              f"{r['ratio_q3']}] |" for r in rows]
    print("\n".join(lines))
    if args.out:
        write_result(args.out, result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
