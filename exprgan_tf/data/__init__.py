"""Data: the built-in face set and dataset readers.

- :mod:`exprgan_tf.data.faces` - the procedural face renderer (:class:`FaceSet`) and its
  ground truth (:meth:`FaceSet.true_face`);
- :mod:`exprgan_tf.data.builtin` - which built-in faces form the Oulu-sized dataset;
- :mod:`exprgan_tf.data.readers` - Oulu-CASIA and generic folder layouts, split by subject;
- :mod:`exprgan_tf.data.detect` - optional face detection and crop (``pip install mtcnn``).

Training batches (in memory or streamed from files, one ``tf.data`` path) are built by
:class:`exprgan_tf.training.TrainingInputs` from what :func:`load_split` (arrays) or
:func:`list_split` (file paths) return.

Example:
    >>> from exprgan_tf.data import load_split
    >>> images, labels, subjects = load_split(split="test", image_size=32)
    >>> images.shape, sorted(set(subjects.tolist()))[:2]
    ((144, 32, 32, 3), ['P073', 'P074'])
"""

from __future__ import annotations

import numpy as np

from exprgan_tf.data.builtin import builtin_rows, render_pair_pool, render_rows
from exprgan_tf.data.faces import EXPRESSION_AUS, LIGHTINGS, FaceSet, action_units
from exprgan_tf.data.readers import read_images, scan, select_split


def load_split(data=None, split: str = "train", image_size: int = 128, *,
               layout: str = "auto", frames: int = 3, test_subjects=None,
               test_fraction: float = 0.1, subject_pattern=None, manifest=None,
               ignore_folders=(), detect_faces: bool = False, seed: int = 0,
               num_subjects: int = 80, lighting: str = "mixed", jitter: bool = True,
               extra_subjects: int = 0):
    """Load one split of a dataset into memory, split by subject.

    Args:
        data: ``None`` for the built-in face set (generated in memory; Oulu-sized by
            default: 80 subjects, P001-P072 train / P073-P080 test, 6 expressions x 3 peak
            frames, lighting mixed), or the path of a dataset folder (Oulu-CASIA layout
            ``<subject>/<Expression>/<frame>`` or generic ``<expression>/<file>``).
        split: ``"train"``, ``"test"`` or ``"all"``.
        image_size: output height and width (files are centre-cropped and resized).
        layout: ``"auto"``, ``"oulu"`` or ``"generic"`` (folders only).
        frames: peak frames kept per sequence (Oulu layout; ``0`` = all) or rendered per
            expression (built-in).
        test_subjects: explicit test subject ids; ``None`` = the last
            ``ceil(test_fraction * n)`` subjects in natural order.
        test_fraction: share of subjects held out when ``test_subjects`` is ``None``.
        subject_pattern: generic layout: regex giving the subject from a file name.
        manifest: generic layout: CSV with ``path,subject`` columns.
        ignore_folders: expression-level folders to skip (e.g. ``["neutral"]``).
        detect_faces: crop each photo to the face found by MTCNN (needs ``mtcnn``).
        seed, num_subjects, lighting, jitter, extra_subjects: built-in face set only
            (see :func:`exprgan_tf.data.builtin.builtin_rows`).

    Returns:
        ``(images uint8 [N, S, S, 3], labels int32 [N], subjects str [N])``.

    Raises:
        ValueError: for an empty dataset, unknown expression folders, a split with no
            subjects or an unrecognised layout, saying what was found and expected.
    """
    if data is None:
        if test_subjects is not None:
            raise ValueError("test_subjects applies to data on disk; the built-in set holds "
                             "out the last ceil(test_fraction * num_subjects) subjects. "
                             f"Received: test_subjects={test_subjects!r}")
        rows = builtin_rows(seed=seed, num_subjects=num_subjects, frames=frames,
                            lighting=lighting, jitter=jitter, test_fraction=test_fraction,
                            split=split, extra_subjects=extra_subjects)
        images = render_rows(FaceSet(seed=seed, num_subjects=num_subjects + extra_subjects),
                             rows, image_size)
        return (images, np.array([r["label"] for r in rows], np.int32),
                np.array([r["subject"] for r in rows]))
    records = _split_records(data, split, layout, frames, test_subjects, test_fraction,
                             subject_pattern, manifest, ignore_folders)
    detector = None
    if detect_faces:
        from exprgan_tf.data.detect import FaceCropper
        detector = FaceCropper()
    images, kept = read_images(records, image_size, detector)
    return (images, np.array([r.label for r in kept], np.int32),
            np.array([r.subject for r in kept]))


