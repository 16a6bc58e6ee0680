"""The evaluation protocol behind ``scripts/evaluate.py``: generate, score, tabulate, draw.

For every model (a run directory written by ``scripts/train.py``):

1. **Edits.** Every held-out test face (built-in set: subjects P073-P080, 144 faces) is
   edited to each of the six expressions at intensity 1 (144 x 6 = 864 faces).
2. **CNN expression classifier** (Table I row 1): the Fig. 4 CNN, trained once on the
   dataset's *real* training faces (or loaded), classifies the 864 edits; accuracy =
   share classified as the requested expression. Its accuracy on the real test faces is
   reported beside it, as the ceiling.
3. **PCA eigenfaces** (row 2): the paper's 6 persons x 6 generated expressions: the first
   ``pca_persons`` test subjects, their first test face edited to the six expressions
   (36 probes); the gallery is the subjects' other real test faces; minimum-distance
   classification for 1..N eigenfaces, best accuracy and the fewest eigenfaces reaching it.
4. **FID** (row 3): InceptionV3 pool features of the 864 edits against the dataset's real
   training faces.
5. **Identity** (ours): cosine of identity descriptors of input and edit (+ dlib's
   same-person rate); skipped with a note when no identity weights are available.
6. **Ground truth and intensity** (ours, built-in face set only): see
   :mod:`exprgan_tf.evaluation.scores`. The intensity test starts from each test
   subject's clean neutral face (``true_face(subject, 0, 0.0)``).

Figures per model: ``fig6_<model>.png`` (one test subject: ground truth row and the
model's row over the six expressions), ``fig7_<model>.png`` (every test subject: input +
six edits), ``intensity_<model>.png`` (one subject, each expression at intensity 0 ... 1)
and ``fig8_<model>.png`` (the run's loss curves).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time

import numpy as np

from exprgan_tf.config import EXPRESSIONS
from exprgan_tf.evaluation import eigenfaces, scores
from exprgan_tf.evaluation.table import Row, write_table

SWEEP_INTENSITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclasses.dataclass
class EvaluationOptions:
    """Settings of :func:`evaluate`.

    Attributes:
        data: dataset folder, or ``None`` for the built-in face set.
        out_dir: where the table, figures and details go.
        classifier: a saved classifier (``.keras``) to use; ``None`` = train one on the
            real training faces and save it as ``<out_dir>/classifier.keras``.
        classifier_epochs: epochs of that training.
        fid_weights: ``"imagenet"``, a weights file, ``"random"`` (tests only) or
            ``None`` (no FID row).
        identity_network: ``"dlib_resnet"``, ``"vgg_face"`` or ``"none"``.
        identity_weights: weights file of the identity network (``None`` = its cache).
        pca_persons: persons in the eigenface test (the paper: 6).
        grid_subject: index of the test subject shown in Fig. 6 / the intensity sweep.
        batch_size: generation batch size.
        seed: classifier seed.
    """

    data: str | None = None
    out_dir: str = "evaluation"
    classifier: str | None = None
    classifier_epochs: int = 12
    fid_weights: str | None = "imagenet"
    identity_network: str = "dlib_resnet"
    identity_weights: str | None = None
    pca_persons: int = 6
    grid_subject: int = 0
    batch_size: int = 64
    seed: int = 0

    def validate(self):
        """Refuse settings that would fail late or be silently changed.

        Raises:
            ValueError: a count that must be positive is not, or a negative index.
            FileNotFoundError: an explicitly named weights file does not exist.
        """
        for name in ("batch_size", "classifier_epochs", "pca_persons"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: "
                                 f"{name}={value!r}")
        if self.grid_subject < 0:
            raise ValueError("grid_subject must be the index of a test subject (>= 0). "
                             f"Received: grid_subject={self.grid_subject!r}")
        if (self.identity_weights and self.identity_network != "none"
                and not os.path.isfile(self.identity_weights)):
            raise FileNotFoundError(
                f"identity_weights={self.identity_weights!r} does not exist (given "
                f"explicitly, so it is not skipped); fix the path, or leave it out to use "
                f"the {self.identity_network} cache.")


def log(msg):
    print(msg, flush=True)


class Progress:
    """One line of progress per call at most every ``every`` seconds (and at the end)."""

    def __init__(self, label, total, every: float = 5.0):
        self.label, self.total, self.every = label, total, every
        self.t0 = self.last = time.time()

    def __call__(self, done):
        now = time.time()
        if done >= self.total or now - self.last >= self.every:
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            print(f"  {self.label}: {done}/{self.total} ({rate:.0f}/s)", flush=True)


def model_label(run_dir, config, taken) -> str:
    """Column name: the config's preset name, or the folder name when that is taken."""
    name = config.name or os.path.basename(os.path.normpath(run_dir))
    if name in taken:
        name = os.path.basename(os.path.normpath(run_dir))
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def safe_name(label) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def edit_faces(encoder, decoder, config, images, targets, intensities,
               batch_size: int = 64, progress=None) -> np.ndarray:
    """Edit uint8 ``images[i]`` to expression ``targets[i]`` at ``intensities[i]``
    with :meth:`ExpressionEditor.edit <exprgan_tf.editor.ExpressionEditor.edit>`.

    Args:
        encoder, decoder: the networks (``run_dir.load_networks``).
        config: the run's ``ExprGANConfig`` (pre-processing and code layout).
        images: uint8 ``[N, H, W, 3]``.
        targets: int ``[N]`` target expressions.
        intensities: scalar or ``[N]`` in [0, 1] (``controller.intensity_code``).
        batch_size: faces per forward pass.
        progress: called with the number of faces done after each batch.

    Returns:
        uint8 ``[N, H, W, 3]``.
    """
    from exprgan_tf.editor import ExpressionEditor

    editor = ExpressionEditor.from_networks(config, encoder, decoder)
    return editor.edit(images, targets, intensities, batch_size, progress)


