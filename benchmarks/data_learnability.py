#!/usr/bin/env python
"""Is the built-in face set learnable? Expression and identity must both be real signals.

1. Expression: a small CNN (conv + BatchNorm + max-pool blocks, dense, dropout, softmax;
   the paper's Fig. 4 classifier plus BatchNorm; Adam) is trained on the 72 training subjects
   (P001-P072, intensities drawn in [0.4, 1], lighting mixed, pose jitter and noise) and
   tested on the 8 held-out subjects (P073-P080) at intensities 0.5-1.0, every lighting.
   Bar: >= 95% accuracy at intensity >= 0.5.
   Inputs are standardised per image (zero mean, unit variance).
2. Identity: PCA eigenfaces fitted on training subjects, nearest-neighbour (minimum
   distance) identification of the held-out subjects across expressions: the gallery is
   one expression's images of each subject, the probes are the other five expressions.
   Chance = 1/8. Bar: well above chance.
3. Realism check: the share of renders in which MTCNN (a face detector trained on real
   photos; optional ``mtcnn`` package) finds a face with confidence >= 0.9.

Writes ``benchmarks/results/data_learnability.json`` and prints a Markdown summary.

Example:
    python benchmarks/data_learnability.py --size 64 --epochs 12
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from exprgan_tf.config import EXPRESSIONS  # noqa: E402
from exprgan_tf.data.faces import LIGHTINGS, FaceSet  # noqa: E402
from exprgan_tf.evaluation.classifier import build_expression_classifier  # noqa: E402
from _results import run_header, write_result  # noqa: E402

NUM_SUBJECTS, NUM_TRAIN = 80, 72


def render_set(faces, subjects, per_subject, rng, size, intensities=None, fixed=False):
    """per_subject images per (subject, expression) with random intensity/lighting/jitter
    (``fixed``: strong lighting, no jitter or noise)."""
    subj, expr, inten, light, jit = [], [], [], [], []
    for s in subjects:
        for e in range(6):
            for k in range(per_subject):
                subj.append(s)
                expr.append(e)
                inten.append(float(rng.uniform(0.4, 1.0)) if intensities is None
                             else intensities[k % len(intensities)])
                light.append("strong" if fixed else LIGHTINGS[rng.integers(3)])
                jit.append(None if fixed else int(rng.integers(1 << 30)))
    images = faces.render_batch(subj, expr, inten, light, size, jit)
    return images, np.array(expr), np.array(subj), np.array(inten), np.array(light)


def standardise(images):
    """Per-image zero mean / unit variance: removes most of the lighting's gain and cast."""
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / (x.std(axis=(1, 2, 3), keepdims=True) + 1e-3)


def identity_benchmark(faces, size, rng, components=(10, 14, 30)):
    """Eigenfaces + minimum-distance identification of held-out subjects across expressions.

    Two conditions: the dataset as shipped (lighting mixed, jitter, noise) and the
    paper's setting (one lighting, clean renders). Images are standardised per image
    (zero mean, unit variance) before PCA, as usual for eigenfaces.
    """
    from sklearn.decomposition import PCA

    def flat(a):
        a = a.reshape(len(a), -1).astype(np.float32)
        return (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-6)

    results = {}
    for condition in ("mixed_lighting_jitter", "strong_clean"):
        fixed = condition == "strong_clean"
        train_x, _, _, _, _ = render_set(faces, range(0, NUM_TRAIN), 1, rng, size,
                                         fixed=fixed)
        test_x, test_e, test_s, _, _ = render_set(faces, range(NUM_TRAIN, NUM_SUBJECTS), 3,
                                                  rng, size, intensities=(0.8, 0.9, 1.0),
                                                  fixed=fixed)
        for k in components:
            pca = PCA(n_components=k, random_state=0).fit(flat(train_x))
            z = pca.transform(flat(test_x))
            accs = []
            for g in range(6):
                gal, probe = test_e == g, test_e != g
                d = ((z[probe][:, None, :] - z[gal][None, :, :]) ** 2).sum(-1)
                pred = test_s[gal][d.argmin(1)]
                accs.append(float((pred == test_s[probe]).mean()))
            results[f"{condition}/{k}_components"] = dict(
                mean=round(float(np.mean(accs)), 4),
                per_gallery_expression=dict(zip(EXPRESSIONS, [round(a, 4) for a in accs])))
    return results, 1.0 / (NUM_SUBJECTS - NUM_TRAIN)


