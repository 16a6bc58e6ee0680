#!/usr/bin/env python
"""Train-step throughput of every stage and preset against this machine's limit.

For each configuration (stage x preset x size x batch x identity network) a fresh
subprocess builds the real :class:`~exprgan_tf.training.Trainer` on built-in faces and
runs ``Trainer.fit`` for ``warmup + steps + 1`` steps. The loop is timed from inside:
every call of the step records its start and end, so

- ``step s`` is the compiled step itself (forward, backward, three Adam updates);
- ``loop s`` is one whole iteration of ``Trainer.fit`` (the step, reading the losses
  back, the NaN guard, the progress bar, TensorBoard scalars, the next batch);
- ``trace s`` is the first call minus a steady step (tracing + graph optimisation).

Checkpoint writes are switched off (they happen at epoch ends only, outside the timed
steps). Peak RSS is the subprocess's own ``ru_maxrss``.

The same run measures the machine's limit, TensorFlow's own float32 matmul GFLOP/s
(4096 x 4096, warm, median of 5; bfloat16 too), and counts each step's FLOPs from its
own graph (:mod:`exprgan_tf.training.flops`: conv/matmul forward and backprop ops
from TensorFlow's flops registry, dead gradient ops excluded), so the achieved GFLOP/s
and its ratio to the matmul rate are reported. ``--pipeline`` adds the rate at which
``TrainingInputs`` (the trainer's input path) delivers images; ``--profile DIR``
records a TensorBoard profile of 3 steps per configuration and lists the top ops.

Every run writes ``<out>.json`` and ``<out>.md`` (date, command, machine, the CPU's
flags, load before/after each configuration, and whether oneDNN was on in each child).

Variants (``--variant``) are compared interleaved, one subprocess each: another
checkout, config overrides, or environment variables (``env.NAME=VALUE``). Every
training subprocess also measures the float32 matmul rate (2048 x 2048) just before
and after its timed steps, so "% matmul" is the step's share of what TensorFlow's
matmul reaches with the same kernels, under the same load; the 4096 x 4096 limits
(float32 and bfloat16) are measured once per variant at the start. ``--onednn``
compares the package's default (oneDNN on), oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``),
and, on a CPU with AVX-512, both with ``ONEDNN_MAX_CPU_ISA=AVX2`` (an emulation of an
AVX2 CPU's kernels, not a real AVX2 CPU; with oneDNN off TensorFlow's Eigen
convolutions still call oneDNN's sgemm, which obeys the cap), and lists the oneDNN
kernels each runs (``ONEDNN_VERBOSE=1``).

``--external LABEL=COMMAND`` adds another implementation's step (a port in another
framework, say) as a variant, interleaved with the others: per configuration COMMAND is
run with ``{stage}``, ``{batch}``, ``{image_size}``, ``{preset}``, ``{steps}`` and
``{warmup}`` filled in (Python's ``str.format``: write other braces twice), and must
print, as its last line, a JSON object with ``img_per_s``. Only its img/s (and the
ratio to the reference) is reported: its FLOPs and kernels are its own business.

Examples:
    python benchmarks/train_speed.py                      # everything (long on CPU)
    python benchmarks/train_speed.py --quick              # exprgan-small stages 2-3,
                                                          # batch 16, --onednn variants
    python benchmarks/train_speed.py --onednn --stages 2 3 --presets exprgan \
        --identity none --warmup 1 --out benchmarks/results/speed/onednn_exprgan
    python benchmarks/train_speed.py --stages 2 3 --presets exprgan --sizes full \\
        --identity none --variant default \\
        --external "other=python other_step.py --stage {stage} --batch {batch}"
    python benchmarks/train_speed.py --sizes small --stages 2 --batches 48 \\
        --set training.jit_compile=true --out benchmarks/results/train_speed_xla
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _results
from _results import run_header, write_result  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")


# --- child processes ---------------------------------------------------------------

def _tf(code=None):
    """Import TensorFlow, with ``exprgan_tf`` taken from ``code`` (a checkout; default
    this one) and imported first, as its commands do (it may set the oneDNN default)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.abspath(code or REPO))
    import importlib
    importlib.import_module("exprgan_tf")
    import tensorflow as tf
    return tf


