"""Did a run learn to edit *and* keep the person? One report on the held-out subjects.

:func:`learning_report` scores an encoder/decoder pair (a run directory, a compact
editor, a fresh training) on the built-in face set's 8 held-out subjects (P073-P080,
144 faces), every number beside the baseline of returning the input unchanged where
such a baseline exists:

1. **Requested expression** - every held-out face edited to each of the six expressions
   at intensity 1 (864 edits); the judge (the Fig. 4 CNN of
   :mod:`~exprgan_tf.evaluation.classifier`, trained on the training subjects,
   :func:`~exprgan_tf.evaluation.classifier.load_or_train_judge`) says how often the
   requested expression came out, overall and per class. Beside it: the judge on the
   real held-out faces (its ceiling) and on the unchanged inputs (chance-like: an input
   shows the requested expression only when it already had it).
2. **PCA eigenfaces** - the paper's protocol (:func:`~exprgan_tf.evaluation.protocol.
   pca_probe_split`): 6 persons x their first face edited to the 6 expressions = 36
   probes, gallery = the persons' other real held-out faces; best accuracy, the fewest
   eigenfaces reaching it, and the accuracy at 10 eigenfaces.
3. **Nearest true target** - each edit of a face of subject s to expression e is
   compared with the true faces (clean renders, expression e, intensity 1, the input's
   lighting) of all 8 held-out subjects; correct when the nearest is subject s's
   (:func:`~exprgan_tf.evaluation.scores.nearest_true_target_rate`; chance 1/8). In two
   spaces: pixels after per-image standardisation, and dlib descriptors.
4. **dlib same person** - share of (input, edit) pairs with descriptor distance < 0.6,
   beside the share for (input, true target): what a perfect editor reaches.
5. **Ground truth** - L1 and SSIM of the edits to their true targets; also L1 and SSIM
   of the 144 edits that ask for the input's own expression (reconstructions), L1 of the
   720 that ask for another (the two split a miss between redrawing and changing), the
   edits' fine detail from row to row and from column to column next to the true
   targets' (:func:`~exprgan_tf.evaluation.scores.fine_detail`: the stripes).
6. **Intensity** - each subject's clean neutral face edited to each expression at
   s = 0, .25, .5, .75, 1; the intensity that came out is read off a ladder of true
   faces (:func:`~exprgan_tf.evaluation.scores.estimate_intensity`); mean error,
   Pearson and Spearman correlation with s. Read twice: at exact pixels, and for
   strength (:data:`~exprgan_tf.evaluation.scores.TOLERANT_READING`: a stroke a pixel
   off still counts).
7. **z spread** - how much G(z, c) changes with z at a fixed code c: mean over the six
   codes (intensity 1) of the per-pixel std over ``z_draws`` prior draws
   z ~ U(-1, 1)^latent_dim, in G's [-1, 1] units; beside the same spread of real
   held-out faces of one expression (different people).

Without dlib weights every dlib number is the string :data:`DLIB_NOT_MEASURED`, never a
silent omission.

Example (``benchmarks/train_learning.py`` does this and writes the tables)::

    from exprgan_tf.evaluation import learning
    from exprgan_tf.evaluation.classifier import load_or_train_judge
    from exprgan_tf.run_dir import load_networks

    config, nets = load_networks("runs/my_run")
    report = learning.learning_report(nets["encoder"], nets["decoder"], config,
                                      judge=load_or_train_judge(64),
                                      descriptor=learning.dlib_descriptor())
    print(learning.markdown_rows(report))
"""

from __future__ import annotations

import time

import numpy as np

from exprgan_tf.config import EXPRESSIONS
from exprgan_tf.evaluation import eigenfaces, protocol, scores
from exprgan_tf.preprocessing import to_display, to_model_range, undo_unsharp_mask

DLIB_NOT_MEASURED = ("not measured (no weights: run python scripts/fetch_weights.py "
                     "dlib_resnet)")
PCA_AT = 10
Z_DRAWS = 16
TRAINING_PROBE = tuple(f"P{i:03d}" for i in range(1, 9))
"""Eight training subjects for :func:`heldout_set`'s diagnostic: the fit on seen faces."""


def dlib_descriptor(weights_path=None):
    """dlib's ResNet descriptor, or ``None`` when its weights are missing (the report
    then says :data:`DLIB_NOT_MEASURED`)."""
    from exprgan_tf import identity
    from exprgan_tf.config import IdentityConfig

    try:
        return identity.build_identity_descriptor(
            IdentityConfig(network="dlib_resnet", weights_path=weights_path))
    except FileNotFoundError:
        return None


