"""Training beyond one device, end to end: ``Trainer.fit`` under MirroredStrategy on two
logical CPUs, and ``scripts/train.py --strategy multiworker`` with two worker processes
on 127.0.0.1 (only the chief writes the run directory)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from exprgan_tf import run_dir as rd
from exprgan_tf.cli import prepare_data
from helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}

# scripts/train.py's main(), printing a digest of the networks' weights when it is done.
WORKER = textwrap.dedent('''
    import hashlib, sys
    from exprgan_tf.training import trainer
    close = trainer.Trainer.close
    def close_and_report(self):
        digest = hashlib.sha256()
        for net in self.nets.as_dict().values():
            for w in net.weights:
                digest.update(w.numpy().tobytes())
        print("WEIGHTS", digest.hexdigest(), int(self.global_step), flush=True)
        close(self)
    trainer.Trainer.close = close_and_report
    from exprgan_tf.cli.train import main
    sys.exit(main(sys.argv[1:]))
''')


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_workers(args, tmp_path, tag):
    """Start two workers of one MultiWorkerMirroredStrategy cluster on loopback; each
    gets its own TMPDIR so what it leaves behind can be checked."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        tmp = tmp_path / f"tmp-{tag}-{index}"
        tmp.mkdir()
        env = {**ENV, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1", "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        log = open(tmp_path / f"{tag}-{index}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER] + args + [
            "--strategy", "multiworker"], stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=tmp_path))
        log.close()  # the worker has its own copy
    return procs


def _wait(procs, timeout=300):
    """Wait for every process; kill them all when one takes longer than ``timeout``."""
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs]


def _log(tmp_path, tag, index):
    return (tmp_path / f"{tag}-{index}.log").read_text()


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