def _onednn_state():
    """Whether TensorFlow runs its oneDNN kernels in this process, and the variables
    that decide it."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        on = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        on = None
    return dict(onednn=on, TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                ONEDNN_MAX_CPU_ISA=os.environ.get("ONEDNN_MAX_CPU_ISA"))


def _flops_module():
    """This checkout's flops counter, also when ``exprgan_tf`` comes from another
    checkout (which may predate it)."""
    import importlib.util
    path = os.path.join(REPO, "exprgan_tf", "training", "flops.py")
    spec = importlib.util.spec_from_file_location("_train_speed_flops", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def _matmul_gflops(tf, n, dtype="float32", repeats=5):
    """GFLOP/s of a warm ``tf.linalg.matmul`` of two n x n matrices (median)."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    f = tf.function(tf.linalg.matmul)
    for _ in range(2):
        f(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - start)
    return round(2 * n ** 3 / _median(times) / 1e9, 1)


def child_matmul(spec):
    """GFLOP/s of a warm ``tf.linalg.matmul`` of two n x n matrices."""
    tf = _tf(spec.get("code"))
    n = spec.get("n", 4096)
    out = {}
    for dtype in spec.get("dtypes", ("float32", "bfloat16")):
        out[f"matmul_{dtype}_gflops"] = _matmul_gflops(tf, n, dtype)
    out["n"] = n
    out.update(_onednn_state())
    return out


MATMUL_N_IN_RUN = 2048  # 17 GFLOP per product: a few seconds per measurement here


def child_kernels(spec):
    """The oneDNN implementations a conv forward + backward and a matmul run on, from
    ``ONEDNN_VERBOSE=1`` lines (``{kind: [impl, ...]}``; empty with oneDNN off, where
    TensorFlow's Eigen kernels run)."""
    tf = _tf(spec.get("code"))
    x = tf.random.normal((4, 32, 32, 16))
    k = tf.Variable(tf.random.normal((5, 5, 16, 32)))
    w = tf.Variable(tf.random.normal((256, 256)))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            y = tf.nn.conv2d(x, k, strides=2, padding="SAME")
            loss = tf.reduce_sum(y * y) + tf.reduce_sum(tf.matmul(w, w))
        return tape.gradient(loss, [k, w])

    step()
    return _onednn_state()


def _parse_onednn_verbose(text):
    """``{primitive kind: sorted implementation names}`` from oneDNN verbose lines
    (``onednn_verbose,[timestamp,]exec,cpu,<kind>,<impl>,...``)."""
    kinds = {}
    for line in text.splitlines():
        parts = line.strip().split(",")
        if not parts[0] in ("onednn_verbose", "dnnl_verbose") or "exec" not in parts:
            continue
        i = parts.index("exec")
        if len(parts) > i + 3 and parts[i + 1] == "cpu":
            kinds.setdefault(parts[i + 2], set()).add(parts[i + 3] or "(unnamed)")
    return {k: sorted(v) for k, v in sorted(kinds.items())}


def _top_ops(logdir, top=12):
    """Top op types by self time from the profile in ``logdir`` (uses TensorFlow's
    profiler plugin bindings; returns ``None`` where they are unavailable)."""
    import glob
    runs = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*")))
    paths = glob.glob(os.path.join(runs[-1], "*.xplane.pb")) if runs else []  # newest run
    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
        data, ok = plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
        table = json.loads(data)
        table = table[0] if isinstance(table, list) else table
    except Exception as e:  # internal API: report, do not fail the benchmark
        return {"error": f"{type(e).__name__}: {e}"}
    cols = [c["id"] for c in table["cols"]]
    rows = [dict(zip(cols, [c.get("v") if c else None for c in r["c"]]))
            for r in table["rows"]]
    total = sum(r["total_self_time"] for r in rows) or 1.0
    by_type = {}
    for r in rows:
        by_type[r["type"]] = by_type.get(r["type"], 0.0) + r["total_self_time"]
    ranked = sorted(by_type.items(), key=lambda kv: -kv[1])[:top]
    return {"total_ms": round(total / 1e3, 1),
            "by_type": [(k, round(100 * v / total, 1)) for k, v in ranked]}