def editor_networks(editor, preset: str = "proposed-small"):
    """``(config, encoder, decoder)`` of an ``ExpressionEditor`` (e.g. a compact ``.npz``
    from ``exprgan_tf.load_editor``): ``preset``'s config with the editor's
    pre-processing, code layout, image size, latent size, ``edit_regions``,
    ``paste_gate`` and ``intensity_scale``."""
    from exprgan_tf.config import get_preset

    latent = int(editor.encoder.output_shape[-1])
    config = get_preset(preset).override([
        f"preprocess.unsharp_mask={'true' if editor.unsharp_mask else 'false'}",
        f"preprocess.radius={editor.radius}", f"preprocess.amount={editor.amount}",
        f"preprocess.sharpen_targets={'true' if editor.sharpen_targets else 'false'}",
        f"model.edit_regions={editor.edit_regions}",
        f"model.paste_gate={editor.paste_gate}",
        f"model.intensity_scale={editor.intensity_scale}",
        f"model.image_size={editor.image_size}", f"model.latent_dim={latent}",
        f"model.num_classes={editor.num_classes}",
        f"model.intensity_dim={editor.intensity_dim}"])
    return config, editor.encoder, editor.decoder


def heldout_set(image_size: int, pca_persons: int = 6, subjects=None) -> dict:
    """Everything of the report that does not depend on the model (renders true faces;
    a few seconds). Pass it to several :func:`learning_report` calls to render once.

    Args:
        image_size: height and width of the faces.
        pca_persons: subjects of the eigenface test.
        subjects: the built-in subjects to score on, in the set's order; ``None``: the
            held-out ones (P073-P080). Training subjects (e.g. :data:`TRAINING_PROBE`)
            are a diagnostic, never a result: the model has seen those faces and their
            partners, so the report then says how well it fits what it trained on, and
            beside the held-out report, how much of a miss is generalisation.

    Returns:
        dict: ``x``, ``y``, ``subjects`` (the 144 held-out faces), ``rows`` (their
        ``builtin_rows``), ``src`` / ``tgt`` (the 864 edits), ``truth`` (their true
        targets), ``bank`` (true faces of every held-out subject x expression x
        lighting), ``candidates`` ``[864, 8]`` / ``target`` ``[864]`` (rows of ``bank``
        each edit is compared with, and which column is its subject), ``pca``
        (persons, probe faces, gallery), ``intensity`` (see
        :func:`protocol.intensity_test_set`).
    """
    from exprgan_tf import data
    from exprgan_tf.data import builtin_rows
    from exprgan_tf.data.faces import LIGHTINGS, FaceSet

    split = "test" if subjects is None else "all"
    x, y, subj = data.load_split(None, split, image_size)
    rows = builtin_rows(split=split)
    if [r["subject"] for r in rows] != subj.tolist():
        raise RuntimeError(f"builtin_rows(split={split!r}) and load_split disagree on the "
                           "order")
    if subjects is not None:
        unknown = sorted(set(subjects) - set(subj.tolist()))
        if unknown or len(set(subjects)) < pca_persons:
            raise ValueError(
                f"subjects must be at least {pca_persons} distinct subjects of the "
                f"built-in set (P001-P080); unknown: {unknown}. Received: {list(subjects)}")
        keep = np.isin(subj, list(subjects))
        x, y, subj = x[keep], y[keep], subj[keep]
        rows = [r for r, k in zip(rows, keep) if k]
    faces = FaceSet(seed=0, num_subjects=80)
    src, tgt = protocol.edit_set(len(x))
    truth = protocol.render_true_targets(faces, rows, src, tgt, image_size)
    subjects = list(dict.fromkeys(subj.tolist()))
    keys = [(s, e, l) for s in subjects for e in range(6) for l in LIGHTINGS]
    bank = faces.true_faces([k[0] for k in keys], [k[1] for k in keys], [1.0] * len(keys),
                            image_size, [k[2] for k in keys])
    index = {k: i for i, k in enumerate(keys)}
    candidates = np.array([[index[(s, int(e), rows[i]["lighting"])] for s in subjects]
                           for i, e in zip(src, tgt)], np.int64)
    target = np.array([subjects.index(rows[i]["subject"]) for i in src], np.int64)
    first = [int(np.flatnonzero(subj == s)[0]) for s in subjects]
    return {"x": x, "y": y, "subjects": subj, "rows": rows, "src": src, "tgt": tgt,
            "truth": truth, "bank": bank, "candidates": candidates, "target": target,
            "subject_ids": subjects, "first_face": first,
            "pca": protocol.pca_probe_split(subj, pca_persons),
            "intensity": protocol.intensity_test_set(faces, rows, first, image_size)}


