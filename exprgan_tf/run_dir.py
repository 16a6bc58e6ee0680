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
    <run_dir>/train.lock       who trains here now (PID and host; see RunDirLock)

Checkpoints are found from their files, not only from the ``checkpoint`` state file
that ``tf.train.CheckpointManager`` keeps: a lost state file hides nothing. A checkpoint
that cannot be read (a truncated ``.data`` file, a corrupt ``.index``) or holds NaN/Inf
is skipped with a :class:`CheckpointWarning` naming it, and the newest good one is used.

Example:
    >>> from exprgan_tf.run_dir import load_networks          # doctest: +SKIP
    >>> config, nets = load_networks("checkpoints/proposed-small")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import warnings

import numpy as np
import tensorflow as tf

from exprgan_tf.config import ExprGANConfig

CONFIG_FILE = "config.json"
CKPT_DIR = "ckpt"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"
HISTORY_FILE = "history.csv"
LOCK_FILE = "train.lock"
NETWORK_NAMES = ("encoder", "decoder", "latent_discriminator", "image_discriminator")


def config_path(run_dir) -> str:
    return os.path.join(os.fspath(run_dir), CONFIG_FILE)


def ckpt_dir(run_dir, stage: int | None = None) -> str:
    base = os.path.join(os.fspath(run_dir), CKPT_DIR)
    return base if stage is None else os.path.join(base, f"stage{stage}")


class CheckpointError(ValueError):
    """A checkpoint cannot be used: its files do not read, or it holds NaN/Inf."""


class CheckpointWarning(UserWarning):
    """A newer checkpoint was skipped because it cannot be used."""


_CKPT_INDEX = re.compile(r"^(.+)-(\d+)\.index$")