def child_train(spec):
    """Time ``Trainer.fit`` on one configuration (see the module docstring)."""
    tf = _tf(spec.get("code"))
    import exprgan_tf
    from exprgan_tf.config import get_preset
    from exprgan_tf.data import training_data
    from exprgan_tf.training import Trainer
    step_flops = _flops_module().step_flops

    name = spec["preset"] + ("" if spec["size"] == "full" else "-small")
    overrides = list(spec.get("overrides", []))
    if spec["identity"] != "none":
        overrides.append(f"identity.network={spec['identity']}")
    config = get_preset(name).override(overrides)
    stage, batch = spec["stage"], spec["batch"]
    warmup, steps = spec["warmup"], spec["steps"]
    calls_needed = warmup + steps + 1
    # the training split and the Trainer's inputs as scripts/train.py builds them
    images, labels, _, inputs = training_data(config, stage)

    run_dir = tempfile.mkdtemp(prefix="train_speed_")
    try:
        start = time.perf_counter()
        try:
            trainer = Trainer(config, run_dir, stage, images, labels, batch_size=batch,
                              cache_identity=spec.get("cache_identity", True),
                              log=lambda *a: None, **inputs)
        except FileNotFoundError as e:
            return {"skipped": str(e).splitlines()[0]}
        setup_s = time.perf_counter() - start
        # The matmul rate in this process, just before and after the timed steps: the
        # step's share of it is robust to a load that changes between processes.
        matmul_before = _matmul_gflops(tf, MATMUL_N_IN_RUN)
        calls = []
        step = trainer.step

        class Timed:
            def __call__(self, b):
                t0 = time.perf_counter()
                out = step(b)
                calls.append((t0, time.perf_counter()))
                return out

            def __getattr__(self, attr):
                return getattr(step, attr)

        trainer.step = Timed()
        trainer.manager.save = lambda *a, **k: "(benchmark: not saved)"
        trainer.fit(epochs=1, max_steps=calls_needed)
        matmul_after = _matmul_gflops(tf, MATMUL_N_IN_RUN)
        trainer.step = step
        timed = range(warmup, warmup + steps)
        step_s = _median([calls[i][1] - calls[i][0] for i in timed])
        loop_s = _median([calls[i + 1][0] - calls[i][0] for i in timed])
        first_s = calls[0][1] - calls[0][0]

        batch_tensors = next(iter(trainer.inputs.epoch(0)))
        flops = step_flops(step, batch_tensors)
        out = dict(setup_s=round(setup_s, 2), first_call_s=round(first_s, 2),
                   trace_s=round(first_s - step_s, 2), step_s=round(step_s, 4),
                   loop_s=round(loop_s, 4), host_ms=round(1e3 * (loop_s - step_s), 1),
                   img_per_s=round(batch / loop_s, 2),
                   step_img_per_s=round(batch / step_s, 2),
                   gflop_per_image=round(flops["total"] / batch / 1e9, 3),
                   gflops=round(flops["total"] / loop_s / 1e9, 1),
                   matmul_in_run_gflops=round(0.5 * (matmul_before + matmul_after), 1),
                   matmul_in_run=[matmul_before, matmul_after],
                   trace_count=step.trace_count,
                   uses_identity=bool(step.uses_identity),
                   **_onednn_state(),
                   identity_cached=trainer.inputs.identity_cache is not None,
                   code=os.path.dirname(os.path.dirname(os.path.abspath(exprgan_tf.__file__))))
        if spec.get("profile"):
            logdir = os.path.join(spec["profile"], spec["key"])
            tf.profiler.experimental.start(logdir)
            for _ in range(3):
                [float(v) for v in step(batch_tensors).values()]
            tf.profiler.experimental.stop()
            out["profile_dir"] = logdir
            out["top_ops"] = _top_ops(logdir)
        out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return out
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def child_pipeline(spec):
    """Images/s delivered by ``TrainingInputs.epoch`` (the trainer's input path) over a
    built-in-sized training set (1296 images), batch 48, epochs 1-3."""
    _tf()
    import numpy as np

    from exprgan_tf.config import get_preset
    from exprgan_tf.data.builtin import builtin_rows, render_rows
    from exprgan_tf.data.faces import FaceSet
    from exprgan_tf.training import TrainingInputs

    config = get_preset(spec["preset"])
    rows = builtin_rows(split="train")[:96]
    faces = render_rows(FaceSet(), rows, config.model.image_size)
    reps = -(-1296 // len(faces))
    images = np.concatenate([faces] * reps)[:1296]
    labels = np.array([r["label"] for r in rows] * reps)[:1296]
    start = time.perf_counter()
    inputs = TrainingInputs(images, labels, config, spec["batch"], log=lambda *a: None)
    setup_s = time.perf_counter() - start
    rates, first = [], []
    for epoch in (1, 2, 3):
        start = time.perf_counter()
        it = iter(inputs.epoch(epoch))
        n = int(next(it)["image"].shape[0])
        first.append(time.perf_counter() - start)  # the epoch's arrays + first batch
        n += sum(int(b["image"].shape[0]) for b in it)
        rates.append(n / (time.perf_counter() - start))
    return dict(preprocess_s=round(setup_s, 2), img_per_s=round(_median(rates), 1),
                epoch_start_s=round(_median(first), 3), images=len(images))


def _child_main(kind, spec):
    fn = {"train": child_train, "matmul": child_matmul, "pipeline": child_pipeline,
          "kernels": child_kernels}[kind]
    result = fn(json.loads(spec))
    print("\nRESULT " + json.dumps(result), flush=True)  # after any progress bar
    return 0


# --- the parent --------------------------------------------------------------------

def _run_child(kind, spec, timeout, env=None):
    """Run a child process (``env``: variables to set in it, e.g. the oneDNN ones)."""
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, json.dumps(spec)]
    code = os.path.abspath(spec.get("code") or REPO)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {}),
           "PYTHONPATH": code + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if kind == "kernels":
        env["ONEDNN_VERBOSE"] = "1"
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - start
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        result = {"error": (proc.stderr or proc.stdout)[-1500:]}
    else:
        result = json.loads(lines[-1][len("RESULT "):])
        if kind == "kernels":
            result["kernels"] = _parse_onednn_verbose(proc.stdout)
    result.update(load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2),
                  wall_s=round(wall, 1))
    return result