def expression_figure(rows, row_labels, path, label_width: int = 70) -> str:
    """The layout of the paper's Fig. 6 and 7, written as PNG: one labelled row per
    face (or per model), each the input then its six expressions in
    :data:`~exprgan_tf.config.EXPRESSIONS` order.

    Args:
        rows: uint8 ``[7, H, W, 3]`` each (input + six expressions).
        row_labels: one text per row.
        path: the PNG to write.
        label_width: pixels of the row-label strip (about 6 per character).

    Returns:
        ``path``.
    """
    from exprgan_tf.visualize import labelled_grid, save_png

    return save_png(labelled_grid(np.stack(rows), row_labels, ["input"] + list(EXPRESSIONS),
                                  label_width=label_width), path)


def _builtin_test_rows(options, size):
    from exprgan_tf.data import builtin_rows
    return builtin_rows(split="test")


def edit_set(num_faces: int, num_classes: int = 6):
    """The edit set: every face to each expression. Returns ``(src, tgt)``, int ``[N * C]``
    (face index, target expression), face-major."""
    return (np.repeat(np.arange(num_faces), num_classes),
            np.tile(np.arange(num_classes), num_faces))


def render_true_targets(faces, test_rows, src, tgt, size) -> np.ndarray:
    """The true target of each edit: ``faces.true_faces`` of ``test_rows[src[i]]``'s
    subject at expression ``tgt[i]``, intensity 1, with that input's lighting; uint8."""
    return faces.render_batch([test_rows[i]["subject"] for i in src], np.asarray(tgt).tolist(),
                              [1.0] * len(src), [test_rows[i]["lighting"] for i in src],
                              size, None)


def pca_probe_split(test_subjects, pca_persons: int = 6):
    """The paper's eigenface test on held-out faces: the first ``pca_persons`` subjects,
    their first face is the one edited (the probes are its six edits), the gallery is
    their other real faces.

    Returns:
        ``(persons, probe_faces, gallery)``: subject ids, the index of each person's
        edited face, and the indices of the gallery faces.
    """
    test_subjects = np.asarray(test_subjects)
    subjects = list(dict.fromkeys(test_subjects.tolist()))
    persons = subjects[:pca_persons]
    probe_faces = [int(np.flatnonzero(test_subjects == p)[0]) for p in persons]
    gallery = [i for i in range(len(test_subjects))
               if test_subjects[i] in persons and i not in probe_faces]
    return persons, probe_faces, gallery


