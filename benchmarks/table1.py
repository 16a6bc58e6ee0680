#!/usr/bin/env python
"""Table I, reproduced: ExprGAN, the proposed model without and with the unsharp mask,
one recipe, one budget, several seeds; the paper's metrics plus ground truth; a verdict.

1. **Train** ``exprgan-small``, ``proposed_no_unsharp-small`` and ``proposed-small`` on
   the built-in face set, each with every seed of ``--seeds``, with the same recipe:
   the ``-small`` presets' own training settings (paired term, stage losses, batch 16,
   lr 2e-4), the same epochs per stage for all (``--epochs S1 S2 S3``, default the
   presets' own 1 / 12 / 45), the identity loss off for all (``--identity``), and any
   ``--set`` for all alike. Every stage is a ``python -m exprgan_tf.cli.train --stage N
   --run-dir <runs>/<preset>_seed<seed> ...`` subprocess (the code path of
   ``scripts/train.py``), ``--jobs`` of them side by side; its output goes to
   ``<run dir>/table1_stage<N>.log``.
2. **Score** each run on the 8 held-out subjects with
   :func:`exprgan_tf.evaluation.learning.learning_report` (as ``benchmarks/
   train_learning.py --score-only`` does): the judge's expression accuracy per class,
   PCA eigenfaces (the paper's 6 x 6 protocol), nearest-true-target identity (pixels,
   dlib), dlib same person, L1 / SSIM to the true target, intensity Spearman, each
   beside its input-unchanged baseline; plus FID (ImageNet InceptionV3,
   :mod:`exprgan_tf.evaluation.fid`; ``--fid-weights FILE``, or Keras's download where
   the internet is reachable; ``--no-fid`` offline) and the Fréchet distance over dlib
   descriptors ("FD, dlib descriptors" - not FID), edits against the real training
   faces. Scores are cached per run in ``<run dir>/table1_scores.json``.
3. **Write** ``<out>/table1.md`` (+ ``.json``, ``.csv``): every measure as mean and range
   over the seeds, the input-unchanged baseline, the paper's values, training and wall
   time per model, a verdict computed from the numbers
   (:mod:`exprgan_tf.evaluation.comparison`), and Fig. 6 / 7 / 8 in ``<out>/table1/``.

**Resumable.** Run the same command again after it stopped or was killed: finished
stages are skipped (from each run's ``history.csv``), a stage stopped mid-way resumes
from its last checkpoint (the trainer resumes exactly), scored runs are not scored
again. Ctrl-C / SIGTERM: the running stages save a checkpoint and stop (a second one
aborts them without saving). A run directory trained with another budget is refused
(``<run dir>/table1_run.json`` records it).

**Budget (from measured step times).** The presets' own epochs are 1 / 12 / 45 (81 +
972 + 3645 = 4698 steps of batch 16). Two ``proposed-small`` runs of that recipe side
by side on the 2-core machine took 1 + 18.3 + 69.0 and 1 + 15.4 + 68.1 min of wall time
(``benchmarks/results/recipe/README.md``, report 182; the face-hole G's step is slower
than the plain G's). ``exprgan-small``'s step is 0.82-0.90x ``proposed-small``'s
(``benchmarks/results/speed/train_speed_small_recipe.md``, plain G), the no-unsharp
model's is ``proposed-small``'s (same networks; the mask is pre-processing). So with
``--jobs 2`` (the two seeds of a preset side by side) a preset takes about 85-90 min
and the three presets about 4.5 hours, more than one 3-hour session on these machines
(run directories are not kept between sessions). ``--epochs 1 12 20`` (2673 steps) is
the budget of ``benchmarks/results/table1.md`` (2026-12-01, the presets of that day:
138 min for the whole command, scoring included); with the presets of today's recipe
it should take about 2.5 hours (estimated from the step times above, not run), inside a
session, at the cost of training less than the
shipped recipe. Scoring adds the learning report (22-38 s per run measured, x 6), the
dlib descriptors of the 1296 training faces once, and with ImageNet weights about
7,300 InceptionV3 passes at 299x299 (estimated, not measured: 5-10 min).

Examples:
    # the full table (offline: no ImageNet weights can be downloaded here)
    python benchmarks/table1.py --seeds 2018 2019 --no-fid
    # a smoke test of the whole pipeline in minutes (not a result)
    python benchmarks/table1.py --presets proposed-small --seeds 2018 --epochs 1 1 1 \\
        --max-steps 2 --runs /tmp/t1runs --out /tmp/t1out --no-fid
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
from _results import run_header  # noqa: E402
from train_learning import config_overrides, history_summary  # noqa: E402

PRESETS = ("exprgan-small", "proposed_no_unsharp-small", "proposed-small")
SEEDS = (2018, 2019)
SHORT = {"exprgan-small": "ExprGAN", "proposed_no_unsharp-small": "no unsharp",
         "proposed-small": "proposed"}
RUN_FILE = "table1_run.json"       # per run dir: the budget, each stage's status and wall time
SCORE_FILE = "table1_scores.json"  # per run dir: the cached scores
FIGURES = "table1"                 # folder of the figures, beside table1.md


def log(msg):
    print(msg, flush=True)


# --- the budget and which stages still need training ----------------------------------
class BudgetError(ValueError):
    """A run directory holds a run of another budget (or an inconsistent one)."""


def default_epochs() -> list:
    """The ``-small`` presets' own epochs per stage (they share one schedule)."""
    from exprgan_tf.config import get_preset

    schedules = {tuple(get_preset(p).training.stage(s).epochs for s in (1, 2, 3))
                 for p in PRESETS}
    if len(schedules) != 1:
        raise RuntimeError(f"the -small presets disagree on their epochs: {schedules}")
    return list(schedules.pop())