def _split_records(data, split, layout, frames, test_subjects, test_fraction,
                   subject_pattern, manifest, ignore_folders):
    from exprgan_tf.data.readers import DEFAULT_SUBJECT_PATTERN

    records = scan(data, layout=layout, frames=frames,
                   subject_pattern=subject_pattern or DEFAULT_SUBJECT_PATTERN,
                   manifest=manifest, ignore_folders=ignore_folders)
    return select_split(records, split, test_subjects, test_fraction)


def list_split(data, split: str = "train", *, layout: str = "auto", frames: int = 3,
               test_subjects=None, test_fraction: float = 0.1, subject_pattern=None,
               manifest=None, ignore_folders=()):
    """The files of one split of a dataset folder, without reading them: what training
    streams (or decodes once into memory, when it fits).

    Same arguments and the same files, in the same order, as :func:`load_split` on a
    folder (``data`` must be a folder; the built-in set exists only in memory).

    Returns:
        ``(paths str [N], labels int32 [N], subjects str [N])``.
    """
    if data is None:
        raise ValueError("list_split lists the files of a dataset folder; the built-in set "
                         "is generated in memory (load_split(None, ...)) or written to a "
                         "folder by scripts/prepare_data.py.")
    records = _split_records(data, split, layout, frames, test_subjects, test_fraction,
                             subject_pattern, manifest, ignore_folders)
    return (np.array([r.path for r in records]), np.array([r.label for r in records],
                                                          np.int32),
            np.array([r.subject for r in records]))


def pair_groups(data=None, split: str = "train", subjects=None, *, seed: int = 0,
                num_subjects: int = 80, frames: int = 3, lighting: str = "mixed",
                jitter: bool = True, test_fraction: float = 0.1, extra_subjects: int = 0):
    """Who each face of :func:`load_split` shows, under which capture conditions: the
    groups within which the paired training term (``losses.paired``) pairs faces.

    The built-in set draws the lighting of every image, so its groups are
    ``"<subject>/<lighting>"``. Data on disk: one group per subject (``subjects``, as
    :func:`load_split` returns them); Oulu-CASIA keeps each lighting condition in a
    folder of its own, so point ``--data`` at one of them.

    Example:
        >>> groups = pair_groups(None, "test", num_subjects=10)
        >>> str(groups[0]).startswith("P010/")
        True
    """
    if data is None:
        rows = builtin_rows(seed=seed, num_subjects=num_subjects, frames=frames,
                            lighting=lighting, jitter=jitter, test_fraction=test_fraction,
                            split=split, extra_subjects=extra_subjects)
        return np.array([f"{r['subject']}/{r['lighting']}" for r in rows])
    if subjects is None:
        raise ValueError("pair_groups of data on disk needs the subjects load_split "
                         "returned. Received: subjects=None")
    return np.asarray(subjects)


def face_intensities(data=None, split: str = "train", *, seed: int = 0,
                     num_subjects: int = 80, frames: int = 3, lighting: str = "mixed",
                     jitter: bool = True, test_fraction: float = 0.1,
                     extra_subjects: int = 0):
    """The expression intensity in [0, 1] of each face of :func:`load_split` (same
    arguments, same order), which ``training.codes="intensity"`` codes the faces at.
    Only the built-in set knows them (0.8 / 0.9 / 1.0 for its three peak frames).

    Example:
        >>> t = face_intensities(None, "test", num_subjects=10)
        >>> len(t), round(float(t.min()), 2), float(t.max())
        (18, 0.8, 1.0)

    Raises:
        ValueError: for data on disk, whose faces carry no intensity.
    """
    if data is not None:
        raise ValueError("training.codes='intensity' needs each face's expression "
                         "intensity, which only the built-in set (no --data) has. For "
                         f"data on disk ({data}) set training.codes=sampled.")
    rows = builtin_rows(seed=seed, num_subjects=num_subjects, frames=frames,
                        lighting=lighting, jitter=jitter, test_fraction=test_fraction,
                        split=split, extra_subjects=extra_subjects)
    return np.array([r["intensity"] for r in rows], np.float32)


