#!/usr/bin/env python
"""What does a G that gives back its input unchanged score on the paired term? ``L1_pair``
of the copy, with G's pixel weights, over the first batches of an epoch of the built-in
training set under a preset and ``--set`` overrides: the level a G that can copy its
input (``decoder_output`` blend or residual, ``decoder_sees_face``) must get below to be
editing at all (recipe log, the residual G that sees the face).

The copy is the face G is trained towards (``batch["target"]`` when targets are
unsharpened, else the pre-processed input), compared with the batch's partner.

Example:
    python benchmarks/copy_level.py --set training.pair_pose=input \\
        --set "training.pair_intensities=[1]" --set preprocess.sharpen_targets=false
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="proposed-small")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--batches", type=int, default=60)
    args = p.parse_args(argv)
    from exprgan_tf import data
    from exprgan_tf import losses as L
    from exprgan_tf.config import get_preset
    from exprgan_tf.training.inputs import TrainingInputs

    cfg = get_preset(args.preset).override(args.overrides)
    t = cfg.training
    images, labels, _, pairing = data.training_data(cfg, stage=2)
    inputs = TrainingInputs(images, labels, cfg, t.stage2.batch_size, log=lambda *a: None,
                            **pairing)
    weights = (inputs.expression_weights(t.expression_regions, pairing["pair_groups"])
               if t.expression_regions > 0 else None)
    total = n = 0
    for batch in inputs.epoch(1):
        copy = batch.get("target", batch["image"])
        w = weights
        if t.pair_change > 0:   # as the train step weighs each partner
            w = L.change_weights(batch["pair_change"], t.pair_change)
            w = w if weights is None else w * weights
        total += float(L.pixel_loss(batch["pair_image"], copy, w))
        n += 1
        if n == args.batches:
            break
    print(f"L1_pair of a copy ({n} batches of {t.stage2.batch_size}, {args.preset} "
          f"{' '.join(args.overrides)}): {total / n:.4f}")


if __name__ == "__main__":
    main()