IMAGE_SIZE = {"small": 64, "full": 128}  # the presets' model.image_size


def parse_external(text):
    """``LABEL=COMMAND`` -> a variant run by :func:`_run_external`."""
    label, sep, command = text.partition("=")
    if not sep or not label or not command.strip():
        raise argparse.ArgumentTypeError(
            f"--external needs LABEL=COMMAND. Received: {text!r}")
    try:
        command.format(stage=1, batch=1, image_size=1, preset="", steps=1, warmup=1)
    except (KeyError, IndexError) as e:
        raise argparse.ArgumentTypeError(
            f"--external {label}: unknown placeholder {e} (known: stage, batch, "
            f"image_size, preset, steps, warmup). Received: {command!r}") from None
    return dict(label=label, code=None, overrides=[], env={}, external=command)


def _run_external(variant, run, timeout):
    """One configuration of an ``--external`` variant: its command's last output line,
    parsed as JSON, with the load and wall time (an error entry when it fails)."""
    command = variant["external"].format(
        stage=run["stage"], batch=run["batch"], image_size=IMAGE_SIZE[run["size"]],
        preset=run["preset"], steps=run["steps"], warmup=run["warmup"])
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(shlex.split(command), capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if not proc.returncode and lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or not isinstance(result.get("img_per_s"), (int, float)):
        result = {"error": f"{command!r} exited {proc.returncode} without a last line "
                           "holding a JSON object with img_per_s: "
                           + (proc.stderr or proc.stdout)[-1200:]}
    result.update(external=command, load_before=round(load_before, 2),
                  load_after=round(os.getloadavg()[0], 2), wall_s=round(wall, 1))
    return result


def _machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                         model)
    except OSError:
        pass
    import importlib.metadata as md
    versions = {p: md.version(p) for p in ("tensorflow", "keras", "numpy")
                if _installed(p)}
    flags = _cpu_module().cpu_flags()
    return dict(cpu=model, cpu_count=os.cpu_count(), cores_usable=len(os.sched_getaffinity(0)),
                cpu_flags=[f for f in _cpu_module().REPORTED_FLAGS if f in flags],
                python=platform.python_version(), **versions)


