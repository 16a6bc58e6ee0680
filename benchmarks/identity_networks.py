#!/usr/bin/env python
"""Throughput of each identity network as the identity loss uses it.

One timed step = L_id as in training: the frozen network on the real batch (forward
only) and on the generated batch (forward + backward to the generated images), compiled
with ``tf.function``. Random weights (speed does not depend on them) and random images.

Usage:
    python benchmarks/identity_networks.py [--batch 16] [--size 128] [--steps 5]
        [--networks dlib_resnet vgg_face] [--out benchmarks/results/identity_networks.md]
"""

import argparse
import datetime
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from exprgan_tf import identity, losses  # noqa: E402
from exprgan_tf.config import IdentityConfig  # noqa: E402


def bench(network, batch, size, steps, warmup=2):
    features = identity.build_identity_features(IdentityConfig(network=network),
                                                pretrained=False)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    fake = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)

    @tf.function
    def step(real, fake):
        with tf.GradientTape() as tape:
            tape.watch(fake)
            loss = losses.identity_loss(features, real, fake)
        return loss, tape.gradient(loss, fake)

    for _ in range(warmup):
        _, grad = step(real, fake)
    assert np.isfinite(grad.numpy()).all()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        _, grad = step(real, fake)
        grad.numpy()
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return dict(network=network, layers=", ".join(identity.DEFAULT_FEATURE_LAYERS[network]),
                params=features.count_params(), s_per_step=median, img_per_s=batch / median)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--networks", nargs="+", default=["dlib_resnet", "vgg_face"])
    parser.add_argument("--out", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    rows = []
    for network in args.networks:
        r = bench(network, args.batch, args.size, args.steps)
        print(f"{network}: {r['s_per_step']:.3f} s/step, {r['img_per_s']:.1f} img/s "
              f"(batch {args.batch}, {args.size}x{args.size})", flush=True)
        rows.append(r)
    if args.out:
        command = "python benchmarks/identity_networks.py " + " ".join(argv or sys.argv[1:])
        lines = [
            "# Identity networks: L_id forward + backward throughput",
            "",
            f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- Command: `{command.strip()}`",
            f"- Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; "
            f"TF {tf.__version__}, Python {platform.python_version()}; CPU shared with "
            f"other jobs (1-min load average at the end: {os.getloadavg()[0]:.1f}), so "
            "treat numbers as rough.",
            f"- Step: network on the real batch (forward) and on the generated batch "
            f"(forward + backward to the images), batch {args.batch}, "
            f"{args.size}x{args.size} inputs resized inside the network; median of "
            f"{args.steps} steps after 2 warm-up steps; float32.",
            "",
            "| network | input inside | feature layers | params used | s / step | images / s |",
            "|---|---|---|---|---|---|",
        ]
        inside = {"dlib_resnet": "150x150", "vgg_face": "224x224"}
        for r in rows:
            lines.append(f"| {r['network']} | {inside[r['network']]} | {r['layers']} | "
                         f"{r['params']:,} | {r['s_per_step']:.3f} | {r['img_per_s']:.1f} |")
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