def checkpoints_on_disk(directory) -> list[str]:
    """Path prefixes of the checkpoints in ``directory``, newest (highest number) first,
    found from their ``.index`` files."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        m = _CKPT_INDEX.match(name)
        if m:
            found.append((int(m.group(2)), os.path.join(directory, m.group(1) + "-" + m.group(2))))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def checkpoint_files(prefix) -> list[str]:
    """The files a checkpoint ``prefix`` consists of (``.index`` and ``.data-*``)."""
    directory, base = os.path.split(os.fspath(prefix))
    if not os.path.isdir(directory or "."):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory or ".")
                  if n == base + ".index" or n.startswith(base + ".data-"))


def check_checkpoint(prefix) -> None:
    """Read every tensor of a checkpoint; raise if one does not read or is not finite.

    Raises:
        CheckpointError: naming the file (or the tensor) at fault.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in sorted(reader.get_variable_to_shape_map()):
            value = reader.get_tensor(name)
            if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.all(np.isfinite(value)):
                bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
                raise CheckpointError(f"{prefix}: tensor {name} holds {bad} NaN/Inf value(s)")
    except (tf.errors.OpError, IndexError, OSError) as e:
        files = ", ".join(checkpoint_files(prefix)) or f"{prefix}.*"
        raise CheckpointError(f"{prefix} cannot be read ({files}): {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from None


def newest_good_checkpoint(directory, warn=None) -> str | None:
    """The newest checkpoint in ``directory`` that reads and holds only finite values.

    Newer checkpoints that fail :func:`check_checkpoint` are skipped, each reported with
    ``warn(message)`` (default: a :class:`CheckpointWarning`).

    Returns:
        Its path prefix, or ``None`` when ``directory`` holds no checkpoint at all.

    Raises:
        CheckpointError: there are checkpoints, but none of them is good.
    """
    if warn is None:
        def warn(message):
            warnings.warn(message, CheckpointWarning, stacklevel=3)
    prefixes = checkpoints_on_disk(directory)
    problems = []
    for prefix in prefixes:
        try:
            check_checkpoint(prefix)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        for problem in problems:
            warn(f"Skipped a checkpoint: {problem}. Using the older {prefix}.")
        return prefix
    if problems:
        raise CheckpointError(f"No usable checkpoint in {os.fspath(directory)}: "
                              + "; ".join(problems) + ". Move these files away to start "
                              "this stage afresh, or restore them from a backup.")
    return None


def latest_checkpoint(run_dir, stage: int | None = None, warn=None) -> str | None:
    """Path prefix of the newest good checkpoint of ``stage`` in ``run_dir`` (``None``:
    of the highest stage that has one), or ``None`` when there is none.

    See :func:`newest_good_checkpoint` for what "good" means and for ``warn``."""
    stages = (stage,) if stage is not None else (3, 2, 1)
    for s in stages:
        prefix = newest_good_checkpoint(ckpt_dir(run_dir, s), warn=warn)
        if prefix:
            return prefix
    return None


class RunDirBusyError(RuntimeError):
    """Another live process is training in this run directory."""


class RunDirLock:
    """An exclusive lock on a run directory, held while a process trains in it.

    The lock is ``fcntl.flock`` on ``<run_dir>/train.lock``, which holds the PID, host
    and start time of its holder. The operating system drops the lock when its process
    ends, however it ends (kill -9 included), so a lock left by a dead process is taken
    over; its file then still names that process, and the take-over says so. One
    process may lock the same run directory more than once (e.g. stage after stage).

    Raises:
        RunDirBusyError: another live process holds the lock.
        ValueError: ``run_dir`` is a file.
    """

    _held = {}  # path -> open file, for the locks this process holds

    def __init__(self, run_dir, warn=None):
        self.path = os.path.join(os.fspath(run_dir), LOCK_FILE)
        self.warn = warn or (lambda m: warnings.warn(m, RuntimeWarning, stacklevel=3))

    def acquire(self) -> "RunDirLock":
        run_dir = os.path.dirname(self.path)
        if os.path.exists(run_dir) and not os.path.isdir(run_dir):
            raise ValueError(f"The run directory {run_dir} is a file; give a new or an "
                             "existing directory (--run-dir).")
        os.makedirs(run_dir, exist_ok=True)
        key = os.path.realpath(self.path)
        if key in self._held:
            return self
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (documented in the README)
            return self
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise RunDirBusyError(
                f"{os.path.dirname(self.path)} is in use by another training process "
                f"({_describe(holder)}). Wait for it to finish, stop it, or use another "
                "--run-dir; two trainers in one run directory overwrite each other's "
                "checkpoints.") from None
        f.seek(0)
        previous = f.read().strip()
        if previous:
            self.warn(f"Took over {self.path}: it was left by {_describe(previous)}, "
                      "which is no longer running (it did not stop cleanly).")
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        f.flush()
        self._held[key] = f
        return self

    def release(self) -> None:
        f = self._held.pop(os.path.realpath(self.path), None)
        if f is not None:
            f.seek(0)
            f.truncate()  # an empty file: released cleanly
            f.close()  # closing drops the flock

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"PID {info['pid']} on host {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that did not say who it is"


def load_config(run_dir) -> ExprGANConfig:
    path = config_path(run_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!s} is not a run directory: {path} does not exist. "
                                "A run directory is written by scripts/train.py.")
    return ExprGANConfig.load(path)


def has_average(prefix) -> bool:
    """Whether the checkpoint ``prefix`` holds a weight average of E and G
    (``training.ema_momentum``, :mod:`exprgan_tf.training.averaging`)."""
    from exprgan_tf.training.averaging import AVERAGED, SUFFIX

    names = {key.split("/")[0] for key, _ in tf.train.list_variables(prefix)}
    return all(n + SUFFIX in names for n in AVERAGED)


def load_networks(run_dir, names=("encoder", "decoder"), averaged=True):
    """Build the networks of a run from its config and restore their newest weights.

    Args:
        run_dir: a directory written by ``scripts/train.py``.
        names: which of :data:`NETWORK_NAMES` to build and restore.
        averaged: give the encoder and decoder the weight average of the checkpoint
            when it has one (``training.ema_momentum``); ``False``: the trained weights.

    Returns:
        ``(config, networks)`` with ``networks`` a dict name -> ``keras.Model``.

    Raises:
        FileNotFoundError: no config or no checkpoint in ``run_dir``.
        CheckpointError: the checkpoints of the newest stage are all unusable (a
            newer unusable one is skipped with a :class:`CheckpointWarning`).
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
    stored = dict(nets)
    if averaged and has_average(prefix):
        from exprgan_tf.training.averaging import AVERAGED, SUFFIX
        stored = {(n + SUFFIX if n in AVERAGED else n): net for n, net in nets.items()}
    tf.train.Checkpoint(**stored).restore(prefix).expect_partial() \
        .assert_existing_objects_matched()
    return config, nets