def intensity_test_set(faces, test_rows, input_faces, size,
                       requested=scores.REQUESTED_INTENSITIES) -> dict:
    """The intensity test: each listed test face's subject, clean and neutral (its
    lighting), edited to the six expressions at each requested ``s``; the ladder of true
    faces t = 0, 0.1, ..., 1 for each such edit.

    Args:
        faces: the ``FaceSet``.
        test_rows: ``builtin_rows(split="test")``.
        input_faces: indices into ``test_rows`` (one per subject).
        size: image size.
        requested: the requested intensities ``s``.

    Returns:
        dict with ``neutral`` (uint8 ``[S, H, W, 3]``), ``src`` / ``tgt`` / ``req`` (per
        edit: index into ``neutral``, target expression, requested s) and ``ladders``
        (uint8 ``[len(src), L, H, W, 3]`` for :func:`scores.estimate_intensity`).
    """
    isub = list(input_faces)
    neutral = faces.render_batch([test_rows[i]["subject"] for i in isub], [0] * len(isub),
                                 [0.0] * len(isub), [test_rows[i]["lighting"] for i in isub],
                                 size, None)
    req = np.array(requested)
    i_src = np.repeat(np.arange(len(isub)), 6 * len(req))
    i_tgt = np.tile(np.repeat(np.arange(6), len(req)), len(isub))
    i_req = np.tile(req, 6 * len(isub))
    lad_t = scores.INTENSITY_LADDER
    ladder_rows = [(test_rows[i]["subject"], e, t, test_rows[i]["lighting"])
                   for i in isub for e in range(6) for t in lad_t]
    lad = faces.render_batch(*[list(c) for c in zip(*ladder_rows)], size, None)
    lad = lad.reshape(len(isub), 6, len(lad_t), size, size, 3)
    return {"neutral": neutral, "src": i_src, "tgt": i_tgt, "req": i_req,
            "ladders": lad[i_src, i_tgt]}


def _identity_descriptor(options, notes):
    if options.identity_network == "none":
        notes.append("Identity similarity: not measured (identity network 'none').")
        return None
    from exprgan_tf import identity
    from exprgan_tf.config import IdentityConfig

    try:
        cfg = IdentityConfig(network=options.identity_network,
                             weights_path=options.identity_weights)
        return identity.build_identity_descriptor(cfg)
    except FileNotFoundError as e:
        first = str(e).split(". ")[0]
        notes.append(f"Identity similarity: skipped, no {options.identity_network} weights "
                     f"({first}). Get them with `python scripts/fetch_weights.py "
                     f"{options.identity_network}` (dlib_resnet, offline afterwards).")
        log(f"note: identity similarity skipped: {e}")
        return None


