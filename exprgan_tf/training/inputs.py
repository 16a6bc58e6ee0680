"""Training batches as a pure function of (data, run seed, epoch): the one input path.

Every epoch's batches - their order, flips, expression codes c, prior samples z (and
row warps, ``training.warp_rows``) - are computed from ``(seed, epoch)`` alone. Nothing
random lives outside the checkpointed counters, so a run resumed at epoch ``e``, step
``k`` sees exactly the batches an uninterrupted run would have seen, and a distributed
run splits the same global batches over its replicas.

One ``tf.data`` pipeline serves every kind of training data:

1. **plan** (numpy, small): :meth:`TrainingInputs.epoch_plan` draws the epoch's
   permutation of the image indices (a full shuffle, not a shuffle buffer), the
   per-image flips, the codes, the z samples and the paired term's partners. It holds
   indices and codes, never images, so it is a few bytes per image.
2. **slice**: the plan is cut to the positions this worker's replicas train on (under
   ``tf.distribute``, via ``distribute_datasets_from_function``: each worker reads
   only its share of every global batch) and to the steps not yet done (a mid-epoch
   resume reads nothing it skips).
3. **batch, look up, pre-process, flip**: each batch of indices becomes images, from
   one of two sources:

   - *in memory*: the pre-processed images of the whole set (float32), when they fit
     under ``cache_bytes``; image files are decoded once, through this same pipeline,
     to fill it;
   - *streamed*: otherwise every batch reads its image files (or slices its uint8
     array), decodes, resizes and pre-processes them, in parallel with training.

   Files are decoded by :func:`exprgan_tf.data.readers.load_image` (Pillow: the
   decoder :func:`~exprgan_tf.data.load_split` uses), so a face is the same array
   whether it came from memory, the cache or a file.
4. **prefetch**.

Pre-processing (unsharp mask, rescaling) is deterministic and per image; the flip comes
after it (a horizontal flip commutes with it only up to float rounding), and the row
warp of ``training.warp_rows`` after the flip. With
``preprocess.sharpen_targets`` off, a batch also holds ``target``: the same faces
pre-processed without the unsharp mask, which G is trained to give back (and the
partners ``pair_image`` are pre-processed that way too). Given ``targets`` (the clean
renders of ``training.clean_targets``), ``target`` and the partners are those faces
instead, kept in memory. Otherwise the targets are the ``image`` itself and no
``target`` is served.

Likewise the identity network's features of the *real* images do not depend on the
model being trained: with ``identity_features`` given, they are computed once per
image and per flip and served with the batches (``batch["identity_features"]``), so a
step runs the frozen network only on the generated images. This is skipped when the
cache would exceed ``identity_cache_bytes`` (VGG-Face's conv1_2 alone is 12.8 MB per
image) or the images are streamed; the step then computes them itself.
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from exprgan_tf import preprocessing
from exprgan_tf.config import ExprGANConfig
from exprgan_tf.controller import intensity_code, sample_latent_prior, sample_training_code
from exprgan_tf.data.regions import expression_map

_PRIOR_STREAM = 1 << 30  # keeps the z-prior seeds apart from the code seeds
_PAIR_STREAM = 1 << 29   # ... and the partner draws of the paired term
_EDIT_STREAM = 1 << 28   # ... and the edit term's intensities (training.edit_intensity)
_WARP_STREAM = 1 << 27   # ... and the row warps (training.warp_rows)
_VIEW_STREAM = 1 << 26   # ... and the faces G's hole shows (training.hole_view)
WARP_KNOTS = 4  # training.warp_rows: shifts drawn at 4 rows, linear between

CACHE_BYTES = 2 << 30
"""Default ``cache_bytes``: pre-processed training images up to this size (float32,
4 bytes per value: ~43,000 faces at 64x64, ~10,900 at 128x128) are kept in memory."""


def warp_weights(size: int) -> np.ndarray:
    """``training.warp_rows``: the ``[WARP_KNOTS, size]`` weights that spread shifts
    drawn at the knots (rows ``0``, ``(size - 1) / 3``, ``2 (size - 1) / 3``, ``size - 1``
    for four knots) linearly over every row: a row's shift is ``knot_shifts @ W``.

    Example:
        >>> w = warp_weights(7)       # knots at rows 0, 2, 4, 6
        >>> (np.array([0, 3, 0, 0]) @ w).tolist()
        [0.0, 1.5, 3.0, 1.5, 0.0, 0.0, 0.0]
    """
    knots = np.linspace(0, size - 1, WARP_KNOTS)
    eye = np.eye(WARP_KNOTS)
    return np.stack([np.interp(np.arange(size), knots, e) for e in eye]).astype(np.float32)


def warped_rows(shifts, weights):
    """The row each output row of a warped face is read from: ``[B, S]`` int32, for
    ``shifts`` ``[B, WARP_KNOTS]`` (whole pixels, down positive) and the weights of
    :func:`warp_weights`; the shift at each row is rounded to a whole row (halves to
    even) and the rows past the edges repeat the edge rows.

    Example:
        >>> warped_rows(np.array([[0, 2, 0, 0]], np.float32), warp_weights(7)).numpy()
        array([[0, 0, 0, 2, 4, 5, 6]], dtype=int32)
    """
    size = weights.shape[1]
    shift = tf.round(tf.matmul(tf.cast(shifts, tf.float32), weights))
    source = tf.range(size, dtype=tf.float32)[None] - shift
    return tf.cast(tf.clip_by_value(source, 0.0, size - 1.0), tf.int32)


def pair_candidates(groups, labels, pool_groups=None, pool_labels=None,
                    pool_sources=None) -> list:
    """For every image, the indices of the partner candidates of its pair group (same
    subject, same capture conditions) with another expression; an empty array when
    there are none. The candidates are the images themselves, or the faces of a partner
    pool (``pool_groups``, ``pool_labels``); with ``pool_sources`` (the image each pool
    face was rendered for, ``training.pair_pose="input"``) only an image's own.

    Example:
        >>> [c.tolist() for c in pair_candidates(["a", "a", "b", "a"], [0, 1, 0, 0])]
        [[1], [0, 3], [], [1]]
        >>> [c.tolist() for c in pair_candidates(["a", "b"], [0, 0], ["a", "a"], [0, 2])]
        [[1], []]
        >>> [c.tolist() for c in pair_candidates(["a", "a"], [0, 1], ["a", "a", "a"],
        ...                                      [1, 2, 0], pool_sources=[0, 0, 1])]
        [[0, 1], [2]]
    """
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    if groups.shape != labels.shape:
        raise ValueError(f"pair_groups must have one entry per image ({labels.shape[0]}). "
                         f"Received: shape={groups.shape}")
    pool_groups = groups if pool_groups is None else np.asarray(pool_groups)
    pool_labels = labels if pool_labels is None else np.asarray(pool_labels)
    keys = pool_groups.tolist()
    if pool_sources is not None:
        pool_sources = np.asarray(pool_sources)
        if pool_sources.shape != pool_groups.shape:
            raise ValueError("pair_pool sources must have one entry per pool face "
                             f"({pool_groups.shape[0]}). Received: shape={pool_sources.shape}")
        keys = list(zip(keys, pool_sources.tolist()))
    index = {}
    for i, key in enumerate(keys):
        index.setdefault(key, []).append(i)
    out = []
    for k, (g, label) in enumerate(zip(groups.tolist(), labels.tolist())):
        members = np.asarray(index.get(g if pool_sources is None else (g, k), []), np.int64)
        out.append(members[pool_labels[members] != label])
    return out


def image_files(images):
    """``images`` as an array of file paths when it is a sequence of paths (``str`` or
    ``os.PathLike``), else ``None`` (an image array).

    Example:
        >>> image_files(["a.png", "b.png"]).tolist(), image_files(np.zeros((2, 4, 4, 3)))
        (['a.png', 'b.png'], None)
    """
    if isinstance(images, np.ndarray):
        return images if images.dtype.kind == "U" and images.ndim == 1 else None
    if isinstance(images, (list, tuple)) and images and all(
            isinstance(p, (str, os.PathLike)) for p in images):
        return np.array([os.fspath(p) for p in images])
    return None


def read_image_files(paths, image_size: int) -> np.ndarray:
    """uint8 ``[len(paths), S, S, 3]``: the files decoded and resized as
    :func:`~exprgan_tf.data.load_split` does.

    Raises:
        ValueError: naming the first file that cannot be decoded.
    """
    from exprgan_tf.data.readers import load_image

    out = np.empty((len(paths), image_size, image_size, 3), np.uint8)
    for k, path in enumerate(paths):
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            out[k] = load_image(path, image_size)
        except Exception as e:  # Pillow raises many types for damaged files
            raise ValueError(f"Cannot read the training image {path} ({type(e).__name__}: "
                             f"{e}). Remove or replace the file, then run the same command "
                             "again (it resumes from the last checkpoint).") from e
    return out


def unreadable_image_error(error: Exception):
    """The ``ValueError`` of :func:`read_image_files` that a ``tf.data`` error (raised
    where the batches are iterated) carries in its message, or ``None``."""
    found = re.search(r"Cannot read the training image .*?last checkpoint\)\.", str(error),
                      re.S)
    return ValueError(found.group(0)) if found else None


class TrainingInputs:
    """The training set of one run, served epoch by epoch.

    Args:
        images: uint8 ``[N, S, S, 3]`` faces at the model's image size, or ``N`` image
            file paths (any size and format :func:`~exprgan_tf.data.load_split`
            reads; decoded, centre-cropped and resized to the model's size).
        labels: int ``[N]`` expression indices.
        config: the run's config (pre-processing, code layout, seed, flip).
        batch_size: global batch size; the last partial batch of an epoch is dropped
            so every step has the same shape (one trace).
        chunk: images pre-processed (or decoded) per call while filling the cache.
        identity_features: frozen feature model whose outputs on the real images are
            cached (see the module docstring), or ``None``.
        identity_cache_bytes: the most memory that cache may take.
        log: where messages go.
        pair_groups: ``[N]`` group ids (a subject, or a subject under one lighting) for
            the paired term; with them every batch also holds ``pair_image`` (a face of
            the same group in another expression, flipped like its partner),
            ``pair_target`` (its expression) and ``pair_code`` (that expression at
            intensity 1). An image with no such partner is paired with itself.
        pair_pool: where partners come from instead of the training images (see
            :func:`exprgan_tf.data.pair_pool`): a dict of ``images`` (uint8), ``labels``,
            ``groups`` and ``intensities``, and optionally ``sources`` (the index of the
            training image each partner belongs to, which then draws only its own) and
            ``changes`` (uint8 ``[M, S, S]``; with ``training.pair_change`` the batches
            hold each partner's map, flipped with it, as ``pair_change`` ``[B, S, S,
            1]``);
            ``pair_code`` is then the partner's expression at its intensity, and when
            some partners are below 1 the batches also hold ``edit_code`` (that
            expression at intensity 1, for the edit term). The pool is kept in memory.
            With ``training.pair_shares`` each draw first picks an intensity of the
            pool with those shares (among the ones the image has candidates at), then
            a candidate at it.
        intensities: float ``[N]`` in [0, 1], the expression intensity of each image;
            needed with ``training.codes="intensity"``, where ``code`` is the image's
            expression at it and the sampled code moves to ``draw`` (from which the
            steps draw their wrong classes). Partners drawn from the training images
            are then coded at their intensities too, with ``edit_code`` as for a
            pool. With ``training.edit_intensity="sampled"`` every batch with partners
            holds ``edit_code``: the partner's expression at an intensity drawn per
            face from U(0, 1).
        targets: uint8 ``[N, S, S, C]``, the face G is trained to give back for each
            image instead of the image itself (``training.clean_targets``: its clean
            render, :func:`exprgan_tf.data.clean_faces`); also the partners' faces when
            they come from the training images. Pre-processed as G's targets and kept
            in memory.
        cache_bytes: keep the pre-processed training images in memory (float32) when
            they take at most this many bytes; above it they are streamed: read (and
            pre-processed) again for every batch. Logged either way for files.

    Attributes:
        images: the pre-processed float32 images in memory, or ``None`` when streamed.
        targets: the faces G learns to give back, in memory (see the module docstring),
            or ``None`` when they are ``images`` or streamed.
        streamed: ``True`` when batches read their images from the source each time.
    """

    def __init__(self, images, labels, config: ExprGANConfig, batch_size: int,
                 chunk: int = 256, identity_features=None,
                 identity_cache_bytes: int = 2 << 30, log=print, pair_groups=None,
                 pair_pool=None, intensities=None, cache_bytes: int = CACHE_BYTES,
                 targets=None):
        m = config.model
        self.size = m.image_size
        self.paths = image_files(images)
        labels = np.asarray(labels)
        if self.paths is None:
            images = np.asarray(images)
            if images.ndim != 4 or images.shape[1:] != (m.image_size, m.image_size,
                                                        m.channels):
                raise ValueError(f"images must have shape [N, {m.image_size}, "
                                 f"{m.image_size}, {m.channels}]. Received: "
                                 f"shape={images.shape}")
        n = len(self.paths) if self.paths is not None else images.shape[0]
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape [{n}]. Received: shape={labels.shape}")
        if targets is not None:
            targets = np.asarray(targets)
            if targets.shape != (n, m.image_size, m.image_size, m.channels):
                raise ValueError(f"targets must have one face per training image, shape "
                                 f"[{n}, {m.image_size}, {m.image_size}, {m.channels}]. "
                                 f"Received: shape={targets.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= m.num_classes):
            raise ValueError(f"labels must be in [0, {m.num_classes}). Received: "
                             f"min={labels.min()}, max={labels.max()}")
        if n < batch_size:
            raise ValueError(f"The training set has {n} images, fewer than one "
                             f"batch. Received: batch_size={batch_size}")
        self.config = config
        self.batch_size = batch_size
        self.num_images = n
        self.intensities = None
        if config.training.codes == "intensity":
            if intensities is None:
                raise ValueError("training.codes='intensity' needs the expression intensity "
                                 "of every training image (intensities, from "
                                 "exprgan_tf.data.face_intensities); only the built-in set "
                                 "knows them. Set training.codes='sampled' for other data.")
            t = np.asarray(intensities, np.float32)
            if t.shape != (n,) or not np.all((t >= 0.0) & (t <= 1.0)):
                raise ValueError(f"intensities must be [{n}] numbers in "
                                 f"[0, 1]. Received: shape={t.shape}")
            self.intensities = t
        self.labels = labels.astype(np.int32)
        self._preprocess = preprocessing.preprocess_fn(config.preprocess)
        # G's targets differ from E's inputs with preprocess.sharpen_targets off, or
        # when they are given (training.clean_targets).
        self.given_targets = targets is not None
        self.separate_targets = (config.preprocess.target != config.preprocess
                                 or self.given_targets)
        self._target_preprocess = preprocessing.preprocess_fn(config.preprocess.target)
        self._raw = None if self.paths is not None else images  # uint8, when streamed
        self.images = self.targets = None
        size = n * m.image_size * m.image_size * m.channels * 4
        size *= 2 if self.separate_targets else 1
        self.streamed = size > cache_bytes
        if self.given_targets:  # always in memory
            self.targets = self._preprocess_all(targets, chunk, target=True)
        what = (f"{n} image files" if self.paths is not None else f"{n} images in memory")
        if self.streamed:
            log(f"Training data: {what}, {size / 2**20:.0f} MiB pre-processed (> the "
                f"{cache_bytes / 2**20:.0f} MiB cache limit): streaming them, each "
                "batch read and pre-processed as it is needed.")
        else:
            self.images = self._cache(chunk)
            if self.separate_targets and not self.given_targets:
                self.targets = self._cache(chunk, target=True)
            self._raw = None
            if self.paths is not None:
                log(f"Training data: {what}, {size / 2**20:.0f} MiB pre-processed (<= the "
                    f"{cache_bytes / 2**20:.0f} MiB cache limit): decoded once and kept in "
                    "memory.")
        self.pair_images, self.pair_labels, self.pair_intensities = self.images, self.labels, None
        self.pair_changes = None   # training.pair_change: [M, S, S] uint8 maps of the pool
        if pair_pool is not None:
            if pair_groups is None:
                raise ValueError("pair_pool needs pair_groups (the group of every training "
                                 "image) to know whose partners to draw.")
            pool_images = np.asarray(pair_pool["images"])
            if pool_images.ndim != 4 or pool_images.shape[1:] != (m.image_size, m.image_size,
                                                                  m.channels):
                raise ValueError(f"pair_pool images must have shape [M, {m.image_size}, "
                                 f"{m.image_size}, {m.channels}]. Received: "
                                 f"shape={pool_images.shape}")
            self.pair_images = self._preprocess_all(pool_images, chunk, target=True)
            self.pair_labels = np.asarray(pair_pool["labels"], np.int32)
            self.pair_intensities = np.asarray(pair_pool["intensities"], np.float32)
            if config.training.pair_change > 0:
                if "changes" not in pair_pool:
                    raise ValueError("training.pair_change > 0 needs the pool's change maps "
                                     "(pair_pool['changes'], rendered with pose='input', changes=True).")
                self.pair_changes = np.asarray(pair_pool["changes"], np.uint8)
                if self.pair_changes.shape != pool_images.shape[:3]:
                    raise ValueError("pair_pool changes must be one [S, S] map per partner, "
                                     f"shape {pool_images.shape[:3]}. Received: "
                                     f"{self.pair_changes.shape}")
        self.pairs = None if pair_groups is None else pair_candidates(
            pair_groups, labels, None if pair_pool is None else pair_pool["groups"],
            None if pair_pool is None else self.pair_labels,
            None if pair_pool is None else pair_pool.get("sources"))
        # training.pair_shares: each image's candidates by level of the pool (stage 1 has
        # no pool; the config ties the shares to training.pair_intensities)
        self.pair_levels = None
        self.pair_shares = np.asarray(config.training.pair_shares, np.float64)
        if self.pairs is not None and len(self.pair_shares) and pair_pool is not None:
            wanted = np.asarray(config.training.pair_intensities, np.float32)
            self.pair_levels = [[c[np.isclose(self.pair_intensities[c], t)] for t in wanted]
                                for c in self.pairs]
        strong = config.training.pair_min_intensity
        if self.pairs is not None and strong > 0 and self.intensities is not None \
                and pair_pool is None:  # partners only from the strong training faces
            self.pairs = [c[self.intensities[c] >= strong] for c in self.pairs]
        if self.pairs is not None:
            lonely = sum(len(c) == 0 for c in self.pairs)
            if lonely == len(self.pairs):
                raise ValueError("pair_groups gives no image a partner in another expression "
                                 "(each group must hold one subject in several expressions).")
            if lonely:
                log(f"Paired term: {lonely} of {len(self.pairs)} training images have no "
                    "partner in another expression and are paired with themselves.")
            if pair_pool is not None and lonely:
                raise ValueError(f"pair_pool holds no partner for {lonely} training images "
                                 "(their pair group is missing from it).")
        self.identity_cache = None  # (features, features of the flipped images) or None
        self.warp_weights = warp_weights(self.size) if config.training.warp_rows else None
        if identity_features is not None:
            if self.warp_weights is not None:
                log("Identity features of the real images are not cached: "
                    "training.warp_rows moves their rows in every batch, so every step "
                    "computes them.")
            elif self.streamed:
                log("Identity features of the real images are not cached: the training "
                    "images are streamed (over the cache limit), so every step computes "
                    "them.")
            else:
                self.identity_cache = self._cache_identity(identity_features, chunk,
                                                           identity_cache_bytes, log)

    def expression_weights(self, strength: float, groups) -> np.ndarray:
        """``training.expression_regions``: G's per-pixel L1 weights ``[S, S, 1]``,
        ``(1 + strength * m) / (1 + strength)`` for the :func:`~exprgan_tf.data.regions.expression_map` ``m`` of
        the faces G gives back, grouped by ``groups`` (``[N]``, as ``pair_groups``)."""
        groups = np.asarray(groups)
        if groups.shape != (self.num_images,):
            raise ValueError(f"groups must have one entry per image ({self.num_images}). "
                             f"Received: shape={groups.shape}")

        def faces_of_each_group():
            order = np.argsort(groups, kind="stable")
            starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
            for index in np.split(order, starts[1:]):
                if self.streamed and not self.given_targets:
                    yield self._target_preprocess(self._read(index)).numpy()
                else:
                    yield (self.images if self.targets is None else self.targets)[index]

        m = expression_map(faces_of_each_group(), symmetric=self.config.training.flip)
        return ((1.0 + strength * m) / (1.0 + strength))[..., None].astype(np.float32)

    # --- sources --------------------------------------------------------------------
    def _read(self, index) -> np.ndarray:
        """uint8 images ``index`` of the source (files or the array), not pre-processed."""
        index = np.asarray(index)
        if self.paths is not None:
            return read_image_files(self.paths[index], self.size)
        return self._raw[index]

    def _preprocess_all(self, images, chunk, target=False) -> np.ndarray:
        fn = self._target_preprocess if target else self._preprocess
        return np.concatenate([fn(images[i:i + chunk]).numpy()
                               for i in range(0, len(images), chunk)])

    def _cache(self, chunk, target=False) -> np.ndarray:
        """All pre-processed images (or G's targets) in memory: an array source is
        pre-processed in chunks; files are decoded through ``tf.data`` (in parallel, in
        order)."""
        if self.paths is None:
            return self._preprocess_all(self._raw, chunk, target)
        out = np.empty((self.num_images, self.size, self.size, 3), np.float32)
        starts = tf.data.Dataset.range(0, self.num_images, chunk)
        ds = starts.map(lambda s: (s, self._lookup(tf.range(s, tf.minimum(
            s + chunk, self.num_images)), cached=False, target=target)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        try:
            for start, images in ds.prefetch(2):
                start = int(start)
                out[start:start + len(images)] = images.numpy()
        except tf.errors.InvalidArgumentError as e:
            error = unreadable_image_error(e)
            if error is None:
                raise
            raise error from None
        return out

    def _read_tensor(self, index):
        """uint8 images ``index`` (a 1-D int tensor) of the source, inside ``tf.data``."""
        x = tf.numpy_function(self._read, [index], tf.uint8, stateful=False)
        return tf.ensure_shape(x, [index.shape[0], self.size, self.size, 3])

    def _lookup(self, index, cached=None, pool=False, target=False, raw=None):
        """Pre-processed float32 images ``index`` (a 1-D int tensor), inside
        ``tf.data``: gathered from memory, or read (or taken from ``raw``, the uint8
        images already read) and pre-processed; ``target``: G's targets instead of E's
        inputs (the same unless they are separate). The pool holds partners, which are
        only ever targets."""
        target = target and self.separate_targets
        if pool or (target and self.given_targets) or (
                cached if cached is not None else not self.streamed):
            images = (self.pair_images if pool else self.targets if target
                      else self.images)
            x = tf.numpy_function(lambda i: images[i], [index], tf.float32, stateful=False)
        else:
            fn = self._target_preprocess if target else self._preprocess
            x = fn(self._read_tensor(index) if raw is None else raw)
        # (a static batch size when ``index`` has one: one trace of the train step)
        return tf.ensure_shape(x, [index.shape[0], self.size, self.size, 3])

    def _cache_identity(self, model, chunk, budget, log):
        shapes = [tuple(o.shape[1:]) for o in model(self.images[:1], training=False)]
        copies = 2 if self.config.training.flip else 1
        size = 4 * len(self.images) * copies * sum(int(np.prod(s)) for s in shapes)
        if size > budget:
            log(f"Identity features of the real images need {size / 2**30:.1f} GiB (> "
                f"{budget / 2**30:.1f} GiB): computing them in every step instead.")
            return None

        def features(images):
            parts = [model(images[i:i + chunk], training=False)
                     for i in range(0, len(images), chunk)]
            return [np.concatenate([p[k].numpy() for p in parts]) for k in range(len(shapes))]

        real = self.targets if self.separate_targets else self.images
        plain = features(real)
        flipped = features(real[:, :, ::-1]) if copies == 2 else plain
        log(f"Cached the identity features of {len(real)} real images"
            f"{' and their mirror images' if copies == 2 else ''} ({size / 2**20:.0f} MiB).")
        return plain, flipped

    @property
    def steps_per_epoch(self) -> int:
        return self.num_images // self.batch_size

    # --- the plan of an epoch --------------------------------------------------------
    def epoch_plan(self, epoch: int) -> dict:
        """What epoch ``epoch`` trains on, per sample in training order, without the
        images: ``index`` (of the image), ``flip``, ``label`` (one-hot), ``code``,
        ``z_prior`` and, with pairs, ``pair_index`` (of the partner, in the pool when
        there is one), ``pair_target``, ``pair_code`` (and ``edit_code``; with
        ``training.hole_view="partner"`` ``view_index``, the partner G's hole shows)."""
        seed = self.config.training.seed
        m = self.config.model
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(self.num_images)
        flip = np.zeros(len(order), bool)
        if self.config.training.flip:
            flip = rng.random(len(order)) < 0.5
        labels = self.labels[order]
        plan = {"index": order, "flip": flip,
                "label": np.eye(m.num_classes, dtype=np.float32)[labels],
                **self._training_codes(order, labels, epoch),
                "z_prior": sample_latent_prior(tf.constant([seed, _PRIOR_STREAM + epoch],
                                                           tf.int64),
                                               len(order), m.latent_dim).numpy()}
        if self.pairs is not None:
            plan.update(self._pair_plan(order, epoch))
        k = self.config.training.warp_rows
        if k:
            plan["warp"] = np.random.default_rng([seed, _WARP_STREAM + epoch]).integers(
                -k, k + 1, (len(order), WARP_KNOTS)).astype(np.float32)
        return plan

    def _training_codes(self, order, labels, epoch) -> dict:
        """The codes of the epoch's samples (``order``: their image indices, ``labels``:
        their expressions): ``code``, drawn from ``(seed, epoch)`` as the original does;
        with ``training.codes="intensity"`` ``code`` is each image's expression at its
        own intensity and the drawn code becomes ``draw``."""
        m = self.config.model
        drawn = sample_training_code(labels, tf.constant([self.config.training.seed, epoch],
                                                         tf.int64),
                                     m.num_classes, m.intensity_dim).numpy()
        if self.intensities is None:
            return {"code": drawn}
        own = intensity_code(labels, self.intensities[order], m.num_classes, m.intensity_dim)
        return {"code": np.asarray(own, np.float32), "draw": drawn}

    def _pair_plan(self, order, epoch) -> dict:
        """Each sample's partner (drawn from its own stream, so the other arrays are
        the same with or without pairs)."""
        rng = np.random.default_rng([self.config.training.seed, _PAIR_STREAM + epoch])
        draws = rng.random(len(order))
        partner = np.empty(len(order), np.int64)
        for k, (i, u) in enumerate(zip(order, draws)):
            candidates = self.pairs[i]
            if self.pair_levels is not None:  # training.pair_shares: the level, then one of it
                candidates, u = self._level_of_draw(self.pair_levels[i], u)
            partner[k] = candidates[int(u * len(candidates))] if len(candidates) else i
        m = self.config.model
        target = self.pair_labels[partner]
        full = np.asarray(intensity_code(target, 1.0, m.num_classes, m.intensity_dim),
                          np.float32)
        plan = {"pair_index": partner, "pair_target": target, "pair_code": full}
        if self.config.training.hole_view == "partner":
            # another of the face's partners, any candidate alike, for G's hole
            u = np.random.default_rng([self.config.training.seed,
                                       _VIEW_STREAM + epoch]).random(len(order))
            plan["view_index"] = np.array(
                [self.pairs[i][int(t * len(self.pairs[i]))] if len(self.pairs[i]) else i
                 for i, t in zip(order, u)], np.int64)
        # Partners at known intensities are coded at them: the pool's renders, or the
        # training faces themselves under training.codes="intensity" (with training.frames
        # > 3 many of them are neutral or weak, which intensity 1 would misname).
        levels = self.pair_intensities if self.pair_intensities is not None else self.intensities
        if levels is not None:
            plan["pair_code"] = np.asarray(
                intensity_code(target, levels[partner], m.num_classes, m.intensity_dim),
                np.float32)
        # The edit term judges the partner's expression at intensity 1 - the paired decode
        # itself when every partner is at 1 - or, with training.edit_intensity="sampled",
        # at an intensity drawn per face from U(0, 1) on a stream of its own.
        if self.config.training.edit_intensity == "sampled":
            t = np.random.default_rng([self.config.training.seed,
                                       _EDIT_STREAM + epoch]).random(len(order))
            plan["edit_code"] = np.asarray(
                intensity_code(target, t.astype(np.float32), m.num_classes, m.intensity_dim),
                np.float32)
        elif levels is not None and np.any(levels != 1.0):
            plan["edit_code"] = full
        return plan

    def _level_of_draw(self, levels, u):
        """``training.pair_shares``: the candidates of the level the draw ``u`` in [0, 1)
        falls on (the shares of the levels a face has candidates at, as intervals of
        [0, 1)), and ``u`` rescaled to [0, 1) within that interval, so one draw picks
        both the level and the partner. A face with candidates only at levels of share 0
        draws from all of them alike."""
        open_levels = [k for k, c in enumerate(levels) if len(c) and self.pair_shares[k] > 0]
        if not open_levels:
            return np.concatenate(levels), u
        edges = np.cumsum(self.pair_shares[open_levels])
        edges /= edges[-1]
        edges[-1] = 1.0
        j = int(np.searchsorted(edges, u, side="right"))
        low = edges[j - 1] if j else 0.0
        return levels[open_levels[j]], min((u - low) / (edges[j] - low), np.nextafter(1.0, 0.0))

    # --- batches ---------------------------------------------------------------------
    def _assemble(self, plan: dict) -> dict:
        """A batch (or any run) of plan rows -> the batch dict the train step takes."""
        flip = plan["flip"]
        rows = None if "warp" not in plan else warped_rows(plan["warp"], self.warp_weights)

        def placed(x):  # flipped, then warped with training.warp_rows
            x = tf.where(tf.reshape(flip, [-1, 1, 1, 1]), tf.reverse(x, axis=[2]), x)
            return x if rows is None else tf.gather(x, rows, axis=1, batch_dims=1)

        # Streamed with separate targets: each file is read once for both.
        raw = (self._read_tensor(plan["index"])
               if self.streamed and self.separate_targets and not self.given_targets
               else None)
        batch = {"image": placed(self._lookup(plan["index"], raw=raw))}
        if self.separate_targets:
            batch["target"] = placed(self._lookup(plan["index"], target=True, raw=raw))
        batch.update({k: plan[k] for k in ("label", "code", "draw", "z_prior") if k in plan})
        if "pair_index" in plan:
            pool = self.pair_intensities is not None
            batch["pair_image"] = placed(self._lookup(plan["pair_index"], pool=pool,
                                                      target=True))
            batch.update({k: plan[k] for k in ("pair_target", "pair_code", "edit_code")
                          if k in plan})
            if "view_index" in plan:
                batch["view_image"] = placed(self._lookup(plan["view_index"], pool=pool,
                                                          target=True))
            if self.pair_changes is not None:
                changes = self.pair_changes
                m = tf.numpy_function(lambda i: changes[i], [plan["pair_index"]], tf.uint8,
                                      stateful=False)
                m = tf.ensure_shape(m, [plan["pair_index"].shape[0], self.size, self.size])
                batch["pair_change"] = placed(m[..., None])
        if self.identity_cache is not None:
            plain, mirrored = self.identity_cache

            def features(index, flip):
                return [np.where(flip.reshape((-1,) + (1,) * (p.ndim - 1)), f[index],
                                 p[index]) for p, f in zip(plain, mirrored)]

            feats = tf.numpy_function(features, [plan["index"], flip],
                                      [tf.float32] * len(plain), stateful=False)
            batch["identity_features"] = tuple(
                tf.ensure_shape(f, [flip.shape[0], *p.shape[1:]]) for f, p in zip(feats, plain))
        return batch

    def epoch_arrays(self, epoch: int) -> dict:
        """The whole of epoch ``epoch`` as arrays (before batching): the batch dicts'
        keys, each over every image of the epoch. Needs the images in memory."""
        if self.streamed:
            raise ValueError("epoch_arrays holds a whole epoch of images, and these are "
                             "streamed (over the cache limit); iterate epoch() instead.")
        plan = self.epoch_plan(epoch)
        out = self._assemble({k: tf.constant(v) for k, v in plan.items()})
        return {k: tuple(f.numpy() for f in v) if isinstance(v, tuple) else v.numpy()
                for k, v in out.items()}

    def epoch(self, epoch: int, skip_steps: int = 0,
              input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Batches of epoch ``epoch``, dicts of ``image`` ([-1, 1]), ``label``
        (one-hot), ``code``, ``z_prior`` (and ``target`` when G's targets are separate,
        ``identity_features`` when cached, the ``pair_*`` entries with pairs and
        ``view_image`` with ``training.hole_view="partner"``), starting after
        ``skip_steps`` batches.

        Args:
            epoch: the epoch (its plan depends only on it and the run's seed).
            skip_steps: global steps of the epoch already done (a mid-epoch resume).
            input_context: given by ``strategy.distribute_datasets_from_function``:
                the dataset then yields this worker's per-replica batches, one per
                local replica in turn, which together are its share of each global
                batch (replica ``r`` of ``R`` gets rows ``r * B / R`` to
                ``(r + 1) * B / R - 1``); only those images are read.
        """
        replicas, workers, worker = 1, 1, 0
        if input_context is not None:
            replicas = input_context.num_replicas_in_sync
            workers = input_context.num_input_pipelines
            worker = input_context.input_pipeline_id
        local = replicas // workers
        per_replica = self.batch_size // replicas
        steps = self.steps_per_epoch
        positions = np.arange(steps * self.batch_size).reshape(steps, replicas, per_replica)
        positions = positions[skip_steps:, worker * local:(worker + 1) * local].reshape(-1)
        plan = {k: v[positions] for k, v in self.epoch_plan(epoch).items()}
        ds = tf.data.Dataset.from_tensor_slices(plan).batch(per_replica, drop_remainder=True)
        ds = ds.map(self._assemble, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)