def _cpu_module():
    """This checkout's :mod:`exprgan_tf.cpu`, without importing the package (and so
    TensorFlow) into the parent process."""
    import importlib.util
    path = os.path.join(REPO, "exprgan_tf", "cpu.py")
    spec = importlib.util.spec_from_file_location("_train_speed_cpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed(package):
    import importlib.metadata as md
    try:
        md.version(package)
        return True
    except md.PackageNotFoundError:
        return False


def configurations(args):
    for stage in args.stages:
        for preset in args.presets:
            for size in args.sizes:
                for batch in args.batches:
                    for identity in args.identity:
                        if stage == 1 and identity != "none":
                            continue  # stage 1 has no identity loss
                        key = f"s{stage}_{preset}_{size}_b{batch}_{identity}"
                        yield dict(key=key, stage=stage, preset=preset, size=size, batch=batch,
                                   identity=identity)


def _fmt(v, spec="{}"):
    return "-" if v is None else spec.format(v)


def parse_variant(text):
    """``LABEL[@CHECKOUT][:KEY=VALUE,KEY=VALUE...]`` -> dict(label, code, overrides,
    env); a key ``env.NAME`` sets the environment variable ``NAME`` in the variant's
    processes instead of a config value."""
    head, _, sets = text.partition(":")
    label, _, code = head.partition("@")
    if not label:
        raise argparse.ArgumentTypeError(f"a variant needs a label. Received: {text!r}")
    items = [x for x in sets.split(",") if x]
    env = dict(x[len("env."):].split("=", 1) for x in items if x.startswith("env."))
    return dict(label=label, code=os.path.abspath(code) if code else None,
                overrides=[x for x in items if not x.startswith("env.")], env=env)


# --onednn: the package's default, oneDNN off, and both capped at AVX2 instructions (on
# an AVX-512 machine an emulation of an AVX2 CPU, not a real one). With oneDNN off,
# TensorFlow's Eigen convolutions and matmuls still call oneDNN's sgemm, which obeys
# the cap, so off_avx2 stands for TensorFlow's own default on an AVX2 CPU.
ONEDNN_VARIANTS = ("default", "onednn_off:env.TF_ENABLE_ONEDNN_OPTS=0",
                   "onednn_avx2:env.TF_ENABLE_ONEDNN_OPTS=1,env.ONEDNN_MAX_CPU_ISA=AVX2",
                   "off_avx2:env.TF_ENABLE_ONEDNN_OPTS=0,env.ONEDNN_MAX_CPU_ISA=AVX2")


def onednn_variants(flags):
    """``--onednn``'s variants on a CPU with these ``/proc/cpuinfo`` flags: the AVX2 cap
    only where oneDNN has more than AVX2 to give up (``avx512f``); on an AVX2 CPU the
    capped runs would repeat the uncapped ones."""
    return [parse_variant(v) for v in
            (ONEDNN_VARIANTS if "avx512f" in flags else ONEDNN_VARIANTS[:2])]


def _ok(r):
    return "error" not in r and "skipped" not in r


def _limit(result, label):
    """The variant's float32 and bfloat16 matmul GFLOP/s (median over its
    measurements in this run), or the run's single limit."""
    got = result.get("limits", {}).get(label, [])
    if not got:
        lim = result.get("limit", {})
        return lim.get("matmul_float32_gflops"), lim.get("matmul_bfloat16_gflops")
    out = []
    for dtype in ("float32", "bfloat16"):
        values = [m[f"matmul_{dtype}_gflops"] for m in got
                  if m.get(f"matmul_{dtype}_gflops") is not None]
        out.append(round(_median(values), 1) if values else None)
    return tuple(out)


def _onednn_label(r):
    if r.get("onednn") is None:
        return "-"
    cap = r.get("ONEDNN_MAX_CPU_ISA")
    return ("on" if r["onednn"] else "off") + (f", cap {cap}" if cap else "")


def write_report(result, path_md):
    m = result["machine"]
    variants = result["variants"]
    lines = [
        "# Train-step throughput",
        "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Machine: {m['cpu']}, {m['cpu_count']} cores ({m['cores_usable']} usable by this "
        f"run), no GPU; TF {m.get('tensorflow')}, Keras {m.get('keras')}, "
        f"Python {m['python']}.",
        "- CPU flags: " + (", ".join(m["cpu_flags"]) if m.get("cpu_flags") else "-")
        + " (of " + ", ".join(_cpu_module().REPORTED_FLAGS) + ").",
        f"- Load: 1-min load average {result['load_start']} at the start, "
        f"{result.get('load_end', '-')} at the end; before/after each configuration in the "
        "table." + (f" {result['note']}" if result.get("note") else ""),
        f"- {result['warmup']} warm-up + {result['steps']} timed steps (medians), built-in "
        f"faces; identity cache {'on' if result['cache_identity'] else 'off'}; "
        f"{result['rounds']} round(s) per configuration"
        + (", variants interleaved (order alternating per round)" if len(variants) > 1
           else "") + ".",
        "- Variants: " + "; ".join(
            f"`{v['label']}` = another implementation, `{v['external']}`"
            if v.get("external") else
            f"`{v['label']}` = {'code ' + v['code'] if v['code'] else 'this checkout'}"
            f"{', ' + ', '.join(v['overrides']) if v['overrides'] else ''}"
            f"{', ' + ', '.join(f'{k}={x}' for k, x in v.get('env', {}).items()) if v.get('env') else ''}"
            for v in variants),
    ]
    if any(v.get("env", {}).get("ONEDNN_MAX_CPU_ISA") for v in variants):
        lines.append("- `ONEDNN_MAX_CPU_ISA` caps the instructions oneDNN may use on this "
                     "CPU: an emulation of another CPU's oneDNN kernels at this machine's "
                     "clock, memory and caches, not a measurement on such a CPU.")
    for v in (v for v in variants if not v.get("external")):
        f32, bf16 = _limit(result, v["label"])
        errors = {e for m in result.get("limits", {}).get(v["label"], [])
                  for k, e in m.items() if k.endswith("_error")}
        lines.append(f"- Machine limit for `{v['label']}` (same run, the variant's own "
                     f"environment; median of its measurements): float32 matmul 4096x4096 "
                     f"{_fmt(f32)} GFLOP/s, bfloat16 {_fmt(bf16)} GFLOP/s"
                     + (f" (failed: {'; '.join(sorted(errors))})" if errors else "") + ".")
    kernels = result.get("kernels", {})
    if kernels:
        lines += ["", "Kernels (`ONEDNN_VERBOSE=1` on a conv forward + backward and a "
                  "matmul; none listed = oneDNN off, TensorFlow's Eigen kernels):", ""]
        for label, k in kernels.items():
            if "error" in k:
                lines.append(f"- `{label}`: ERROR {k['error'].strip().splitlines()[-1][:200]}")
                continue
            impls = "; ".join(f"{kind}: {', '.join(names)}"
                              for kind, names in k.get("kernels", {}).items())
            lines.append(f"- `{label}`: oneDNN {_onednn_label(k)}"
                         f" (TF_ENABLE_ONEDNN_OPTS={k.get('TF_ENABLE_ONEDNN_OPTS')})"
                         + (f" - {impls}" if impls else ""))
    lines += [
        "",
        "step = the compiled step; loop = one iteration of `Trainer.fit` (step + losses "
        "to host + NaN guard + progress bar + TensorBoard + next batch); img/s from the "
        "loop; GFLOP/img counted from the step's graph; % = achieved GFLOP/s over the "
        f"float32 matmul rate ({MATMUL_N_IN_RUN}x{MATMUL_N_IN_RUN}) measured in the same "
        "process just before and after the timed steps (mean of the two; 'matmul' column).",
        "",
        "| stage | preset | size | batch | identity | variant | oneDNN | setup s | trace s "
        "| step s | loop s | host ms | img/s | GFLOP/img | GFLOP/s | matmul GFLOP/s | % matmul "
        "| peak RSS MiB | traces | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        head = (f"| {r['stage']} | {r['preset']} | {r['size']} | {r['batch']} | "
                f"{r['identity']} | {r['variant']} | ")
        if not _ok(r):
            why = r.get("skipped") or r["error"].strip().splitlines()[-1]
            lines.append(head + f"- | {'skipped' if 'skipped' in r else 'ERROR'}: "
                         f"{why[:120]} |" + " |" * 12 + f" {r['load_before']}/{r['load_after']} |")
            continue
        if r.get("external"):
            lines.append(head + "-" + " |" * 6 + f" {r['img_per_s']:.2f} |" + " - |" * 6
                         + f" {r['load_before']}/{r['load_after']} |")
            continue
        f32 = r.get("matmul_in_run_gflops") or _limit(result, r["variant"])[0]
        pct = f"{100 * r['gflops'] / f32:.0f}%" if f32 else "-"
        lines.append(head + f"{_onednn_label(r)} | {r['setup_s']} | {r['trace_s']} | "
                     f"{r['step_s']:.3f} | {r['loop_s']:.3f} | {r['host_ms']} | "
                     f"{r['img_per_s']} | {r['gflop_per_image']} | {r['gflops']} | "
                     f"{_fmt(r.get('matmul_in_run_gflops'))} | {pct} | "
                     f"{r['peak_rss_mib']} | {r['trace_count']} | "
                     f"{r['load_before']}/{r['load_after']} |")
    if len(variants) > 1:
        base = variants[0]["label"]
        lines += ["", f"## Variants compared (median img/s over rounds; ratio to `{base}`; "
                  "share of the variant's float32 matmul rate)",
                  "", "| configuration | " + " | ".join(v["label"] for v in variants) + " |",
                  "|---|" + "---|" * len(variants)]
        for key in dict.fromkeys(r["key"] for r in result["runs"]):
            med, share = {}, {}
            for v in variants:
                got = [r for r in result["runs"]
                       if r["key"] == key and r["variant"] == v["label"] and _ok(r)]
                med[v["label"]] = _median([r["img_per_s"] for r in got]) if got else None
                shares = [r["gflops"] / (r.get("matmul_in_run_gflops")
                                         or _limit(result, v["label"])[0] or float("nan"))
                          for r in got if not r.get("external")]
                share[v["label"]] = _median(shares) if shares else None
            cells = []
            for v in variants:
                x = med[v["label"]]
                ratio = (f" ({x / med[base]:.2f}x)" if x and med[base] and v["label"] != base
                         else "")
                pct = (f", {100 * share[v['label']]:.0f}%" if share[v["label"]] is not None
                       else "")
                cells.append(_fmt(x, "{:.2f}") + ratio + pct)
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if result.get("pipeline"):
        lines += ["", "## Input pipeline (`TrainingInputs.epoch`, batch 48, 1296 images)", "",
                  "Pre-processing (unsharp mask for `proposed`) runs once per run; each epoch "
                  "then builds its arrays (order, flips, codes, priors) before its first batch.",
                  "", "| size | pre-processing once (s) | epoch start (s) | delivered img/s "
                  "| fastest train loop here (img/s) | ratio |", "|---|---|---|---|---|---|"]
        for size, p in result["pipeline"].items():
            if "error" in p:
                lines.append(f"| {size} | ERROR | | | | |")
                continue
            fastest = max((r["img_per_s"] for r in result["runs"]
                           if r.get("size") == size and _ok(r)), default=None)
            ratio = f"{p['img_per_s'] / fastest:.0f}x" if fastest else "-"
            lines.append(f"| {size} | {p['preprocess_s']} | {p.get('epoch_start_s', '-')} | "
                         f"{p['img_per_s']} | {_fmt(fastest)} | {ratio} |")
    profiled = [r for r in result["runs"] if r.get("top_ops")]
    if profiled:
        lines += ["", "## Profile: share of op self-time by type (3 steps)", ""]
        for r in profiled:
            top = r["top_ops"]
            if "error" in top:
                lines.append(f"- {r['key']} {r['variant']}: {top['error']}")
                continue
            lines.append(f"- {r['key']} {r['variant']} ({top['total_ms']} ms): " + ", ".join(
                f"{k} {v}%" for k, v in top["by_type"]))
    with open(path_md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def _save(result, out):
    write_result(out, result)
    return write_report(result, out + ".md")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--child"]:
        return _child_main(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", type=int, nargs="+", default=None, choices=(1, 2, 3),
                   help="default 1 2 3 (--quick: 2 3)")
    p.add_argument("--presets", nargs="+", default=None,
                   choices=("exprgan", "proposed", "proposed_no_unsharp"),
                   help="default exprgan proposed (--quick: exprgan)")
    p.add_argument("--sizes", nargs="+", default=None, choices=("small", "full"),
                   help="default small full (--quick: small)")
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help="default 16 48 (--quick: 16)")
    p.add_argument("--identity", nargs="+", default=None,
                   choices=("none", "dlib_resnet", "vgg_face"),
                   help="default none dlib_resnet (--quick: none)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps (default 5 at small size, 3 at full size)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="config override for every run (repeatable)")
    p.add_argument("--variant", dest="variants", action="append", type=parse_variant,
                   default=[], metavar="LABEL[@CHECKOUT][:KEY=VALUE,...]",
                   help="compare variants, interleaved per configuration: another checkout "
                        "of the code (e.g. the commit before a change) and/or config "
                        "overrides; the first is the reference (repeatable)")
    p.add_argument("--external", dest="externals", action="append", type=parse_external,
                   default=[], metavar="LABEL=COMMAND",
                   help="another implementation's step as a variant, interleaved: COMMAND "
                        "(with {stage} {batch} {image_size} {preset} {steps} {warmup} filled "
                        "in) prints a last line {\"img_per_s\": ...} (repeatable)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat each configuration (per variant, interleaved)")
    p.add_argument("--no-identity-cache", action="store_true",
                   help="compute the real images' identity features in every step")
    p.add_argument("--onednn", action="store_true",
                   help="compare, interleaved: the package's oneDNN default, oneDNN off "
                        "(TF_ENABLE_ONEDNN_OPTS=0) and, on an AVX-512 CPU, both capped at "
                        "AVX2 (ONEDNN_MAX_CPU_ISA=AVX2); also lists the oneDNN kernels each "
                        "runs")
    p.add_argument("--quick", action="store_true",
                   help="stages 2 and 3 of exprgan-small, batch 16, no identity network, "
                        "3 timed steps, with --onednn unless --variant is given (about "
                        "5 minutes on 2 cores)")
    p.add_argument("--no-limit", action="store_true", help="skip the matmul measurement")
    p.add_argument("--pipeline", action="store_true",
                   help="also measure TrainingInputs images/s at each size")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="write a TensorBoard profile of 3 steps per configuration here")
    p.add_argument("--note", default="", help="free text for the report (e.g. load)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per configuration")
    p.add_argument("--out", default=os.path.join(RESULTS, "train_speed"),
                   help="output path without extension (.json and .md are written)")
    args = p.parse_args(argv)
    quick = dict(stages=[2, 3], presets=["exprgan"], sizes=["small"], batches=[16],
                 identity=["none"])
    full = dict(stages=[1, 2, 3], presets=["exprgan", "proposed"], sizes=["small", "full"],
                batches=[16, 48], identity=["none", "dlib_resnet"])
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.steps = args.steps or 3
        args.onednn = args.onednn or not args.variants
    if args.onednn:
        args.variants = args.variants + onednn_variants(_cpu_module().cpu_flags())
    variants = (args.variants or [dict(label="this", code=None, overrides=[], env={})]
                ) + args.externals
    own = [v for v in variants if not v.get("external")]

    result = dict(**run_header("train_speed.py", argv), machine=_machine(),
                  overrides=args.overrides, cache_identity=not args.no_identity_cache,
                  warmup=args.warmup, steps=args.steps or "5 (small) / 3 (full)",
                  rounds=args.rounds, variants=variants, note=args.note, runs=[])
    def measure_limits():  # per variant: its environment changes the matmul kernels
        for v in own:
            r = {}
            # one process per dtype: under an ISA cap without bfloat16 instructions
            # oneDNN has no bfloat16 matmul and TensorFlow aborts (seen with AVX2)
            for dtype in ("float32", "bfloat16"):
                got = _run_child("matmul", {"n": 4096, "code": v["code"], "dtypes": [dtype]},
                                 args.timeout, env=v.get("env"))
                if "error" in got:
                    got = {f"matmul_{dtype}_gflops": None,
                           f"{dtype}_error": got["error"].strip().splitlines()[-1][:300]}
                r.update(got)
            result.setdefault("limits", {}).setdefault(v["label"], []).append(r)
            print("limit", v["label"], json.dumps(r), flush=True)

    if not args.no_limit:
        measure_limits()
        result["limit"] = result["limits"][variants[0]["label"]][0]
    if args.onednn or any(v.get("env") for v in own):
        result["kernels"] = {}
        for v in own:
            result["kernels"][v["label"]] = _run_child("kernels", {"code": v["code"]},
                                                       args.timeout, env=v.get("env"))
            print("kernels", v["label"], json.dumps(result["kernels"][v["label"]]), flush=True)
    if args.pipeline:
        result["pipeline"] = {}
        for size in args.sizes:
            preset = "proposed" + ("-small" if size == "small" else "")
            result["pipeline"][size] = _run_child("pipeline", {"preset": preset, "batch": 48},
                                                  args.timeout)
            print("pipeline", size, json.dumps(result["pipeline"][size]), flush=True)
    for spec in configurations(args):
        for round_ in range(args.rounds):
            shift = round_ % len(variants)  # alternate the order: AB, BA, ...
            for v in variants[shift:] + variants[:shift]:
                run = dict(spec, warmup=args.warmup, code=v["code"],
                           overrides=args.overrides + v["overrides"],
                           steps=args.steps or (5 if spec["size"] == "small" else 3),
                           cache_identity=not args.no_identity_cache, profile=args.profile)
                if args.profile:
                    run["key"] = f"{spec['key']}_{v['label']}_r{round_}"
                r = (_run_external(v, run, args.timeout) if v.get("external")
                     else _run_child("train", run, args.timeout, env=v.get("env")))
                result["runs"].append({**spec, "variant": v["label"], "round": round_, **r})
                print(spec["key"], v["label"], json.dumps(r), flush=True)
                result["load_end"] = round(os.getloadavg()[0], 2)
                _save(result, args.out)  # after every run, so a long sweep can be watched
    result["load_end"] = round(os.getloadavg()[0], 2)
    print(_save(result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
