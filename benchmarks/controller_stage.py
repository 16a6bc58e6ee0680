#!/usr/bin/env python
"""Does the controller stage (stage 1) learn? Train stage 1 on the built-in face set in
chunks and, after each chunk, measure what G(z, c) draws from the latent prior:

- ``expr_acc``: share of samples G(z, c_e) (intensity 1) that the real-face expression
  judge (``checkpoints/judges/judge-64.keras``, :func:`exprgan_tf.evaluation.classifier.
  load_or_train_judge`) labels as the requested expression e; chance is 1/6;
- ``z_spread``: mean per-pixel standard deviation over 16 prior samples z at a *fixed*
  code, averaged over the six codes (0 = G ignores z; real faces of one expression:
  ``real_spread`` in the output);
- ``saturated``: share of output pixels with |x| > 0.98 (tanh saturation);
- ``D_real`` / ``D_fake``: D_img's mean sigmoid output on real faces and on samples.

A sample grid is written per chunk (rows = expressions, columns = z).

Example:
    python benchmarks/controller_stage.py --steps 600 --every 100 \\
        --set model.decoder_batch_norm=true --out benchmarks/results/controller_gbn
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))
from _results import run_header, write_result  # noqa: E402


def real_face_classifier(image_size: int, path=None):
    """The judge: the Fig. 4 CNN trained on the built-in set's training subjects
    (``exprgan_tf.evaluation.classifier.load_or_train_judge``; ``path=None`` = the
    committed ``checkpoints/judge-<size>.keras``)."""
    from exprgan_tf.evaluation.classifier import load_or_train_judge

    return load_or_train_judge(image_size, path)


def controller_scores(trainer, clf, real_images, labels, per_class=24, seed=7):
    """The scores of the module docstring for ``trainer``'s current networks."""
    import tensorflow as tf

    from exprgan_tf.controller import intensity_code, sample_latent_prior
    from exprgan_tf.evaluation.classifier import predict_classes
    from exprgan_tf.preprocessing import preprocess_fn, to_display
    from exprgan_tf.models import decode

    m = trainer.config.model
    dec, dimg = trainer.nets.decoder, trainer.nets.image_discriminator
    z = sample_latent_prior(tf.constant([seed, 0], tf.int64), per_class, m.latent_dim)
    fakes, spreads, requested = [], [], []
    for e in range(m.num_classes):
        code = intensity_code(np.full(per_class, e), 1.0, m.num_classes, m.intensity_dim)
        out = decode(dec, z, code).numpy()
        fakes.append(out)
        spreads.append(float(out[:16].std(axis=0).mean()))
        requested.append(np.full(per_class, e))
    fakes, requested = np.concatenate(fakes), np.concatenate(requested)
    pred = predict_classes(clf, to_display(fakes).numpy())
    onehot = tf.one_hot(requested, m.num_classes)
    d_fake = tf.sigmoid(dimg([tf.constant(fakes), onehot], training=False)[0]).numpy().mean()
    x = preprocess_fn(trainer.config.preprocess)(real_images[:len(fakes)])
    d_real = tf.sigmoid(dimg([x, tf.one_hot(labels[:len(fakes)], m.num_classes)],
                             training=False)[0]).numpy().mean()
    sheet = to_display(np.stack([f[:8] for f in np.split(fakes, m.num_classes)]))
    return {
        "expr_acc": round(float(np.mean(pred == requested)), 4),
        "z_spread": round(float(np.mean(spreads)), 4),
        "saturated": round(float(np.mean(np.abs(fakes) > 0.98)), 4),
        "D_real": round(float(d_real), 3),
        "D_fake": round(float(d_fake), 3),
    }, sheet.numpy()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="proposed-small")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override, as scripts/train.py")
    p.add_argument("--run-dir", default=None, help="default: runs/controller_<out name>")
    p.add_argument("--classifier", default=None,
                   help="expression judge (.keras); default checkpoints/judge-<size>.keras")
    p.add_argument("--out", default=os.path.join(HERE, "results", "controller_stage"))
    args = p.parse_args(argv)

    from exprgan_tf import data
    from exprgan_tf.config import EXPRESSIONS, get_preset
    from exprgan_tf.training import Trainer
    from exprgan_tf.visualize import labelled_grid, save_png

    cfg = get_preset(args.preset).override(args.overrides)
    size = cfg.model.image_size
    run_dir = args.run_dir or os.path.join("runs", "controller_" + os.path.basename(args.out))
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    images, labels, _ = data.load_split(None, "train", size)
    clf = real_face_classifier(size, args.classifier and args.classifier.format(size=size))
    spread_real = float(np.mean([images[labels == e][:16].astype(np.float32).std(0).mean()
                                 / 127.5 for e in range(6)]))
    trainer = Trainer(cfg, run_dir, 1, images, labels)
    rows, t0 = [], time.time()
    for done in range(args.every, args.steps + 1, args.every):
        trainer.fit(epochs=10 ** 6, max_steps=args.every)
        scores, sheet = controller_scores(trainer, clf, images, labels)
        scores = {"step": done, "seconds": round(time.time() - t0, 1), **scores}
        rows.append(scores)
        print(json.dumps(scores), flush=True)
        save_png(labelled_grid(sheet, row_labels=list(EXPRESSIONS)),
                 f"{args.out}_step{done:05d}.png")

    result = {
        **run_header("controller_stage.py", argv),
        "preset": args.preset, "overrides": args.overrides, "real_spread": round(spread_real, 4),
        "rows": rows,
    }
    md = [f"# Controller stage ({result['date']})", "", f"Command: `{result['command']}`", "",
          f"Real faces of one expression: z_spread {result['real_spread']}; chance accuracy "
          "0.1667.", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    md += ["", f"![last samples]({os.path.basename(args.out)}_step{rows[-1]['step']:05d}.png)", ""]
    write_result(args.out, result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
