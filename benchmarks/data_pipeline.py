#!/usr/bin/env python
"""Throughput of the data side: rendering the built-in set and the tf.data pipeline.

Measures (a) faces rendered per second by ``FaceSet.render_batch`` (what
``load_split(None, ...)`` costs), and (b) images per second delivered by
``make_dataset`` (in-memory arrays) and ``make_file_dataset`` (PNG files) for a few
epochs after the first (cached) one, with and without the unsharp mask. Training on this
CPU consumes ~20 img/s at 128x128 and ~200 img/s at 64x64 (README "Performance"), so
the pipeline must deliver far more than that.

Writes ``benchmarks/results/data_pipeline.json`` and prints it.

Example:
    python benchmarks/data_pipeline.py --sizes 64 128 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.config import PreprocessConfig  # noqa: E402
from exprgan_tf.data import builtin, load_split  # noqa: E402
from _results import run_header, write_result  # noqa: E402


def _time_epochs(make, epochs, steps):
    """Time one dataset covering 1 + epochs epochs: the first epoch (pre-processing and
    caching) separately from the steady-state epochs that follow."""
    ds = make(0, 1 + epochs)
    start = time.perf_counter()
    it = iter(ds)
    n_first = sum(int(next(it)[0].shape[0]) for _ in range(steps))
    first = time.perf_counter() - start
    start = time.perf_counter()
    total = sum(int(x.shape[0]) for x, _ in it)
    steady = time.perf_counter() - start
    return dict(first_epoch_s=round(first, 3), images_per_epoch=n_first,
                steady_epochs=epochs, steady_images_per_s=round(total / steady, 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "data_pipeline.json"))
    args = p.parse_args(argv)
    from exprgan_tf.data.pipeline import make_dataset, make_file_dataset, steps_per_epoch

    result = dict(**run_header("data_pipeline.py", argv), cpu_count=os.cpu_count(),
                  batch_size=args.batch_size, runs=[])
    for size in args.sizes:
        t = time.perf_counter()
        images, labels, _ = load_split(None, "train", image_size=size)
        render_s = time.perf_counter() - t
        steps = steps_per_epoch(len(images), args.batch_size)
        run = dict(size=size, render_train_split_s=round(render_s, 2),
                   render_faces_per_s=round(len(images) / render_s, 1))
        for sharpen in (False, True):
            cfg = PreprocessConfig(unsharp_mask=sharpen)

            def make(epoch, num_epochs=1):
                return make_dataset(images, labels, cfg, args.batch_size, seed=0,
                                    epoch=epoch, num_epochs=num_epochs)
            run[f"arrays_unsharp_{sharpen}"] = _time_epochs(make, args.epochs, steps)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            rows = builtin.write_builtin(tmp, size=size)
            run["write_png_s"] = round(time.perf_counter() - t, 2)
            train = [r for r in rows if r["split"] == "train"]
            paths = [os.path.join(tmp, r["path"]) for r in train]
            file_labels = np.array([r["label"] for r in train])
            cfg = PreprocessConfig(unsharp_mask=True)

            def make(epoch, num_epochs=1):
                return make_file_dataset(paths, file_labels, cfg, args.batch_size,
                                         image_size=size, seed=0, epoch=epoch,
                                         num_epochs=num_epochs)
            run["files_unsharp_True"] = _time_epochs(make, args.epochs, steps)
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    write_result(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
