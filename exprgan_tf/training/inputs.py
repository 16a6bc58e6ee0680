"""Training batches as a pure function of (data, run seed, epoch).

Every epoch's batches - their order, flips, expression codes c and prior samples z -
are computed from ``(seed, epoch)`` alone. Nothing random lives outside the
checkpointed counters, so a run resumed at epoch ``e``, step ``k`` sees exactly the
batches an uninterrupted run would have seen, and a distributed run splits the same
global batches over its replicas.

Pre-processing (unsharp mask, rescaling) is deterministic, so it is done once per
image when :class:`TrainingInputs` is built; a horizontal flip commutes with it.

Likewise the identity network's features of the *real* images do not depend on the
model being trained: with ``identity_features`` given, they are computed once per
image and per flip and served with the batches (``batch["identity_features"]``), so a
step runs the frozen network only on the generated images. This is skipped when the
cache would exceed ``identity_cache_bytes`` (VGG-Face's conv1_2 alone is 12.8 MB per
image); the step then computes them itself.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from exprgan_tf import preprocessing
from exprgan_tf.config import ExprGANConfig
from exprgan_tf.controller import intensity_code, sample_latent_prior, sample_training_code

_PRIOR_STREAM = 1 << 30  # keeps the z-prior seeds apart from the code seeds
_PAIR_STREAM = 1 << 29   # ... and the partner draws of the paired term


def pair_candidates(groups, labels, pool_groups=None, pool_labels=None) -> list:
    """For every image, the indices of the partner candidates of its pair group (same
    subject, same capture conditions) with another expression; an empty array when
    there are none. The candidates are the images themselves, or the faces of a partner
    pool (``pool_groups``, ``pool_labels``).

    Example:
        >>> [c.tolist() for c in pair_candidates(["a", "a", "b", "a"], [0, 1, 0, 0])]
        [[1], [0, 3], [], [1]]
        >>> [c.tolist() for c in pair_candidates(["a", "b"], [0, 0], ["a", "a"], [0, 2])]
        [[1], []]
    """
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    if groups.shape != labels.shape:
        raise ValueError(f"pair_groups must have one entry per image ({labels.shape[0]}). "
                         f"Received: shape={groups.shape}")
    pool_groups = groups if pool_groups is None else np.asarray(pool_groups)
    pool_labels = labels if pool_labels is None else np.asarray(pool_labels)
    index = {}
    for i, g in enumerate(pool_groups.tolist()):
        index.setdefault(g, []).append(i)
    out = []
    for g, label in zip(groups.tolist(), labels.tolist()):
        members = np.asarray(index.get(g, []), np.int64)
        out.append(members[pool_labels[members] != label])
    return out


class TrainingInputs:
    """The training set of one run, served epoch by epoch.

    Args:
        images: uint8 ``[N, S, S, 3]`` faces at the model's image size.
        labels: int ``[N]`` expression indices.
        config: the run's config (pre-processing, code layout, seed, flip).
        batch_size: global batch size; the last partial batch of an epoch is dropped
            so every step has the same shape (one trace).
        chunk: images pre-processed per TF call (bounds memory).
        pair_groups: ``[N]`` group ids (a subject, or a subject under one lighting) for
            the paired term; with them every batch also holds ``pair_image`` (a face of
            the same group in another expression, flipped like its partner),
            ``pair_target`` (its expression) and ``pair_code`` (that expression at
            intensity 1). An image with no such partner is paired with itself.
        pair_pool: where partners come from instead of the training images (see
            :func:`exprgan_tf.data.pair_pool`): a dict of ``images`` (uint8), ``labels``,
            ``groups`` and ``intensities``; ``pair_code`` is then the partner's
            expression at its intensity, and the batches also hold ``pair_full_code``
            (that expression at intensity 1, for the edit term).
        intensities: float ``[N]`` in [0, 1], the expression intensity of each image;
            needed with ``training.codes="intensity"``, where ``code`` is the image's
            expression at it and the sampled code moves to ``draw`` (from which the
            steps draw their wrong classes).
    """

    def __init__(self, images, labels, config: ExprGANConfig, batch_size: int,
                 chunk: int = 256, identity_features=None,
                 identity_cache_bytes: int = 2 << 30, log=print, pair_groups=None,
                 pair_pool=None, intensities=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        m = config.model
        if images.ndim != 4 or images.shape[1:] != (m.image_size, m.image_size, m.channels):
            raise ValueError(f"images must have shape [N, {m.image_size}, {m.image_size}, "
                             f"{m.channels}]. Received: shape={images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape [{images.shape[0]}]. "
                             f"Received: shape={labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= m.num_classes):
            raise ValueError(f"labels must be in [0, {m.num_classes}). Received: "
                             f"min={labels.min()}, max={labels.max()}")
        if images.shape[0] < batch_size:
            raise ValueError(f"The training set has {images.shape[0]} images, fewer than one "
                             f"batch. Received: batch_size={batch_size}")
        self.config = config
        self.batch_size = batch_size
        self.intensities = None
        if config.training.codes == "intensity":
            if intensities is None:
                raise ValueError("training.codes='intensity' needs the expression intensity "
                                 "of every training image (intensities, from "
                                 "exprgan_tf.data.face_intensities); only the built-in set "
                                 "knows them. Set training.codes='sampled' for other data.")
            t = np.asarray(intensities, np.float32)
            if t.shape != labels.shape or not np.all((t >= 0.0) & (t <= 1.0)):
                raise ValueError(f"intensities must be [{labels.shape[0]}] numbers in "
                                 f"[0, 1]. Received: shape={t.shape}")
            self.intensities = t
        self.labels = labels.astype(np.int32)
        fn = preprocessing.preprocess_fn(config.preprocess)
        self.images = np.concatenate([fn(images[i:i + chunk]).numpy()
                                      for i in range(0, len(images), chunk)])
        self.pair_images, self.pair_labels, self.pair_intensities = self.images, self.labels, None
        if pair_pool is not None:
            if pair_groups is None:
                raise ValueError("pair_pool needs pair_groups (the group of every training "
                                 "image) to know whose partners to draw.")
            pool_images = np.asarray(pair_pool["images"])
            if pool_images.ndim != 4 or pool_images.shape[1:] != images.shape[1:]:
                raise ValueError(f"pair_pool images must have shape [M, {m.image_size}, "
                                 f"{m.image_size}, {m.channels}]. Received: "
                                 f"shape={pool_images.shape}")
            self.pair_images = np.concatenate([fn(pool_images[i:i + chunk]).numpy()
                                               for i in range(0, len(pool_images), chunk)])
            self.pair_labels = np.asarray(pair_pool["labels"], np.int32)
            self.pair_intensities = np.asarray(pair_pool["intensities"], np.float32)
        self.pairs = None if pair_groups is None else pair_candidates(
            pair_groups, labels, None if pair_pool is None else pair_pool["groups"],
            None if pair_pool is None else self.pair_labels)
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
        if identity_features is not None:
            self.identity_cache = self._cache_identity(identity_features, chunk,
                                                       identity_cache_bytes, log)

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

        plain = features(self.images)
        flipped = features(self.images[:, :, ::-1]) if copies == 2 else plain
        log(f"Cached the identity features of {len(self.images)} real images"
            f"{' and their mirror images' if copies == 2 else ''} ({size / 2**20:.0f} MiB).")
        return plain, flipped

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def epoch_arrays(self, epoch: int) -> dict:
        """The whole of epoch ``epoch`` as arrays (before batching)."""
        seed = self.config.training.seed
        m = self.config.model
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(self.images))
        images = self.images[order]
        flip = np.zeros(len(order), bool)
        if self.config.training.flip:
            flip = rng.random(len(order)) < 0.5
            images[flip] = images[flip, :, ::-1]
        labels = self.labels[order]
        code = sample_training_code(labels, tf.constant([seed, epoch], tf.int64),
                                    m.num_classes, m.intensity_dim).numpy()
        z = sample_latent_prior(tf.constant([seed, _PRIOR_STREAM + epoch], tf.int64),
                                len(order), m.latent_dim)
        arrays = {"image": images, "label": np.eye(m.num_classes, dtype=np.float32)[labels],
                  "code": code, "z_prior": z.numpy()}
        if self.intensities is not None:
            arrays["code"] = np.asarray(intensity_code(
                labels, self.intensities[order], m.num_classes, m.intensity_dim), np.float32)
            arrays["draw"] = code
        if self.pairs is not None:
            arrays.update(self._pair_arrays(order, flip, epoch))
        if self.identity_cache is not None:
            plain, flipped = self.identity_cache
            arrays["identity_features"] = tuple(
                np.where(flip.reshape((-1,) + (1,) * (p.ndim - 1)), f[order], p[order])
                for p, f in zip(plain, flipped))
        return arrays

    def _pair_arrays(self, order, flip, epoch) -> dict:
        """Each sample's partner (drawn from its own stream, so the other arrays are
        the same with or without pairs), flipped like the sample."""
        rng = np.random.default_rng([self.config.training.seed, _PAIR_STREAM + epoch])
        draws = rng.random(len(order))
        partner = np.empty(len(order), np.int64)
        for k, (i, u) in enumerate(zip(order, draws)):
            candidates = self.pairs[i]
            partner[k] = candidates[int(u * len(candidates))] if len(candidates) else i
        images = self.pair_images[partner]
        images[flip] = images[flip, :, ::-1]
        m = self.config.model
        target = self.pair_labels[partner]
        full = np.asarray(intensity_code(target, 1.0, m.num_classes, m.intensity_dim),
                          np.float32)
        if self.pair_intensities is None:
            return {"pair_image": images, "pair_target": target, "pair_code": full}
        code = intensity_code(target, self.pair_intensities[partner], m.num_classes,
                              m.intensity_dim)
        return {"pair_image": images, "pair_target": target,
                "pair_code": np.asarray(code, np.float32), "pair_full_code": full}

    def epoch(self, epoch: int, skip_steps: int = 0) -> tf.data.Dataset:
        """Batches of epoch ``epoch``, dicts of ``image`` ([-1, 1]), ``label``
        (one-hot), ``code``, ``z_prior`` (and ``identity_features`` when cached),
        starting after ``skip_steps`` batches."""
        ds = tf.data.Dataset.from_tensor_slices(self.epoch_arrays(epoch))
        ds = ds.batch(self.batch_size, drop_remainder=True).skip(skip_steps)
        return ds.prefetch(tf.data.AUTOTUNE)