def make_budget(epochs, max_steps=None, identity="none", overrides=()) -> dict:
    """What every run of the table shares (saved in each run's :data:`RUN_FILE`)."""
    return {"epochs": [int(e) for e in epochs], "max_steps": max_steps,
            "identity": identity, "overrides": list(overrides)}


def run_dir_of(runs, preset, seed) -> str:
    return os.path.join(runs, f"{preset}_seed{seed}")


def read_json(path) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, data) -> None:
    """Write ``data`` as JSON atomically (a killed writer leaves the old file)."""
    tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def stages_to_train(run_dir, budget, preset=None, seed=None) -> list:
    """The stages of ``run_dir`` still to train for ``budget``, in order.

    A stage is finished when its ``history.csv`` holds the budget's epochs (with
    ``max_steps``, a smoke budget that stops inside the first epoch: when
    :data:`RUN_FILE` says its command finished). A stage stopped mid-way is not
    finished; training it again resumes from its checkpoint.

    Raises:
        BudgetError: the run was trained with another budget, preset, seed or identity
            network, has more epochs than the budget, or has a finished stage after an
            unfinished one.
    """
    info = read_json(os.path.join(run_dir, RUN_FILE))
    if info.get("budget") not in (None, budget):
        raise BudgetError(f"{run_dir} was trained with the budget {info['budget']}, not "
                          f"{budget}: give another --runs folder (or delete {run_dir}) so "
                          "that every model of the table has the same budget.")
    config = read_json(os.path.join(run_dir, "config.json"))
    if config:
        seen = {"preset": config.get("name"),
                "seed": config.get("training", {}).get("seed"),
                "identity": config.get("identity", {}).get("network")}
        wanted = {"preset": preset, "seed": seed, "identity": budget["identity"]}
        wrong = [f"{k} {seen[k]!r}, not {v!r}" for k, v in wanted.items()
                 if v is not None and seen[k] != v]
        if wrong:
            raise BudgetError(f"{run_dir} holds another run ({'; '.join(wrong)}): give "
                              "another --runs folder or delete it.")
    history = history_summary(run_dir)
    done = []
    for stage, epochs in zip((1, 2, 3), budget["epochs"]):
        have = history.get(f"stage{stage}", {}).get("epochs", 0)
        if have > epochs:
            raise BudgetError(f"{run_dir} has {have} epochs of stage {stage}, more than the "
                              f"budget's {epochs}: give another --runs folder.")
        if budget.get("max_steps"):
            done.append(bool(info.get("stages", {}).get(str(stage), {}).get("done")))
        else:
            done.append(have >= epochs)
    for stage in (2, 3):
        if done[stage - 1] and not done[stage - 2]:
            raise BudgetError(f"{run_dir}: stage {stage} is finished but stage {stage - 1} "
                              "is not; give another --runs folder or delete it.")
    return [stage for stage, d in zip((1, 2, 3), done) if not d]


def plan(runs_root, presets, seeds, budget) -> dict:
    """``{(preset, seed): stages still to train}`` of every run of the table (see
    :func:`stages_to_train`; raises its :class:`BudgetError`)."""
    return {(p, s): stages_to_train(run_dir_of(runs_root, p, s), budget, p, s)
            for p in presets for s in seeds}


def train_command(preset, seed, stage, run_dir, budget) -> list:
    """The ``exprgan_tf.cli.train`` command of one stage of one run."""
    cmd = [sys.executable, "-m", "exprgan_tf.cli.train", "--stage", str(stage),
           "--preset", preset, "--run-dir", run_dir,
           "--epochs", str(budget["epochs"][stage - 1]),
           "--set", f"training.seed={seed}", "--set", f"identity.network={budget['identity']}"]
    for item in budget["overrides"]:
        cmd += ["--set", item]
    if budget.get("max_steps"):
        cmd += ["--max-steps", str(budget["max_steps"])]
    return cmd