def _per_class(pred, requested):
    return {EXPRESSIONS[e]: float(np.mean(pred[requested == e] == e))
            for e in range(len(EXPRESSIONS)) if np.any(requested == e)}


def _read_as(pred, requested):
    """``{requested: {read as: share}}`` over the edits of each requested class (the
    rows of the judge's confusion matrix, as shares; classes read 0 times left out)."""
    return {EXPRESSIONS[e]: {EXPRESSIONS[k]: float(np.mean(pred[requested == e] == k))
                             for k in range(len(EXPRESSIONS))
                             if np.any(pred[requested == e] == k)}
            for e in range(len(EXPRESSIONS)) if np.any(requested == e)}


def _misread(read_as, cls):
    """``"read as fear 20.1%, sadness 5.0%"``: what the judge saw instead of ``cls``,
    most often first ('' when never misread; reports written before it: '')."""
    other = sorted(((v, k) for k, v in (read_as or {}).get(cls, {}).items() if k != cls),
                   reverse=True)
    return "; else read as " + ", ".join(f"{k} {_pct(v)}" for v, k in other) if other else ""


def _pca(gallery_x, gallery_y, probes, probe_y):
    r = eigenfaces.eigenface_accuracy(gallery_x, gallery_y, probes, probe_y)
    at = r.accuracies[min(PCA_AT, len(r.accuracies)) - 1]
    return {"best_accuracy": r.best_accuracy, "best_components": r.best_components,
            f"accuracy_at_{PCA_AT}": at, "accuracies": r.accuracies}


def decoder_z_spread(decoder, config, z_draws: int = Z_DRAWS, seed: int = 0) -> float:
    """:func:`scores.z_spread` of ``decoder`` over ``z_draws`` draws z ~ U(-1, 1) at each
    class's code at intensity 1 (the same draws for every code)."""
    import tensorflow as tf

    from exprgan_tf.controller import intensity_code
    from exprgan_tf.models.decoder import decode

    m = config.model
    z = np.random.default_rng(seed).uniform(-1.0, 1.0, (z_draws, m.latent_dim))
    z = tf.constant(z, tf.float32)
    outs = []
    for e in range(m.num_classes):
        code = intensity_code(np.full(z_draws, e), 1.0, m.num_classes, m.intensity_dim)
        outs.append(np.asarray(decode(decoder, z, code)))
    return scores.z_spread(np.stack(outs))