def pair_pool(data=None, split: str = "train", image_size: int = 128, intensities=(1.0,),
              pose: str = "clean", *, seed: int = 0, num_subjects: int = 80, frames: int = 3,
              lighting: str = "mixed", jitter: bool = True, test_fraction: float = 0.1,
              changes: bool = False, extra_subjects: int = 0):
    """The partners the paired term draws from when ``training.pair_intensities`` is set:
    each (subject, lighting) group of the built-in split rendered in every expression at
    each of ``intensities``, with the group ids of :func:`pair_groups` (``pose="clean"``,
    centred renders); or, with ``pose="input"`` (``training.pair_pose``), every face of
    the split in every other expression at each of ``intensities``, in that face's own
    pose, light and gain, without noise (:func:`~exprgan_tf.data.builtin.pair_pool_rows`).

    Returns:
        dict of ``images`` (uint8 ``[M, S, S, 3]``), ``labels`` (int ``[M]``),
        ``groups`` (``[M]``) and ``intensities`` (float ``[M]``), and with
        ``pose="input"`` ``sources`` (int ``[M]``, the index in :func:`load_split` of the
        face each partner belongs to), and with ``changes`` ``changes`` (uint8 ``[M, S,
        S]``, where each partner differs from its face: ``training.pair_change``): the
        ``pair_pool`` of
        :class:`~exprgan_tf.training.Trainer`.

    Raises:
        ValueError: for data on disk, which has no renders at chosen intensities.

    Example:
        >>> pool = pair_pool(None, "test", 32, (0.5, 1.0), num_subjects=10)
        >>> pool["images"].shape, str(pool["groups"][0]).startswith("P010/")
        ((36, 32, 32, 3), True)
    """
    if data is not None:
        raise ValueError("training.pair_intensities needs faces rendered at chosen "
                         "intensities, which only the built-in set (no --data) has. For "
                         f"data on disk ({data}) set training.pair_intensities=[] (partners "
                         "are then the training faces, coded at intensity 1).")
    rows = builtin_rows(seed=seed, num_subjects=num_subjects, frames=frames,
                        lighting=lighting, jitter=jitter, test_fraction=test_fraction,
                        split=split, extra_subjects=extra_subjects)
    return render_pair_pool(FaceSet(seed=seed, num_subjects=num_subjects + extra_subjects),
                            rows, intensities, image_size, pose, changes)


def clean_faces(data=None, split: str = "train", image_size: int = 128, *, seed: int = 0,
                num_subjects: int = 80, frames: int = 3, lighting: str = "mixed",
                test_fraction: float = 0.1, extra_subjects: int = 0):
    """The clean render of every face of :func:`load_split` (same arguments, same order):
    the same person, expression, intensity and lighting, centred and without sensor
    noise - the targets G is trained towards with ``training.clean_targets``.

    Raises:
        ValueError: for data on disk, which has no clean version of its photos.

    Example:
        >>> faces, _, _ = load_split(None, "test", 32, num_subjects=10)
        >>> clean = clean_faces(None, "test", 32, num_subjects=10)
        >>> clean.shape == faces.shape, bool((clean != faces).any())
        (True, True)
    """
    if data is not None:
        raise ValueError("training.clean_targets needs a clean render of every training "
                         "face, which only the built-in set (no --data) has. For data on "
                         f"disk ({data}) set training.clean_targets=false.")
    return load_split(None, split, image_size, seed=seed, num_subjects=num_subjects,
                      frames=frames, lighting=lighting, test_fraction=test_fraction,
                      jitter=False, extra_subjects=extra_subjects)[0]


