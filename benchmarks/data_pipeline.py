#!/usr/bin/env python
"""Throughput of the data side: rendering the built-in set and the training input path.

Measures (a) faces rendered per second by ``FaceSet.render_batch`` (what
``load_split(None, ...)`` costs), and (b) images per second delivered by
:class:`~exprgan_tf.training.TrainingInputs` (the one training input path) from
in-memory arrays, from PNG files decoded once into memory, and from PNG files streamed
batch by batch, for a few epochs, with and without the unsharp mask. Training on this
CPU consumes ~20 img/s at 128x128 and ~200 img/s at 64x64 (README "Performance"), so
the pipeline must deliver far more than that. ``benchmarks/data_streaming.py`` measures
memory and rates on folders of up to 50,000 faces.

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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.data import builtin, load_split  # noqa: E402
from _results import run_header, write_result  # noqa: E402


def _time_epochs(inputs, epochs):
    """Images/s over ``epochs`` epochs of ``inputs`` (after it was built), and the
    time to its first batch."""
    start = time.perf_counter()
    it = iter(inputs.epoch(0))
    total = int(next(it)["image"].shape[0])
    first = time.perf_counter() - start
    total += sum(int(b["image"].shape[0]) for b in it)
    for epoch in range(1, epochs):
        total += sum(int(b["image"].shape[0]) for b in inputs.epoch(epoch))
    return dict(first_batch_s=round(first, 3), epochs=epochs,
                images_per_s=round(total / (time.perf_counter() - start), 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "data_pipeline.json"))
    args = p.parse_args(argv)
    from exprgan_tf.config import get_preset
    from exprgan_tf.training import TrainingInputs

    result = dict(**run_header("data_pipeline.py", argv), cpu_count=os.cpu_count(),
                  batch_size=args.batch_size, runs=[])
    for size in args.sizes:
        t = time.perf_counter()
        images, labels, _ = load_split(None, "train", image_size=size)
        render_s = time.perf_counter() - t
        run = dict(size=size, render_train_split_s=round(render_s, 2),
                   render_faces_per_s=round(len(images) / render_s, 1))

        def config(sharpen):
            return get_preset("proposed-small").override(
                [f"model.image_size={size}", f"preprocess.unsharp_mask={str(sharpen).lower()}"])

        def timed(source, cfg, cache_bytes=1 << 40):
            t = time.perf_counter()
            inputs = TrainingInputs(source, labels, cfg, args.batch_size,
                                    cache_bytes=cache_bytes, log=lambda *a: None)
            out = dict(build_s=round(time.perf_counter() - t, 3))
            out.update(_time_epochs(inputs, args.epochs))
            return out

        for sharpen in (False, True):
            run[f"arrays_unsharp_{sharpen}"] = timed(images, config(sharpen))
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            rows = builtin.write_builtin(tmp, size=size)
            run["write_png_s"] = round(time.perf_counter() - t, 2)
            paths = [os.path.join(tmp, r["path"]) for r in rows if r["split"] == "train"]
            assert [r["label"] for r in rows if r["split"] == "train"] == labels.tolist()
            run["files_cached_unsharp_True"] = timed(paths, config(True))
            run["files_streamed_unsharp_True"] = timed(paths, config(True), cache_bytes=0)
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    write_result(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