@pytest.mark.parametrize("argv, message", [
    (["--cpu-replicas", "0", "--strategy", "mirrored"],
     "--cpu-replicas must be at least 1. Received: 0"),
    (["--cpu-replicas", "2"], "--strategy auto would use one device"),
])
def test_bad_cpu_replicas_are_refused_before_any_work(argv, message, tmp_path, capsys):
    from exprgan_tf.cli import train

    assert train.main(["--stage", "1", "--run-dir", str(tmp_path / "run")] + argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# Two replicas on two logical CPUs (set before TensorFlow initialises, hence a process
# of its own): replicas that restored alike pass, a replica that differs is named.
AGREE = textwrap.dedent('''
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from exprgan_tf.training.trainer import assert_replicas_agree
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    names = ("global step", "weight sum")
    print("SAME", assert_replicas_agree(strategy, lambda ctx: tf.constant([7.0, 0.25]), names).tolist())
    try:
        assert_replicas_agree(strategy, lambda ctx: tf.constant(
            [7.0 + ctx.replica_id_in_sync_group, 0.25]), names)
    except RuntimeError as e:
        print("RAISED", e)
''')


def test_workers_that_restored_different_checkpoints_are_stopped():
    out = subprocess.run([sys.executable, "-c", AGREE], capture_output=True, text=True,
                         env=ENV, timeout=120).stdout
    assert "SAME [[7.0, 0.25], [7.0, 0.25]]" in out
    assert ("RAISED the workers resumed from different checkpoints (replica 0: global step 7, "
            "weight sum 0.25; replica 1: global step 8, weight sum 0.25). Every worker must "
            "read the chief's run directory") in out


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """5 subjects x 6 expressions x 2 frames at 32 px: 48 training faces (4 subjects)."""
    root = tmp_path_factory.mktemp("data") / "faces"
    assert prepare_data.main(["--out", str(root), "--size", "32", "--num-subjects", "5",
                              "--frames", "2"]) == 0
    config = root.parent / "tiny.json"
    tiny_config().save(config)
    return root, config


@pytest.mark.slow  # two TensorFlow processes training together: about 55 s on 2 cores
def test_two_workers_on_loopback_train_alike_and_only_the_chief_writes(tmp_path, small_folder):
    data, config = small_folder
    run = tmp_path / "run"
    args = ["--stage", "1", "--config", str(config), "--data", str(data), "--run-dir",
            str(run), "--batch-size", "8", "--max-steps", "3"]
    codes = _wait(_start_workers(args, tmp_path, "mw"))
    logs = [_log(tmp_path, "mw", i) for i in range(2)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert all("2 replica(s)" in log for log in logs)
    digests = [[l for l in log.splitlines() if l.startswith("WEIGHTS")][0] for log in logs]
    assert digests[0] == digests[1] and digests[0].endswith(" 3"), digests
    # One clean run directory: the chief's files, one event file, no worker's.
    files = _files(run)
    events = [f for f in files if f.startswith(os.path.join(rd.LOGS_DIR, "stage1"))]
    assert len(events) == 1, files
    assert [f for f in files if f not in events] == [
        os.path.join("ckpt", "stage1", n) for n in
        ("checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index")] + [
        rd.CONFIG_FILE, rd.LOCK_FILE]
    # The other worker's temporary checkpoints are gone.
    assert _files(tmp_path / "tmp-mw-1") == [] and _files(tmp_path / "tmp-mw-0") == []


@pytest.mark.slow  # two fresh training processes, one of them traced for 2 replicas
def test_train_script_mirrored_on_two_logical_cpus_equals_the_single_device_run(
        tmp_path, small_folder):
    data, config = small_folder
    # Adam's epsilon = 1 makes its update proportional to the gradient: with the default
    # 1e-8, float noise in near-zero gradients becomes +-lr sign flips.
    args = ["--stage", "1", "--config", str(config), "--data", str(data), "--batch-size",
            "8", "--max-steps", "2", "--set", "optimizer.epsilon=1.0", "--set",
            "optimizer.learning_rate=0.01"]
    runs = {"default": [], "mirrored": ["--cpu-replicas", "2"]}
    procs = {kind: subprocess.Popen(
        [sys.executable, os.path.join(REPO, "scripts", "train.py"), *args, "--strategy",
         kind, "--run-dir", str(tmp_path / kind), *extra], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=ENV) for kind, extra in runs.items()}
    outs = {kind: p.communicate(timeout=400)[0] for kind, p in procs.items()}
    for kind, p in procs.items():
        assert p.returncode == 0, outs[kind][-2000:]
    assert "1 replica(s)" in outs["default"] and "2 replica(s)" in outs["mirrored"]
    readers = {kind: tf.train.load_checkpoint(rd.ckpt_dir(tmp_path / kind, 1) + "/ckpt-2")
               for kind in runs}
    names = [n for n in readers["default"].get_variable_to_shape_map()
             if n.startswith(("decoder/", "image_discriminator/"))]
    assert len(names) > 20
    worst = max(float(np.max(np.abs(readers["default"].get_tensor(n)
                                    - readers["mirrored"].get_tensor(n)))) for n in names)
    # 2 steps; the replicas sum their halves of the batch in another order: float noise
    assert worst < 1e-6, worst


def _wait_for(path, text, procs, timeout=300):
    """Wait until ``text`` is in the file ``path`` (False when a process ended first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in path.read_text():
            return True
        if any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.2)
    return False


@pytest.mark.slow  # three two-worker runs
def test_a_killed_worker_then_the_same_commands_resume_to_the_uninterrupted_weights(
        tmp_path, small_folder):
    """Worker 1 is killed with SIGKILL after the checkpoint of epoch 2 (of 4); the chief
    cannot go on without it and stops with exit status 1. Running the same two commands again
    resumes both from the chief's checkpoint and ends with the weights of a run that
    was never interrupted."""
    data, config = small_folder

    def args(run):
        return ["--stage", "1", "--config", str(config), "--data", str(data), "--run-dir",
                str(tmp_path / run), "--batch-size", "8", "--epochs", "4", "--set",
                "training.checkpoint_every=2"]

    plain = _start_workers(args("plain"), tmp_path, "plain")
    killed = _start_workers(args("killed"), tmp_path, "killed")
    saved = os.path.join(rd.ckpt_dir(tmp_path / "killed", 1), "ckpt-12")
    try:
        assert _wait_for(tmp_path / "killed-0.log", f"Saved {saved}", killed), \
            _log(tmp_path, "killed", 0)[-2000:]
        killed[1].send_signal(signal.SIGKILL)
    finally:
        _wait(killed, timeout=120)  # the chief is killed here if it does not stop
    assert killed[1].returncode == -signal.SIGKILL
    # The chief notices (its peer's heartbeats stop) and says what to do.
    assert killed[0].returncode == 1, _log(tmp_path, "killed", 0)[-2000:]
    assert "the cluster lost a worker" in _log(tmp_path, "killed", 0)
    assert "ckpt-24" not in _log(tmp_path, "killed", 0)  # it was stopped mid-run
    assert _wait(plain) == [0, 0], _log(tmp_path, "plain", 0)[-2000:]

    again = _start_workers(args("killed"), tmp_path, "again")
    assert _wait(again) == [0, 0], _log(tmp_path, "again", 0)[-2000:]
    for index in range(2):
        assert f"Resuming stage 1 from {saved}: epoch 2, step 0" in _log(tmp_path, "again", index)

    def digest(tag, index):
        return [l for l in _log(tmp_path, tag, index).splitlines() if l.startswith("WEIGHTS")][0]

    assert digest("again", 0) == digest("again", 1) == digest("plain", 0) == digest("plain", 1)
    assert digest("plain", 0).endswith(" 24")
    assert sorted(f for f in _files(tmp_path / "killed" / "ckpt")) == sorted(
        f for f in _files(tmp_path / "plain" / "ckpt"))