def run_times(run_dir) -> dict:
    """``train_seconds`` (the epochs' step time in ``history.csv``) and ``wall_seconds``
    (the training commands' wall time, start-up included, from :data:`RUN_FILE`)."""
    history = history_summary(run_dir)
    info = read_json(os.path.join(run_dir, RUN_FILE))
    wall = [s.get("wall_seconds", 0.0) for s in info.get("stages", {}).values()]
    return {"train_seconds": round(sum(s["seconds"] for s in history.values()), 1)
            if history else None,
            "wall_seconds": round(sum(wall), 1) if wall else None,
            "stages": history}


class TrainingQueue:
    """Runs the training commands, ``jobs`` at a time, and relays a stop to them."""

    def __init__(self, budget, runs, jobs):
        self.budget, self.runs, self.jobs = budget, runs, jobs
        self.stop = threading.Event()
        self.children = {}
        self.lock = threading.Lock()

    def request_stop(self, signum, frame):
        """SIGINT/SIGTERM: every running stage gets one SIGTERM per signal (the first
        saves a checkpoint and stops; a second aborts), no new stage starts. The
        children run in their own sessions, so a terminal's Ctrl-C reaches them only
        through here, once."""
        self.stop.set()
        log(f"\n{signal.Signals(signum).name}: asking {len(self.children)} training "
            "command(s) to save and stop; run the same command again to continue.")
        with self.lock:
            for proc in self.children.values():
                proc.send_signal(signal.SIGTERM)

    def _run(self, cmd, log_path):
        """Exit status of ``cmd`` (output appended to ``log_path``); ``None`` when a stop
        came first and it was not started."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
        with open(log_path, "a", encoding="utf-8") as out:
            out.write(f"\n$ {shlex.join(cmd)}\n")
            out.flush()
            with self.lock:
                if self.stop.is_set():
                    return None
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                        cwd=ROOT, start_new_session=True)
                self.children[proc.pid] = proc
            try:
                return proc.wait()
            finally:
                with self.lock:
                    self.children.pop(proc.pid, None)

    def train_run(self, preset, seed) -> str:
        """Train the unfinished stages of one run; ``"done"``, ``"stopped"`` or what failed."""
        run_dir = run_dir_of(self.runs, preset, seed)
        os.makedirs(run_dir, exist_ok=True)
        todo = stages_to_train(run_dir, self.budget, preset, seed)
        info_path = os.path.join(run_dir, RUN_FILE)
        info = read_json(info_path)
        info.update(preset=preset, seed=seed, budget=self.budget)
        info.setdefault("stages", {})
        write_json(info_path, info)
        if not todo:
            log(f"  {preset} seed {seed}: trained ({run_dir})")
        for stage in todo:
            if self.stop.is_set():
                return "stopped"
            cmd = train_command(preset, seed, stage, run_dir, self.budget)
            log_path = os.path.join(run_dir, f"table1_stage{stage}.log")
            log(f"  {preset} seed {seed}: stage {stage} ({log_path})")
            t0 = time.time()
            rc = self._run(cmd, log_path)
            if rc is None:
                return "stopped"
            seconds = time.time() - t0
            st = info["stages"].setdefault(str(stage), {"wall_seconds": 0.0, "commands": 0,
                                                        "done": False})
            st["wall_seconds"] = round(st["wall_seconds"] + seconds, 1)
            st["commands"] += 1
            st["last_exit_status"] = rc
            st["done"] = rc == 0
            write_json(info_path, info)
            log(f"  {preset} seed {seed}: stage {stage} exit {rc} after {seconds / 60:.1f} min")
            if rc == 130 or (rc != 0 and self.stop.is_set()):  # saved, or killed in start-up
                return "stopped"
            if rc != 0:
                return f"stage {stage} failed with exit status {rc} (see {log_path})"
        return "done"

    def train_all(self, runs) -> dict:
        """Train every ``(preset, seed)`` of ``runs``; ``{(preset, seed): status}``."""
        old = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
                futures = {pool.submit(self.train_run, p, s): (p, s) for p, s in runs}
                pending = set(futures)
                while pending:   # a timeout, so that the main thread sees the signals
                    _, pending = concurrent.futures.wait(pending, timeout=1.0)
            status = {}
            for fut, key in futures.items():
                try:
                    status[key] = fut.result()
                except BudgetError as e:
                    status[key] = f"refused: {e}"
            return status
        finally:
            for s, h in old.items():
                signal.signal(s, h)


# --- scoring ---------------------------------------------------------------------------
class Scorer:
    """Scores runs with the learning report, FID and the FD over dlib descriptors,
    caching each part in the run's :data:`SCORE_FILE` (keyed by the checkpoint scored
    and the scoring settings)."""

    def __init__(self, size, judge_path=None, dlib_weights=None, fid_weights=None,
                 fid_reason=""):
        from exprgan_tf.evaluation import learning
        from exprgan_tf.evaluation.classifier import default_judge_path

        self.size = size
        self.judge_path = os.path.abspath(judge_path or default_judge_path(size))
        self.fid_weights, self.fid_reason = fid_weights, fid_reason
        self.descriptor = learning.dlib_descriptor(dlib_weights)
        self._judge = self._heldout = self._extractor = None
        self._fid_ref = self._fid_input = self._dlib_ref = None

    # lazily: a fully cached table needs none of these
    @property
    def heldout(self):
        if self._heldout is None:
            from exprgan_tf.evaluation import learning
            log("Rendering the held-out set ...")
            self._heldout = learning.heldout_set(self.size)
        return self._heldout

    @property
    def judge(self):
        if self._judge is None:
            from exprgan_tf.evaluation.classifier import load_or_train_judge
            self._judge = load_or_train_judge(self.size, self.judge_path)
        return self._judge

    def _train_faces(self):
        from exprgan_tf import data
        return data.load_split(None, "train", self.size)[0]

    def keys(self, checkpoint) -> dict:
        judge_bytes = os.path.getsize(self.judge_path) if os.path.isfile(self.judge_path) else None
        return {"learning": {"checkpoint": checkpoint, "judge": self.judge_path,
                             "judge_bytes": judge_bytes, "dlib": self.descriptor is not None},
                "fid": {"checkpoint": checkpoint, "weights": self.fid_weights},
                "fd_dlib": {"checkpoint": checkpoint}}

    def fid(self, edits, inputs) -> dict:
        from exprgan_tf.evaluation import fid as fid_mod

        if self._extractor is None:
            self._extractor = fid_mod.inception_feature_extractor(self.fid_weights)
            log("FID: InceptionV3 features of the real training faces ...")
            self._fid_ref = fid_mod.inception_features(self._extractor, self._train_faces())
            self._fid_input = fid_mod.fid_from_features(
                self._fid_ref, fid_mod.inception_features(self._extractor, inputs))
        feats = fid_mod.inception_features(self._extractor, edits)
        return {"edits": fid_mod.fid_from_features(self._fid_ref, feats),
                "input_unchanged": self._fid_input, "weights": self.fid_weights,
                "reference": "the real training faces"}

    def fd_dlib(self, d_edits, d_inputs) -> dict:
        from exprgan_tf.evaluation import fid as fid_mod
        from exprgan_tf.evaluation import scores

        if self._dlib_ref is None:
            log("FD: dlib descriptors of the real training faces ...")
            self._dlib_ref = scores.describe_faces(self.descriptor, self._train_faces())
        return {"edits": fid_mod.fid_from_features(self._dlib_ref, d_edits),
                "input_unchanged": fid_mod.fid_from_features(self._dlib_ref, d_inputs),
                "reference": "the real training faces"}

    def score(self, run_dir) -> dict:
        """The run's cached scores, computing the parts that are missing or stale:
        ``{"checkpoint", "learning": {"key", "report"}, "fid": {...}, "fd_dlib": {...}}``."""
        from exprgan_tf import run_dir as rd
        from exprgan_tf.evaluation import learning, protocol
        from exprgan_tf.evaluation import scores

        prefix = rd.latest_checkpoint(run_dir)
        if prefix is None:
            raise FileNotFoundError(f"{run_dir} has no checkpoint to score")
        checkpoint = os.path.relpath(prefix, run_dir)
        path = os.path.join(run_dir, SCORE_FILE)
        cache = read_json(path)
        if cache.get("checkpoint") != checkpoint:
            cache = {"checkpoint": checkpoint}
        keys = self.keys(checkpoint)
        need = {part: cache.get(part, {}).get("key") != keys[part]
                for part in ("learning", "fid", "fd_dlib")}
        need["fid"] &= self.fid_weights is not None
        need["fd_dlib"] &= self.descriptor is not None
        if not any(need.values()):
            log(f"  {run_dir}: scores cached ({checkpoint})")
            return cache
        config, nets = rd.load_networks(run_dir)
        enc, dec = nets["encoder"], nets["decoder"]
        h = self.heldout
        inputs = h["x"][h["src"]]
        edits = dlib = None
        if need["learning"]:
            log(f"  {run_dir}: learning report ({checkpoint})")
            report = learning.learning_report(enc, dec, config, judge=self.judge,
                                              descriptor=self.descriptor, heldout=h)
            cache["learning"] = {"key": keys["learning"], "report": learning.public(report),
                                 "overrides": config_overrides(config)}
            edits, dlib = report["_edits"], report.get("_dlib")
            write_json(path, cache)
        if edits is None and (need["fid"] or need["fd_dlib"]):
            edits = protocol.edit_faces(enc, dec, config, inputs, h["tgt"], 1.0)
        if need["fid"]:
            log(f"  {run_dir}: FID")
            cache["fid"] = {"key": keys["fid"], **self.fid(edits, inputs)}
            write_json(path, cache)
        if need["fd_dlib"]:
            log(f"  {run_dir}: FD over dlib descriptors")
            if dlib is None:
                dlib = {"edits": scores.describe_faces(self.descriptor, edits),
                        "inputs": scores.describe_faces(self.descriptor, inputs)}
            cache["fd_dlib"] = {"key": keys["fd_dlib"],
                                **self.fd_dlib(dlib["edits"], dlib["inputs"])}
            write_json(path, cache)
        return cache

    def fid_value(self, cache):
        """The cache's FID for the table, or why there is none."""
        if self.fid_weights is None:
            return self.fid_reason
        return cache.get("fid")

    def fd_value(self, cache):
        from exprgan_tf.evaluation.learning import DLIB_NOT_MEASURED
        if self.descriptor is None:
            return DLIB_NOT_MEASURED
        return cache.get("fd_dlib")


