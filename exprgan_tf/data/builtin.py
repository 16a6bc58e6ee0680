"""The built-in face set as a dataset: which faces are drawn, and with which labels.

The default mirrors how ExprGAN used Oulu-CASIA: 80 subjects, six expressions, the last
three (peak) frames of each neutral-to-peak sequence, subjects P001-P072 for training and
P073-P080 for testing (1296 + 144 images). Each frame's intensity, lighting and jitter
seed are fixed by its position, so the same arguments always produce the same images,
whether drawn in memory (:func:`exprgan_tf.data.load_split`) or written to disk
(``scripts/prepare_data.py``).
"""

from __future__ import annotations

import math

import numpy as np

from exprgan_tf.config import EXPRESSIONS, PAIR_POSES
from exprgan_tf.data.faces import LIGHTINGS, FaceSet

PEAK_INTENSITIES = (0.8, 0.9, 1.0)
"""Intensities of the three peak frames kept per sequence (the last frames of a
neutral -> peak sequence, like ExprGAN's frame selection on Oulu-CASIA)."""

MANIFEST_COLUMNS = ("path", "subject", "expression", "label", "frame", "intensity",
                    "lighting", "jitter_seed", "split")


def frame_intensities(frames: int):
    """Intensities of the last ``frames`` frames of a sequence whose peak is 1.0."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive integer. Received: frames={frames!r}")
    if frames <= len(PEAK_INTENSITIES):
        return PEAK_INTENSITIES[len(PEAK_INTENSITIES) - frames:]
    return tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, frames), 6))


def builtin_rows(seed: int = 0, num_subjects: int = 80, frames: int = 3,
                 lighting: str = "mixed", jitter: bool = True, test_fraction: float = 0.1,
                 split: str = "all", extra_subjects: int = 0):
    """The rows (one dict per image) of the built-in dataset, in a fixed order.

    Args:
        seed: seed of the face set.
        num_subjects: number of subjects; the last ``ceil(test_fraction * n)`` are the
            test subjects (P073-P080 of 80 by default).
        frames: frames per expression sequence; up to 3 are the peak frames with
            intensities :data:`PEAK_INTENSITIES`, more span neutral (0) to peak (1).
        lighting: ``"mixed"`` (each image draws strong / weak / dark deterministically)
            or one of ``faces.LIGHTINGS`` for all images.
        jitter: add pose jitter and noise (jitter seed = frame index), else clean renders.
        test_fraction: share of subjects held out for testing.
        split: ``"train"``, ``"test"`` or ``"all"``.
        extra_subjects: more training subjects, drawn after the ``num_subjects`` (P081,
            P082, ... by default): the training split grows and the test split stays
            the same people (``training.extra_subjects``). Render them with
            ``FaceSet(seed, num_subjects + extra_subjects)``.

    Returns:
        A list of dicts with the keys of :data:`MANIFEST_COLUMNS` except ``path``.

    Example:
        >>> rows = builtin_rows(num_subjects=10, extra_subjects=2, split="train")
        >>> sorted({r["subject"] for r in rows})[-3:], len(rows)
        (['P009', 'P011', 'P012'], 198)
        >>> {r["subject"] for r in builtin_rows(num_subjects=10, extra_subjects=2,
        ...                                     split="test")}
        {'P010'}
    """
    if lighting != "mixed" and lighting not in LIGHTINGS:
        raise ValueError(f"lighting must be 'mixed' or one of {list(LIGHTINGS)}. "
                         f"Received: lighting={lighting!r}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'. Received: split={split!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1). Received: "
                         f"test_fraction={test_fraction!r}")
    if isinstance(extra_subjects, bool) or not isinstance(extra_subjects, (int, np.integer)) \
            or extra_subjects < 0:
        raise ValueError("extra_subjects must be an integer >= 0. "
                         f"Received: extra_subjects={extra_subjects!r}")
    faces = FaceSet(seed=seed, num_subjects=num_subjects + extra_subjects)
    intensities = frame_intensities(frames)
    num_test = math.ceil(test_fraction * num_subjects)
    first_test = num_subjects - num_test
    extra = list(range(num_subjects, num_subjects + extra_subjects))
    if split == "train":
        subjects = list(range(0, first_test)) + extra
    elif split == "test":
        subjects = range(first_test, num_subjects)
    else:
        subjects = list(range(num_subjects)) + extra
    if len(subjects) == 0:
        raise ValueError(f"The {split!r} split has no subjects: num_subjects={num_subjects}, "
                         f"test_fraction={test_fraction} gives {first_test} training and "
                         f"{num_test} test subject(s); expected at least one on each side.")
    rows = []
    for s in subjects:
        for label, name in enumerate(EXPRESSIONS):
            for f, t in enumerate(intensities):
                if lighting == "mixed":
                    light = LIGHTINGS[int(np.random.default_rng([seed, 77, s, label, f])
                                          .integers(len(LIGHTINGS)))]
                else:
                    light = lighting
                rows.append(dict(subject=faces.subject_id(s), expression=name.capitalize(),
                                 label=label, frame=f, intensity=float(t), lighting=light,
                                 jitter_seed=f if jitter else -1,
                                 split="test" if first_test <= s < num_subjects
                                 else "train"))
    return rows


def pair_pool_rows(rows, intensities, pose: str = "clean"):
    """Rows of the paired term's partner pool, in a fixed order.

    ``pose="clean"``: every (subject, lighting) of ``rows`` in every expression at each of
    ``intensities``, as clean renders (no pose jitter, no noise; ``FaceSet.true_face``
    in that lighting): a jitter drawn for the partner could not be predicted from the
    input, and the L1 term would learn to blur over it.

    ``pose="input"``: for every row, its subject in every *other* expression at each of
    ``intensities``, in that row's pose, light and gain (the same capture of another
    expression) and without sensor noise; ``source`` is the row's index. Everything a
    partner differs from its face in is then the expression.

    Example:
        >>> pool = pair_pool_rows(builtin_rows(num_subjects=10, split="test"), (0.5, 1.0))
        >>> len(pool), pool[1]["intensity"], pool[2]["label"]
        (36, 1.0, 1)
        >>> posed = pair_pool_rows(builtin_rows(num_subjects=10, split="test"), [1], "input")
        >>> len(posed), posed[5]["source"], posed[5]["label"], posed[5]["pose_of"]
        (90, 1, 1, (0, 0.9))
    """
    intensities = [float(t) for t in intensities]
    if not intensities or min(intensities) < 0.0 or max(intensities) > 1.0:
        raise ValueError("intensities must be a non-empty list of numbers in [0, 1]. "
                         f"Received: intensities={intensities}")
    if pose not in PAIR_POSES:
        raise ValueError(f"pose must be one of {list(PAIR_POSES)}. Received: pose={pose!r}")
    out = []
    if pose == "input":
        for k, r in enumerate(rows):
            if r["jitter_seed"] < 0:
                raise ValueError("pose='input' needs jittered rows (built with jitter=True); "
                                 f"row {k} ({r['subject']}, {r['expression']}) is clean.")
            for label, name in enumerate(EXPRESSIONS):
                if label == r["label"]:
                    continue
                for t in intensities:
                    out.append(dict(r, expression=name.capitalize(), label=label,
                                    intensity=t, source=k,
                                    pose_of=(r["label"], r["intensity"])))
        return out
    groups = dict.fromkeys((r["subject"], r["lighting"], r["split"]) for r in rows)
    for subject, light, split in groups:
        for label, name in enumerate(EXPRESSIONS):
            for j, t in enumerate(intensities):
                out.append(dict(subject=subject, expression=name.capitalize(), label=label,
                                frame=j, intensity=t, lighting=light,
                                jitter_seed=-1, split=split))
    return out


def render_rows(faces: FaceSet, rows, size: int = 128) -> np.ndarray:
    """Render the images of :func:`builtin_rows` (or :func:`pair_pool_rows`) rows; uint8
    [N, size, size, 3]."""
    jit = [None if r["jitter_seed"] < 0 else r["jitter_seed"] for r in rows]
    return faces.render_batch([r["subject"] for r in rows], [r["label"] for r in rows],
                              [r["intensity"] for r in rows], [r["lighting"] for r in rows],
                              size, jit, poses_of=[r.get("pose_of") for r in rows])


def write_builtin(out, size: int = 128, seed: int = 0, num_subjects: int = 80,
                  frames: int = 3, lighting: str = "mixed", jitter: bool = True,
                  test_fraction: float = 0.1, image_format: str = "png",
                  overwrite: bool = False, chunk: int = 64):
    """Write the built-in face set to disk in the Oulu-CASIA layout with a manifest.

    Files are ``<out>/<subject>/<Expression>/<frame>.<ext>`` (``P001/Anger/000.png``...)
    and ``<out>/manifest.csv`` lists every file with the columns of
    :data:`MANIFEST_COLUMNS`. PNG is lossless, so reading the folder back gives exactly
    the in-memory set (``load_split(None, ...)``) at the same size.

    Args:
        out: output folder (created; must be empty unless ``overwrite``).
        size: image height and width.
        image_format: ``"png"`` or ``"jpeg"`` (quality 95, like the original's JPEGs).
        overwrite: allow writing into a non-empty folder.
        chunk: faces rendered per batch.
        Other arguments: as :func:`builtin_rows`.

    Returns:
        The manifest rows (dicts), ``path`` relative to ``out``.
    """
    import csv
    import os

    from PIL import Image

    if image_format not in ("png", "jpeg"):
        raise ValueError("image_format must be 'png' or 'jpeg'. "
                         f"Received: image_format={image_format!r}")
    out = os.fspath(out)
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise ValueError(f"Output folder {out} is not empty; pass overwrite=True "
                         "(--overwrite) to write into it.")
    rows = builtin_rows(seed=seed, num_subjects=num_subjects, frames=frames,
                        lighting=lighting, jitter=jitter, test_fraction=test_fraction)
    faces = FaceSet(seed=seed, num_subjects=num_subjects)
    ext = "png" if image_format == "png" else "jpeg"
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        images = render_rows(faces, part, size)
        for row, image in zip(part, images):
            rel = os.path.join(row["subject"], row["expression"], f"{row['frame']:03d}.{ext}")
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            kwargs = {"quality": 95} if ext == "jpeg" else {}
            Image.fromarray(image).save(os.path.join(out, rel), **kwargs)
            row["path"] = rel.replace(os.sep, "/")
    with open(os.path.join(out, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in MANIFEST_COLUMNS})
    return rows


def render_pair_pool(faces: FaceSet, rows, intensities, size: int = 128,
                     pose: str = "clean", changes: bool = False) -> dict:
    """The paired term's partner pool of ``rows`` (:func:`pair_pool_rows`), rendered:
    a dict of ``images``, ``labels``, ``groups`` (``"<subject>/<lighting>"``, as
    :func:`exprgan_tf.data.pair_groups`) and ``intensities``; with ``pose="input"`` also
    ``sources`` (the index in ``rows`` of the face each partner belongs to) and, with
    ``changes`` (``training.pair_change``), ``changes`` (uint8 ``[M, S, S]``,
    :func:`~exprgan_tf.data.regions.change_maps` of each partner and the noise-free
    capture of its own face: where the expression changes the picture)."""
    from exprgan_tf.data.regions import change_maps

    if changes and pose != "input":
        raise ValueError("changes=True needs pose='input' (a partner in its face's own "
                         f"capture). Received: pose={pose!r}")
    pool = pair_pool_rows(rows, intensities, pose)
    out = {"images": render_rows(faces, pool, size),
           "labels": np.array([r["label"] for r in pool], np.int32),
           "groups": np.array([f"{r['subject']}/{r['lighting']}" for r in pool]),
           "intensities": np.array([r["intensity"] for r in pool], np.float32)}
    if pose == "input":
        out["sources"] = np.array([r["source"] for r in pool], np.int64)
    if changes:  # against each face's own capture without its noise
        own = render_rows(faces, [dict(r, pose_of=(r["label"], r["intensity"]))
                                  for r in rows], size)
        out["changes"] = change_maps(out["images"], own[out["sources"]])
    return out
