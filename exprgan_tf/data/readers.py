"""Readers for face-expression datasets on disk, and the split by subject.

Two layouts are understood:

* **Oulu-CASIA**: ``<root>/<subject>/<Expression>/<frame>.<ext>``, e.g.
  ``P001/Anger/000.jpeg``. Each expression folder holds one neutral-to-peak sequence;
  only its last ``frames`` frames (the peak, 3 by default as in ExprGAN) are used.
  Frames are ordered numerically by the number in their name, so ``9.jpeg`` comes before
  ``10.jpeg``; expression folders match case-insensitively (``Anger``, ``anger``,
  ``ANGER``) and common synonyms (``Happy``, ``Surprised``...) are accepted.
* **Generic**: ``<root>/<expression>/<file>``. The subject of each file comes from a regular
  expression on its file name (the first run of characters before ``_``, ``-``, a space or
  a dot by default, e.g. ``S005_001_00000011.png`` -> ``S005``) or from a CSV manifest with
  columns ``path`` (relative to ``root``) and ``subject``.

Images are decoded with Pillow, converted to RGB (grayscale, palette and RGBA images
included; 16-bit grayscale scaled to 8 bits, see :func:`to_rgb8`), centre-cropped to a square and resized to ``image_size``. Files that cannot be
decoded are skipped with a single warning naming them; nothing is dropped silently.

Example:
    >>> records = scan(root)                        # doctest: +SKIP
    >>> train = select_split(records, "train")      # doctest: +SKIP
    >>> images, kept = read_images(train, 128)      # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np

from exprgan_tf.config import EXPRESSION_ALIASES, EXPRESSIONS, expression_index

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
"""File extensions treated as images (case-insensitive)."""

JUNK_FILES = ("thumbs.db", "desktop.ini", ".ds_store")
"""Operating-system files skipped without a warning (as are names starting with a dot)."""

LAYOUTS = ("auto", "oulu", "generic")

DEFAULT_SUBJECT_PATTERN = r"^(?P<subject>[^_\-\s.]+)"


class UnreadableImagesWarning(UserWarning):
    """Some files could not be decoded as images and were skipped."""


@dataclass(frozen=True)
class Record:
    """One image file of a dataset.

    Args:
        path: absolute or root-relative path of the file.
        label: expression class index (see ``config.EXPRESSIONS``).
        subject: subject id (the split is by subject).
        frame: position of the frame in its sequence (Oulu layout), else -1.
    """

    path: str
    label: int
    subject: str
    frame: int = -1


def expression_label(name: str):
    """Class index of an expression folder name, or ``None`` if it is not one."""
    try:
        return expression_index(name, whole_words=True)
    except ValueError:
        return None


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", name)]


def _is_junk(name: str) -> bool:
    return name.startswith(".") or name.lower() in JUNK_FILES


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _listdir(path):
    return sorted((n for n in os.listdir(path) if not _is_junk(n)), key=_natural_key)


def _check_root(root) -> str:
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"Dataset root must be an existing directory. Received: data={root!r}")
    return root


def _warn_skipped(skipped, what="unreadable"):
    if skipped:
        shown = ", ".join(skipped[:20])
        more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        warnings.warn(f"Skipped {len(skipped)} {what} file(s): {shown}{more}",
                      UnreadableImagesWarning, stacklevel=3)


def _unknown_expressions_error(root, unknown):
    return ValueError(
        f"Unknown expression folder(s) under {root}: {sorted(set(unknown))}. Expected the "
        f"six classes {list(EXPRESSIONS)} (case-insensitive; synonyms: "
        f"{sorted(k for k in EXPRESSION_ALIASES if len(k) > 2)}). Move or rename the other "
        f"folders, or pass ignore_folders=[...] to skip them.")


def detect_layout(root) -> str:
    """``"generic"`` if ``root``'s folders are expressions, ``"oulu"`` if they are subjects
    holding expression folders; a ``ValueError`` says what was found otherwise."""
    root = _check_root(root)
    dirs = [d for d in _listdir(root) if os.path.isdir(os.path.join(root, d))]
    if not dirs:
        raise ValueError(f"No folders found in {root}: expected <root>/<subject>/<expression>/"
                         "<frame> (Oulu-CASIA) or <root>/<expression>/<file> (generic).")
    if any(expression_label(d) is not None for d in dirs):
        return "generic"
    oulu_parents = {"strong", "weak", "dark", "vl", "ni", "originalimg", "preprocessimg",
                    "vl_acropped", "ni_acropped", "oulu_casia_vis", "oulu_casia_nir"}
    if all(d.lower() in oulu_parents for d in dirs):
        raise ValueError(
            f"{root} holds {dirs}, the upper levels of Oulu-CASIA: point data= at the folder "
            "that holds the subject folders (P001, ...), e.g. .../VL/Strong.")
    for d in dirs:
        sub = os.path.join(root, d)
        if any(expression_label(e) is not None and os.path.isdir(os.path.join(sub, e))
               for e in _listdir(sub)):
            return "oulu"
    raise ValueError(
        f"Could not recognise the layout of {root}: found folders {dirs[:10]} but none is an "
        f"expression {list(EXPRESSIONS)} nor holds expression folders. Expected "
        "<root>/<subject>/<expression>/<frame> (Oulu-CASIA) or <root>/<expression>/<file>.")


def scan_oulu(root, frames: int = 3, ignore_folders=()) -> list:
    """List the images of an Oulu-CASIA-layout dataset.

    Args:
        root: folder holding one folder per subject (``P001``...).
        frames: how many frames to keep from the end of each sequence (the peak);
            ``0`` keeps every frame.
        ignore_folders: expression-level folder names to skip (e.g. ``["Neutral"]``).

    Returns:
        A list of :class:`Record`.

    Raises:
        ValueError: on an unknown expression folder or an empty dataset.
    """
    root = _check_root(root)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
        raise ValueError(f"frames must be an integer >= 0. Received: frames={frames!r}")
    ignore = {f.lower() for f in ignore_folders}
    records, unknown, skipped = [], [], []
    for subject in _listdir(root):
        sdir = os.path.join(root, subject)
        if not os.path.isdir(sdir):
            continue
        for expr in _listdir(sdir):
            edir = os.path.join(sdir, expr)
            if not os.path.isdir(edir) or expr.lower() in ignore:
                continue
            label = expression_label(expr)
            if label is None:
                unknown.append(f"{subject}/{expr}")
                continue
            names = []
            for name in _listdir(edir):
                if _is_image_name(name):
                    names.append(name)
                elif os.path.isfile(os.path.join(edir, name)):
                    skipped.append(os.path.join(subject, expr, name))
            chosen = names[-frames:] if frames else names
            first = len(names) - len(chosen)
            records += [Record(os.path.join(edir, n), label, subject, first + i)
                        for i, n in enumerate(chosen)]
    if unknown:
        raise _unknown_expressions_error(root, unknown)
    _warn_skipped(skipped, "non-image")
    if not records:
        raise ValueError(f"No images found in {root}: expected <subject>/<expression>/<frame>"
                         f" files with extensions {list(IMAGE_EXTENSIONS)}.")
    return records


def _read_manifest(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "subject"} <= set(rows[0]):
        found = sorted(rows[0]) if rows else []
        raise ValueError(f"Manifest {path} must be a CSV with columns 'path' and 'subject'. "
                         f"Found columns: {found}")
    return {os.path.normpath(r["path"]): r["subject"] for r in rows}


def scan_generic(root, subject_pattern: str = DEFAULT_SUBJECT_PATTERN, manifest=None,
                 ignore_folders=()) -> list:
    """List the images of a ``<root>/<expression>/<file>`` dataset.

    Args:
        root: folder holding one folder per expression.
        subject_pattern: regular expression matched at the start of each file name; its
            group ``subject`` (or its first group, or the whole match) is the subject id.
        manifest: optional CSV with columns ``path`` (relative to ``root``) and
            ``subject``; it takes precedence over ``subject_pattern``.
        ignore_folders: folder names to skip (e.g. ``["neutral", "contempt"]``).

    Returns:
        A list of :class:`Record`.
    """
    root = _check_root(root)
    pattern = re.compile(subject_pattern)
    subjects = _read_manifest(manifest) if manifest is not None else None
    ignore = {f.lower() for f in ignore_folders}
    records, unknown, skipped, unmatched = [], [], [], []
    for expr in _listdir(root):
        edir = os.path.join(root, expr)
        if not os.path.isdir(edir) or expr.lower() in ignore:
            continue
        label = expression_label(expr)
        if label is None:
            unknown.append(expr)
            continue
        for name in _listdir(edir):
            rel = os.path.join(expr, name)
            if not os.path.isfile(os.path.join(edir, name)):
                continue
            if not _is_image_name(name):
                skipped.append(rel)
                continue
            if subjects is not None:
                subject = subjects.get(os.path.normpath(rel))
            else:
                m = pattern.match(name)
                subject = None
                if m:
                    subject = m.groupdict().get("subject") or (m.group(1) if m.groups()
                                                               else m.group(0))
            if not subject:
                unmatched.append(rel)
                continue
            records.append(Record(os.path.join(edir, name), label, subject))
    if unknown:
        raise _unknown_expressions_error(root, unknown)
    if unmatched:
        source = f"manifest {manifest}" if manifest is not None else \
            f"subject_pattern={subject_pattern!r}"
        raise ValueError(f"No subject id for {len(unmatched)} file(s) from {source}, e.g. "
                         f"{unmatched[:5]}. The split is by subject, so every image needs one.")
    _warn_skipped(skipped, "non-image")
    if not records:
        raise ValueError(f"No images found in {root}: expected <expression>/<file> with "
                         f"extensions {list(IMAGE_EXTENSIONS)}.")
    return records


def scan(root, layout: str = "auto", frames: int = 3, subject_pattern=DEFAULT_SUBJECT_PATTERN,
         manifest=None, ignore_folders=()) -> list:
    """Scan ``root`` in the given (or detected) layout; see :func:`scan_oulu` and
    :func:`scan_generic`."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}. Received: layout={layout!r}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "oulu":
        return scan_oulu(root, frames=frames, ignore_folders=ignore_folders)
    return scan_generic(root, subject_pattern=subject_pattern, manifest=manifest,
                        ignore_folders=ignore_folders)