def learning_report(encoder, decoder, config, *, judge, descriptor=None, heldout=None,
                    z_draws: int = Z_DRAWS, seed: int = 0, batch_size: int = 64,
                    undo_sharpening: bool = False, log=print) -> dict:
    """Score a model on the held-out subjects (see the module docstring).

    Args:
        encoder, decoder: the networks (``run_dir.load_networks`` or
            :func:`editor_networks`).
        config: the run's ``ExprGANConfig`` (pre-processing, code layout, latent size).
        judge: the expression classifier (``classifier.load_or_train_judge``).
        descriptor: dlib's descriptor (:func:`dlib_descriptor`); ``None``: every dlib
            number is :data:`DLIB_NOT_MEASURED`.
        heldout: :func:`heldout_set` of the config's image size (rendered if ``None``).
        z_draws: prior draws per code for the z spread.
        seed: seed of those draws.
        batch_size: faces per forward pass.
        undo_sharpening: score the edits after
            :func:`~exprgan_tf.preprocessing.undo_unsharp_mask` with the config's
            radius and amount (a diagnostic for a G trained on sharpened faces; no
            effect without ``preprocess.unsharp_mask``).
        log: progress messages (``None``: silent).

    Returns:
        A JSON-serialisable dict, one key per measure (``expression``, ``pca``,
        ``nearest_true_target``, ``same_person``, ``ground_truth``, ``intensity``,
        ``z_spread``), each holding the model's number and its baseline(s), plus
        ``seconds``.
    """
    from exprgan_tf import identity
    from exprgan_tf.evaluation.classifier import predict_classes

    say = log or (lambda *_: None)
    t0 = time.time()
    size = config.model.image_size
    h = heldout if heldout is not None else heldout_set(size)
    x, y, subj, src, tgt = h["x"], h["y"], h["subjects"], h["src"], h["tgt"]
    inputs = x[src]
    say(f"editing {len(x)} faces of {len(h['subject_ids'])} subjects to 6 expressions "
        f"({len(src)} edits)")
    pre = config.preprocess
    undo = undo_sharpening and pre.unsharp_mask

    def edit(images, targets, intensities):
        out = protocol.edit_faces(encoder, decoder, config, images, targets, intensities,
                                  batch_size)
        if undo:
            out = np.asarray(to_display(to_model_range(
                undo_unsharp_mask(out, pre.radius, pre.amount))))
        return out

    edits = edit(inputs, tgt, 1.0)
    report = {"edits": int(len(src)), "heldout_subjects": h["subject_ids"],
              "undo_sharpening": bool(undo)}

    # 1. requested expression
    pred = predict_classes(judge, edits)
    real_pred = predict_classes(judge, x)
    report["expression"] = {
        "accuracy": float(np.mean(pred == tgt)), "per_class": _per_class(pred, tgt),
        "read_as": _read_as(pred, tgt),
        "input_unchanged": float(np.mean(real_pred[src] == tgt)),
        "judge_on_real": float(np.mean(real_pred == y)),
        "judge_on_real_per_class": _per_class(real_pred, y), "chance": 1.0 / 6}
    say(f"  requested expression: {report['expression']['accuracy']:.1%}")

    # 2. PCA eigenfaces, the paper's protocol
    persons, probe_faces, gallery = h["pca"]
    mask = np.isin(src, probe_faces)
    report["pca"] = _pca(x[gallery], subj[gallery], edits[mask], subj[src[mask]])
    report["pca"]["persons"] = list(persons)
    report["pca"]["input_unchanged"] = _pca(x[gallery], subj[gallery], inputs[mask],
                                            subj[src[mask]])
    say(f"  PCA: {report['pca']['best_accuracy']:.1%} with "
        f"{report['pca']['best_components']} eigenfaces")

    # 3-4. nearest true target, dlib same person
    cand, target, bank = h["candidates"], h["target"], h["bank"]
    std = eigenfaces.flatten_faces
    ntt = {"chance": 1.0 / cand.shape[1], "pixels": {
        "edit": scores.nearest_true_target_rate(std(edits), std(bank), cand, target),
        "input_unchanged": scores.nearest_true_target_rate(std(inputs), std(bank), cand,
                                                           target)}}
    if descriptor is not None:
        say("  dlib descriptors")
        d_in = scores.describe_faces(descriptor, x)
        d_edit = scores.describe_faces(descriptor, edits)
        d_bank = scores.describe_faces(descriptor, bank)
        d_truth = d_bank[cand[np.arange(len(src)), target]]
        ntt["dlib"] = {
            "edit": scores.nearest_true_target_rate(d_edit, d_bank, cand, target),
            "input_unchanged": scores.nearest_true_target_rate(d_in[src], d_bank, cand,
                                                               target)}
        same = lambda a, b: float(np.mean(np.asarray(identity.same_person(a, b))))  # noqa
        dist = lambda a, b: float(np.mean(np.asarray(identity.dlib_distance(a, b))))  # noqa
        report["same_person"] = {
            "edit": same(d_in[src], d_edit), "true_target": same(d_in[src], d_truth),
            "mean_distance_edit": dist(d_in[src], d_edit),
            "mean_distance_true_target": dist(d_in[src], d_truth),
            "threshold": float(identity.SAME_PERSON_THRESHOLD)}
    else:
        ntt["dlib"] = DLIB_NOT_MEASURED
        report["same_person"] = DLIB_NOT_MEASURED
    report["nearest_true_target"] = ntt
    say(f"  nearest true target (pixels): {ntt['pixels']['edit']:.1%} "
        f"(input unchanged {ntt['pixels']['input_unchanged']:.1%})")

    # 5. ground truth
    report["ground_truth"] = scores.ground_truth_scores(edits, h["truth"], inputs)
    # The same on the edits that keep the input's own expression (reconstructions): an
    # editor that cannot reconstruct more closely than the input cannot edit so either.
    own = tgt == y[src]
    report["ground_truth"]["reconstruction"] = scores.ground_truth_scores(
        edits[own], h["truth"][own], inputs[own])
    # ... and on the other 720, which ask for a change: together the two show whether a
    # miss comes from redrawing the face or from drawing the new expression.
    report["ground_truth"]["changed"] = scores.ground_truth_scores(
        edits[~own], h["truth"][~own], inputs[~own])
    # ... by requested expression: which class's drawing loses to the input.
    err_edit = scores.l1_error(edits, h["truth"])
    err_input = scores.l1_error(inputs, h["truth"])
    report["ground_truth"]["changed"]["per_class"] = {
        EXPRESSIONS[e]: {"l1": float(np.mean(err_edit[~own & (tgt == e)])),
                         "l1_input": float(np.mean(err_input[~own & (tgt == e)]))}
        for e in range(len(EXPRESSIONS)) if np.any(~own & (tgt == e))}
    # Stripes, checkerboard, noise: the edits' fine detail next to the true targets'.
    report["ground_truth"]["fine_detail"] = scores.fine_detail(edits, h["truth"])
    report["ground_truth"]["fine_detail_input"] = scores.fine_detail(inputs, h["truth"])

    # 6. intensity
    it = h["intensity"]
    sweep = edit(it["neutral"][it["src"]], it["tgt"], it["req"])

    def read(**reading):
        t_hat = scores.estimate_intensity(sweep, it["ladders"], **reading)
        t_in = scores.estimate_intensity(it["neutral"][it["src"]], it["ladders"], **reading)
        return {**scores.intensity_scores(it["req"], t_hat),
                "mean_t_hat_by_request": {str(r): float(np.mean(t_hat[it["req"] == r]))
                                          for r in np.unique(it["req"])},
                "input_unchanged": scores.intensity_scores(it["req"], t_in)}

    report["intensity"] = read()
    # the same edits read for strength, not exact pixels (scores.TOLERANT_READING)
    report["intensity"]["tolerant"] = {**read(**scores.TOLERANT_READING),
                                       "reading": dict(scores.TOLERANT_READING)}

    # 7. z spread
    real = np.stack([x[y == e][:z_draws] for e in range(6)]).astype(np.float32) / 127.5 - 1
    report["z_spread"] = {"decoder": decoder_z_spread(decoder, config, z_draws, seed),
                          "real_faces": scores.z_spread(real), "draws": int(z_draws)}
    report["seconds"] = round(time.time() - t0, 1)
    report["_edits"] = edits          # not JSON: for figures; strip with public()
    if descriptor is not None:        # for Frechet distances over dlib descriptors
        report["_dlib"] = {"inputs": d_in[src], "edits": d_edit}
    return report