def mtcnn_detection_rate(faces, rng, per_lighting=24, size=128):
    """Share of rendered faces in which MTCNN (trained on real photos) finds a face with
    confidence >= 0.9: an outside check that the renders read as faces."""
    try:
        from exprgan_tf.data.detect import FaceCropper
        cropper = FaceCropper(min_confidence=0.9)
    except ImportError:
        return "mtcnn not installed"
    rates = {}
    for light in LIGHTINGS:
        subj = rng.integers(0, NUM_SUBJECTS, per_lighting)
        expr = rng.integers(0, 6, per_lighting)
        inten = rng.uniform(0.0, 1.0, per_lighting)
        jit = rng.integers(0, 1 << 30, per_lighting)
        images = faces.render_batch(subj, expr, inten, light, size, jit)
        rates[light] = round(float(np.mean([bool(cropper.detect(im)) for im in images])), 4)
    return dict(per_lighting=rates, images_per_lighting=per_lighting, size=size)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--per-subject", type=int, default=8,
                   help="training images per subject and expression")
    p.add_argument("--seed", type=int, default=0, help="face-set seed")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "data_learnability.json"))
    args = p.parse_args(argv)

    faces = FaceSet(seed=args.seed, num_subjects=NUM_SUBJECTS)
    rng = np.random.default_rng(1234)
    t0 = time.time()
    x_tr, y_tr, _, _, _ = render_set(faces, range(NUM_TRAIN), args.per_subject, rng, args.size)
    grid = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    x_te, y_te, _, i_te, l_te = render_set(faces, range(NUM_TRAIN, NUM_SUBJECTS), 12, rng,
                                           args.size, intensities=grid * 2)
    x_lo, y_lo, _, _, _ = render_set(faces, range(NUM_TRAIN, NUM_SUBJECTS), 4, rng, args.size,
                                     intensities=(0.2, 0.3))
    render_s = time.time() - t0

    model = build_expression_classifier(args.size, seed=0, learning_rate=args.lr,
                                        rescale=False)
    t0 = time.time()
    # The held-out set is only monitored (printed per epoch), never used for selection:
    # the reported accuracy is the last epoch's.
    hist = model.fit(standardise(x_tr), y_tr, batch_size=64, epochs=args.epochs, verbose=2,
                     shuffle=True, validation_data=(standardise(x_te), y_te))
    train_s = time.time() - t0
    pred = model.predict(standardise(x_te), batch_size=256, verbose=0).argmax(1)
    acc = float((pred == y_te).mean())
    confusion = np.zeros((6, 6), int)
    for t, q in zip(y_te, pred):
        confusion[t, q] += 1
    low_acc = float((model.predict(standardise(x_lo), batch_size=256, verbose=0).argmax(1) == y_lo).mean())

    t0 = time.time()
    ident, chance = identity_benchmark(faces, args.size, np.random.default_rng(99))
    ident_s = time.time() - t0

    detection = mtcnn_detection_rate(faces, np.random.default_rng(7))

    result = dict(
        **run_header("data_learnability.py", argv),
        size=args.size, epochs=args.epochs, learning_rate=args.lr,
        train_images=int(len(x_tr)), test_images=int(len(x_te)),
        expression_accuracy_intensity_ge_0_5=round(acc, 4),
        expression_accuracy_by_intensity={f"{t:.1f}": round(float((pred == y_te)[
            np.isclose(i_te, t)].mean()), 4) for t in grid},
        expression_accuracy_by_lighting={l: round(float((pred == y_te)[l_te == l].mean()), 4)
                                         for l in LIGHTINGS},
        expression_accuracy_intensity_0_2_to_0_3=round(low_acc, 4),
        confusion_rows_true_cols_pred=dict(zip(EXPRESSIONS, confusion.tolist())),
        final_train_accuracy=round(float(hist.history["accuracy"][-1]), 4),
        identity_pca_nn_accuracy=ident,
        identity_chance=chance,
        mtcnn_face_detection=detection,
        seconds=dict(render=round(render_s, 1), cnn_train=round(train_s, 1),
                     identity=round(ident_s, 1)),
    )
    write_result(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