def evaluate(run_dirs, options: EvaluationOptions) -> dict:
    """Score every run directory and write Table I, the figures and ``details.json``.

    Returns:
        A dict with ``columns``, ``rows`` (:class:`Row` list), ``notes``, ``files`` and
        per-model ``details``.

    Raises:
        exprgan_tf.evaluation.fid.InceptionWeightsError: FID requested, no weights (raised
            before any generation).
        FileNotFoundError: a run directory without config or checkpoint.
    """
    from exprgan_tf import data as data_mod
    from exprgan_tf.evaluation import classifier as clf_mod
    from exprgan_tf.evaluation import fid as fid_mod
    from exprgan_tf.run_dir import load_config, load_networks
    from exprgan_tf.visualize import labelled_grid, plot_loss_curves, save_png

    t_start = time.time()
    options.validate()
    out = options.out_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"The output folder {out} is a file; give a folder (--out).")
    os.makedirs(out, exist_ok=True)
    notes = []
    if not run_dirs:
        raise ValueError("Give at least one run directory (--checkpoint).")
    configs = [load_config(r) for r in run_dirs]       # fails early on a wrong folder
    labels = []
    for r, c in zip(run_dirs, configs):
        labels.append(model_label(r, c, labels))
    size = configs[0].model.image_size
    for r, c in zip(run_dirs, configs):
        if c.model.image_size != size:
            raise ValueError(f"All models must have the same image size; {run_dirs[0]} has "
                             f"{size}, {r} has {c.model.image_size}.")

    # FID weights first: a missing file must stop us before minutes of work.
    extractor = None
    if options.fid_weights is not None:
        log(f"FID: InceptionV3 weights = {options.fid_weights}")
        extractor = fid_mod.inception_feature_extractor(options.fid_weights)

    builtin = options.data is None
    log(f"Loading {'the built-in face set' if builtin else options.data} at {size}x{size} ...")
    test_x, test_y, test_s = data_mod.load_split(options.data, "test", size)
    train_x, train_y, _ = data_mod.load_split(options.data, "train", size)
    log(f"  {len(train_x)} training faces, {len(test_x)} test faces of "
        f"{len(set(test_s))} held-out subjects")
    subjects = list(dict.fromkeys(test_s.tolist()))          # in order
    if options.grid_subject >= len(subjects):
        raise ValueError(f"grid_subject={options.grid_subject} but the test split has "
                         f"{len(subjects)} subjects (indices 0-{len(subjects) - 1}).")
    first_index = {s: int(np.flatnonzero(test_s == s)[0]) for s in subjects}

    # --- the classifier ---------------------------------------------------------------
    if options.classifier and os.path.isfile(options.classifier):
        log(f"Expression classifier: loading {options.classifier}")
        clf = clf_mod.load_classifier(options.classifier)
        clf_path = options.classifier
    else:
        clf_path = options.classifier or os.path.join(out, "classifier.keras")
        log(f"Expression classifier: training the Fig. 4 CNN on {len(train_x)} real "
            f"training faces, {options.classifier_epochs} epochs (saved to {clf_path})")
        clf = clf_mod.train_expression_classifier(train_x, train_y, options.classifier_epochs,
                                                  seed=options.seed, save_path=clf_path)
    real_acc = clf_mod.accuracy(clf, test_x, test_y)
    log(f"  accuracy on the real test faces: {real_acc:.1%}")
    notes.append(f"CNN expression classifier (Fig. 4; Adam 5e-4) trained on the "
                 f"{len(train_x)} real training faces; on the {len(test_x)} real test faces "
                 f"it scores {real_acc:.1%} (the ceiling for edits). Edits: every test face "
                 f"to each of the six expressions at intensity 1 ({len(test_x) * 6} faces).")

    # --- shared references ------------------------------------------------------------
    real_feats = None
    if extractor is not None:
        log(f"FID: features of {len(train_x)} real training faces")
        real_feats = fid_mod.inception_features(
            extractor, train_x, progress=Progress("real features", len(train_x)))
    descriptor = _identity_descriptor(options, notes)

    faces = None
    test_rows = None
    if builtin:
        from exprgan_tf.data.faces import FaceSet
        faces = FaceSet(seed=0, num_subjects=80)
        test_rows = _builtin_test_rows(options, size)
    else:
        notes.append("Ground truth and intensity rows: only on the built-in face set "
                     "(a real dataset has no true target faces).")

    # the edit set: every test face x six expressions at intensity 1
    src, tgt = edit_set(len(test_x))
    gt = None
    if builtin:
        log(f"Ground truth: rendering {len(src)} true target faces")
        gt = render_true_targets(faces, test_rows, src, tgt, size)
        # the intensity test: each subject's clean neutral face (lighting of its first
        # test face) -> six expressions x requested s; clean so that the nearest ladder
        # face is decided by the expression, not by the input's pose jitter
        log("Intensity: rendering the true faces (ladder t = 0 ... 1)")
        itest = intensity_test_set(faces, test_rows, [first_index[s] for s in subjects], size)
        neutral, i_src, i_tgt, i_req = (itest[k] for k in ("neutral", "src", "tgt", "req"))
        ladders = itest["ladders"]
        req = np.array(scores.REQUESTED_INTENSITIES)
        base = scores.ground_truth_scores(test_x[src], gt)
        notes.append(f"Ground truth: edits vs FaceSet.true_face(subject, target, 1.0, input's "
                     f"lighting), L1 in [0, 1] units. Returning the input unchanged scores "
                     f"L1 {base['l1']:.4f}, SSIM {base['ssim']:.3f}.")
        notes.append(f"Intensity: each test subject's clean neutral face edited to the six "
                     f"expressions at s = {', '.join(str(r) for r in req)}; t_hat = "
                     f"intensity of the nearest (L1) true face on t = 0, 0.1, ..., 1 (true "
                     f"faces themselves score mean abs error 0.02, correlation 0.996).")

    # PCA persons: first pca_persons test subjects, their first face -> six expressions
    persons, pca_src, gal_idx = pca_probe_split(test_s, options.pca_persons)
    notes.append(f"PCA eigenfaces: {len(persons)} persons ({', '.join(persons)}) x 6 "
                 f"generated expressions = {len(persons) * 6} probes; gallery = their other "
                 f"{len(gal_idx)} real test faces; per-image standardised; minimum distance "
                 f"to the class mean.")

    details = {}
    grid_subject = subjects[options.grid_subject]
    files = []
    for m, (run_dir, label) in enumerate(zip(run_dirs, labels)):
        log(f"[{m + 1}/{len(run_dirs)}] {label} ({run_dir})")
        config, nets = load_networks(run_dir)
        enc, dec = nets["encoder"], nets["decoder"]
        edits = edit_faces(enc, dec, config, test_x[src], tgt, 1.0,
                           options.batch_size, Progress("edits", len(src)))
        d = {"run_dir": os.fspath(run_dir), "preset": config.name}
        pred = clf_mod.predict_classes(clf, edits)
        d["classifier_accuracy"] = float(np.mean(pred == tgt))
        d["classifier_accuracy_per_class"] = {EXPRESSIONS[e]: float(np.mean(pred[tgt == e] == e))
                                              for e in range(6)}
        log(f"  CNN accuracy on edits: {d['classifier_accuracy']:.1%}")

        probe_mask = np.isin(src, pca_src)
        pca = eigenfaces.eigenface_accuracy(test_x[gal_idx], test_s[gal_idx], edits[probe_mask],
                                            test_s[src[probe_mask]])
        d["pca"] = dataclasses.asdict(pca)
        log(f"  PCA: {pca.best_accuracy:.1%} with {pca.best_components} eigenfaces")

        if extractor is not None:
            feats = fid_mod.inception_features(extractor, edits,
                                               progress=Progress("FID features", len(edits)))
            d["fid"] = fid_mod.fid_from_features(real_feats, feats)
            log(f"  FID: {d['fid']:.2f}")
        if descriptor is not None:
            d["identity"] = scores.identity_scores(descriptor, test_x[src], edits,
                                                   options.identity_network)
            log(f"  identity cosine: {d['identity']['cosine']:.3f}")
        if builtin:
            d["ground_truth"] = scores.ground_truth_scores(edits, gt)
            sweep = edit_faces(enc, dec, config, neutral[i_src], i_tgt, i_req,
                               options.batch_size)
            t_hat = scores.estimate_intensity(sweep, ladders)
            d["intensity"] = scores.intensity_scores(i_req, t_hat)
            d["intensity"]["mean_t_hat_by_request"] = {
                str(r): float(np.mean(t_hat[i_req == r])) for r in req}
            log(f"  ground truth L1 {d['ground_truth']['l1']:.4f}, SSIM "
                f"{d['ground_truth']['ssim']:.3f}; intensity |t_hat - s| "
                f"{d['intensity']['mae']:.3f}")

        # --- figures --------------------------------------------------------------
        name = safe_name(label)
        gi = first_index[grid_subject]
        row_edit = edits[src == gi]
        cells = [np.concatenate([test_x[gi:gi + 1], row_edit])]
        row_names = [label if len(label) <= 11 else "edits"]     # 70 px of row label
        if builtin:
            truth = gt[src == gi]
            cells.insert(0, np.concatenate([test_x[gi:gi + 1], truth]))
            row_names.insert(0, "truth")
        files.append(expression_figure(cells, row_names,
                                       os.path.join(out, f"fig6_{name}.png")))
        rows7 = [np.concatenate([test_x[first_index[s]:first_index[s] + 1],
                                 edits[src == first_index[s]]]) for s in subjects]
        files.append(expression_figure(rows7, subjects,
                                       os.path.join(out, f"fig7_{name}.png")))
        sw_t = np.repeat(np.arange(6), len(SWEEP_INTENSITIES))
        sw_s = np.tile(SWEEP_INTENSITIES, 6)
        sweep_img = edit_faces(enc, dec, config, test_x[[gi] * len(sw_t)], sw_t,
                               sw_s, options.batch_size)
        files.append(save_png(labelled_grid(sweep_img.reshape(6, len(SWEEP_INTENSITIES),
                                                              size, size, 3),
                                            list(EXPRESSIONS),
                                            [f"s={s:g}" for s in SWEEP_INTENSITIES]),
                              os.path.join(out, f"intensity_{name}.png")))
        hist = os.path.join(run_dir, "history.csv")
        if os.path.isfile(hist):
            try:
                files.append(plot_loss_curves(hist, os.path.join(out, f"fig8_{name}.png"),
                                              title=label))
            except ValueError as e:
                log(f"  no loss curves: {e}")
        details[label] = d
        del nets, enc, dec

    rows = build_rows(labels, details, fid_weights=options.fid_weights,
                      identity_network=options.identity_network if descriptor is not None
                      else None, builtin=builtin)
    if options.fid_weights == "random":
        notes.append("FID computed with a RANDOMLY INITIALISED InceptionV3 (no ImageNet "
                     "weights here): it ranks models by a random-feature Fréchet distance "
                     "and is NOT comparable with the paper's FID.")
    elif options.fid_weights is None:
        notes.append("FID: not measured (--no-fid).")
    else:
        notes.append(f"FID: Keras InceptionV3 ({options.fid_weights}) pool features, 299x299 "
                     f"bilinear; {len(test_x) * 6} edits vs the {len(train_x)} real training "
                     f"faces.")
    paths = write_table(labels, rows, os.path.join(out, "table1"),
                        title="Table I - our measurement", notes=notes)
    with open(os.path.join(out, "details.json"), "w", encoding="utf-8") as f:
        json.dump({"columns": labels, "details": details, "notes": notes,
                   "classifier": clf_path, "classifier_real_test_accuracy": real_acc,
                   "seconds": round(time.time() - t_start, 1),
                   "command": " ".join(sys.argv)}, f, indent=2)
    files += [paths["markdown"], paths["csv"], os.path.join(out, "details.json")]
    log(f"Done in {time.time() - t_start:.0f} s. Table I: {paths['markdown']}")
    return {"columns": labels, "rows": rows, "notes": notes, "files": files,
            "details": details}