# --- figures ---------------------------------------------------------------------------
def draw_figures(first_runs, heldout, out_dir) -> dict:
    """Fig. 6 (one held-out face: its true targets, then each model's six edits), Fig. 7
    (every held-out subject's first face: true targets, and one figure per model) and
    Fig. 8 (each model's loss curves), of the first seed of each preset.

    Args:
        first_runs: ``{preset: run_dir}``.
        heldout: :func:`exprgan_tf.evaluation.learning.heldout_set`.
        out_dir: the figures' folder.

    Returns:
        ``{"fig6": path, "fig7": {"truth": path, preset: path}, "fig8": {preset: path
        or reason}}``.
    """
    import numpy as np

    from exprgan_tf.evaluation.protocol import edit_faces, expression_figure
    from exprgan_tf.run_dir import load_networks
    from exprgan_tf.visualize import plot_loss_curves

    x, src, truth = heldout["x"], heldout["src"], heldout["truth"]
    faces, subjects = heldout["first_face"], heldout["subject_ids"]
    size = x.shape[1]
    width = 6 * max(len(t) for t in list(SHORT.values()) + list(subjects) + ["truth"]) + 10
    truth_rows = [np.concatenate([x[f:f + 1], truth[src == f]]) for f in faces]
    files = {"fig7": {}, "fig8": {}}
    fig6_rows, fig6_labels = [truth_rows[0]], ["truth"]
    files["fig7"]["truth"] = expression_figure(
        truth_rows, subjects, os.path.join(out_dir, "fig7_truth.png"), width)
    for preset, run_dir in first_runs.items():
        config, nets = load_networks(run_dir)
        edits = edit_faces(nets["encoder"], nets["decoder"], config,
                           np.repeat(x[faces], 6, axis=0), np.tile(np.arange(6), len(faces)),
                           1.0).reshape(len(faces), 6, size, size, 3)
        rows = [np.concatenate([x[f:f + 1], e]) for f, e in zip(faces, edits)]
        fig6_rows.append(rows[0])
        fig6_labels.append(SHORT.get(preset, preset))
        files["fig7"][preset] = expression_figure(
            rows, subjects, os.path.join(out_dir, f"fig7_{preset}.png"), width)
        hist = os.path.join(run_dir, "history.csv")
        try:
            files["fig8"][preset] = plot_loss_curves(
                hist, os.path.join(out_dir, f"fig8_{preset}.png"), title=preset)
        except (OSError, ValueError) as e:
            files["fig8"][preset] = f"no loss curves ({type(e).__name__}: {e})"
    files["fig6"] = expression_figure(fig6_rows, fig6_labels,
                                      os.path.join(out_dir, "fig6.png"), width)
    return files


