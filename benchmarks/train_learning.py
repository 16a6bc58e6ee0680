#!/usr/bin/env python
"""Does training learn? All three stages of a small preset on the built-in face set,
within a stated CPU budget, then two scores on the held-out subjects (P073-P080):

1. reconstruction L1: mean |x - G(E(x), c(y, 1))| in [-1, 1] units, x a held-out face
   and y its own expression;
2. expression accuracy: every held-out face edited to each of the six expressions at
   intensity 1; the paper's Fig. 4 CNN (:mod:`exprgan_tf.evaluation.classifier`) trained on
   the built-in set's *real* training faces says how often the requested expression
   comes out. Chance is 1/6.

Writes ``benchmarks/results/train_learning.json`` and ``.md`` (plus the run directory).

Example:
    python benchmarks/train_learning.py --preset proposed-small --epochs 15 15 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))
sys.path.insert(0, HERE)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="proposed-small")
    p.add_argument("--epochs", type=int, nargs=3, default=(15, 15, 5),
                   metavar=("S1", "S2", "S3"))
    p.add_argument("--identity", default="none", choices=("none", "dlib_resnet", "vgg_face"))
    p.add_argument("--classifier", default=os.path.join("runs", "classifier-{size}.keras"),
                   help="cached real-face classifier (trained here when missing)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override, as scripts/train.py")
    p.add_argument("--run-dir", default=os.path.join("runs", "benchmark_learning"))
    p.add_argument("--fresh", action="store_true", help="delete the run dir first")
    p.add_argument("--out", default=os.path.join(HERE, "results", "train_learning"))
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    from controller_stage import real_face_classifier
    from exprgan_tf import data
    from exprgan_tf.config import EXPRESSIONS, get_preset
    from exprgan_tf.controller import intensity_code
    from exprgan_tf.evaluation.classifier import predict_classes
    from exprgan_tf.preprocessing import preprocess_fn, to_display
    from exprgan_tf.training import Trainer
    from exprgan_tf.visualize import labelled_grid, save_png

    cfg = get_preset(args.preset).override([f"identity.network={args.identity}"]
                                           + args.overrides)
    size = cfg.model.image_size
    if args.fresh and os.path.isdir(args.run_dir):
        shutil.rmtree(args.run_dir)
    images, labels, _ = data.load_split(None, "train", size)
    test_images, test_labels, test_subjects = data.load_split(None, "test", size)

    timings = {}
    for stage, epochs in zip((1, 2, 3), args.epochs):
        t0 = time.time()
        trainer = Trainer(cfg, args.run_dir, stage, images, labels,
                          sample_images=test_images[::18][:8])
        trainer.fit(epochs=epochs)
        timings[f"stage{stage}_seconds"] = round(time.time() - t0, 1)
        timings[f"stage{stage}_steps"] = int(trainer.global_step)
    enc, dec = trainer.nets.encoder, trainer.nets.decoder

    # 1. reconstruction of held-out faces with their own expression
    x = preprocess_fn(cfg.preprocess)(test_images)
    z = enc.predict(x, batch_size=64, verbose=0)
    own = intensity_code(test_labels, 1.0).numpy()
    recon = dec.predict([z, own], batch_size=64, verbose=0)
    l1 = float(np.mean(np.abs(x.numpy() - recon)))

    # 2. requested expression carried? edit every held-out face to every expression
    edited, requested = [], []
    for e in range(6):
        code = intensity_code(np.full(len(z), e), 1.0).numpy()
        edited.append(to_display(dec.predict([z, code], batch_size=64, verbose=0)).numpy())
        requested.append(np.full(len(z), e))
    edited, requested = np.concatenate(edited), np.concatenate(requested)

    clf = real_face_classifier(size, args.classifier.format(size=size))
    real_acc = float(np.mean(predict_classes(clf, test_images) == test_labels))
    pred = predict_classes(clf, edited)
    edit_acc = float(np.mean(pred == requested))
    per_class = {EXPRESSIONS[e]: float(np.mean(pred[requested == e] == e)) for e in range(6)}

    # a picture: 8 held-out subjects x (input + six edits)
    cols = np.arange(0, len(test_images), 18)[:8]
    sheet = np.stack([to_display(x).numpy()[cols]] +
                     [edited[requested == e][cols] for e in range(6)])
    grid_path = save_png(labelled_grid(sheet, ["input"] + list(EXPRESSIONS)),
                         args.out + "_edits.png")

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/train_learning.py " + " ".join(argv or sys.argv[1:]),
        "preset": args.preset, "epochs": list(args.epochs), "identity": args.identity,
        "overrides": args.overrides,
        "tensorflow": tf.__version__, "cpu_count": os.cpu_count(), **timings,
        "heldout_reconstruction_l1": round(l1, 4),
        "classifier_accuracy_on_real_heldout": round(real_acc, 4),
        "requested_expression_accuracy": round(edit_acc, 4),
        "requested_expression_accuracy_per_class": {k: round(v, 3) for k, v in per_class.items()},
        "chance": round(1 / 6, 4),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    md = [f"# Learning benchmark ({result['date']})", "", f"Command: `{result['command']}`", "",
          "| measure | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in result.items() if k not in ("date", "command")]
    md += ["", f"![edits]({os.path.basename(grid_path)})", ""]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