def build_rows(labels, details, fid_weights="imagenet", identity_network="dlib_resnet",
               builtin=True):
    """Table I rows from per-model ``details`` (see :func:`evaluate`)."""
    def get(*keys):
        vals = []
        for lab in labels:
            v = details[lab]
            for k in keys:
                v = None if v is None else v.get(k)
            vals.append(v)
        return vals

    rows = [Row("CNN Expression Classifier", "Accuracy", get("classifier_accuracy"),
                "{:.1%}", "higher"),
            Row("PCA eigenfaces", "Recognition accuracy (best)", get("pca", "best_accuracy"),
                "{:.1%}", "higher"),
            Row("PCA eigenfaces", "Eigenfaces to reach it", get("pca", "best_components"),
                "{:d}", "lower")]
    if fid_weights is not None:
        if fid_weights != "random":
            rows.append(Row("FID", "FID score", get("fid"), "{:.2f}", "lower"))
        else:   # random features are tiny (values ~1e-5): show significant digits
            rows.append(Row("FID", "FID (random-init InceptionV3)", get("fid"), "{:.3g}",
                            "lower"))
    if identity_network:
        rows.append(Row("Identity", f"Cosine input/edit ({identity_network})",
                        get("identity", "cosine"), "{:.3f}", "higher"))
        if identity_network == "dlib_resnet":
            rows.append(Row("Identity", "Same person (dlib distance < 0.6)",
                            get("identity", "same_person"), "{:.1%}", "higher"))
    if builtin:
        rows += [Row("Ground truth", "L1 to true face", get("ground_truth", "l1"),
                     "{:.4f}", "lower"),
                 Row("Ground truth", "SSIM to true face", get("ground_truth", "ssim"),
                     "{:.3f}", "higher"),
                 Row("Intensity", "Mean abs(t_hat - s)", get("intensity", "mae"),
                     "{:.3f}", "lower"),
                 Row("Intensity", "Correlation of t_hat with s", get("intensity", "corr"),
                     "{:.3f}", "higher")]
    return rows
