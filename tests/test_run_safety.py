"""Nothing lost, nothing silent (issue 14): the run-directory lock, checkpoints found from
their files, the fall-back past unusable checkpoints, finite-only checkpoints, the
configured learning rate on resume and seeded initial weights."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from exprgan_tf import run_dir as rd
from exprgan_tf.training import NonFiniteLossError, Trainer
from helpers import assert_same_weights, quiet, tiny_config, tiny_data, weights_of


# Under pytest-xdist every test of this module runs on one worker, so the module
# fixtures below are built once (setup.cfg: --dist loadgroup).
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A stage-1 run of 2 epochs x 3 steps: ckpt-3 and ckpt-6 (made once, copied per test)."""
    path = tmp_path_factory.mktemp("run") / "run"
    images, labels = tiny_data()
    t = Trainer(tiny_config(), path, 1, images, labels, batch_size=8, log=quiet)
    t.fit(epochs=2)
    t.close()
    return path


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def resume(path, extra=(), log=quiet):
    images, labels = tiny_data()
    return Trainer(tiny_config(extra=extra), path, 1, images, labels, batch_size=8, log=log)


def file_bytes(prefix):
    return {p: open(p, "rb").read() for p in rd.checkpoint_files(prefix)}


def test_missing_state_file_resumes_from_the_files_and_overwrites_nothing(trained_run, tmp_path):
    path = copy_of(trained_run, tmp_path)
    stage_dir = rd.ckpt_dir(path, 1)
    os.remove(os.path.join(stage_dir, "checkpoint"))
    before = {p: file_bytes(p) for p in rd.checkpoints_on_disk(stage_dir)}
    assert [os.path.basename(p) for p in before] == ["ckpt-6", "ckpt-3"]
    messages = []
    t = resume(path, log=messages.append)
    assert (int(t.epoch), int(t.global_step)) == (2, 6)
    assert any(f"Resuming stage 1 from {os.path.join(stage_dir, 'ckpt-6')}" in m
               and "checkpoint was found from its files" in m for m in messages), messages
    t.fit(epochs=3)
    assert [os.path.basename(p) for p in rd.checkpoints_on_disk(stage_dir)] == [
        "ckpt-9", "ckpt-6", "ckpt-3"]
    assert {p: file_bytes(p) for p in before} == before  # untouched


@pytest.mark.parametrize("damage", ["truncate data", "corrupt index"])
def test_unusable_newest_checkpoint_falls_back_to_the_older_one(trained_run, tmp_path, damage):
    path = copy_of(trained_run, tmp_path)
    newest = os.path.join(rd.ckpt_dir(path, 1), "ckpt-6")
    if damage == "truncate data":
        bad_file = newest + ".data-00000-of-00001"
        data = open(bad_file, "rb").read()
        open(bad_file, "wb").write(data[:len(data) // 2])
    else:
        bad_file = newest + ".index"
        data = bytearray(open(bad_file, "rb").read())
        data[20:40] = b"\0" * 20
        open(bad_file, "wb").write(bytes(data))
    # readers (load_editor, evaluate) warn, naming the file, and use ckpt-3
    with pytest.warns(rd.CheckpointWarning, match=rf"{newest} cannot be read \(.*"
                                                  rf"{os.path.basename(bad_file)}.*Using "
                                                  rf"the older .*ckpt-3"):
        assert rd.latest_checkpoint(path).endswith("ckpt-3")
    # the trainer resumes from ckpt-3 and keeps the bad files under another name
    messages = []
    t = resume(path, log=messages.append)
    assert int(t.global_step) == 3
    assert any("Skipped a checkpoint" in m and newest in m for m in messages), messages
    assert os.path.exists(bad_file + ".unusable") and not os.path.exists(bad_file)


def test_checkpoints_with_nan_are_not_good_and_none_good_is_refused(tmp_path):
    v = tf.Variable([1.0, 2.0])
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), tmp_path, max_to_keep=5)
    manager.save(checkpoint_number=1)
    v.assign([1.0, np.nan])
    manager.save(checkpoint_number=2)
    with pytest.warns(rd.CheckpointWarning, match=r"ckpt-2: tensor v/.ATTRIBUTES/"
                                                  r"VARIABLE_VALUE holds 1 NaN/Inf value"):
        assert rd.newest_good_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")
    os.remove(tmp_path / "ckpt-1.index")
    with pytest.raises(rd.CheckpointError, match=r"No usable checkpoint in .*ckpt-2: tensor v"):
        rd.newest_good_checkpoint(tmp_path)


def test_no_checkpoint_is_written_with_non_finite_weights(trained_run, tmp_path):
    path = copy_of(trained_run, tmp_path)
    t = resume(path)
    weight = t.nets.decoder.weights[0]
    weight.assign(np.full(weight.shape, np.nan, "float32"))
    with pytest.raises(NonFiniteLossError, match=rf"Non-finite weights in stage 1, epoch 3, "
                                                 rf"step 0: {weight.path}.*the last good "
                                                 rf"checkpoint is .*ckpt-6"):
        t._save(2)
    assert [os.path.basename(p) for p in rd.checkpoints_on_disk(rd.ckpt_dir(path, 1))] == [
        "ckpt-6", "ckpt-3"]


def test_a_changed_learning_rate_applies_on_resume(trained_run, tmp_path):
    path = copy_of(trained_run, tmp_path)
    messages = []
    t = resume(path, extra=["optimizer.learning_rate=1e-6"], log=messages.append)
    for opt in t.optimizers.values():
        assert float(opt.learning_rate) == pytest.approx(1e-6, rel=1e-6)
    assert any("optimizer.learning_rate is 1e-06 from now on (the checkpoint's optimisers "
               "had 0.0002)" in m for m in messages), messages
    assert rd.load_config(path).optimizer.learning_rate == 1e-6  # config.json tells the truth


def test_initial_weights_follow_the_seed(tmp_path):
    images, labels = tiny_data()

    def initial(name, seed):
        t = Trainer(tiny_config(extra=[f"training.seed={seed}"]), tmp_path / name, 1,
                    images, labels, batch_size=8, log=quiet)
        return weights_of(t)

    a, b, c = initial("a", 5), initial("b", 5), initial("c", 6)
    assert_same_weights(a, b)
    assert any(not np.array_equal(x, y) for x, y in zip(a["decoder"], c["decoder"]))


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from exprgan_tf.run_dir import RunDirLock
    RunDirLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_second_trainer_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
    path = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        images, labels = tiny_data(8)
        with pytest.raises(rd.RunDirBusyError,
                           match=rf"{path} is in use by another training process \(PID "
                                 rf"{holder.pid} on host .*\)\. Wait for it"):
            Trainer(tiny_config(), path, 1, images, labels, batch_size=8, log=quiet)
        assert not os.path.exists(rd.config_path(path))  # refused before writing anything
    finally:
        holder.kill()  # like kill -9: no clean release
        holder.wait()
    messages = []
    lock = rd.RunDirLock(path, warn=messages.append).acquire()
    try:
        assert len(messages) == 1 and f"left by PID {holder.pid}" in messages[0]
        assert "no longer running" in messages[0]
    finally:
        lock.release()
    assert open(path / rd.LOCK_FILE).read() == ""  # a clean release leaves no holder


def test_a_run_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "taken"
    path.write_text("x")
    with pytest.raises(ValueError, match=rf"The run directory {path} is a file"):
        rd.RunDirLock(path).acquire()