def public(report) -> dict:
    """The report without its private arrays (``_edits``: the edits, uint8 ``[864, H,
    W, 3]``; ``_dlib``: with dlib, the descriptors of the unedited inputs and of the
    edits, ``{"inputs", "edits"}`` ``[864, 128]``), ready for ``json.dump``."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def _pct(v):
    return v if isinstance(v, str) else ("-" if v is None else f"{v:.1%}")


def _num(v, fmt="{:.3f}"):
    return v if isinstance(v, str) else ("-" if v is None else fmt.format(v))


def table_rows(report) -> list:
    """``(measure, model, baseline, note)`` rows of every number of a report."""
    e, p, n, g, i = (report[k] for k in ("expression", "pca", "nearest_true_target",
                                          "ground_truth", "intensity"))
    pu = p["input_unchanged"]
    at = f"accuracy_at_{PCA_AT}"
    rows = [("Requested expression (judge), overall", _pct(e["accuracy"]),
             _pct(e["input_unchanged"]),
             f"judge on the real faces scored {_pct(e['judge_on_real'])}; chance 16.7%")]
    for k, v in e["per_class"].items():
        rows.append((f"Requested expression: {k}", _pct(v), "",
                     f"judge on real {k}: {_pct(e['judge_on_real_per_class'].get(k))}"
                     + _misread(e.get("read_as"), k)))
    rows += [
        ("PCA eigenfaces: best accuracy", _pct(p["best_accuracy"]), _pct(pu["best_accuracy"]),
         f"{len(p['persons'])} persons x 6 expressions; chance {_pct(1 / len(p['persons']))}"),
        ("PCA eigenfaces: fewest eigenfaces reaching it", str(p["best_components"]),
         str(pu["best_components"]), ""),
        (f"PCA eigenfaces: accuracy at {PCA_AT} eigenfaces", _pct(p[at]), _pct(pu[at]), ""),
        ("Nearest true target, pixels (standardised)", _pct(n["pixels"]["edit"]),
         _pct(n["pixels"]["input_unchanged"]), f"chance {_pct(n['chance'])}")]
    if isinstance(n["dlib"], str):
        rows.append(("Nearest true target, dlib descriptors", n["dlib"], n["dlib"], ""))
    else:
        rows.append(("Nearest true target, dlib descriptors", _pct(n["dlib"]["edit"]),
                     _pct(n["dlib"]["input_unchanged"]), f"chance {_pct(n['chance'])}"))
    sp = report["same_person"]
    if isinstance(sp, str):
        rows.append(("dlib same person (input, edit)", sp, "", ""))
    else:
        rows.append(("dlib same person (input, edit), distance < 0.6", _pct(sp["edit"]),
                     "",
                     f"(input, true target) = {_pct(sp['true_target'])}: a perfect editor; "
                     f"mean distance {sp['mean_distance_edit']:.3f} vs "
                     f"{sp['mean_distance_true_target']:.3f}"))
    rows += [
        ("L1 to true target ([0, 1] units, lower is better)", _num(g["l1"], "{:.4f}"),
         _num(g["l1_input"], "{:.4f}"), ""),
        ("SSIM to true target", _num(g["ssim"]), _num(g["ssim_input"]), ""),
    ]
    r = g.get("reconstruction")  # reports written before it have none
    if r is not None:
        rows.append(("L1 to true target, edits to the input's own expression",
                     _num(r["l1"], "{:.4f}"), _num(r["l1_input"], "{:.4f}"),
                     "the reconstructions among the edits: how closely the model "
                     "redraws a face at all"))
    c = g.get("changed")
    if c is not None:
        rows.append(("L1 to true target, edits to another expression",
                     _num(c["l1"], "{:.4f}"), _num(c["l1_input"], "{:.4f}"),
                     "the other 5 in 6: how closely the model draws a new expression"))
        if "per_class" in c:
            rows.append(("... by requested expression, model - input unchanged",
                         ", ".join(f"{k} {(v['l1'] - v['l1_input']) * 1e4:+.1f}e-4"
                                   for k, v in c["per_class"].items()), "",
                         "below 0: that expression's edits are nearer their true "
                         "targets than the input is"))
    fd, fd_in = g.get("fine_detail"), g.get("fine_detail_input")
    if fd is not None:
        rows.append(("Fine detail, row to row / column to column (true target = 1)",
                     f"{fd['down']:.2f} / {fd['across']:.2f}",
                     f"{fd_in['down']:.2f} / {fd_in['across']:.2f}",
                     "power at periods of 2-4 px; above 1 row to row only: horizontal "
                     "stripes; below 1: blur"))
    rows += [
        ("Intensity: Spearman(requested, estimated)", _num(i["spearman"]),
         _num(i["input_unchanged"]["spearman"]), "undefined (-) for a constant estimate"),
        ("Intensity: Pearson(requested, estimated)", _num(i["corr"]),
         _num(i["input_unchanged"]["corr"]), ""),
        ("Intensity: mean abs(estimated - requested)", _num(i["mae"]),
         _num(i["input_unchanged"]["mae"]),
         "mean estimate by request: " + ", ".join(
             f"{k}->{v:.2f}" for k, v in i["mean_t_hat_by_request"].items())),
    ]
    tol = i.get("tolerant")  # reports written before it have none
    if tol is not None:
        rows += [
            ("Intensity read for strength: Spearman(requested, estimated)",
             _num(tol["spearman"]), _num(tol["input_unchanged"]["spearman"]),
             f"the same ladder, both sides blurred by {tol['reading']['blur']:g} px, best "
             f"shift within {tol['reading']['max_shift']} px; mean estimate by request: "
             + ", ".join(f"{k}->{v:.2f}" for k, v in tol["mean_t_hat_by_request"].items())),
            ("Intensity read for strength: mean abs(estimated - requested)", _num(tol["mae"]),
             _num(tol["input_unchanged"]["mae"]), ""),
        ]
    rows += [
        ("z spread of G(z, c) (std over z, [-1, 1] units)",
         _num(report["z_spread"]["decoder"], "{:.4f}"), "",
         f"the real faces scored, one expression: {report['z_spread']['real_faces']:.4f}"),
    ]
    return rows


def markdown_rows(report) -> str:
    """The rows of :func:`table_rows` as a Markdown table."""
    lines = ["| measure | model | input unchanged | note |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    return "\n".join(lines)
