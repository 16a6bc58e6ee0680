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
from test_training import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}

FIT_MIRRORED = textwrap.dedent('''
    import sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_training import tiny_config, tiny_data, weights_of, quiet
    from exprgan_tf.training import Trainer, make_strategy
    images, labels = tiny_data()
    weights = {}
    for kind in ("default", "mirrored"):
        # Adam's epsilon = 1 makes its update proportional to the gradient: with the
        # default 1e-8, float noise in near-zero gradients becomes +-lr sign flips.
        t = Trainer(tiny_config(extra=["optimizer.epsilon=1.0", "optimizer.learning_rate=0.01"]),
                    sys.argv[2] + kind, 1, images, labels, batch_size=8,
                    strategy=make_strategy(kind), log=quiet)
        t.fit(epochs=1, max_steps=2)
        print(kind, t.strategy.num_replicas_in_sync, int(t.global_step), int(t.step_in_epoch))
        weights[kind] = weights_of(t)
    a, b = weights["default"], weights["mirrored"]
    print("MAXDIFF", max(float(np.max(np.abs(x - y))) for n in a for x, y in zip(a[n], b[n])))
''')


@pytest.mark.slow  # two trainers in a fresh process, one of them traced for 2 replicas
def test_fit_under_mirrored_on_two_logical_cpus_equals_the_single_device_fit(tmp_path):
    out = subprocess.run([sys.executable, "-c", FIT_MIRRORED, TESTS, str(tmp_path) + "/"],
                         capture_output=True, text=True, timeout=300, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "default 1 2 2" in out.stdout and "mirrored 2 2 2" in out.stdout, out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("MAXDIFF")][0]
    # 2 steps; the replicas sum their halves of the batch in another order: float noise
    assert float(line.split()[1]) < 1e-6, line
    assert tf.train.latest_checkpoint(rd.ckpt_dir(tmp_path / "mirrored", 1)).endswith("ckpt-2")


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
        env = {**ENV, "TMPDIR": str(tmp), "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        log = open(tmp_path / f"{tag}-{index}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER] + args + [
            "--strategy", "multiworker"], stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=tmp_path))
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


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """5 subjects x 6 expressions x 2 frames at 32 px: 48 training faces (4 subjects)."""
    root = tmp_path_factory.mktemp("data") / "faces"
    assert prepare_data.main(["--out", str(root), "--size", "32", "--num-subjects", "5",
                              "--frames", "2"]) == 0
    config = root.parent / "tiny.json"
    tiny_config().save(config)
    return root, config


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
