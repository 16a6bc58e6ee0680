#!/usr/bin/env python
"""What ``Trainer.fit`` costs per step besides the step itself.

The compiled step is replaced by a stub that returns fixed loss tensors at once, so
what is left is the loop's own work per step: reading the losses back, the NaN guard,
the step counters, the TensorBoard scalars, the progress bar and the next batch from
``tf.data``. Tiny networks (the work measured does not depend on their size).

``--code DIR`` imports ``exprgan_tf`` from another checkout (e.g. the commit before a
change) so the two can be compared; run them alternately on a shared machine.

Example:
    python benchmarks/host_overhead.py --steps 300
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from _results import run_header  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--code", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--out", default=None, help="append a JSON line with the result here")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.abspath(args.code))
    import numpy as np
    import tensorflow as tf

    import exprgan_tf
    from exprgan_tf.config import get_preset
    from exprgan_tf.training import Trainer

    tiny = ["model.image_size=32", "model.encoder_filters=[8,8,16,16,16]",
            "model.decoder_start_filters=16", "model.decoder_filters=[16,16,8,8,8]",
            "model.decoder_final_filters=4", "model.dimg_filters=[4,8,8,8]",
            "model.dimg_dense=16", "model.q_shared_units=16", "model.q_head_units=8",
            "training.sample_every=100000"]
    config = get_preset("proposed-small").override(tiny)
    rng = np.random.default_rng(0)
    n = 8 * (args.steps + 2)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 6, n)
    header = run_header("host_overhead.py", argv)
    result = dict(date=header["date"],
                  code=os.path.dirname(os.path.dirname(os.path.abspath(exprgan_tf.__file__))),
                  steps=args.steps, load_before=round(os.getloadavg()[0], 2),
                  cores_usable=len(os.sched_getaffinity(0)))
    for stage in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t = Trainer(config, tmp, stage, images, labels, batch_size=8, log=lambda *a: None,
                        pair_groups=np.arange(n) // 12)
            real = t.step
            fixed = {k: tf.constant(float(v)) for k, v in
                     real(next(iter(t.inputs.epoch(0)))).items()}
            calls = []

            class Stub:
                def __call__(self, batch):
                    calls.append(time.perf_counter())
                    return fixed

                def __getattr__(self, name):
                    return getattr(real, name)

            t.step = Stub()
            t.manager.save = lambda *a, **k: "(not saved)"
            with contextlib.redirect_stdout(io.StringIO()):  # the progress bar still runs
                t.fit(epochs=1, max_steps=args.steps)
            gaps = np.diff(calls)[10:]  # after the first calls (tracing of helpers)
            result[f"stage{stage}_ms_per_step"] = round(1e3 * float(np.median(gaps)), 3)
            result[f"stage{stage}_losses"] = len(fixed)
    result["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