# --- the table -------------------------------------------------------------------------
def per_run_rows(entries) -> list:
    """Markdown lines: one row per run (the raw numbers behind the means)."""
    from exprgan_tf.evaluation.comparison import fmt

    lines = ["| preset | seed | run directory | steps per stage | training, min | wall, min "
             "| expression | PCA at 10 | nearest true target, px | L1 | FID | FD, dlib |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        m, t = e["metrics"], e["times"]
        steps = " / ".join(str(t["stages"].get(f"stage{s}", {}).get("steps", "-"))
                           for s in (1, 2, 3))
        lines.append(
            f"| {e['preset']} | {e['seed']} | `{e['run_dir']}` | {steps} | "
            f"{fmt(m.get('train_minutes'), 'num1')} | {fmt(m.get('wall_minutes'), 'num1')} | "
            f"{fmt(m['expression'], 'pct')} | {fmt(m['pca_at_10'], 'pct')} | "
            f"{fmt(m['ntt_pixels'], 'pct')} | {fmt(m['l1'], 'num4')} | "
            f"{fmt(m['fid'], 'num2') if not isinstance(m['fid'], str) else 'n/a'} | "
            f"{fmt(m['fd_dlib'], 'num4') if not isinstance(m['fd_dlib'], str) else 'n/a'} |")
    return lines


def write_outputs(out, entries, presets, seeds, budget, meta, figures, notes) -> dict:
    """``<out>/table1.md``, ``.json`` and ``.csv`` from the scored runs.

    Args:
        out: the folder (the figures are in ``<out>/table1/``).
        entries: one dict per run: ``preset``, ``seed``, ``run_dir``, ``metrics``
            (:func:`~exprgan_tf.evaluation.comparison.run_metrics`), ``times``.
        presets, seeds: the table's columns and seeds.
        budget: :func:`make_budget`.
        meta: ``command``, ``date``, ... (:func:`_results.run_header`).
        figures: :func:`draw_figures` (paths), or ``{}``.
        notes: measurement notes (Markdown bullets).

    Returns:
        ``{"markdown", "json", "csv"}`` paths, and ``verdict`` (the questions).
    """
    from exprgan_tf.evaluation import comparison
    from exprgan_tf.evaluation.table import markdown_table

    runs = {p: [e["metrics"] for e in entries if e["preset"] == p] for p in presets}
    summary = comparison.summarize(runs)
    questions = comparison.verdict(summary)
    rows = comparison.table_rows(summary, presets)
    columns = list(presets) + ["input unchanged", "paper (" + " / ".join(
        SHORT.get(p, p) for p in presets) + ")"]
    e1, e2, e3 = budget["epochs"]
    smoke = budget.get("max_steps")
    md = ["# Table I, reproduced: ExprGAN vs the proposed model, one recipe, "
          f"{len(seeds)} seed(s) each", "",
          "<!-- written by benchmarks/table1.py; rerun the command below to regenerate -->", ""]
    if smoke:
        md += [f"**SMOKE RUN, NOT A RESULT**: every stage stopped after {smoke} steps "
               "(`--max-steps`).", ""]
    md += [f"Command: `{meta['command']}` ({meta['date']}; TensorFlow {meta.get('tensorflow')}"
           f" on {meta.get('cpu_count')} CPU cores, load average {meta['load_start']} at the "
           "start).", "",
           f"Budget, every model alike: stage 1 / 2 / 3 = {e1} / {e2} / {e3} epochs"
           + (f", each stopped after {smoke} steps" if smoke else "")
           + " of the built-in face set (1296 training faces, 64x64, batch 16: 81 steps an "
           "epoch), the `-small` presets' own recipe (`exprgan_tf/config.py`), identity loss "
           f"`{budget['identity']}` for all, extra settings: "
           + (", ".join(f"`{o}`" for o in budget["overrides"]) or "none")
           + f"; seeds {', '.join(map(str, seeds))}; run directories under "
           f"`{meta['runs']}`.", "",
           "Each cell: the mean over the seeds (lowest-highest). Input unchanged: the same "
           "measurement with the unedited input in place of the edit. Paper: its Table I "
           "(128x128 Oulu-CASIA faces, about 300 epochs), for the ranking, not the absolute "
           "values.", "",
           markdown_table(columns, rows), ""]
    md += [f"- {n}" for n in notes] + [""]
    md += ["## Verdict", "",
           "*Generated from the numbers above by `benchmarks/table1.py` "
           "(`exprgan_tf.evaluation.comparison`); edit the wording, not the numbers.*", "",
           comparison.verdict_markdown(questions)]
    md += ["## Per run", ""] + per_run_rows(entries) + [""]
    if figures:
        rel = lambda p: os.path.relpath(p, out)  # noqa: E731
        md += ["## Figures", "",
               f"Fig. 6 - one held-out face (first row: its true targets), each model's "
               f"edits to the six expressions (seed {seeds[0]}):", "",
               f"![Fig. 6]({rel(figures['fig6'])})", "",
               "Fig. 7 - every held-out subject's first face: the true targets, then each "
               "model's edits:", ""]
        for key, path in figures["fig7"].items():
            md += [f"![Fig. 7 {key}]({rel(path)})", ""]
        md += ["Fig. 8 - loss curves (`history.csv`):", ""]
        for preset, path in figures["fig8"].items():
            md += ([f"![Fig. 8 {preset}]({rel(path)})", ""] if os.path.isfile(path)
                   else [f"- {preset}: {path}", ""])
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f"table1.{k}") for k in ("md", "json", "csv")}
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "budget": budget, "presets": list(presets),
                   "seeds": list(seeds), "runs": entries, "summary": summary,
                   "verdict": questions, "notes": notes, "figures": figures}, f, indent=2)
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["measure", "group", "metric", "model", "mean", "min", "max", "n",
                    "values", "input_unchanged", "paper"])
        for m in comparison.MEASURES:
            for p in presets:
                s = summary[p].get(m.key)
                if s is None:
                    continue
                base = summary[p].get(m.key + "_input", {})
                w.writerow([m.key, m.group, m.label, p, s.get("mean", ""), s.get("min", ""),
                            s.get("max", ""), s["n"],
                            ";".join(f"{v:.6g}" for v in s.get("values", [])) or s.get("missing"),
                            base.get("mean", ""), comparison.paper_cell(m, [p])])
    return {**{"markdown": paths["md"], "json": paths["json"], "csv": paths["csv"]},
            "verdict": questions}


