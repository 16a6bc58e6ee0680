"""Train one stage of ExprGAN / the paper's model.

The three stages run in order in one run directory; each starts from what the
previous one saved there, and a stopped stage resumes where it stopped:

    python scripts/train.py --stage 1          # controller: G from the prior + D_img/Q
    python scripts/train.py --stage 2          # E+G reconstruction (L1 + L_id + L_Q)
    python scripts/train.py --stage 3          # everything, adversarial + TV terms on

Defaults: the ``proposed-small`` preset (64x64, CPU-sized), the built-in face set
generated in memory, run directory ``checkpoints/<preset>``. Any config value can be
set with ``--set key.path=value`` (see ``exprgan_tf/config.py``); ``--config FILE``
starts from a saved config instead of a preset.

Ctrl-C saves a checkpoint and stops with exit status 130; run the same command to
resume. A second Ctrl-C before the save stops at once, says which checkpoint is the
newest, and also exits 130. Exit status: 0 done (or stopped by --max-steps), 1 training failed (NaN/Inf,
the run directory is in use by another trainer, a worker of the cluster died), 2 bad arguments or unusable
checkpoints, 130 stopped by Ctrl-C / SIGTERM (after saving, unless
interrupted twice).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--stage", type=int, choices=(1, 2, 3), required=True,
                   help="training stage (1 controller, 2 E+G reconstruction, 3 full)")
    p.add_argument("--preset", default=None,
                   help="config preset (default proposed-small; see exprgan_tf.config.PRESETS)")
    p.add_argument("--config", default=None, help="a config JSON file instead of a preset")
    p.add_argument("--data", default=None,
                   help="dataset folder (Oulu-CASIA or generic layout); default: the "
                        "built-in face set generated in memory")
    p.add_argument("--cache-mb", type=float, default=None, metavar="MB",
                   help="keep the pre-processed training images in memory when they take "
                        "at most this many MiB (default 2048); above it every batch reads "
                        "its files again (any dataset size; the log says which)")
    p.add_argument("--run-dir", default=None, help="run directory (default checkpoints/<name>)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of this stage")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop (and save) after this many steps; rerun to continue")
    p.add_argument("--strategy", default="auto",
                   choices=("auto", "default", "mirrored", "multiworker"),
                   help="tf.distribute strategy (auto: MirroredStrategy on several GPUs)")
    p.add_argument("--cpu-replicas", type=int, default=None, metavar="N",
                   help="split the CPU into N logical devices, so --strategy mirrored "
                        "runs N replicas on a machine without GPUs (for tests and "
                        "trying the distributed path; it is not faster)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a config value, e.g. "
                   "--set optimizer.learning_rate=2e-4 (repeatable)")
    return p.parse_args(argv)


def _strategy(kind: str, cpu_replicas: int | None):
    """The strategy of ``--strategy``, after splitting the CPU into ``cpu_replicas``
    logical devices (this has to happen before TensorFlow initialises its devices)."""
    import tensorflow as tf

    from exprgan_tf.training import make_strategy

    if cpu_replicas is not None:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    return make_strategy(kind)


def data_on_disk_fallbacks(config, log=print):
    """``config`` with the settings only the built-in set can serve turned off, each
    with a note: partners rendered at chosen intensities (and poses) become the
    training faces at intensity 1, codes at the face's own intensity the original's
    sampled codes, and no extra built-in subjects join the training split.

    Example:
        >>> from exprgan_tf.config import get_preset
        >>> cfg = get_preset("proposed-small")   # partners at 0-1 in the input's pose
        >>> t = data_on_disk_fallbacks(cfg, log=lambda *a, **k: None).training
        >>> t.pair_intensities, t.pair_pose, t.pair_change, t.codes
        ((), 'clean', 0.0, 'sampled')
    """
    t = config.training
    staged = [f"training.stage{n}.{k}=null" for n in (1, 2, 3)
              for k in ("pair_intensities", "pair_shares")
              if getattr(t.stage(n), k) is not None]
    if t.pair_intensities or staged:
        levels = sorted({x for n in (2, 3) for x in t.at_stage(n).pair_intensities})
        log(f"note: training.pair_intensities={levels} (pair_pose="
            f"{t.pair_pose}) needs the built-in set's renders; with --data the paired term "
            "pairs your training faces at intensity 1 (training.pair_intensities=[], "
            "training.pair_change=0).", flush=True)
        config = config.override(["training.pair_intensities=[]", "training.pair_shares=[]",
                                  "training.pair_pose=clean", "training.pair_change=0",
                                  *staged])
    if t.codes == "intensity":
        log("note: training.codes=intensity needs the built-in set's known intensities; "
            "with --data the faces are coded as the original does "
            "(training.codes=sampled; training.dimg_min_intensity and "
            "training.pair_min_intensity, which need it, 0).", flush=True)
        config = config.override(["training.codes=sampled", "training.dimg_min_intensity=0",
                                  "training.pair_min_intensity=0"])
    if t.extra_subjects:
        log(f"note: training.extra_subjects={t.extra_subjects} draws more people of the "
            "built-in set; with --data training uses the people of your data "
            "(training.extra_subjects=0).", flush=True)
        config = config.override(["training.extra_subjects=0"])
    return config


def partner_summary(count: int, t) -> str:
    """The line that says where the paired term's ``count`` rendered partners come from
    (``t``: the training config).

    Example:
        >>> from exprgan_tf.config import TrainingConfig
        >>> print(partner_summary(12960, TrainingConfig(
        ...     pair_intensities=(0.0, 1.0), pair_pose="input", pair_shares=(1, 9))))
        Paired term: 12960 rendered partners (each training face's subject in the other expressions, in that face's pose, at intensities 0, 1, drawn 10% at 0, 90% at 1).
    """
    whose = ("each training face's subject in the other expressions, in that face's pose"
             if t.pair_pose == "input" else "each training subject in every expression, centred")
    levels = ", ".join(f"{float(x):g}" for x in t.pair_intensities)
    shares = ""
    if t.pair_shares:
        total = float(sum(t.pair_shares))
        shares = ", drawn " + ", ".join(f"{w / total:.0%} at {float(x):g}"
                                        for x, w in zip(t.pair_intensities, t.pair_shares))
    return (f"Paired term: {count} rendered partners ({whose}, at "
            f"intensit{'y' if len(t.pair_intensities) == 1 else 'ies'} {levels}{shares}).")


def main(argv=None) -> int:
    args = parse_args(argv)
    from exprgan_tf.config import ExprGANConfig, get_preset

    if args.config and args.preset:
        print("error: give --config or --preset, not both", file=sys.stderr)
        return 2
    try:
        config = (ExprGANConfig.load(args.config) if args.config
                  else get_preset(args.preset or "proposed-small"))
        overrides = list(args.overrides)
        if args.epochs is not None:
            overrides.append(f"training.stage{args.stage}.epochs={args.epochs}")
        if args.batch_size is not None:
            overrides.append(f"training.stage{args.stage}.batch_size={args.batch_size}")
        config = config.override(overrides) if overrides else config
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or os.path.join("checkpoints", config.name)
    if args.cache_mb is not None and not args.cache_mb >= 0:
        print(f"error: --cache-mb must be >= 0 (0 streams every batch from the files). "
              f"Received: {args.cache_mb}", file=sys.stderr)
        return 2
    if args.cpu_replicas is not None and args.cpu_replicas < 1:
        print(f"error: --cpu-replicas must be at least 1. Received: {args.cpu_replicas}",
              file=sys.stderr)
        return 2
    if args.cpu_replicas is not None and args.strategy not in ("mirrored", "multiworker"):
        print(f"error: --cpu-replicas {args.cpu_replicas} splits the CPU for --strategy "
              f"mirrored or multiworker; --strategy {args.strategy} would use one device.",
              file=sys.stderr)
        return 2
    try:  # devices and the cluster are fixed before TensorFlow runs its first op
        strategy = _strategy(args.strategy, args.cpu_replicas)
    except (ValueError, RuntimeError) as e:
        print(f"error: --strategy {args.strategy}: {e}", file=sys.stderr)
        return 2

    from exprgan_tf import data
    from exprgan_tf.run_dir import RunDirBusyError, RunDirLock

    try:  # before loading data: a busy or impossible run directory refuses at once
        if args.strategy != "multiworker":  # there the Trainer locks on the chief only
            RunDirLock(run_dir).acquire()
    except RunDirBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"error: cannot use the run directory {run_dir}: {e}", file=sys.stderr)
        return 2
    import tensorflow as tf

    from exprgan_tf.training import NonFiniteLossError, Trainer

    if args.data:
        config = data_on_disk_fallbacks(config)
    if config.training.precision == "mixed_bfloat16":
        from exprgan_tf import cpu

        note = cpu.mixed_bfloat16_note(onednn=cpu.onednn_enabled())
        if note:  # measured slower than float32 there (README, "Performance")
            print(note, flush=True)
    size = config.model.image_size
    frames = config.training.frames
    where = args.data or "the built-in face set"
    span = ("" if frames == 3 else
            f", {frames} frames per sequence" + ("" if args.data else
                                                 " from neutral to peak" if frames > 3
                                                 else " at the peak"))
    print(f"Loading {where} at {size}x{size}{span} ...", flush=True)
    t0 = time.time()
    try:
        # file paths for --data (the Trainer decodes them once or streams them)
        images, labels, subjects, inputs = data.training_data(config, args.stage, args.data)
        if args.data:
            test_paths, _, test_subjects = data.list_split(args.data, "test")
            num_test = len(test_paths)
            # one face per held-out subject for the sample grids
            first = sorted({s: i for i, s in reversed(list(enumerate(test_subjects)))}
                           .values())[:8]
            sample_images = np.stack([data.readers.load_image(p, size)
                                      for p in test_paths[first]])
        else:
            test_images, _, test_subjects = data.load_split(None, "test", size)
            num_test = len(test_images)
            first = sorted({s: i for i, s in reversed(list(enumerate(test_subjects)))}
                           .values())
            sample_images = test_images[first][:8]
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(images)} training and {num_test} test images "
          f"({time.time() - t0:.1f} s).", flush=True)
    if inputs["pair_pool"] is not None:
        print(partner_summary(len(inputs["pair_pool"]["images"]),
                              config.training.at_stage(args.stage)), flush=True)
    cache = {} if args.cache_mb is None else {"cache_bytes": int(args.cache_mb * 2**20)}

    trainer = None
    try:
        trainer = Trainer(config, run_dir, args.stage, images, labels,
                          sample_images=sample_images, strategy=strategy,
                          **inputs, **cache)
        trainer.fit(max_steps=args.max_steps)
    except (NonFiniteLossError, RunDirBusyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (tf.errors.UnavailableError, tf.errors.CancelledError) as e:
        if args.strategy != "multiworker":
            raise
        # A worker died: the collectives of the others are aborted (heartbeats stop).
        print(f"error: the cluster lost a worker ({str(e).splitlines()[0][:300]}). Run the "
              "same command again on every worker: they resume from the chief's last "
              "checkpoint.", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: nothing saved since the newest checkpoint
        from exprgan_tf.run_dir import latest_checkpoint

        saved = latest_checkpoint(run_dir, args.stage)
        where = (f"the newest checkpoint of stage {args.stage} is {saved}; run the same "
                 "command to resume from it" if saved else
                 f"stage {args.stage} has no checkpoint yet; the same command starts it again")
        print(f"\nStopped without saving (a second interrupt): {where}.", file=sys.stderr,
              flush=True)
        return 130
    finally:
        if trainer is not None:
            trainer.close()
    if trainer.interrupted:  # saved; a non-zero status tells scripts it did not finish
        return 130
    print(f"Run directory: {run_dir} (config.json, ckpt/, samples/, logs/, history.csv). "
          f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
