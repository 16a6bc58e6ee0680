"""The incremental-training loop: one stage of one run directory.

:class:`Trainer` builds the networks under a ``tf.distribute`` strategy, restores what
the run directory holds (the same stage to resume, else the previous stage's networks),
then trains epoch by epoch with:

- a progress bar with ETA and the current losses;
- TensorBoard scalars for every loss, and sample grids (rows = the six expressions,
  columns = test faces) every ``training.sample_every`` epochs, also saved as PNG;
- a checkpoint every ``training.checkpoint_every`` epochs, at the end, and when the
  run is interrupted with Ctrl-C / SIGTERM (between two steps, so nothing is lost and
  the resumed run continues as an uninterrupted one would);
- a stop with a clear error on a NaN/Inf loss or weight, leaving the last good
  checkpoint alone (a checkpoint is never written with non-finite weights, nor over an
  existing checkpoint file);
- a lock on the run directory (:class:`~exprgan_tf.run_dir.RunDirLock`), so a second
  trainer in it refuses to start;
- under ``MultiWorkerMirroredStrategy``, TensorFlow's pattern for files: every worker
  runs the same loop and saves, but only the chief writes the run directory (config,
  checkpoints, samples, history, TensorBoard events, the lock); the other workers save
  their checkpoints to a temporary directory of their own and delete it, and all of
  them resume from the chief's newest checkpoint (the run directory must therefore be
  on a file system every worker reads);
- networks initialised from ``training.seed``: two identical commands start from
  identical weights and draw identical batches (at the tests' tiny sizes they train
  bit for bit alike; at real sizes TensorFlow's multi-threaded CPU kernels make the
  last bits differ from run to run, docs/design.md "Training loop");
- ``history.csv`` (per-epoch mean losses) and ``loss_curves.png`` at the end.

Example:
    >>> from exprgan_tf.config import get_preset          # doctest: +SKIP
    >>> trainer = Trainer(get_preset("proposed-small"), "runs/demo", stage=1,
    ...                   images=images, labels=labels)   # doctest: +SKIP
    >>> trainer.fit(epochs=2)                              # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from exprgan_tf import run_dir as rd
from exprgan_tf.config import EXPRESSIONS, ExprGANConfig
from exprgan_tf.controller import intensity_code, sample_latent_prior
from exprgan_tf.editor import ExpressionEditor
from exprgan_tf.models import build_decoder, build_encoder, build_networks, decode
from exprgan_tf.preprocessing import preprocess_fn, to_display
from exprgan_tf.training import averaging
from exprgan_tf.training.inputs import (CACHE_BYTES, TrainingInputs, image_files,
                                         read_image_files, unreadable_image_error)
from exprgan_tf.training.precision import dtype_policy, make_optimizer
from exprgan_tf.training.steps import LOSS_KEYS, StageStep
from exprgan_tf.visualize import labelled_grid, plot_loss_curves, save_png

# Which networks a stage takes over from the one before (docs/design.md, "The three stages").
CARRIED_OVER = {2: ("decoder", "image_discriminator"),
                3: ("encoder", "decoder", "latent_discriminator", "image_discriminator")}
# history.csv columns: every loss of every stage, in a fixed order.
HISTORY_LOSSES = list(dict.fromkeys(LOSS_KEYS[1] + LOSS_KEYS[2]))
# The losses the progress bar shows (TensorBoard and history.csv get all of them).
PROGRESS_KEYS = {1: ("loss_G", "loss_D_img", "G_img", "L_Q"),
                 2: ("loss_EG", "L1", "L_id", "L_Q", "loss_D_z", "loss_D_img")}
PROGRESS_KEYS[3] = PROGRESS_KEYS[2]
# Configuration sections that must not change inside one run directory, but for the
# editor's settings that training never reads (a later stage may set them).
FROZEN_SECTIONS = ("model", "preprocess")
EDIT_TIME_ONLY = ("model.paste_gate", "model.intensity_scale")


class NonFiniteLossError(FloatingPointError):
    """A loss or a weight became NaN or Inf; the run stopped without saving the bad
    weights."""


def init_seed(seed: int, stage: int) -> int:
    """The seed the networks of ``stage`` are initialised from: derived from the run's
    ``training.seed`` and the stage, so the networks a stage starts fresh are not
    copies of the (untrained) ones of the stage before."""
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])


def assert_replicas_agree(strategy, value_fn, names) -> np.ndarray:
    """Gather a float64 vector from every replica of ``strategy`` (``value_fn(ctx)``,
    ``ctx`` a ``tf.distribute.experimental.ValueContext``) and raise unless all are
    equal. Returns the ``[replicas, len(names)]`` values.

    Every worker of a multi-worker run calls this at the same point (a collective); all
    of them receive every value, so they all pass or all raise.

    Raises:
        RuntimeError: the replicas disagree; the message lists each replica's values.
    """
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.reshape(tf.cast(value_fn(ctx), tf.float64), [1, len(names)]))
    values = strategy.gather(per_replica, axis=0).numpy()
    if not (values == values[:1]).all():
        rows = "; ".join(f"replica {r}: " + ", ".join(f"{n} {v:.17g}" for n, v in zip(names, row))
                         for r, row in enumerate(values))
        raise RuntimeError(f"the workers resumed from different checkpoints ({rows}). Every "
                           "worker must read the chief's run directory (a file system all "
                           "of them see, with the same --run-dir) and run the same command.")
    return values


def make_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy to train under.

    Args:
        kind: ``"auto"`` (MirroredStrategy over all GPUs when there are several, else
            the default one-device strategy), ``"default"``, ``"mirrored"`` (all local
            devices: GPUs, or the logical CPUs when there is no GPU), or
            ``"multiworker"`` (MultiWorkerMirroredStrategy; every machine runs the same
            command with its own ``TF_CONFIG``).
    """
    if kind == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError("strategy must be 'auto', 'default', 'mirrored' or 'multiworker'. "
                     f"Received: strategy={kind!r}")


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.requested = False
        self.signalled = False  # requested by a signal, not by max_steps
        self._old = {}

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.requested = self.signalled = True
            print("\nInterrupt received: finishing this step, saving a checkpoint, then "
                  "stopping (press Ctrl-C again to abort without saving).", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _batches(data):
    """The batches of ``data``; a training image file that cannot be read (streamed
    data) ends the loop with a ``ValueError`` naming it."""
    it = iter(data)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except tf.errors.InvalidArgumentError as e:
            error = unreadable_image_error(e)
            if error is None:
                raise
            raise error from None
        yield batch


class Trainer:
    """Train one stage of an ExprGAN run.

    Args:
        config: the run's :class:`~exprgan_tf.config.ExprGANConfig`.
        run_dir: the run directory (created if needed; see :mod:`exprgan_tf.run_dir`).
        stage: 1, 2 or 3.
        images: uint8 ``[N, S, S, 3]`` training faces at the model size, or the paths
            of ``N`` image files (:class:`~exprgan_tf.training.inputs.TrainingInputs`:
            kept in memory when they fit under ``cache_bytes``, else streamed).
        labels: int ``[N]`` their expressions.
        sample_images: uint8 faces of held-out subjects for the sample grids (stage 2/3;
            stage 1 uses fixed prior samples instead). ``None``: the first training
            images.
        strategy: a ``tf.distribute`` strategy (default: :func:`make_strategy`).
        identity_features: frozen feature model for L_id, or ``None`` to build the one
            ``config.identity`` names (``"none"``: L_id is 0).
        batch_size: overrides the stage's batch size.
        cache_identity: compute the identity features of the real images once (see
            :class:`~exprgan_tf.training.inputs.TrainingInputs`) instead of every step.
        log: where messages go.
        pair_groups: ``[N]`` ids of who (and under which lighting) each training face
            shows (:func:`exprgan_tf.data.pair_groups`); needed when the stage's
            ``losses.paired`` is on, ignored otherwise.
        pair_pool: the partners to draw from (:func:`exprgan_tf.data.pair_pool`); needed
            with ``training.pair_intensities``, ignored otherwise.
            :func:`exprgan_tf.data.pair_inputs` gives both arguments.
        intensities: ``[N]`` the expression intensity of each training face
            (:func:`exprgan_tf.data.face_intensities`); needed with
            ``training.codes="intensity"``, ignored otherwise.
        cache_bytes: the most memory the pre-processed training images may take to be
            kept in memory (above it they are read from their source for every batch).
        targets: uint8 ``[N, S, S, C]``, the clean render of each training face
            (:func:`exprgan_tf.data.clean_faces`); needed with
            ``training.clean_targets``, ignored otherwise.
    """

    def __init__(self, config: ExprGANConfig, run_dir, stage: int, images, labels,
                 sample_images=None, strategy=None, identity_features=None,
                 batch_size: int | None = None, cache_identity: bool = True, log=print,
                 pair_groups=None, pair_pool=None, intensities=None,
                 cache_bytes: int = CACHE_BYTES, targets=None):
        config = config.at_stage(stage)     # the stage's own partner settings
        self.stage_config = config.training.stage(stage)
        self.config = config
        self.stage = stage
        self.run_dir = os.fspath(run_dir)
        self.log = log
        self.strategy = strategy or make_strategy("auto")
        self.batch_size = batch_size or self.stage_config.batch_size
        if self.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of the "
                             f"{self.strategy.num_replicas_in_sync} replicas.")
        # Only the chief of a multi-worker run writes the run directory; a single-machine
        # strategy is its own chief.
        self.is_chief = bool(self.strategy.extended.should_checkpoint)
        self.lock = rd.RunDirLock(self.run_dir, warn=lambda m: self.log(f"Warning: {m}"))
        if self.is_chief:  # one trainer per run directory
            self.lock.acquire()
            self._write_config()

        if sample_images is None:  # the first training faces
            files = image_files(images)
            sample_images = (images[:8] if files is None
                             else read_image_files(files[:8], config.model.image_size))
        self.sample_images = np.asarray(sample_images[:8])
        precision = config.training.precision
        # Keras draws initial weights from its global seed generator: seed it, so two
        # identical commands start from identical weights.
        keras.utils.set_random_seed(init_seed(config.training.seed, stage))
        with self.strategy.scope():
            with dtype_policy(precision):  # float32 variables; mixed: compute dtype
                self.nets = build_networks(config.model)
            self.optimizers = {name: make_optimizer(config.optimizer, f"adam_{name}", precision)
                               for name in ("EG", "D_z", "D_img")}
            if identity_features is None and stage > 1:
                identity_features = self._build_identity()
        uses_identity = (stage > 1 and identity_features is not None
                         and self.stage_config.losses.identity > 0)
        paired = stage > 1 and self.stage_config.losses.paired > 0
        if paired and pair_groups is None:
            raise ValueError(
                f"training.stage{stage}.losses.paired={self.stage_config.losses.paired} needs "
                "the subject of every training face (pair_groups); scripts/train.py takes "
                "them from the dataset. Set the weight to 0 for data without subjects.")
        pool = bool(config.training.pair_intensities)
        if paired and pool and pair_pool is None:
            raise ValueError(
                f"training.pair_intensities={list(config.training.pair_intensities)} needs "
                "the partner faces at those intensities (pair_pool, from "
                "exprgan_tf.data.pair_pool); scripts/train.py renders them for the "
                "built-in set. Set training.pair_intensities=[] to pair training faces.")
        if paired and pool and config.training.pair_pose == "input" \
                and "sources" not in pair_pool:
            raise ValueError(
                "training.pair_pose=input needs partners rendered in each training face's "
                "pose (a pair_pool with 'sources', from exprgan_tf.data.pair_pool(..., "
                "pose='input')); this pool has one set per group.")
        if stage > 1 and config.training.hole_view == "partner" and not (paired and pool):
            raise ValueError(
                "training.hole_view=partner shows G's hole one of the face's partners: it "
                f"needs the paired term (training.stage{stage}.losses.paired > 0) with "
                "partners rendered in each face's pose (training.pair_intensities, "
                "pair_pose=input; built-in set).")
        if paired and config.training.pair_change > 0 and "changes" not in pair_pool:
            raise ValueError(
                f"training.pair_change={config.training.pair_change} needs each partner's "
                "change map (a pair_pool with 'changes', from exprgan_tf.data.pair_pool(..., "
                "pose='input', changes=True)).")
        if config.training.q_real and stage > 1 and not paired:
            raise ValueError(
                "training.q_real=true needs the paired term's partners (training.stage"
                f"{stage}.losses.paired > 0): Q learns their intensities.")
        if config.training.clean_targets and targets is None:
            raise ValueError(
                "training.clean_targets=true needs the clean render of every training face "
                "(targets, from exprgan_tf.data.clean_faces); scripts/train.py renders them "
                "for the built-in set. Set training.clean_targets=false for other data.")
        expression_features = None
        if paired and self.stage_config.losses.expression > 0:
            from exprgan_tf.training.expression_features import build_expression_features

            with self.strategy.scope():   # as the identity network
                expression_features = build_expression_features(
                    config.training.expression_network, self.run_dir,
                    config.model.image_size,
                    reference=images if image_files(images) is None else None, log=log)
        regions = config.training.expression_regions if stage > 1 else 0.0
        if regions > 0 and pair_groups is None:
            raise ValueError(
                f"training.expression_regions={regions} needs the subject of every training "
                "face (pair_groups) to find where faces change with expression; "
                "scripts/train.py takes them from the dataset. Set it to 0 for data "
                "without subjects.")
        self.inputs = TrainingInputs(
            images, labels, config, self.batch_size, log=log,
            identity_features=identity_features if uses_identity and cache_identity else None,
            pair_groups=pair_groups if paired else None,
            pair_pool=pair_pool if paired and pool else None, intensities=intensities,
            cache_bytes=cache_bytes,
            targets=targets if config.training.clean_targets else None)
        if stage > 1 and config.training.hole_view == "partner":
            log("Hole view: inside its hole G is shown another of each face's partners, "
                "in the face's own pose and an expression drawn per sample "
                "(training.hole_view=partner).")
        if config.training.warp_rows:
            log(f"Row warps: each training face, its target and its partner are read along "
                f"rows shifted by up to {config.training.warp_rows} px, drawn per sample at "
                "four heights (training.warp_rows).")
        pixel_weights = None
        if regions > 0:
            pixel_weights = self.inputs.expression_weights(regions, pair_groups)
            log(f"Expression regions: G's L1 weighs each pixel {pixel_weights.min():.2f}"
                f"-{pixel_weights.max():.2f} (mean 1), most where faces change with "
                "expression.")
            os.makedirs(self.run_dir, exist_ok=True)
            save_png(to_display(pixel_weights / pixel_weights.max() * 2.0 - 1.0).numpy()
                     .repeat(3, -1), os.path.join(self.run_dir, "expression_regions.png"))
        paste = None
        if config.training.paste_regions and stage > 1:
            from exprgan_tf.data.regions import expression_regions

            paste = expression_regions(config.model.image_size,
                                       config.model.edit_regions)[..., None]
            log(f"Paste: G is trained through the editor's map (model.edit_regions="
                f"{config.model.edit_regions:g}, mean {paste.mean():.2f}).")
        # The counters are read and advanced by the Python loop, between steps: plain
        # host variables, not mirrored ones (int() of a MirroredVariable fails). Every
        # worker advances them identically and restores them from the same checkpoint.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="step_in_epoch")
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                       name="global_step")
        with self.strategy.scope():
            self.step = StageStep(
                stage=stage, networks=self.nets, optimizers=self.optimizers,
                weights=self.stage_config.losses, num_classes=config.model.num_classes,
                intensity_dim=config.model.intensity_dim, identity_features=identity_features,
                identity_layer_weights=config.identity.layer_weights,
                identity_images=config.identity.images_per_step, strategy=self.strategy,
                jit_compile=config.training.jit_compile,
                dimg_blur=config.training.dimg_blur, pixel_weights=pixel_weights,
                paste_regions=paste,
                dimg_min_intensity=config.training.dimg_min_intensity,
                pair_change=config.training.pair_change if paired else 0.0,
                pair_l1_min_intensity=config.training.pair_l1_min_intensity if paired else 0.0,
                q_real=config.training.q_real and stage > 1,
                dimg_pair_real=config.training.dimg_pair_real,
                dimg_intensity_label=config.training.dimg_intensity_label,
                pair_blur=config.training.pair_blur if paired else 0.0,
                expression_features=expression_features)
            # Keras 3 optimisers create their slots on first use; build them now so the
            # step function traces once.
            self.optimizers["EG"].build(self.step.eg_vars)
            self.optimizers["D_z"].build(self.step.dz_vars)
            self.optimizers["D_img"].build(self.step.dimg_vars)
            # Built after everything training uses: it draws no random numbers that
            # training would (every draw of a step comes with its batch anyway).
            self.average = self._build_average(precision)
        if self.average is not None:
            log(f"Weight average: E and G are also kept as an average of their recent weights "
                f"(training.ema_momentum={self.average.momentum:g}, about "
                f"{round(1 / (1 - self.average.momentum))} steps); sample sheets, the exporter "
                "and the scorers use it.")
        if stage > 1 and self.stage_config.losses.identity > 0 and identity_features is None:
            self.log(f"Note: identity.network is 'none', so L_id is 0 in stage {stage}. "
                     "Run scripts/fetch_weights.py and set identity.network=dlib_resnet "
                     "(or vgg_face) for the identity loss.")
        self._trained_state = dict(
            **self.nets.as_dict(), optimizer_EG=self.optimizers["EG"],
            optimizer_D_z=self.optimizers["D_z"], optimizer_D_img=self.optimizers["D_img"],
            epoch=self.epoch, step_in_epoch=self.step_in_epoch, global_step=self.global_step)
        self.checkpoint = tf.train.Checkpoint(**self._trained_state,
                                              **self._averaged_networks())
        # A worker that is not the chief saves where nobody looks, and deletes it again.
        self._worker_dir = None if self.is_chief else tempfile.mkdtemp(
            prefix=f"exprgan-worker{self._task_id()}-")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._worker_dir or rd.ckpt_dir(self.run_dir, stage), max_to_keep=3)
        self.interrupted = False  # set when Ctrl-C / SIGTERM stopped fit()
        self.restored = self._restore()
        if self.strategy.num_replicas_in_sync > 1:
            self._check_workers_restored_alike()
        self.writer = (tf.summary.create_file_writer(
            os.path.join(self.run_dir, rd.LOGS_DIR, f"stage{stage}")) if self.is_chief
            else tf.summary.create_noop_writer())
        self._scalar_writer = None  # compiled on first use, inside the writer's scope

    # --- set-up ----------------------------------------------------------------------
    def _write_config(self):
        os.makedirs(self.run_dir, exist_ok=True)
        path = rd.config_path(self.run_dir)
        if os.path.exists(path):
            old = ExprGANConfig.load(path).to_dict()
            new = self.config.to_dict()
            changed = [f"{sec}.{k}" for sec in FROZEN_SECTIONS for k in new[sec]
                       if old[sec].get(k) != new[sec][k]
                       and f"{sec}.{k}" not in EDIT_TIME_ONLY]
            if changed:
                raise ValueError(
                    f"{self.run_dir} was trained with another architecture or pre-processing "
                    f"(changed: {', '.join(changed)}). Use a new --run-dir, or the same "
                    f"settings as {path}.")
        self.config.save(path)

    def _build_average(self, precision):
        momentum = self.config.training.ema_momentum
        if momentum <= 0:
            return None
        with dtype_policy(precision):  # only the copies it averages, not D_z / D_img
            copies = {"encoder": build_encoder(self.config.model),
                      "decoder": build_decoder(self.config.model)}
        nets = self.nets.as_dict()
        return averaging.WeightAverage(
            {n: nets[n] for n in averaging.AVERAGED}, copies, momentum,
            jit_compile=self.strategy.num_replicas_in_sync == 1)

    def _averaged_networks(self) -> dict:
        """Checkpoint name -> network of the weight average (empty without one)."""
        if self.average is None:
            return {}
        return {n + averaging.SUFFIX: self.average.averaged[n] for n in averaging.AVERAGED}

    def editing_networks(self):
        """``(encoder, decoder)`` an editor of this run would use now: the weight
        average when ``training.ema_momentum`` keeps one, else the trained networks."""
        if self.average is not None:
            return self.average.averaged["encoder"], self.average.averaged["decoder"]
        return self.nets.encoder, self.nets.decoder

    def _task_id(self) -> int:
        resolver = getattr(self.strategy, "cluster_resolver", None)
        return int(getattr(resolver, "task_id", 0) or 0)

    def _build_identity(self):
        if self.config.identity.network == "none":
            return None
        from exprgan_tf.identity import build_identity_features
        return build_identity_features(self.config.identity)

    def _restore(self) -> str:
        directory = rd.ckpt_dir(self.run_dir, self.stage)
        # From the files on disk, not only the state file; unusable newer checkpoints
        # are skipped (CheckpointError when there are checkpoints but none is usable).
        latest = rd.newest_good_checkpoint(directory, warn=lambda m: self.log(f"Warning: {m}"))
        self.last_good = latest
        if latest:
            if self.is_chief:  # the others only read the run directory
                self._set_aside_newer_than(latest)
            average_missing = self.average is not None and not rd.has_average(latest)
            checkpoint = self.checkpoint
            if average_missing:  # restore everything else; the average starts below
                checkpoint = tf.train.Checkpoint(**self._trained_state)
            checkpoint.restore(latest).assert_existing_objects_matched()
            msg = (f"Resuming stage {self.stage} from {latest}: epoch {int(self.epoch)}, "
                   f"step {int(self.step_in_epoch)} of that epoch.")
            if average_missing:
                self.average.reset()
                msg += (" The checkpoint has no weight average (training.ema_momentum): it "
                        "starts from the restored weights.")
            if self.is_chief and self.manager.latest_checkpoint is None:
                msg += (f" ({os.path.join(directory, 'checkpoint')} was missing; the "
                        "checkpoint was found from its files.)")
            msg += self._apply_learning_rate()
        elif self.stage > 1 and rd.latest_checkpoint(self.run_dir, self.stage - 1):
            prev = rd.latest_checkpoint(self.run_dir, self.stage - 1)
            names = CARRIED_OVER[self.stage]
            nets = self.nets.as_dict()
            tf.train.Checkpoint(**{n: nets[n] for n in names}).restore(prev) \
                .expect_partial().assert_existing_objects_matched()
            fresh = [n for n in rd.NETWORK_NAMES if n not in names]
            msg = (f"Stage {self.stage} starts from stage {self.stage - 1} ({prev}): restored "
                   f"{', '.join(names)}" + (f"; {', '.join(fresh)} start fresh." if fresh
                                            else ".") + " Optimisers start fresh.")
        else:
            msg = (f"Stage {self.stage}: no checkpoint found in {rd.ckpt_dir(self.run_dir)}; "
                   "starting from freshly initialised networks.")
            if self.stage > 1:
                msg += f" (The original schedule runs stage {self.stage - 1} first.)"
        if not latest and self.average is not None:
            self.average.reset()
        self.log(msg)
        return msg

    def _check_workers_restored_alike(self):
        """Each worker picks the newest good checkpoint it finds in the chief's run
        directory by itself; make sure they all found the same one (the position in the
        run and a checksum of every network's weights), before the first collective
        step would silently average different models."""
        weights = [w for net in self.nets.as_dict().values() for w in net.weights]
        position = tf.stack(
            [tf.cast(self.global_step, tf.float64), tf.cast(self.epoch, tf.float64),
             tf.cast(self.step_in_epoch, tf.float64),
             tf.add_n([tf.reduce_sum(tf.cast(w, tf.float64)) for w in weights])])
        assert_replicas_agree(self.strategy, lambda ctx: position,
                              ("global step", "epoch", "step", "weight sum"))

    def _set_aside_newer_than(self, prefix):
        """Rename the files of unusable checkpoints newer than ``prefix`` to
        ``*.unusable``: training from ``prefix`` would write checkpoints of the same
        numbers, and a checkpoint file is never overwritten."""
        prefixes = rd.checkpoints_on_disk(os.path.dirname(prefix))
        for bad in prefixes[:prefixes.index(prefix)]:
            for path in rd.checkpoint_files(bad):
                os.replace(path, path + ".unusable")
            self.log(f"Warning: renamed the files of {bad} to *.unusable (kept for "
                     "inspection; delete them when done).")

    def _apply_learning_rate(self) -> str:
        """Give the restored optimisers the configured learning rate (the checkpoint
        holds the one they were saved with); says so when it changes."""
        if self.stage_config.lr_decay_epochs:
            return ""  # fit sets the rate of each step from the step's place in the stage
        lr = self.config.optimizer.learning_rate
        # (read through a tensor: under a strategy the variable is a MirroredVariable)
        before = {float(tf.convert_to_tensor(opt.learning_rate))
                  for opt in self.optimizers.values()}
        self._set_learning_rate(lr)
        changed = sorted(v for v in before if not np.isclose(v, lr, rtol=1e-6, atol=0.0))
        if not changed:
            return ""
        return (f" optimizer.learning_rate is {lr:g} from now on (the checkpoint's "
                f"optimisers had {', '.join(f'{v:g}' for v in changed)}).")

    def learning_rate_at(self, epoch: int, step: int, epochs: int) -> float:
        """The learning rate of step ``step`` (0-based) of epoch ``epoch`` (0-based) in a
        stage of ``epochs`` epochs: ``optimizer.learning_rate``, then, over the last
        ``lr_decay_epochs`` of them, a straight line towards 0 (the stage's last step
        keeps ``1 / (lr_decay_epochs * steps_per_epoch)`` of it)."""
        lr = self.config.optimizer.learning_rate
        decay = self.stage_config.lr_decay_epochs
        if not decay:
            return lr
        left = epochs - (epoch + step / self.inputs.steps_per_epoch)
        return lr * min(1.0, left / decay)

    def _set_learning_rate(self, lr: float):
        for opt in self.optimizers.values():
            opt.learning_rate = lr

    def close(self):
        """Release the run directory's lock (also released when the process ends) and
        delete a non-chief worker's temporary checkpoints."""
        self.lock.release()
        if self._worker_dir:
            shutil.rmtree(self._worker_dir, ignore_errors=True)

    # --- the loop ----------------------------------------------------------------------
    def fit(self, epochs: int | None = None, max_steps: int | None = None) -> list[dict]:
        """Train until ``epochs`` epochs of this stage are done (default: the stage's
        configured epochs).

        Args:
            epochs: total epochs of this stage (counting those already done).
            max_steps: stop after this many steps of this call, saving a checkpoint
                (for time-boxed runs; the next call resumes exactly there).

        Returns:
            This call's per-epoch history rows.
        """
        epochs = epochs or self.stage_config.epochs
        steps_done = 0
        steps = self.inputs.steps_per_epoch
        rows = []
        start = int(self.epoch)
        if start >= epochs:
            self.log(f"Stage {self.stage} already has {start} of {epochs} epochs; nothing to do.")
            return rows
        self.log(f"Stage {self.stage}: epochs {start + 1}-{epochs}, {steps} steps of "
                 f"{self.batch_size} images each, {self.strategy.num_replicas_in_sync} replica(s).")
        decay = self.stage_config.lr_decay_epochs
        if decay:
            first = max(epochs - decay, 0) + 1
            span = f"epoch {first}" if first == epochs else f"epochs {first}-{epochs}"
            self.log(f"The learning rate falls linearly from {self.config.optimizer.learning_rate:g}"
                     f" towards 0 over {span} (training.stage{self.stage}.lr_decay_epochs="
                     f"{decay}).")
        self.interrupted = False
        with _StopRequest() as stop, self.writer.as_default():
            while int(self.epoch) < epochs:
                epoch = int(self.epoch)
                skip = int(self.step_in_epoch)
                # A live bar on a terminal; in a redirected log one plain line per epoch
                # (the live bar's colour codes and backspaces would fill the file).
                bar = keras.utils.Progbar(steps, stateful_metrics=PROGRESS_KEYS[self.stage],
                                          unit_name="step",
                                          verbose=1 if sys.stdout.isatty() else 2)
                if skip:
                    bar.update(skip)
                sums, count, t0 = {}, 0, time.time()
                # Every worker builds the epoch's plan and reads only the images of
                # its replicas' share of each global batch.
                data = self.strategy.distribute_datasets_from_function(
                    lambda context, e=epoch, s=skip: self.inputs.epoch(e, s, context))
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
                for batch in _batches(data):
                    if decay:
                        self._set_learning_rate(self.learning_rate_at(
                            epoch, int(self.step_in_epoch), epochs))
                    losses = self.step(batch)
                    if self.average is not None:
                        self.average.update()
                    values = {k: float(v) for k, v in losses.items()}
                    self._check_finite(values, epoch)
                    self.step_in_epoch.assign_add(1)
                    self.global_step.assign_add(1)
                    count += 1
                    for k, v in values.items():  # epoch means cover this call's steps
                        sums[k] = sums.get(k, 0.0) + v
                    self._write_scalars(losses)
                    bar.update(int(self.step_in_epoch),
                               values=[(k, values[k]) for k in PROGRESS_KEYS[self.stage]])
                    steps_done += 1
                    if max_steps is not None and steps_done >= max_steps:
                        stop.requested = True
                    if stop.requested:
                        break
                if stop.requested and int(self.step_in_epoch) < steps:
                    path = self._save(epoch)
                    self.log(f"Stopped at epoch {epoch + 1}, step {int(self.step_in_epoch)}: "
                             f"saved {path}. Run the same command to resume.")
                    self.interrupted = stop.signalled
                    return rows
                self.epoch.assign_add(1)
                self.step_in_epoch.assign(0)
                row = self._history_row(epoch + 1, sums, count, time.time() - t0)
                rows.append(row)
                last = int(self.epoch) == epochs
                if last or (epoch + 1) % self.config.training.sample_every == 0:
                    self.sample(epoch + 1)
                if last or stop.requested or (epoch + 1) % self.config.training.checkpoint_every == 0:
                    path = self._save(epoch)
                    self.log(f"Saved {path}")
                if stop.requested:
                    self.log("Stopped after a full epoch. Run the same command to resume.")
                    self.interrupted = stop.signalled
                    return rows
        self.writer.flush()
        if not self.is_chief:
            self.log(f"Stage {self.stage} done (worker {self._task_id()}; the chief "
                     "writes the run directory).")
            return rows
        plot = plot_loss_curves(os.path.join(self.run_dir, rd.HISTORY_FILE),
                                os.path.join(self.run_dir, "loss_curves.png"),
                                title=f"{self.config.name}: losses per epoch")
        self.log(f"Stage {self.stage} done. Loss curves: {plot}")
        return rows

    def _write_scalars(self, losses: dict):
        """Every loss of a step to TensorBoard at ``global_step``, in one compiled call
        (one eager ``tf.summary.scalar`` per loss cost ~0.2 ms each here)."""
        if self._scalar_writer is None:
            stage = self.stage

            @tf.function
            def write(values, step):
                for k, v in values.items():
                    tf.summary.scalar(f"stage{stage}/{k}", v, step=step)

            self._scalar_writer = write
        self._scalar_writer(losses, self.global_step)

    def _save(self, epoch: int) -> str:
        """Write a checkpoint at ``global_step``, only with finite weights and never over
        a checkpoint file this run did not write."""
        number = int(self.global_step)
        prefix = os.path.join(self.manager.directory, f"ckpt-{number}")
        if rd.checkpoint_files(prefix) and prefix not in self.manager.checkpoints:
            raise rd.CheckpointError(
                f"Not saving over {prefix}: its files exist but this run did not write "
                f"them ({', '.join(rd.checkpoint_files(prefix))}). Move them away and run "
                "the same command again.")
        nets = list(self.nets.as_dict().values()) + list(self._averaged_networks().values())
        variables = [v for net in nets for v in net.weights]
        variables += [v for opt in self.optimizers.values() for v in opt.variables]
        bad = [v.path for v in variables if v.dtype in ("float16", "bfloat16", "float32")
               and not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))))]
        if bad:
            raise NonFiniteLossError(
                f"Non-finite weights in stage {self.stage}, epoch {epoch + 1}, step "
                f"{int(self.step_in_epoch)}: {', '.join(bad[:5])}"
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "") + ". Nothing was "
                f"saved; the last good checkpoint is {self._last_good()}. Lower "
                "optimizer.learning_rate or check the data.")
        if not self.is_chief:  # every worker saves (collectively); only the chief keeps it
            self.manager.save(checkpoint_number=number)
            shutil.rmtree(self._worker_dir, ignore_errors=True)
            self.last_good = os.path.join(rd.ckpt_dir(self.run_dir, self.stage),
                                          f"ckpt-{number}")
            return self.last_good
        self.last_good = self.manager.save(checkpoint_number=number)
        return self.last_good

    def _last_good(self) -> str:
        # The checkpoint restored or written last: both passed the finite checks.
        return self.last_good or "none (none saved yet)"

    def _check_finite(self, values: dict, epoch: int):
        bad = {k: v for k, v in values.items() if not np.isfinite(v)}
        if bad:
            raise NonFiniteLossError(
                f"Non-finite loss in stage {self.stage}, epoch {epoch + 1}, step "
                f"{int(self.step_in_epoch) + 1}: {bad}. Nothing was saved after this step; the "
                f"last good checkpoint is {self._last_good()}."
                " Lower optimizer.learning_rate or check the data.")

    def _history_row(self, epoch, sums, count, seconds) -> dict:
        row = {"stage": self.stage, "epoch": epoch, "global_step": int(self.global_step),
               "seconds": round(seconds, 3)}
        row.update({k: sums[k] / max(count, 1) for k in self.step.keys if k in sums})
        if not self.is_chief:
            return row
        path = os.path.join(self.run_dir, rd.HISTORY_FILE)
        fields = ["stage", "epoch", "global_step", "seconds"] + HISTORY_LOSSES
        rows = []
        if os.path.exists(path):  # drop rows of epochs being redone after a resume
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f)
                        if not (int(r["stage"]) == self.stage and int(r["epoch"]) >= epoch)]
        rows.append(row)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields, restval="")
            w.writeheader()
            w.writerows(rows)
        return row

    # --- pictures ----------------------------------------------------------------------
    def sample_sheet(self) -> np.ndarray:
        """uint8 ``[R, C, S, S, 3]``: one row per expression at intensity 1, under a row
        of the input faces in stages 2/3 (stage 1 draws fixed prior samples instead)."""
        m = self.config.model
        cols = len(self.sample_images)
        if self.stage == 1:
            z = sample_latent_prior(tf.constant([self.config.training.seed, -1], tf.int64),
                                    cols, m.latent_dim)
            codes = [intensity_code(np.full(cols, e), np.ones(cols, np.float32),
                                    m.num_classes, m.intensity_dim)
                     for e in range(m.num_classes)]
            decoder = self.editing_networks()[1]
            return np.stack([to_display(decode(decoder, z, c)).numpy()
                             for c in codes])
        editor = ExpressionEditor.from_networks(self.config, *self.editing_networks())
        shown = to_display(preprocess_fn(self.config.preprocess)(self.sample_images)).numpy()
        return np.stack([shown] + [editor.edit(self.sample_images, e, 1.0)
                                   for e in range(m.num_classes)])

    def sample(self, epoch: int) -> str:
        """Write the sample grid of ``epoch`` as PNG and to TensorBoard (the chief only;
        another worker returns ``""``)."""
        if not self.is_chief:
            return ""
        sheet = self.sample_sheet()
        labels = (["input"] if self.stage > 1 else []) + list(EXPRESSIONS)
        grid = labelled_grid(sheet, row_labels=labels)
        path = save_png(grid, os.path.join(self.run_dir, rd.SAMPLES_DIR,
                                           f"stage{self.stage}_epoch{epoch:04d}.png"))
        tf.summary.image(f"stage{self.stage}/samples", grid[None], step=int(self.global_step))
        return path