def measurement_notes(entries, scorer, jobs) -> list:
    """How each row was measured (the bullets under the table)."""
    reports = [e["report"] for e in entries]
    judge_real = [r["expression"]["judge_on_real"] for r in reports]
    pca = reports[0]["pca"]
    judge = os.path.relpath(scorer.judge_path, ROOT)
    notes = [f"CNN expression classifier: the Fig. 4 CNN `{judge}` "
             f"(trained on the training subjects only; {min(judge_real):.1%} on the real "
             f"held-out faces), on every held-out face edited to each expression at "
             f"intensity 1 ({reports[0]['edits']} edits; held-out subjects "
             f"{', '.join(reports[0]['heldout_subjects'])}).",
             f"PCA eigenfaces: the paper's protocol, {len(pca['persons'])} persons x 6 "
             "edits = 36 probes against the persons' other real held-out faces, minimum "
             "distance; the paper reports the accuracy and the eigenfaces it needs.",
             "Identity: nearest true target (pixels after per-image standardisation; dlib "
             "descriptors) among the 8 held-out subjects' true faces, chance 12.5%; dlib "
             "same person = descriptor distance < 0.6 between input and edit. L1 / SSIM "
             "against the true target rendered in the input's lighting. Definitions: "
             "`exprgan_tf/evaluation/learning.py`."]
    if scorer.fid_weights is None:
        notes.append(f"FID: {scorer.fid_reason}")
    else:
        notes.append(f"FID: Keras InceptionV3 (`{scorer.fid_weights}`) pool features at "
                     "299x299, the 864 edits against the 1296 real training faces "
                     "(`exprgan_tf/evaluation/fid.py`); input unchanged = the unedited "
                     "held-out inputs against the same faces.")
    if scorer.descriptor is None:
        notes.append("FD, dlib descriptors: not measured (no dlib weights: `python "
                     "scripts/fetch_weights.py dlib_resnet`).")
    else:
        notes.append("FD, dlib descriptors: the Fréchet distance of the same formula as "
                     "FID over dlib's 128-d face descriptors instead of InceptionV3 "
                     "features (edits against the real training faces). It is not FID "
                     "and not comparable with the paper's FID column.")
    notes.append("Time: training = the epochs' step time in `history.csv`; wall = the "
                 "training commands from start to exit (start-up included), summed over "
                 f"the invocations; {jobs} run(s) trained side by side (`--jobs {jobs}`).")
    return notes


