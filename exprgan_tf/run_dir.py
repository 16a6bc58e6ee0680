"""The layout of a training run directory, and loading the networks back from one.

A run directory holds everything needed to reproduce or reuse a run::

    <run_dir>/config.json      the resolved ExprGANConfig (ExprGANConfig.load reads it)
    <run_dir>/ckpt/stage<N>/   tf.train.CheckpointManager files of stage N; the checkpoint
                               object has the attributes encoder, decoder,
                               latent_discriminator, image_discriminator (+ optimisers
                               and the epoch/step counters that fix the RNG state)
    <run_dir>/samples/         sample grids (PNG)
    <run_dir>/logs/            TensorBoard event files
    <run_dir>/history.csv      per-epoch losses of every stage
    <run_dir>/loss_curves.png  the losses against the epoch

Example:
    >>> from exprgan_tf.run_dir import load_networks          # doctest: +SKIP
    >>> config, nets = load_networks("checkpoints/proposed-small")   # doctest: +SKIP
"""

from __future__ import annotations

import os

import tensorflow as tf

from exprgan_tf.config import ExprGANConfig

CONFIG_FILE = "config.json"
CKPT_DIR = "ckpt"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"
HISTORY_FILE = "history.csv"
NETWORK_NAMES = ("encoder", "decoder", "latent_discriminator", "image_discriminator")


def config_path(run_dir) -> str:
    return os.path.join(os.fspath(run_dir), CONFIG_FILE)


def ckpt_dir(run_dir, stage: int | None = None) -> str:
    base = os.path.join(os.fspath(run_dir), CKPT_DIR)
    return base if stage is None else os.path.join(base, f"stage{stage}")


def latest_checkpoint(run_dir, stage: int | None = None) -> str | None:
    """Path prefix of the newest checkpoint of ``stage`` in ``run_dir`` (``None``: of
    the highest stage that has one), or ``None`` when there is none."""
    stages = (stage,) if stage is not None else (3, 2, 1)
    for s in stages:
        prefix = tf.train.latest_checkpoint(ckpt_dir(run_dir, s))
        if prefix:
            return prefix
    return None


def load_config(run_dir) -> ExprGANConfig:
    path = config_path(run_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!s} is not a run directory: {path} does not exist. "
                                "A run directory is written by scripts/train.py.")
    return ExprGANConfig.load(path)


def load_networks(run_dir, names=("encoder", "decoder")):
    """Build the networks of a run from its config and restore their newest weights.

    Args:
        run_dir: a directory written by ``scripts/train.py``.
        names: which of :data:`NETWORK_NAMES` to build and restore.

    Returns:
        ``(config, networks)`` with ``networks`` a dict name -> ``keras.Model``.

    Raises:
        FileNotFoundError: no config or no checkpoint in ``run_dir``.
    """
    from exprgan_tf import models  # local: keeps this module light to import

    unknown = set(names) - set(NETWORK_NAMES)
    if unknown:
        raise ValueError(f"Unknown network names {sorted(unknown)}; known: {list(NETWORK_NAMES)}")
    config = load_config(run_dir)
    prefix = latest_checkpoint(run_dir)
    if prefix is None:
        raise FileNotFoundError(f"No checkpoint in {ckpt_dir(run_dir)}: train first "
                                "(python scripts/train.py --stage 1 ...).")
    all_nets = models.build_networks(config.model).as_dict()
    nets = {n: all_nets[n] for n in names}
    tf.train.Checkpoint(**nets).restore(prefix).expect_partial().assert_existing_objects_matched()
    return config, nets