def split_subjects(subjects, test_subjects=None, test_fraction: float = 0.1):
    """Divide subject ids into (train, test) lists.

    Args:
        subjects: subject ids (any iterable; duplicates are fine).
        test_subjects: explicit test subjects; ``None`` takes the last
            ``ceil(test_fraction * n)`` subjects in natural order, which for Oulu-CASIA's
            80 subjects is ExprGAN's split (P001-P072 train, P073-P080 test).
        test_fraction: share of subjects held out when ``test_subjects`` is ``None``.

    Returns:
        ``(train, test)``: sorted lists of subject ids, disjoint.
    """
    unique = sorted(set(str(s) for s in subjects), key=_natural_key)
    if test_subjects is not None:
        test = sorted(set(str(s) for s in test_subjects), key=_natural_key)
        missing = [s for s in test if s not in unique]
        if missing:
            raise ValueError(f"test_subjects not found in the data: {missing}. "
                             f"Found subjects: {unique}")
    else:
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1). "
                             f"Received: test_fraction={test_fraction!r}")
        k = math.ceil(test_fraction * len(unique))
        test = unique[len(unique) - k:] if k else []
    train = [s for s in unique if s not in set(test)]
    return train, test


def select_split(records, split: str, test_subjects=None, test_fraction: float = 0.1):
    """The records of one split (``"train"``, ``"test"`` or ``"all"``), by subject."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'. Received: split={split!r}")
    if split == "all":
        return list(records)
    subjects = [r.subject for r in records]
    train, test = split_subjects(subjects, test_subjects, test_fraction)
    chosen = set(train if split == "train" else test)
    if not chosen:
        raise ValueError(
            f"The {split!r} split has no subjects: found {len(set(subjects))} subject(s) "
            f"{sorted(set(subjects), key=_natural_key)[:20]} with test_subjects="
            f"{test_subjects!r}, test_fraction={test_fraction!r}; expected at least one "
            f"subject on each side. Pass test_subjects=[...] explicitly.")
    return [r for r in records if r.subject in chosen]


# Pillow modes of grayscale images with more than 8 bits per pixel. ``convert("RGB")``
# clips their values to 255 (a 16-bit image comes out all white), so they are scaled.
_WIDE_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb8(image) -> np.ndarray:
    """A decoded Pillow image as uint8 RGB ``[H, W, 3]``, in every reader of the package.

    16-bit grayscale (``I;16``, and ``I`` as Pillow opens 16-bit PNG/TIFF) is scaled
    from 0-65535 to 0-255; float grayscale (``F``) must lie in [0, 1]. Other modes go
    through ``convert("RGB")``.

    Raises:
        ValueError: a float image with values outside [0, 1] (its scale is unknown).
    """
    if image.mode in _WIDE_INT_MODES:
        values = np.asarray(image).astype(np.float64)
        gray = np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not (np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0):
            raise ValueError("a floating-point image must hold values in [0, 1]; this one "
                             f"spans [{np.nanmin(values):g}, {np.nanmax(values):g}]. Save "
                             "it as an 8- or 16-bit image.")
        gray = np.round(values * 255.0).astype(np.uint8)
    else:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def load_image(path, image_size=None, detector=None) -> np.ndarray:
    """Decode one image file as uint8 RGB, optionally face-cropped and resized.

    Grayscale (8 or 16 bits), palette and RGBA files are converted to RGB
    (:func:`to_rgb8`). A non-square image is
    centre-cropped to a square before resizing (or cropped around the face found by
    ``detector``, a callable ``uint8 image -> uint8 face crop``).

    Raises:
        OSError / ValueError: if the file is not a decodable image.
    """
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        arr = to_rgb8(im)
    if detector is not None:
        arr = detector(arr)
    return resize_square(arr, image_size) if image_size else arr


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop a uint8 [H, W, 3] image to a square and resize it to ``size``."""
    from PIL import Image

    h, w = image.shape[:2]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        image = image[top:top + s, left:left + s]
    if image.shape[0] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.LANCZOS))
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_images(records, image_size: int = 128, detector=None):
    """Decode the images of ``records``; unreadable files are skipped with one warning.

    Args:
        records: list of :class:`Record`.
        image_size: output height and width.
        detector: optional face cropper (see :mod:`exprgan_tf.data.detect`).

    Returns:
        ``(images uint8 [N, S, S, 3], kept records)``.

    Raises:
        ValueError: if no file could be read.
    """
    images, kept, bad = [], [], []
    for r in records:
        try:
            images.append(load_image(r.path, image_size, detector))
            kept.append(r)
        except Exception as e:  # PIL raises many types for corrupt data
            bad.append(f"{r.path} ({type(e).__name__})")
    _warn_skipped(bad, "unreadable image")
    missing = getattr(detector, "num_missing", 0)
    if missing:
        warnings.warn(f"No face found in {missing} of {len(kept)} image(s); they were kept "
                      "uncropped (centre-cropped to a square).", UnreadableImagesWarning,
                      stacklevel=2)
    if not kept:
        raise ValueError(f"None of the {len(records)} image file(s) could be read "
                         f"(e.g. {bad[:3]}).")
    return np.stack(images), kept