def collect_entries(presets, seeds, runs, scorer) -> list:
    from exprgan_tf.evaluation.comparison import run_metrics

    entries = []
    for preset in presets:
        for seed in seeds:
            run_dir = run_dir_of(runs, preset, seed)
            cache = scorer.score(run_dir)
            times = run_times(run_dir)
            report = cache["learning"]["report"]
            entries.append({
                "preset": preset, "seed": seed, "run_dir": run_dir,
                "checkpoint": cache["checkpoint"], "times": times, "report": report,
                "metrics": run_metrics(report, scorer.fid_value(cache),
                                       scorer.fd_value(cache), times)})
    return entries


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                   help="training.seed of each run (default 2018 2019)")
    p.add_argument("--epochs", type=int, nargs=3, default=None, metavar=("S1", "S2", "S3"),
                   help="epochs of stages 1, 2, 3 for every model (default: the -small "
                        "presets' own, 1 12 20)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="smoke test: stop every stage after this many steps (the table is "
                        "marked as not a result)")
    p.add_argument("--identity", default="none", choices=("none", "dlib_resnet", "vgg_face"),
                   help="identity.network (L_id) for every model alike (dlib_resnet "
                        "triples the step time on a CPU: it does not fit 3 hours)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="a config override for every model alike")
    p.add_argument("--jobs", type=int, default=2,
                   help="training commands side by side (2: one per core, as measured)")
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "table1_recipe"),
                   help="folder of the run directories <preset>_seed<seed>")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="where table1.md/.json/.csv go (figures in <out>/table1/)")
    fid = p.add_mutually_exclusive_group()
    fid.add_argument("--fid-weights", default="imagenet",
                     help="'imagenet' (Keras cache or download) or an InceptionV3 no-top "
                          "weights file")
    fid.add_argument("--no-fid", action="store_true",
                     help="no FID row (offline, without a weights file)")
    p.add_argument("--judge", default=None, help="expression judge (.keras); default "
                   "checkpoints/judges/judge-64.keras")
    p.add_argument("--dlib-weights", default=None,
                   help="dlib descriptor weights (default: the fetch_weights.py cache)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--train-only", action="store_true", help="train, do not score")
    mode.add_argument("--score-only", action="store_true",
                      help="score and write; every run must be trained")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds repeats a seed: {args.seeds}")

    from exprgan_tf.evaluation import fid as fid_mod

    t_start = time.time()
    meta = {**run_header("table1.py", argv), "cpu_count": os.cpu_count(), "runs": args.runs}
    fid_weights, fid_reason = None, ""
    if args.no_fid:
        fid_reason = ("not measured (`--no-fid`: the ImageNet InceptionV3 weights cannot be "
                      "downloaded on this machine; give `--fid-weights FILE` where they "
                      "exist).")
    elif not args.train_only:
        try:   # before hours of training: a missing file must stop us now
            fid_weights = fid_mod.resolve_inception_weights(args.fid_weights)
        except fid_mod.InceptionWeightsError as e:
            print(f"error: {e}\nFor the offline table add --no-fid (the Fréchet distance "
                  "over dlib descriptors stands beside it, under its own name).",
                  file=sys.stderr)
            return 2
    budget = make_budget(args.epochs or default_epochs(), args.max_steps, args.identity,
                         args.overrides)
    runs = [(preset, seed) for preset in args.presets for seed in args.seeds]
    log(f"Table I: {len(args.presets)} presets x {len(args.seeds)} seeds, budget {budget}, "
        f"runs in {args.runs}")

    try:
        todo = plan(args.runs, args.presets, args.seeds, budget)
    except BudgetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.score_only:
        missing = {k: v for k, v in todo.items() if v}
        if missing:
            print("error: --score-only, but these runs are not trained: " + "; ".join(
                f"{p} seed {s} stages {v}" for (p, s), v in missing.items()), file=sys.stderr)
            return 2
    else:
        log(f"Training ({args.jobs} at a time); stages to train: "
            + "; ".join(f"{p} seed {s}: {v or 'none'}" for (p, s), v in todo.items()))
        status = TrainingQueue(budget, args.runs, args.jobs).train_all(runs)
        failed = {k: v for k, v in status.items() if v != "done"}
        if failed:
            for (preset, seed), why in failed.items():
                print(f"{preset} seed {seed}: {why}", file=sys.stderr)
            stopped = all(v == "stopped" for v in failed.values())
            print("Stopped: run the same command again to continue." if stopped else
                  "Training did not finish; fix the cause and run the same command again "
                  "(finished stages are kept).", file=sys.stderr)
            return 130 if stopped else 1
        log(f"Training done after {(time.time() - t_start) / 60:.1f} min.")
        if args.train_only:
            return 0

    import tensorflow as tf

    from exprgan_tf.run_dir import load_config

    meta["tensorflow"] = tf.__version__
    size = load_config(run_dir_of(args.runs, *runs[0])).model.image_size
    scorer = Scorer(size, args.judge, args.dlib_weights, fid_weights, fid_reason)
    log("Scoring ...")
    t_score = time.time()
    entries = collect_entries(args.presets, args.seeds, args.runs, scorer)
    log("Figures ...")
    figures = draw_figures({p: run_dir_of(args.runs, p, args.seeds[0]) for p in args.presets},
                           scorer.heldout, os.path.join(args.out, FIGURES))
    notes = measurement_notes(entries, scorer, args.jobs)
    meta["seconds_scoring"] = round(time.time() - t_score, 1)
    meta["seconds_total_this_command"] = round(time.time() - t_start, 1)
    notes.append(f"This command: {meta['seconds_total_this_command'] / 60:.1f} min "
                 f"(scoring and figures {meta['seconds_scoring'] / 60:.1f} min; training "
                 "done in earlier invocations is not counted here, see the wall times).")
    written = write_outputs(args.out, entries, args.presets, args.seeds, budget, meta,
                            figures, notes)
    for q in written["verdict"]:
        log(f"{q['title']} {q['answer']}")
    log(f"Wrote {written['markdown']}, {written['json']}, {written['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