def pair_inputs(data=None, split: str = "train", subjects=None, image_size: int = 128,
                intensities=(), pose: str = "clean", changes: bool = False, **builtin):
    """The paired term's arguments of :class:`~exprgan_tf.training.Trainer`:
    ``pair_groups`` (:func:`pair_groups`) and ``pair_pool`` (:func:`pair_pool` at
    ``intensities`` and ``pose``, the config's ``training.pair_intensities`` and
    ``training.pair_pose``, with the change maps when ``changes``: ``training.pair_change
    > 0``; ``None`` when ``intensities`` is empty).

    Example:
        >>> p = pair_inputs(None, "test", image_size=32, num_subjects=10)
        >>> len(p["pair_groups"]), p["pair_pool"]
        (18, None)
    """
    pool = (pair_pool(data, split, image_size, intensities, pose, changes=changes, **builtin)
            if len(intensities) else None)
    return {"pair_groups": pair_groups(data, split, subjects, **builtin), "pair_pool": pool}


def training_data(config, stage: int, data=None, **builtin):
    """The training split as ``config`` trains on it: what ``scripts/train.py`` hands
    :class:`~exprgan_tf.training.Trainer` for ``stage``.

    The faces (:func:`load_split` arrays for the built-in set, :func:`list_split` paths
    for a folder, ``training.frames`` per sequence) and the Trainer's keyword arguments
    that follow from the training settings: the paired term's ``pair_groups`` and
    ``pair_pool`` (:func:`pair_inputs`: partners at ``training.pair_intensities`` in stages
    2 and 3, posed by ``training.pair_pose``, with change maps when
    ``training.pair_change > 0``), each face's ``intensities`` when ``training.codes`` is
    ``"intensity"`` and the clean ``targets`` when ``training.clean_targets``, else
    ``None``.

    ``builtin``: options of the built-in set (``num_subjects``, ``seed``, ``lighting``,
    ``test_fraction``; see :func:`load_split`), which otherwise keeps its defaults; not
    with ``data``.

    Returns:
        ``(images, labels, subjects, trainer_kwargs)``.

    Raises:
        ValueError: for settings the data cannot serve (see :func:`pair_pool`,
            :func:`face_intensities`, :func:`clean_faces`).

    Example:
        >>> from exprgan_tf.config import get_preset
        >>> cfg = get_preset("proposed-small").override(["model.image_size=32"])
        >>> images, labels, subjects, kw = training_data(cfg, 2, num_subjects=10)
        >>> images.shape, sorted(kw), kw["pair_pool"]["changes"].shape   # at intensity 1
        ((162, 32, 32, 3), ['intensities', 'pair_groups', 'pair_pool', 'targets'], (810, 32, 32))
        >>> training_data(cfg, 3, num_subjects=10)[3]["pair_pool"]["changes"].shape  # 0-1
        (4050, 32, 32)
        >>> training_data(cfg, 1, num_subjects=10)[3]["pair_pool"] is None   # stage 1
        True
    """
    t, size = config.training.at_stage(stage), config.model.image_size
    if data:
        if builtin:
            raise ValueError(f"Built-in set options {sorted(builtin)} do not apply to "
                             f"data on disk ({data}).")
        if t.extra_subjects:
            raise ValueError("training.extra_subjects draws more subjects of the built-in "
                             f"set, not of data on disk ({data}). Received: "
                             f"training.extra_subjects={t.extra_subjects}; set it to 0.")
        images, labels, subjects = list_split(data, "train", frames=t.frames)
    else:
        builtin = {**builtin, "frames": t.frames, "extra_subjects": t.extra_subjects}
        images, labels, subjects = load_split(None, "train", size, **builtin)
    kwargs = pair_inputs(data, "train", subjects, size,
                         t.pair_intensities if stage > 1 else (), t.pair_pose,
                         changes=t.pair_change > 0, **builtin)
    kwargs["intensities"] = (face_intensities(data, "train", **builtin)
                             if t.codes == "intensity" else None)
    kwargs["targets"] = (clean_faces(data, "train", size, **builtin)
                         if t.clean_targets else None)
    return images, labels, subjects, kwargs


__all__ = ["EXPRESSION_AUS", "LIGHTINGS", "FaceSet", "action_units", "builtin_rows",
           "clean_faces", "face_intensities", "list_split",
           "load_split", "pair_groups", "pair_inputs", "pair_pool",
           "read_images", "render_rows", "scan", "select_split", "training_data"]
