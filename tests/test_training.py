"""Training at tiny size: steps learn, stages chain, runs resume exactly, NaNs stop."""

import os
import re
import subprocess
import sys

import numpy as np
import scipy.ndimage
import pytest
import tensorflow as tf

import keras
from exprgan_tf import data
from exprgan_tf import preprocessing
from exprgan_tf import run_dir as rd
from exprgan_tf.cli import prepare_data
from exprgan_tf.preprocessing import preprocess_fn, to_display
from exprgan_tf.training import NonFiniteLossError, Trainer
from helpers import assert_same_weights, quiet, weights_of


@pytest.mark.parametrize("stage, keys", [(1, ("L_Q", "loss_D_img")),
                                         (2, ("loss_EG", "L1")),
                                         (3, ("loss_EG", "L1"))])
def test_each_stage_step_decreases_its_loss_on_a_fixed_batch(stage, keys, tmp_path, tiny_config,
                                                             tiny_data):
    keras.utils.set_random_seed(1)
    images, labels = tiny_data(8)
    cfg = tiny_config(extra=["optimizer.learning_rate=0.002"])
    t = Trainer(cfg, tmp_path, stage, images, labels, batch_size=8, log=quiet)
    batch = next(iter(t.inputs.epoch(0)))
    history = [t.step(batch) for _ in range(30)]
    for key in keys:
        first = np.mean([float(h[key]) for h in history[:3]])
        last = np.mean([float(h[key]) for h in history[-3:]])
        assert last < 0.9 * first, (key, first, last)
    assert t.step.trace_count == 1


@pytest.mark.slow  # three stages of training: about 40 s on 2 cores
def test_stage_chaining_restores_exactly_the_named_networks(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    cfg = tiny_config()
    t1 = Trainer(cfg, tmp_path, 1, images, labels, batch_size=8, log=quiet)
    t1.fit(epochs=1)
    w1 = weights_of(t1)
    messages = []
    t2 = Trainer(cfg, tmp_path, 2, images, labels, batch_size=8, log=messages.append)
    w2 = weights_of(t2)
    for name in ("decoder", "image_discriminator"):
        for a, b in zip(w1[name], w2[name]):
            np.testing.assert_array_equal(a, b)
    for name in ("encoder", "latent_discriminator"):  # fresh: differ from stage 1's
        assert any(not np.array_equal(a, b) for a, b in zip(w1[name], w2[name]))
    assert any("restored decoder, image_discriminator; encoder, latent_discriminator start "
               "fresh" in m for m in messages)
    assert int(t2.epoch) == 0 and int(t2.global_step) == 0
    t2.fit(epochs=1)
    w2 = weights_of(t2)
    t3 = Trainer(cfg, tmp_path, 3, images, labels, batch_size=8, log=quiet)
    w3 = weights_of(t3)
    for name in rd.NETWORK_NAMES:
        for a, b in zip(w2[name], w3[name]):
            np.testing.assert_array_equal(a, b)


def test_fresh_stage_says_it_found_nothing(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    messages = []
    Trainer(tiny_config(), tmp_path, 2, images, labels, batch_size=8, log=messages.append)
    assert any("no checkpoint found" in m and "runs stage 1 first" in m for m in messages)


# opt-in (CI's second step): 70-80 s per stage on an AVX2 CPU, where the fast suite went
# past its 10-minute bar with it; tests/test_run_safety.py resumes in the fast suite
@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 3])
def test_kill_and_resume_equals_an_uninterrupted_run(stage, tmp_path, tiny_config, tiny_data):
    tf.config.experimental.enable_op_determinism()
    images, labels = tiny_data()
    # with the learning rate falling over epoch 2 (rates 1, 2/3, 1/3 of the base; see
    # the lr_decay test below), so the resume must also pick the schedule up mid-line
    cfg = tiny_config(extra=[f"training.stage{stage}.lr_decay_epochs=1"])

    def fresh(path):
        keras.utils.set_random_seed(7)  # identical initial weights in both runs
        return Trainer(cfg, path, stage, images, labels, batch_size=8, log=quiet)

    straight = fresh(tmp_path / "a")
    straight.fit(epochs=2)
    expected = weights_of(straight)

    part = fresh(tmp_path / "b")
    part.fit(epochs=2, max_steps=4)  # stops mid-epoch 2 (3 steps per epoch), on the line
    assert (int(part.epoch), int(part.step_in_epoch)) == (1, 1)
    del part  # "killed": a new process would rebuild everything from the run dir
    keras.utils.set_random_seed(99)  # different init, must be overwritten by the restore
    resumed = Trainer(cfg, tmp_path / "b", stage, images, labels, batch_size=8, log=quiet)
    assert (int(resumed.epoch), int(resumed.step_in_epoch)) == (1, 1)
    resumed.fit(epochs=2)
    assert_same_weights(expected, weights_of(resumed))


def test_lr_decay_epochs_lower_the_rate_each_step(tmp_path, tiny_config, tiny_data):
    # a resume keeps the line: test_kill_and_resume_equals_an_uninterrupted_run
    images, labels = tiny_data()
    cfg = tiny_config(extra=["training.stage3.lr_decay_epochs=1"])
    lr = cfg.optimizer.learning_rate
    messages = []
    straight = Trainer(cfg, tmp_path, 3, images, labels, batch_size=8, log=messages.append)
    # 3 steps per epoch: epoch 1 at the full rate, epoch 2 on the line towards 0
    rates = [straight.learning_rate_at(e, s, 2) for e in (0, 1) for s in range(3)]
    np.testing.assert_allclose(rates, lr * np.array([1, 1, 1, 1, 2 / 3, 1 / 3]), rtol=1e-12)
    straight.fit(epochs=2)
    assert any("falls linearly from 0.0002 towards 0 over epoch 2 "
               "(training.stage3.lr_decay_epochs=1)" in m for m in messages), messages
    for opt in straight.optimizers.values():  # the rate the last step's update used
        assert float(tf.convert_to_tensor(opt.learning_rate)) == pytest.approx(lr / 3, rel=1e-6)


def test_lr_decay_epochs_must_be_a_whole_number_of_epochs(tiny_config):
    with pytest.raises(ValueError, match=r"training.stage3.lr_decay_epochs=-1: expected an "
                                         r"integer >= 0 \(0: a constant learning rate\)"):
        tiny_config(extra=["training.stage3.lr_decay_epochs=-1"])


def test_trace_count_stays_one_and_files_are_written(tmp_path, capsys, tiny_config, tiny_data):
    images, labels = tiny_data()
    cfg = tiny_config(extra=["training.sample_every=1"])
    t = Trainer(cfg, tmp_path, 2, images, labels, batch_size=8, log=quiet)
    rows = t.fit(epochs=3)
    # pytest's capture is not a terminal: one plain progress line per epoch, no control codes
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\b" not in out and "\r" not in out
    assert len([line for line in out.splitlines() if line.startswith("3/3 - ")]) == 3, out
    assert t.step.trace_count == 1
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert int(t.global_step) == 9
    files = set(os.listdir(tmp_path))
    assert {"config.json", "history.csv", "loss_curves.png", "samples", "logs", "ckpt"} <= files
    assert sorted(os.listdir(tmp_path / "samples")) == [
        f"stage2_epoch000{e}.png" for e in (1, 2, 3)]
    sheet = t.sample_sheet()
    assert sheet.shape == (7, 8, 32, 32, 3) and sheet.dtype == np.uint8  # inputs + 6 rows
    shown = to_display(preprocess_fn(cfg.preprocess)(images[:1])).numpy()[0]
    np.testing.assert_array_equal(sheet[0, 0], shown)  # the top row is the input faces


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    t = Trainer(tiny_config(), tmp_path, 2, images, labels, batch_size=8, log=quiet)
    t.fit(epochs=1)
    good = t.manager.latest_checkpoint
    t.inputs.images[:] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"Non-finite loss in stage 2, epoch 2, step 1: "
                                                 r"\{'L1': nan"):
        t.fit(epochs=2)
    assert t.manager.latest_checkpoint == good
    assert tf.train.latest_checkpoint(rd.ckpt_dir(tmp_path, 2)) == good


def test_changed_architecture_in_same_run_dir_is_refused(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    Trainer(tiny_config(), tmp_path, 1, images, labels, batch_size=8, log=quiet)
    with pytest.raises(ValueError, match=r"changed: model.latent_dim"):
        Trainer(tiny_config(extra=["model.latent_dim=20"]), tmp_path, 1, images, labels,
                batch_size=8, log=quiet)


def test_bad_inputs_are_refused(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    with pytest.raises(ValueError, match=r"images must have shape \[N, 32, 32, 3\]"):
        Trainer(tiny_config(), tmp_path, 1, images[:, :16], labels, batch_size=8, log=quiet)
    with pytest.raises(ValueError, match=r"fewer than one batch. Received: batch_size=64"):
        Trainer(tiny_config(), tmp_path, 1, images, labels, batch_size=64, log=quiet)


@pytest.mark.slow  # two scripts/train.py processes on the built-in faces: about 50 s
def test_train_script_ctrl_c_saves_and_the_same_command_resumes(tmp_path, tiny_config):
    """scripts/train.py on the built-in faces: SIGINT mid-run saves a checkpoint and
    exits 130 (not 0: a script can tell it did not finish); running the same command
    again resumes from it."""
    import signal

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = tmp_path / "tiny.json"
    tiny_config().save(config)
    run = tmp_path / "run"
    cmd = [sys.executable, os.path.join(repo, "scripts", "train.py"), "--stage", "1",
           "--config", str(config), "--run-dir", str(run), "--epochs", "500",
           "--batch-size", "16"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=tmp_path)
    lines = []
    for line in proc.stdout:  # the epoch loop has begun: the Ctrl-C handler is installed
        lines.append(line)
        if line.startswith("Epoch 1/500"):
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    text = "".join(lines) + out
    assert proc.returncode == 130, text[-2000:]
    assert "Interrupt received" in text
    assert "Run the same command to resume." in text
    saved = tf.train.latest_checkpoint(rd.ckpt_dir(run, 1))
    assert saved is not None

    again = subprocess.run(cmd + ["--max-steps", "1"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"Resuming stage 1 from {saved}" in again.stdout


@pytest.mark.slow  # the built-in faces and their partners rendered: about 40 s
def test_train_script_renders_and_names_the_posed_partners(tmp_path, tiny_config):
    """With posed partners at intensity 1, scripts/train.py --stage 2 renders every
    training face in the five other expressions (1296 x 5) and says so before training."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = tmp_path / "tiny.json"
    tiny_config(extra=["training.stage2.losses.paired=1", "training.pair_pose=input",
                       "training.pair_intensities=[1]"]).save(config)
    cmd = [sys.executable, os.path.join(repo, "scripts", "train.py"), "--stage", "2",
           "--config", str(config), "--run-dir", str(tmp_path / "run"), "--max-steps", "1"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert ("Paired term: 6480 rendered partners (each training face's subject in the "
            "other expressions, in that face's pose, at intensity 1).") in out.stdout


@pytest.mark.slow  # the built-in faces rendered at six frames per sequence: about 40 s
def test_train_script_trains_on_whole_sequences(tmp_path, tiny_config):
    """training.frames=6 makes scripts/train.py train on six frames of every built-in
    sequence, neutral to peak (72 subjects x 6 expressions x 6), and say so."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = tmp_path / "tiny.json"
    tiny_config(extra=["training.frames=6", "training.codes=intensity"]).save(config)
    cmd = [sys.executable, os.path.join(repo, "scripts", "train.py"), "--stage", "2",
           "--config", str(config), "--run-dir", str(tmp_path / "run"), "--max-steps", "1"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "6 frames per sequence from neutral to peak ..." in out.stdout
    assert "2592 training and 144 test images" in out.stdout


@pytest.mark.slow  # two trainings and a resume: about 40 s on 2 cores
def test_streamed_folder_trains_and_resumes_to_the_in_memory_weights(tmp_path, tiny_config):
    """The faces prepare_data.py wrote, streamed file by file (cache limit 0), stopped
    mid-epoch and resumed by a new Trainer, end with the weights of an uninterrupted
    run on the same faces in memory (exactly: the same batches, deterministic ops)."""
    tf.config.experimental.enable_op_determinism()
    root = tmp_path / "faces"  # 1 training subject: 18 faces, 2 steps of 8 per epoch
    assert prepare_data.main(["--out", str(root), "--size", "32", "--num-subjects", "2"]) == 0
    images, labels, _ = data.load_split(str(root), "train", 32)
    paths, _, _ = data.list_split(str(root), "train")
    cfg = tiny_config()

    def fresh(run, source, seed=7, **kw):
        keras.utils.set_random_seed(seed)
        return Trainer(cfg, tmp_path / run, 2, source, labels, batch_size=8, log=quiet, **kw)

    straight = fresh("memory", images)
    straight.fit(epochs=2)
    expected = weights_of(straight)
    part = fresh("streamed", paths, cache_bytes=0)
    assert part.inputs.streamed
    np.testing.assert_array_equal(part.sample_images, images[:8])  # read from the files
    part.fit(epochs=2, max_steps=3)  # stops mid-epoch 2 and saves
    assert (int(part.epoch), int(part.step_in_epoch)) == (1, 1)
    del part
    resumed = fresh("streamed", paths, seed=99, cache_bytes=0)
    assert (int(resumed.epoch), int(resumed.step_in_epoch)) == (1, 1)
    resumed.fit(epochs=2)
    assert_same_weights(expected, weights_of(resumed))
    # A file that cannot be read mid-run stops fit() with a message naming it.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    resumed.inputs.paths = np.array([str(bad)] * len(paths))
    with pytest.raises(ValueError, match=f"Cannot read the training image {bad} "):
        resumed.fit(epochs=3)
    assert int(resumed.global_step) == 4


def _tiny_identity_net():
    inp = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, strides=2, name="id_conv")(inp)
    b = keras.layers.GlobalAveragePooling2D(name="id_pool")(keras.layers.ReLU()(a))
    model = keras.Model(inp, [a, keras.layers.Reshape((1, 1, 4))(b)])
    model.trainable = False
    return model


@pytest.mark.slow  # two trainers with an identity network: about 30 s
def test_cached_identity_features_leave_the_loss_unchanged(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    cfg = tiny_config(extra=["training.stage2.losses.identity=1.0"])
    results = []
    for cache in (True, False):
        keras.utils.set_random_seed(5)
        ident = _tiny_identity_net()
        t = Trainer(cfg, tmp_path / str(cache), 2, images, labels, batch_size=8,
                    identity_features=ident, cache_identity=cache, log=quiet)
        assert (t.inputs.identity_cache is not None) == cache
        batch = next(iter(t.inputs.epoch(1)))  # epoch 1 has flipped images (seeded)
        assert ("identity_features" in batch) == cache
        losses = [t.step(batch) for _ in range(2)]
        results.append(([float(l["L_id"]) for l in losses], weights_of(t)["encoder"]))
    (l_cached, w_cached), (l_plain, w_plain) = results
    assert l_cached[0] > 0
    np.testing.assert_allclose(l_cached, l_plain, rtol=1e-5)
    for a, b in zip(w_cached, w_plain):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("cache", [True, False])
def test_identity_loss_on_part_of_the_batch(cache, tmp_path, tiny_config, tiny_data):
    """identity.images_per_step=3: L_id and L_id_pair are measured on the first 3 faces
    of the batch, against the features of those same faces (cached or computed)."""
    from exprgan_tf import losses
    images, labels = tiny_data(8)
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    cfg = tiny_config(extra=["training.stage2.losses.identity=1.0", "identity.images_per_step=3",
                             "training.stage2.losses.paired=1", "training.stage2.losses.edit=0",
                             "training.pair_intensities=[]"])
    keras.utils.set_random_seed(5)
    ident = _tiny_identity_net()
    t = Trainer(cfg, tmp_path, 2, images, labels, batch_size=8, identity_features=ident,
                log=quiet, pair_groups=groups, cache_identity=cache)
    assert t.step.identity_images == 3 and (t.inputs.identity_cache is not None) == cache
    batch, out = _step_then_restore(t)
    z = t.nets.encoder(batch["image"], training=True)
    real = [f[:3] for f in ident(batch["image"])]
    for key, code in (("L_id", batch["code"]), ("L_id_pair", batch["pair_code"])):
        fake = t.nets.decoder([z, code], training=True)
        part = float(losses.identity_feature_loss(real, ident(fake[:3])))
        whole = float(losses.identity_feature_loss(ident(batch["image"]), ident(fake)))
        np.testing.assert_allclose(float(out[key]), part, rtol=1e-4)
        assert abs(part - whole) > 1e-4 * whole
    with pytest.raises(ValueError, match=r"identity.images_per_step=-1: expected an "
                                         r"integer >= 0"):
        tiny_config(extra=["identity.images_per_step=-1"])


def test_identity_cache_respects_its_memory_budget(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data()
    messages = []
    from exprgan_tf.training import TrainingInputs
    inputs = TrainingInputs(images, labels, tiny_config(), 8,
                            identity_features=_tiny_identity_net(), identity_cache_bytes=1000,
                            log=messages.append)
    assert inputs.identity_cache is None
    assert "computing them in every step instead" in messages[0]


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
@pytest.mark.parametrize("stage", [1, 2])
def test_mismatch_term_is_real_faces_under_wrong_labels(stage, tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data(8)
    # BatchNorm D: a spectral-norm D advances its power iteration at every training call,
    # so a recomputation after the step would see another normalised kernel.
    extra = [f"training.stage{stage}.losses.mismatch=0.5", "model.dimg_normalization=batch",
             "training.stage2.losses.edit=0"]
    t = Trainer(tiny_config(extra=extra), tmp_path, stage, images, labels, batch_size=8,
                log=quiet)
    batch = next(iter(t.inputs.epoch(0)))
    dimg = t.nets.image_discriminator
    before = [w.numpy().copy() for w in dimg.weights]
    out = t.step(batch)
    # Recompute the term by hand on the weights the step saw (BN in training mode).
    for w, v in zip(dimg.weights, before):
        w.assign(v)
    true = np.argmax(batch["label"].numpy(), -1)
    u0 = np.abs(batch["code"].numpy()[:, 0])
    wrong = (true + 1 + np.minimum((u0 * 5).astype(int), 4)) % 6
    assert (wrong != true).all() and len(set(wrong - true)) > 1
    logit, _ = dimg([batch["image"], tf.one_hot(wrong, 6)], training=True)
    expected = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.zeros_like(logit), logit)))
    np.testing.assert_allclose(float(out["D_img_mismatch"]), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(out["loss_D_img"]),
        float(out["D_img_real"] + out["D_img_fake"] + out["L_Q"]) + 0.5 * expected, rtol=1e-5)
    # with weight 0 (the original) the term is neither computed nor counted
    t0 = Trainer(tiny_config(extra=[f"training.stage{stage}.losses.mismatch=0",
                                    "training.stage2.losses.edit=0"]),
                 tmp_path / "plain", stage, images, labels, batch_size=8, log=quiet)
    out0 = t0.step(next(iter(t0.inputs.epoch(0))))
    assert float(out0["D_img_mismatch"]) == 0.0
    np.testing.assert_allclose(float(out0["loss_D_img"]), float(
        out0["D_img_real"] + out0["D_img_fake"] + out0["L_Q"]), rtol=1e-6)


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_dimg_blur_shows_d_img_every_image_through_the_gaussian(tmp_path, tiny_config,
                                                                tiny_data):
    from exprgan_tf.preprocessing import gaussian_blur
    images, labels = tiny_data(8)
    extra = ["training.dimg_blur=1.5", "model.dimg_normalization=batch",
             "training.stage3.losses.mismatch=0.5", "training.stage3.losses.edit=0.5"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 3, images, labels, batch_size=8,
                log=quiet)
    assert t.step.dimg_blur == 1.5
    batch, out = _step_then_restore(t)
    dimg = t.nets.image_discriminator
    blurred = gaussian_blur(batch["image"], 1.5)
    assert float(tf.reduce_max(tf.abs(blurred - batch["image"]))) > 1e-3
    for x, name in ((blurred, "blurred"), (batch["image"], "sharp")):
        logit, _ = dimg([x, batch["label"]], training=True)
        real = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            tf.ones_like(logit), logit)))
        if name == "blurred":  # what the step's D_img saw
            np.testing.assert_allclose(float(out["D_img_real"]), real, rtol=1e-5)
        else:
            assert abs(float(out["D_img_real"]) - real) > 1e-4
    with pytest.raises(ValueError, match=r"training.dimg_blur=-1.0: expected a number >= 0"):
        tiny_config(extra=["training.dimg_blur=-1"])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_dimg_min_intensity_shows_d_img_only_the_strong_faces(tmp_path, tiny_config,
                                                             tiny_data):
    """``training.dimg_min_intensity``: D_img's real, mismatch and reconstruction terms
    are the means over the faces coded at that intensity or above; L_Q still sees all."""
    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    t = np.array([0.0, 0.2, 0.8, 1.0, 0.4, 0.9, 0.6, 0.7], np.float32)
    extra = ["model.dimg_normalization=batch", "training.codes=intensity",
             "training.dimg_min_intensity=0.7", "training.stage2.losses.mismatch=0.5",
             "training.stage2.losses.edit=0"]
    tr = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                 log=quiet, intensities=t)
    assert tr.step.dimg_min_intensity == 0.7
    batch, out = _step_then_restore(tr)
    strong = np.abs(batch["code"].numpy()[:, 0]) >= np.float32(0.7)
    assert strong.sum() == 4                                  # 0.8, 1.0, 0.9, 0.7
    dimg = tr.nets.image_discriminator
    z = tr.nets.encoder(batch["image"], training=True)
    fake = tr.nets.decoder([z, batch["code"]], training=True)
    true = np.argmax(batch["label"].numpy(), -1)
    wrong = tf.one_hot((true + 1 + np.minimum(
        (np.abs(batch["draw"].numpy()[:, 0]) * 5).astype(int), 4)) % 6, 6)

    def bce(x, label, target):
        logit, _ = dimg([x, label], training=True)
        per_face = tf.nn.sigmoid_cross_entropy_with_logits(
            tf.fill(tf.shape(logit), target), logit).numpy().reshape(8, -1).mean(1)
        return per_face[strong].mean(), per_face.mean()

    for key, args in (("D_img_real", (batch["image"], batch["label"], 1.0)),
                      ("D_img_fake", (fake, batch["label"], 0.0)),
                      ("G_img", (fake, batch["label"], 1.0)),
                      ("D_img_mismatch", (batch["image"], wrong, 0.0))):
        counted, every = bce(*args)
        np.testing.assert_allclose(float(out[key]), counted, rtol=1e-4, err_msg=key)
        assert abs(counted - every) > 1e-4, key                # the weak faces are left out
    with pytest.raises(ValueError, match=r"training.dimg_min_intensity=0.5: expected 0 "
                                         r"unless training.codes='intensity'"):
        tiny_config(extra=["training.dimg_min_intensity=0.5"])
    with pytest.raises(ValueError, match=r"training.dimg_min_intensity=1.5: expected a "
                                         r"number in \[0, 1\]"):
        tiny_config(extra=["training.codes=intensity", "training.dimg_min_intensity=1.5"])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_r1_penalises_d_img_gradient_on_the_real_faces(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data(8)
    extra = ["model.dimg_normalization=batch", "training.stage3.losses.r1=2.5",
             "training.stage3.losses.mismatch=0.5", "training.stage3.losses.edit=0"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 3, images, labels, batch_size=8,
                log=quiet)
    batch, out = _step_then_restore(t)
    x = tf.convert_to_tensor(batch["image"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit, _ = t.nets.image_discriminator([x, batch["label"]], training=True)
        total = tf.reduce_sum(logit)
    grad = tape.gradient(total, x)
    r1 = 0.5 * float(tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])))
    assert r1 > 1e-4
    np.testing.assert_allclose(float(out["D_img_r1"]), r1, rtol=1e-4)
    np.testing.assert_allclose(float(out["loss_D_img"]), float(
        out["D_img_real"] + out["D_img_fake"] + out["L_Q"] + 0.5 * out["D_img_mismatch"]
        + 2.5 * out["D_img_r1"]), rtol=1e-5)
    # Off (every preset): logged as 0 and left out of D_img's loss.
    t0 = Trainer(tiny_config(extra=extra[:1]), tmp_path / "off", 3, images, labels,
                 batch_size=8, log=quiet)
    out0 = t0.step(next(iter(t0.inputs.epoch(0))))
    assert float(out0["D_img_r1"]) == 0.0
    with pytest.raises(ValueError, match=r"training.stage3.losses.r1=-1.0: expected a number >= 0"):
        tiny_config(extra=["training.stage3.losses.r1=-1"])


def test_gradient_term_is_the_weighted_edge_l1_of_both_decodes(tmp_path, tiny_config,
                                                              tiny_data):
    """``losses.gradient``: ``L_grad`` / ``L_grad_pair`` are the mean |differences of
    adjacent pixels of the target - those of the decode|, each weighted by the mean
    expression-region weight of its two pixels, and join loss_EG as the config says."""
    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    extra = ["training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "training.stage2.losses.q=1", "training.stage2.losses.gradient=0.3",
             "training.stage2.losses.mismatch=0", "model.dimg_normalization=batch",
             "training.pair_intensities=[]", "training.expression_regions=3"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups)
    w = t.step.pixel_weights.numpy()
    batch, out = _step_then_restore(t)
    z = t.nets.encoder(batch["image"], training=True)

    def edge_l1(real, fake):
        r, f = real.astype(np.float64), fake.astype(np.float64)
        dy = np.abs(np.diff(r, axis=1) - np.diff(f, axis=1)) * (w[1:] + w[:-1]) / 2
        dx = np.abs(np.diff(r, axis=2) - np.diff(f, axis=2)) * (w[:, 1:] + w[:, :-1]) / 2
        return (dy.mean() + dx.mean()) / 2

    recon = t.nets.decoder([z, batch["code"]], training=True).numpy()
    edit = t.nets.decoder([z, batch["pair_code"]], training=True).numpy()
    grad = edge_l1(batch["image"].numpy(), recon)
    grad_pair = edge_l1(batch["pair_image"].numpy(), edit)
    np.testing.assert_allclose(float(out["L_grad"]), grad, rtol=1e-4)
    np.testing.assert_allclose(float(out["L_grad_pair"]), grad_pair, rtol=1e-4)
    assert grad > 0.01 and grad_pair > 0.01
    expected = (float(out["L1"] + out["L_id"] + out["L_Q"]) + 0.3 * grad
                + 0.5 * (float(out["L1_pair"]) + 0.3 * grad_pair))
    np.testing.assert_allclose(float(out["loss_EG"]), expected, rtol=1e-4)
    # off (the default): logged as 0 and not computed
    off = Trainer(tiny_config(extra=extra[:3] + extra[4:]), tmp_path / "off", 2, images,
                  labels, batch_size=8, log=quiet, pair_groups=groups)
    _, out = _step_then_restore(off)
    assert float(out["L_grad"]) == 0.0 and float(out["L_grad_pair"]) == 0.0


def _step_then_restore(trainer):
    """One step on the first batch, then the weights it started from again (BatchNorm
    statistics included), so a test can recompute the step's losses by hand."""
    batch = next(iter(trainer.inputs.epoch(0)))
    nets = trainer.nets.as_dict()
    before = {n: [w.numpy().copy() for w in net.weights] for n, net in nets.items()}
    out = trainer.step(batch)
    for n, net in nets.items():
        for w, v in zip(net.weights, before[n]):
            w.assign(v)
    return batch, out


def test_edit_code_targets_another_expression_at_the_same_intensities():
    from exprgan_tf.controller import sample_training_code
    from exprgan_tf.training.steps import edit_code, other_class

    labels = np.arange(600) % 6
    code = sample_training_code(labels, tf.constant([3, 4], tf.int64))
    onehot = tf.one_hot(labels, 6)
    target, code_t = edit_code(onehot, code, 6, 5)
    target, code_t = target.numpy(), code_t.numpy().reshape(600, 6, 5)
    assert (target != labels).all()
    # every other class is drawn, about equally often
    counts = np.bincount((target - labels) % 6, minlength=6)
    assert counts[0] == 0 and counts[1:].min() > 90, counts
    mags = np.abs(code.numpy()[:, :5])
    np.testing.assert_allclose(code_t[np.arange(600), target], mags)
    others = np.ones((600, 6), bool)
    others[np.arange(600), target] = False
    np.testing.assert_allclose(code_t[others].reshape(600, 5, 5), -np.repeat(mags[:, None], 5, 1))
    # the mismatch labels are drawn from another intensity: not the edit targets
    assert (other_class(onehot, code, 6).numpy() != target).mean() > 0.5


def test_edit_term_trains_decoded_edits(tmp_path, tiny_config, tiny_data):
    images, labels = tiny_data(8)
    t = Trainer(tiny_config(extra=["training.stage2.losses.edit=0.5",
                                   "training.stage2.losses.mismatch=0",
                                   "training.stage2.losses.q=0.5",
                                   "model.dimg_normalization=batch"]), tmp_path, 2, images,
                labels, batch_size=8, log=quiet)
    batch, out = _step_then_restore(t)
    from exprgan_tf.training.steps import edit_code
    target, code_t = edit_code(batch["label"], batch["code"], 6, 5)
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, code_t], training=True)
    logit, q = t.nets.image_discriminator([edit, tf.one_hot(target, 6)], training=True)
    g_edit = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.ones_like(logit), logit)))
    q_edit = float(tf.reduce_sum(tf.reduce_mean(
        tf.square(tf.reshape(q - code_t, [-1, 6, 5])), axis=[0, 2])))
    np.testing.assert_allclose(float(out["G_edit"]), g_edit, rtol=1e-4)
    np.testing.assert_allclose(float(out["L_Q_edit"]), q_edit, rtol=1e-4)
    plain = float(out["L1"] + out["L_id"] + 0.5 * out["L_Q"])  # weights 1, 1, 0.5
    # L_Q's weight scales L_Q on the edit as well
    np.testing.assert_allclose(float(out["loss_EG"]), plain + 0.5 * (g_edit + 0.5 * q_edit),
                               rtol=1e-4)


def test_pairs_are_same_group_other_expression_and_leave_other_arrays_alone(tiny_config):
    from exprgan_tf.training import TrainingInputs
    # noise images, so that a flip shows
    images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(24) % 6
    groups = np.array(["a", "b"] * 12, dtype="<U6")  # a: labels 0, 2, 4; b: 1, 3, 5
    groups[-1] = "lonely"                        # no partner in another expression
    cfg = tiny_config()
    messages = []
    plain = TrainingInputs(images, labels, cfg, 8).epoch_arrays(3)
    inputs = TrainingInputs(images, labels, cfg, 8, pair_groups=groups, log=messages.append)
    paired = inputs.epoch_arrays(3)
    assert "1 of 24 training images have no partner" in messages[0]
    for key in plain:
        np.testing.assert_array_equal(plain[key], paired[key])
    pre = inputs.images
    flipped = np.array([not np.array_equal(paired["image"][i], pre[j]) for i, j in
                        enumerate(_positions(paired["image"], pre))])
    partner = _positions(paired["pair_image"], pre)
    me = _positions(paired["image"], pre)
    pair_labels = np.argmax(paired["pair_code"].reshape(-1, 6, 5)[:, :, 0], -1)
    np.testing.assert_array_equal(labels[partner], pair_labels)
    np.testing.assert_array_equal(labels[partner], paired["pair_target"])
    np.testing.assert_allclose(np.abs(paired["pair_code"]), 1.0)
    for i, (a, b) in enumerate(zip(me, partner)):
        if groups[a] == "lonely":
            assert b == a
        else:
            assert groups[b] == groups[a] and labels[b] != labels[a]
        # a partner is flipped exactly when its face is
        assert np.array_equal(paired["pair_image"][i], pre[b][:, ::-1] if flipped[i] else pre[b])
    assert flipped.any() and not flipped.all()
    # a partner is drawn among all candidates, not always the first
    assert len({(a, b) for a, b in zip(me, partner)}) > 12
    with pytest.raises(ValueError, match="no image a partner"):
        TrainingInputs(images, labels, cfg, 8, pair_groups=np.arange(24).astype(str))


def _positions(batch_images, pre):
    """Index in ``pre`` of every image of ``batch_images`` (or of its mirror image)."""
    out = []
    for img in batch_images:
        hits = [j for j, p in enumerate(pre)
                if np.array_equal(img, p) or np.array_equal(img, p[:, ::-1])]
        assert len(hits) == 1
        out.append(hits[0])
    return np.array(out)


def test_paired_term_is_l1_to_the_partner_of_the_decoded_edit(tmp_path, tiny_config, tiny_data):
    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    # With training.expression_regions both pixel terms weigh each pixel by where the
    # faces of one subject differ between expressions (the blend test below checks
    # the plain mean).
    extra = ["training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "training.stage2.losses.q=1",
             "training.stage2.losses.mismatch=0", "model.dimg_normalization=batch",
             "training.pair_intensities=[]", "training.expression_regions=3"]
    with pytest.raises(ValueError, match="needs the subject of every training face"):
        Trainer(tiny_config(extra=extra), tmp_path / "x", 2, images, labels, batch_size=8,
                log=quiet)
    with pytest.raises(ValueError, match="training.clean_targets=true needs the clean render"):
        Trainer(tiny_config(extra=extra + ["training.clean_targets=true"]), tmp_path / "y", 2,
                images, labels, batch_size=8, log=quiet, pair_groups=groups)
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups)
    # the map by hand: mean |face - its subject's mean face|, mirrored, smoothed, mean 1
    x = t.inputs.images.astype(np.float64)
    dev = np.mean([np.abs(x[g] - x[g].mean(0)).mean(axis=(0, 3))
                   for g in (slice(0, 4), slice(4, 8))], axis=0)
    m = scipy.ndimage.gaussian_filter((dev + dev[:, ::-1]) / 2, 1.0, mode="reflect")
    w = t.step.pixel_weights.numpy()
    np.testing.assert_allclose(w[..., 0], (1 + 3 * m / m.mean()) / 4, rtol=1e-5)
    assert w.shape == (32, 32, 1) and abs(w.mean() - 1) < 1e-5 and w.max() > 1.2 * w.min()
    assert os.path.exists(tmp_path / "expression_regions.png")
    batch, out = _step_then_restore(t)
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"]], training=True)
    recon = t.nets.decoder([z, batch["code"]], training=True)
    expected = float(np.mean(w * np.abs(batch["pair_image"].numpy() - edit.numpy())))
    np.testing.assert_allclose(float(out["L1_pair"]), expected, rtol=1e-4)
    np.testing.assert_allclose(
        float(out["L1"]), np.mean(w * np.abs(batch["image"].numpy() - recon.numpy())),
        rtol=1e-4)
    plain = float(out["L1"] + out["L_id"] + out["L_Q"])  # stage-2 weights 1, 1, 1
    np.testing.assert_allclose(float(out["loss_EG"]), plain + 0.5 * expected, rtol=1e-4)
    # stage 1 has no paired term: no groups needed
    Trainer(tiny_config(extra=extra), tmp_path / "s1", 1, images, labels, batch_size=8,
            log=quiet)
    with pytest.raises(ValueError, match=r"training.expression_regions=-1.0: expected a "
                                         r"number >= 0"):
        tiny_config(extra=["training.expression_regions=-1"])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_blend_decoder_trains_on_the_face_it_edits(tmp_path, tiny_config):
    """A blend G decodes the reconstruction and the paired edit over the faces it is
    trained to give back (here, with preprocess.sharpen_targets off, the faces without
    the unsharp mask): with its mask at 1 it gives them back, so L1 is 0 and L1_pair is
    the distance from each such face to its partner."""
    images = np.random.default_rng(5).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    extra = ["model.decoder_output=blend", "training.stage2.losses.paired=1",
             "training.stage2.losses.edit=0", "training.pair_intensities=[]",
             "training.stage2.losses.mask=0.25", "preprocess.sharpen_targets=false"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups)
    mask = t.nets.decoder.get_layer("G_conv_mask")
    mask.set_weights([np.zeros_like(mask.get_weights()[0]), np.array([60.0], "float32")])
    batch, out = _step_then_restore(t)
    assert float(out["L1"]) < 1e-7
    assert np.abs(batch["target"].numpy() - batch["image"].numpy()).mean() > 0.05
    expected = np.mean(np.abs(batch["pair_image"].numpy() - batch["target"].numpy()))
    assert expected > 0.05
    np.testing.assert_allclose(float(out["L1_pair"]), expected, rtol=1e-5)
    # G_mask, the mean mask over the step's decodes (here 1), goes into E+G's loss with
    # losses.mask.
    np.testing.assert_allclose(float(out["G_mask"]), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        float(out["loss_EG"]),
        float(out["L1"] + out["L_id"] + out["L1_pair"] + out["L_id_pair"]) + 0.25, rtol=1e-5)
    with pytest.raises(ValueError, match=r"training.stage2.losses.mask=0.25: expected 0 "
                                         r"unless model.decoder_output='blend'"):
        tiny_config(extra=extra[1:])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_residual_decoder_trains_on_the_face_it_edits(tmp_path, tiny_config):
    """A residual G draws its change on the faces it is trained to give back: with no
    change it gives them back, so L1 is 0 and L1_pair is each such face's distance to
    its partner."""
    images = np.random.default_rng(5).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    extra = ["model.decoder_output=residual", "training.stage2.losses.paired=1",
             "training.stage2.losses.edit=0", "training.pair_intensities=[]"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups)
    out_layer = t.nets.decoder.get_layer("G_conv_out")
    out_layer.set_weights([np.zeros_like(w) for w in out_layer.get_weights()])
    batch, out = _step_then_restore(t)
    assert float(out["L1"]) < 1e-7
    face = batch.get("target", batch["image"]).numpy()
    expected = np.mean(np.abs(batch["pair_image"].numpy() - face))
    assert expected > 0.05
    np.testing.assert_allclose(float(out["L1_pair"]), expected, rtol=1e-5)



def test_decoder_that_sees_the_face_is_given_the_faces_it_edits(tmp_path, tiny_config,
                                                                 tiny_data):
    """G's face channels get the faces it is trained to give back: a stage-2 step moves
    the weights that read them (a zero face, as in stage 1, would leave them)."""
    images, labels = tiny_data(8)
    cfg = tiny_config(extra=["model.decoder_sees_face=true"])
    t = Trainer(cfg, tmp_path, 2, images, labels, batch_size=8, log=quiet)
    layer = t.nets.decoder.get_layer("G_conv_out")
    before = layer.kernel.numpy().copy()
    t.step(next(iter(t.inputs.epoch(0))))
    # G_conv_out reads [features, face, code]: the face is 3 channels after the features.
    face = slice(cfg.model.decoder_final_filters, cfg.model.decoder_final_filters + 3)
    assert np.abs(layer.kernel.numpy()[:, :, face] - before[:, :, face]).min() > 0


def test_unsharpened_targets_are_what_g_gives_back(tiny_config):
    """With preprocess.sharpen_targets off, E still sees the sharpened faces but the
    faces G is trained towards (the targets, the partners) are the faces without the
    unsharp mask, flipped as their inputs (the step's use of them: the blend test)."""
    from exprgan_tf.training import TrainingInputs
    images = np.random.default_rng(5).integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    pool = _pool(["s1", "s2"], (0.5, 1.0))
    sharp = tiny_config()
    assert sharp.preprocess.unsharp_mask and sharp.preprocess.sharpen_targets
    soft = tiny_config(extra=["preprocess.sharpen_targets=false"])
    both = {name: TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
            for name, cfg in (("sharp", sharp), ("soft", soft))}
    arr = {name: inputs.epoch_arrays(1) for name, inputs in both.items()}
    assert "target" not in arr["sharp"] and both["sharp"].targets is None
    np.testing.assert_array_equal(arr["soft"]["image"], arr["sharp"]["image"])
    rescaled = preprocessing.preprocess_image(images).numpy()
    me = _positions(arr["soft"]["image"], both["soft"].images)
    flipped = arr["soft"]["image"][:, 0, 0] != both["soft"].images[me, 0, 0]
    assert flipped.any(axis=-1).any() and not flipped.any(axis=-1).all()
    expected = np.where(flipped.any(axis=-1)[:, None, None, None],
                        rescaled[me, :, ::-1], rescaled[me])
    np.testing.assert_array_equal(arr["soft"]["target"], expected)
    assert np.abs(arr["soft"]["target"] - arr["soft"]["image"]).mean() > 0.05
    np.testing.assert_allclose(both["soft"].pair_images,
                               preprocessing.preprocess_image(pool["images"]).numpy())
    _positions(arr["soft"]["pair_image"], both["soft"].pair_images)  # every one found


def _pool(groups, intensities, size=32, seed=1):
    """A partner pool: every group in every expression at each intensity (noise faces)."""
    rows = [(g, e, t) for g in groups for e in range(6) for t in intensities]
    images = np.random.default_rng(seed).integers(0, 256, (len(rows), size, size, 3))
    return {"images": images.astype(np.uint8), "labels": np.array([r[1] for r in rows]),
            "groups": np.array([r[0] for r in rows]),
            "intensities": np.array([r[2] for r in rows], np.float32)}


def test_row_warps_move_each_face_its_target_partner_and_change_map_alike(tiny_config):
    """training.warp_rows=2: every sample's input, target, partner and partner's change
    map are read row by row along one displacement - whole-pixel shifts in [-2, 2] drawn
    at rows 0, 31/3, 62/3 and 31, linear between, rounded, edges repeated - drawn from a
    stream of its own (every other array as without the warp); identity features are
    then not cached."""
    from exprgan_tf.training import TrainingInputs
    images = np.random.default_rng(5).integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    pool = _pool(["s1", "s2"], (1.0,))
    pool["changes"] = np.random.default_rng(6).integers(0, 2, pool["images"].shape[:3],
                                                        dtype=np.uint8)
    settings = ["preprocess.sharpen_targets=false", "training.pair_pose=input",
                "training.pair_intensities=[1]", "training.pair_change=10"]
    arrays, plans = {}, {}
    for k in (0, 2):
        cfg = tiny_config(extra=settings + [f"training.warp_rows={k}"])
        inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
        arrays[k], plans[k] = inputs.epoch_arrays(1), inputs.epoch_plan(1)
    plain, warped, shifts = arrays[0], arrays[2], plans[2]["warp"]
    moved = ("image", "target", "pair_image", "pair_change")
    assert sorted(plain) == sorted(warped) and set(moved) <= set(plain)
    for key in set(plain) - set(moved):
        np.testing.assert_array_equal(plain[key], warped[key], err_msg=key)
    assert shifts.shape == (12, 4) and set(np.unique(shifts)) == {-2, -1, 0, 1, 2}
    knots = np.array([0, 31 / 3, 62 / 3, 31])
    y = np.arange(32)
    for b in range(len(shifts)):
        rows = np.clip(y - np.round(np.interp(y, knots, shifts[b])), 0, 31).astype(int)
        for key in moved:
            np.testing.assert_array_equal(warped[key][b], plain[key][b][rows], err_msg=key)
    assert not np.array_equal(plans[2]["warp"], TrainingInputs(
        images, labels, cfg, 4, pair_groups=groups, pair_pool=pool).epoch_plan(2)["warp"])
    messages = []
    inputs = TrainingInputs(images, labels, cfg, 4, identity_features=_tiny_identity_net(),
                            log=messages.append)
    assert inputs.identity_cache is None
    assert "not cached: training.warp_rows moves their rows" in messages[0]
    with pytest.raises(ValueError, match=r"training.warp_rows=5: expected an integer in "
                                         r"\[0, 4\]"):
        tiny_config(extra=["training.warp_rows=5"])


def test_pool_partners_are_coded_at_their_intensity(tiny_config, tiny_data):
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    pool = _pool(["s1", "s2", "unused"], (0.0, 0.5, 1.0))
    cfg = tiny_config(extra=["training.flip=false"])
    inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
    arr = inputs.epoch_arrays(0)
    plain = TrainingInputs(images, labels, cfg, 4).epoch_arrays(0)
    for key in plain:  # the pool changes nothing but the partner arrays
        np.testing.assert_array_equal(plain[key], arr[key])
    me = _positions(arr["image"], inputs.images)
    partner = _positions(arr["pair_image"], inputs.pair_images)
    np.testing.assert_array_equal(pool["groups"][partner], groups[me])
    assert (pool["labels"][partner] != labels[me]).all()
    np.testing.assert_array_equal(arr["pair_target"], pool["labels"][partner])
    code = arr["pair_code"].reshape(-1, 6, 5)
    full = arr["edit_code"].reshape(-1, 6, 5)
    rows = np.arange(len(partner))
    np.testing.assert_allclose(code[rows, arr["pair_target"]],
                               np.repeat(pool["intensities"][partner][:, None], 5, 1))
    np.testing.assert_allclose(full[rows, arr["pair_target"]], 1.0)
    np.testing.assert_allclose(np.abs(full), 1.0)
    with pytest.raises(ValueError, match="holds no partner for 6 training images"):
        TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=_pool(["s1"], (1.0,)))
    with pytest.raises(ValueError, match="pair_pool needs pair_groups"):
        TrainingInputs(images, labels, cfg, 4, pair_pool=pool)


def test_training_face_partners_are_coded_at_their_own_intensity(tiny_config, tiny_data):
    """Under training.codes=intensity a partner drawn from the training faces (no pool)
    is coded at its own intensity - with training.frames > 3 many are neutral or weak -
    and the edit term gets its expression at intensity 1 (edit_code)."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    t = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0] * 2, np.float32)
    cfg = tiny_config(extra=["training.flip=false", "training.codes=intensity"])
    inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, intensities=t)
    arr = inputs.epoch_arrays(0)
    me = _positions(arr["image"], inputs.images)
    partner = _positions(arr["pair_image"], inputs.images)
    np.testing.assert_array_equal(groups[partner], groups[me])
    np.testing.assert_array_equal(arr["pair_target"], labels[partner])
    rows = np.arange(len(partner))
    code = arr["pair_code"].reshape(-1, 6, 5)
    np.testing.assert_allclose(code[rows, arr["pair_target"]],
                               np.repeat(t[partner][:, None], 5, 1))
    assert (t[partner] < 1.0).any()  # the test would pass with every partner at 1
    np.testing.assert_allclose(arr["edit_code"].reshape(-1, 6, 5)[rows, arr["pair_target"]],
                               1.0)
    sampled = TrainingInputs(images, labels, tiny_config(extra=["training.flip=false"]), 4,
                             pair_groups=groups).epoch_arrays(0)
    assert "edit_code" not in sampled  # sampled codes: partners at intensity 1, as before
    np.testing.assert_allclose(np.abs(sampled["pair_code"]), 1.0)


def test_edit_term_reuses_the_peak_partners_decode_or_draws_its_own_intensity(
        tiny_config, tiny_data):
    """Partners all at intensity 1: no ``edit_code``, the edit term judges the paired
    decode itself (one decode less per step). ``training.edit_intensity=sampled``: each
    face's edit is its partner's expression at a test-time code of intensity t ~ U(0, 1)
    from a stream of its own, so every other array is unchanged."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    pool = _pool(["s1", "s2"], (1.0,))
    full = TrainingInputs(images, labels, tiny_config(), 4, pair_groups=groups,
                          pair_pool=pool).epoch_arrays(0)
    assert "edit_code" not in full
    np.testing.assert_allclose(np.abs(full["pair_code"]), 1.0)
    cfg = tiny_config(extra=["training.edit_intensity=sampled"])
    inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
    arr = inputs.epoch_arrays(0)
    for key in full:
        np.testing.assert_array_equal(full[key], arr[key])
    code = arr["edit_code"].reshape(-1, 6, 5)
    rows = np.arange(len(code))
    t = code[rows, arr["pair_target"], 0]
    np.testing.assert_allclose(code[rows, arr["pair_target"]], np.repeat(t[:, None], 5, 1))
    others = np.ones((len(code), 6), bool)
    others[rows, arr["pair_target"]] = False
    np.testing.assert_allclose(code[others],
                               np.broadcast_to(-np.repeat(t, 5)[:, None], (len(t) * 5, 5)))
    assert t.min() >= 0.0 and t.max() < 1.0 and len(np.unique(t)) == len(t)
    np.testing.assert_array_equal(inputs.epoch_arrays(0)["edit_code"], arr["edit_code"])
    assert not np.array_equal(inputs.epoch_arrays(1)["edit_code"], arr["edit_code"])
    with pytest.raises(ValueError, match=r"training.edit_intensity='half': expected one of "
                                         r"\['full', 'sampled'\]"):
        tiny_config(extra=["training.edit_intensity=half"])


def test_pair_shares_set_how_often_each_pool_intensity_is_drawn(tiny_config, tiny_data):
    """``training.pair_shares``: one draw picks a pool intensity with those shares, then a
    partner at it - still of the face's group and another expression, coded at it. A
    face with no candidate at the levels that have a share draws from what there is."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    base = ["training.flip=false", "training.pair_intensities=[0,1]"]

    def partner_levels(shares, pool, epochs):
        """The intensity of every face's partner and the group of the face, per draw."""
        cfg = tiny_config(extra=base + [f"training.pair_shares={shares}"])
        inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
        levels, whose = [], []
        for epoch in range(epochs):
            arr = inputs.epoch_arrays(epoch)
            me = _positions(arr["image"], inputs.images)
            partner = _positions(arr["pair_image"], inputs.pair_images)
            np.testing.assert_array_equal(pool["groups"][partner], groups[me])
            assert (pool["labels"][partner] != labels[me]).all()
            code = arr["pair_code"].reshape(-1, 6, 5)[np.arange(len(me)), arr["pair_target"]]
            np.testing.assert_allclose(code, np.repeat(pool["intensities"][partner][:, None],
                                                       5, 1))
            levels.append(pool["intensities"][partner])
            whose.append(groups[me])
        return np.concatenate(levels), np.concatenate(whose)

    pool = _pool(["s1", "s2"], (0.0, 1.0))
    neutral, _ = partner_levels("[1,4]", pool, 40)   # 480 draws, a share of 0.2 at t = 0
    assert abs((neutral == 0).mean() - 0.2) < 0.06, (neutral == 0).mean()
    assert (partner_levels("[0,1]", pool, 5)[0] == 1).all()
    assert (partner_levels("[1,0]", pool, 5)[0] == 0).all()
    lopsided = {k: np.concatenate([a, b]) for (k, a), b in   # s2 rendered at t = 0 only
                zip(_pool(["s1"], (0.0, 1.0)).items(), _pool(["s2"], (0.0,), seed=2).values())}
    levels, whose = partner_levels("[0,1]", lopsided, 3)
    np.testing.assert_array_equal(levels, np.where(whose == "s1", 1.0, 0.0))
    with pytest.raises(ValueError, match=r"training.pair_shares=\[1\]: expected one share "
                                         r"per training.pair_intensities entry \(\[0, 1\]\)"):
        tiny_config(extra=base + ["training.pair_shares=[1]"])
    with pytest.raises(ValueError, match=r"training.pair_shares=\[0, 0\]: expected numbers "
                                         r">= 0 with a positive sum"):
        tiny_config(extra=base + ["training.pair_shares=[0,0]"])


def test_posed_pool_partners_belong_to_their_own_face(tiny_config, tiny_data):
    """With ``sources`` (``training.pair_pose=input``) a face draws its partner only
    from the renders made in its own pose, never from another face of its group."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    groups = np.array(["s1"] * 6 + ["s2"] * 6)
    rows = [(k, e, t) for k in range(12) for e in range(6) if e != labels[k]
            for t in (0.5, 1.0)]
    noise = np.random.default_rng(3).integers(0, 256, (len(rows), 32, 32, 3))
    pool = {"images": noise.astype(np.uint8), "labels": np.array([r[1] for r in rows]),
            "groups": groups[[r[0] for r in rows]],
            "intensities": np.array([r[2] for r in rows], np.float32),
            "sources": np.array([r[0] for r in rows])}
    cfg = tiny_config(extra=["training.flip=false"])
    inputs = TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=pool)
    assert [len(c) for c in inputs.pairs] == [10] * 12  # 5 expressions x 2 intensities
    for k, c in enumerate(inputs.pairs):
        assert (pool["sources"][c] == k).all()
    arr = inputs.epoch_arrays(0)
    me = _positions(arr["image"], inputs.images)
    partner = _positions(arr["pair_image"], inputs.pair_images)
    np.testing.assert_array_equal(pool["sources"][partner], me)
    np.testing.assert_array_equal(arr["pair_target"], pool["labels"][partner])
    lost = dict(pool, sources=np.where(pool["sources"] == 3, 4, pool["sources"]))
    with pytest.raises(ValueError, match="holds no partner for 1 training images"):
        TrainingInputs(images, labels, cfg, 4, pair_groups=groups, pair_pool=lost)
    with pytest.raises(ValueError, match=r"sources must have one entry per pool face \(120\)"):
        TrainingInputs(images, labels, cfg, 4, pair_groups=groups,
                       pair_pool=dict(pool, sources=pool["sources"][:-1]))


def test_pair_change_weighs_l1_pair_where_each_partner_differs_from_its_face(
        tmp_path, tiny_config, tiny_data):
    """``training.pair_change=k``: each partner's L1 weighs its change map's pixels
    ``(1 + k) / (1 + k * mean(m))`` and the others ``1 / (1 + k * mean(m))``, with the
    map flipped as the partner is."""
    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    rows = [(k, e) for k in range(8) for e in range(6) if e != labels[k]]
    rng = np.random.default_rng(4)
    changes = np.zeros((len(rows), 32, 32), np.uint8)
    for i in range(len(rows)):  # a box on the left half, a different one per partner
        y, x = rng.integers(0, 24, 2)
        changes[i, y:y + 3 + i % 6, x // 2:x // 2 + 4] = 1
    pool = {"images": rng.integers(0, 256, (len(rows), 32, 32, 3)).astype(np.uint8),
            "labels": np.array([r[1] for r in rows]), "groups": groups[[r[0] for r in rows]],
            "intensities": np.ones(len(rows), np.float32),
            "sources": np.array([r[0] for r in rows]), "changes": changes}
    extra = ["training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "model.dimg_normalization=batch", "training.pair_intensities=[1]",
             "training.pair_pose=input", "training.pair_change=4"]
    with pytest.raises(ValueError, match=r"needs each partner's change map"):
        Trainer(tiny_config(extra=extra), tmp_path / "x", 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups,
                pair_pool={k: v for k, v in pool.items() if k != "changes"})
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups, pair_pool=pool)
    assert t.step.pair_change == 4.0
    batch, out = _step_then_restore(t)
    partner = _positions(batch["pair_image"].numpy(), t.inputs.pair_images)
    m = batch["pair_change"].numpy()[..., 0].astype(np.float64)
    flipped = np.array([np.array_equal(batch["pair_image"][i], t.inputs.pair_images[p][:, ::-1])
                        and not np.array_equal(batch["pair_image"][i], t.inputs.pair_images[p])
                        for i, p in enumerate(partner)])
    assert flipped.any() and not flipped.all()
    for i, p in enumerate(partner):   # each map is its partner's, flipped with it
        np.testing.assert_array_equal(m[i], changes[p][:, ::-1] if flipped[i] else changes[p])
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"]], training=True).numpy()
    w = (1 + 4 * m) / (1 + 4 * m.mean(axis=(1, 2), keepdims=True))
    expected = np.mean(w[..., None] * np.abs(batch["pair_image"].numpy() - edit))
    plain = np.mean(np.abs(batch["pair_image"].numpy() - edit))
    np.testing.assert_allclose(float(out["L1_pair"]), expected, rtol=1e-4)
    assert not np.isclose(expected, plain, rtol=3e-4)   # the weights are not all 1
    with pytest.raises(ValueError, match=r"training.pair_change=2.0: expected 0 unless "
                                         r"training.pair_pose='input'"):
        tiny_config(extra=["training.pair_change=2"])
    with pytest.raises(ValueError, match=r"training.pair_change=-1.0: expected a number >= 0"):
        tiny_config(extra=["training.pair_change=-1"])


def _own_pose_pool(labels, groups, seed):
    """A partner pool of noise images: every face in each expression but its own, at
    intensity 1, each rendered (``sources``) for that face."""
    rows = [(k, e) for k in range(len(labels)) for e in range(6) if e != labels[k]]
    rng = np.random.default_rng(seed)
    return {"images": rng.integers(0, 256, (len(rows), 32, 32, 3)).astype(np.uint8),
            "labels": np.array([r[1] for r in rows]), "groups": groups[[r[0] for r in rows]],
            "intensities": np.ones(len(rows), np.float32),
            "sources": np.array([r[0] for r in rows])}


def _hole_view_setup(tiny_config):
    """Eight faces of two subjects, a pool of each face's partners in its own pose (noise
    images), and the overrides of a hole G trained with them in stage 2."""
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    pool = _own_pose_pool(labels, groups, 9)
    extra = ["model.decoder_sees_face=true", "model.decoder_face_hole=true",
             "model.edit_regions=90", "model.decoder_hole_blur=2", "model.code_at=output",
             "training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "model.dimg_normalization=batch", "training.pair_intensities=[1]",
             "training.pair_pose=input"]
    return labels, groups, pool, extra


def test_hole_view_draws_another_partner_of_each_face_on_a_stream_of_its_own(tiny_config,
                                                                             tiny_data):
    """``training.hole_view=partner``: each sample also draws a view from its face's own
    partners, on a stream of its own (every other array as without it); the batches
    hold it, flipped as its face. Bad settings name what they need."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(8)
    labels, groups, pool, extra = _hole_view_setup(tiny_config)
    plans = [TrainingInputs(images, labels, tiny_config(extra=extra + more), 4,
                            pair_groups=groups, pair_pool=pool).epoch_plan(1)
             for more in ([], ["training.hole_view=partner"])]
    assert sorted(plans[1]) == sorted(list(plans[0]) + ["view_index"])
    for key in plans[0]:
        np.testing.assert_array_equal(plans[0][key], plans[1][key], err_msg=key)
    view = plans[1]["view_index"]
    np.testing.assert_array_equal(pool["sources"][view], plans[1]["index"])  # its own
    assert (pool["labels"][view] != labels[plans[1]["index"]]).all()
    assert (view != plans[1]["pair_index"]).any()
    inputs = TrainingInputs(images, labels, tiny_config(extra=extra + [
        "training.hole_view=partner"]), 4, pair_groups=groups, pair_pool=pool)
    arrays, plan = inputs.epoch_arrays(1), inputs.epoch_plan(1)
    for b, (v, flip) in enumerate(zip(plan["view_index"], plan["flip"])):
        expected = inputs.pair_images[v][:, ::-1] if flip else inputs.pair_images[v]
        np.testing.assert_array_equal(arrays["view_image"][b], expected)
    for settings, expected in (
            (["training.hole_view=partner"],
             "training.hole_view='partner': expected 'input' unless training.pair_pose="),
            (["training.pair_intensities=[1]", "training.pair_pose=input",
              "training.hole_view=partner"],
             "training.hole_view='partner': expected 'input' unless "
             "model.decoder_face_hole=true"),
            (extra + ["training.hole_view=mouth"],
             "training.hole_view='mouth': expected one of ['input', 'partner']")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            tiny_config(extra=settings)


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_hole_view_shows_g_the_partner_inside_its_hole_and_the_face_around_it(
        tmp_path, tiny_config, tiny_data):
    """With ``training.hole_view=partner`` every decode of the step sees the view inside
    G's hole and the face around it, while it is still compared with the face's own
    partner and the face itself."""
    images, _ = tiny_data(8)
    labels, groups, pool, extra = _hole_view_setup(tiny_config)
    cfg = tiny_config(extra=extra + ["training.hole_view=partner"])
    t = Trainer(cfg, tmp_path, 2, images, labels, batch_size=8, log=quiet,
                pair_groups=groups, pair_pool=pool)
    batch, out = _step_then_restore(t)
    view = batch["view_image"].numpy()
    _positions(view, t.inputs.pair_images)   # each view is a partner (or its mirror)
    target = batch.get("target", batch["image"]).numpy()
    hole = t.nets.decoder.get_layer("G_face_hole").regions.numpy()
    assert 0 < hole.mean() < 1
    seen = tf.constant(target + hole * (view - target))
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"], seen], training=True).numpy()
    np.testing.assert_allclose(float(out["L1_pair"]),
                               np.mean(np.abs(batch["pair_image"].numpy() - edit)), rtol=1e-4)
    fake = t.nets.decoder([z, batch["code"], seen], training=True).numpy()
    np.testing.assert_allclose(float(out["L1"]), np.mean(np.abs(target - fake)), rtol=1e-4)
    own = t.nets.decoder([z, batch["pair_code"], tf.constant(target)], training=True).numpy()
    assert np.abs(own - edit).max() > 1e-3   # G does see the view
    with pytest.raises(ValueError, match=r"training.hole_view=partner shows G's hole one of "
                                         r"the face's partners: it needs the paired term"):
        Trainer(tiny_config(extra=extra + ["training.hole_view=partner",
                                           "training.stage2.losses.paired=0"]),
                tmp_path / "x", 2, images, labels, batch_size=8, log=quiet)


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_pair_blur_compares_each_partner_with_its_decode_through_a_gaussian(
        tmp_path, tiny_config, tiny_data):
    """``training.pair_blur=sigma``: ``L1_pair`` is the L1 between the partner and G's
    paired decode, both blurred by the same Gaussian the package blurs with."""
    from exprgan_tf.preprocessing import gaussian_blur

    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    pool = _own_pose_pool(labels, groups, 5)
    extra = ["training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "model.dimg_normalization=batch", "training.pair_intensities=[1]",
             "training.pair_blur=1.5"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups, pair_pool=pool)
    assert t.step.pair_blur == 1.5
    batch, out = _step_then_restore(t)
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"]], training=True)
    partner = batch["pair_image"]
    expected = np.mean(np.abs(gaussian_blur(partner, 1.5).numpy()
                              - gaussian_blur(edit, 1.5).numpy()))
    plain = np.mean(np.abs(np.asarray(partner, np.float32) - edit.numpy()))
    np.testing.assert_allclose(float(out["L1_pair"]), expected, rtol=1e-4)
    assert expected < 0.8 * plain   # the blur averages the noise out of both
    with pytest.raises(ValueError, match=r"training.pair_blur=-1.0: expected a number >= 0"):
        tiny_config(extra=["training.pair_blur=-1"])
    with pytest.raises(ValueError, match=r"pair_blur must be >= 0. Received: pair_blur=-2"):
        t.step.rebuilt(pair_blur=-2)


def test_intensity_codes_code_each_face_at_its_own_intensity(tiny_config, tiny_data):
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(12)
    labels = np.arange(12) % 6
    t = np.linspace(0.0, 1.0, 12).astype(np.float32)
    cfg = tiny_config(extra=["training.flip=false", "training.codes=intensity"])
    arr = TrainingInputs(images, labels, cfg, 4, intensities=t).epoch_arrays(3)
    plain = TrainingInputs(images, labels, tiny_config(extra=["training.flip=false"]),
                           4).epoch_arrays(3)
    for key in plain:  # only the code changes; the sampled one is served as the draw
        if key != "code":
            np.testing.assert_array_equal(plain[key], arr[key])
    np.testing.assert_array_equal(arr["draw"], plain["code"])
    me = _positions(arr["image"], TrainingInputs(images, labels, cfg, 4,
                                                 intensities=t).images)
    code = arr["code"].reshape(-1, 6, 5)
    sign = np.where(np.arange(6)[None] == labels[me][:, None], 1.0, -1.0)
    np.testing.assert_allclose(code, np.broadcast_to(sign[:, :, None] * t[me][:, None, None],
                                                     code.shape), atol=1e-7)
    streamed = TrainingInputs(images, labels, cfg, 4, intensities=t, cache_bytes=0).epoch(3)
    assert streamed.element_spec["draw"].shape.as_list() == [4, 30]
    for key in ("code", "draw"):  # the streamed batches carry both, in the same order
        np.testing.assert_array_equal(np.concatenate([b[key].numpy() for b in streamed]),
                                      arr[key])
    with pytest.raises(ValueError, match="needs the expression intensity of every"):
        TrainingInputs(images, labels, cfg, 4)
    with pytest.raises(ValueError, match=r"intensities must be \[12\] numbers in \[0, 1\]"):
        TrainingInputs(images, labels, cfg, 4, intensities=t + 0.5)


def test_pair_min_intensity_draws_partners_from_the_strong_faces(tiny_config, tiny_data):
    """``training.pair_min_intensity``: each face's partners are its subject's faces in
    another expression at that intensity or above, coded at their own intensity."""
    from exprgan_tf.training import TrainingInputs
    images, _ = tiny_data(24)
    labels = np.arange(24) % 3                      # 3 expressions x 4 frames x 2 subjects
    t = np.tile(np.repeat([0.0, 0.4, 0.8, 1.0], 3), 2).astype(np.float32)
    groups = np.repeat(["s1", "s2"], 12)
    extra = ["training.codes=intensity", "training.pair_min_intensity=0.7"]
    inputs = TrainingInputs(images, labels, tiny_config(extra=extra), 4, intensities=t,
                            pair_groups=groups)
    anyframe = TrainingInputs(images, labels, tiny_config(extra=extra[:1]), 4,
                              intensities=t, pair_groups=groups)
    for strong, every, i in zip(inputs.pairs, anyframe.pairs, range(24)):
        np.testing.assert_array_equal(strong, every[t[every] >= 0.7])
        assert len(strong) == 4 and (groups[strong] == groups[i]).all()
        assert (labels[strong] != labels[i]).all()
    plan = inputs.epoch_plan(0)
    partner = plan["pair_index"]
    assert set(t[partner]) == {np.float32(0.8), 1.0}
    np.testing.assert_allclose(np.abs(plan["pair_code"]).max(axis=1), t[partner])
    with pytest.raises(ValueError, match=r"training.pair_min_intensity=0.5: expected 0 "
                                         r"unless training.codes='intensity' and"):
        tiny_config(extra=["training.pair_min_intensity=0.5"])


def test_with_a_pool_the_edit_term_judges_the_full_intensity_decode(tmp_path, tiny_config,
                                                                    tiny_data):
    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    extra = ["training.stage3.losses.paired=0.5", "training.stage3.losses.edit=0.25",
             "training.stage3.losses.q=0", "training.stage3.losses.mismatch=0",
             "training.stage3.losses.total_variation=0", "model.dimg_normalization=batch",
             "training.pair_intensities=[0.0, 0.5]"]
    cfg = tiny_config(extra=extra)
    with pytest.raises(ValueError, match="needs the partner faces at those intensities"):
        Trainer(cfg, tmp_path / "x", 3, images, labels, batch_size=8, log=quiet,
                pair_groups=groups)
    with pytest.raises(ValueError, match="pair_pose=input needs partners rendered in each"):
        Trainer(tiny_config(extra=extra + ["training.pair_pose=input"]), tmp_path / "y", 3,
                images, labels, batch_size=8, log=quiet, pair_groups=groups,
                pair_pool=_pool(["s1", "s2"], (0.0, 0.5)))
    t = Trainer(cfg, tmp_path, 3, images, labels, batch_size=8, log=quiet,
                pair_groups=groups, pair_pool=_pool(["s1", "s2"], (0.0, 0.5)))
    batch, out = _step_then_restore(t)
    assert float(np.abs(batch["pair_code"]).max()) == 0.5
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"]], training=True)
    l1 = float(np.mean(np.abs(batch["pair_image"].numpy() - edit.numpy())))
    np.testing.assert_allclose(float(out["L1_pair"]), l1, rtol=1e-4)
    full = t.nets.decoder([z, batch["edit_code"]], training=True)
    logit, _ = t.nets.image_discriminator([full, tf.one_hot(batch["pair_target"], 6)],
                                          training=True)
    g_edit = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        tf.ones_like(logit), logit)))
    np.testing.assert_allclose(float(out["G_edit"]), g_edit, rtol=1e-4)


def test_weight_average_follows_training_without_changing_it(tmp_path, tiny_config, tiny_data):
    """training.ema_momentum keeps a = m * a + (1 - m) * w of E and G after every step:
    training itself is bit for bit the same, the checkpoint carries the average, and
    load_networks gives it (or, asked, the trained weights)."""
    images, labels = tiny_data(16)
    cfg = tiny_config(extra=["training.ema_momentum=0.75"])
    t = Trainer(cfg, tmp_path / "avg", 1, images, labels, batch_size=8, log=quiet)
    assert t.editing_networks()[1] is t.average.averaged["decoder"]
    seen = [[w.numpy() for w in t.nets.decoder.weights]]
    for _ in range(2):  # one step per call; the second call resumes mid-epoch
        t.fit(epochs=1, max_steps=1)
        seen.append([w.numpy() for w in t.nets.decoder.weights])
    plain = Trainer(tiny_config(), tmp_path / "plain", 1, images, labels, batch_size=8,
                    log=quiet)
    assert plain.average is None and plain.editing_networks()[1] is plain.nets.decoder
    plain.fit(epochs=1)
    assert_same_weights(weights_of(plain), weights_of(t))
    expected = [0.75 * (0.75 * w0 + 0.25 * w1) + 0.25 * w2 for w0, w1, w2 in zip(*seen)]
    got = [w.numpy() for w in t.average.averaged["decoder"].weights]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    assert max(np.abs(g - w).max() for g, w in zip(got, seen[-1])) > 1e-4
    t.close()
    _, nets = rd.load_networks(tmp_path / "avg")
    for e, g in zip(expected, nets["decoder"].weights):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-7)
    _, raw = rd.load_networks(tmp_path / "avg", averaged=False)
    assert_same_weights({"d": seen[-1]}, {"d": [w.numpy() for w in raw["decoder"].weights]})
    # a run without an average that turns it on starts it from the restored weights
    plain.close()
    on = Trainer(cfg, tmp_path / "plain", 1, images, labels, batch_size=8, log=quiet)
    assert "has no weight average" in on.restored
    assert_same_weights({"d": seen[-1]},
                        {"d": [w.numpy() for w in on.average.averaged["decoder"].weights]})
    with pytest.raises(ValueError, match=r"training.ema_momentum=1.0: expected a number "
                                         r"in \[0, 1\)"):
        tiny_config(extra=["training.ema_momentum=1"])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_paste_regions_trains_g_through_the_editors_map(tmp_path, tiny_config, tiny_data):
    """``training.paste_regions``: the reconstruction G is trained on is ``r * G + (1 - r)
    * x`` with the editor's map ``r``, so L1 counts only what G draws inside it; stage 1
    (G from the prior) is left as it was."""
    from exprgan_tf.data.regions import expression_regions
    images, labels = tiny_data(8)
    extra = ["model.edit_regions=90", "training.paste_regions=true",
             "training.stage2.losses.edit=0", "model.dimg_normalization=batch"]
    t = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                log=quiet)
    r = expression_regions(32, 90.0)[..., None]
    np.testing.assert_array_equal(t.step.paste_regions.numpy(), r.astype(np.float32))
    batch, out = _step_then_restore(t)
    x = batch["image"].numpy()
    z = t.nets.encoder(batch["image"], training=True)
    g = t.nets.decoder([z, batch["code"]], training=True).numpy()
    pasted = r * g + (1 - r) * x
    np.testing.assert_allclose(float(out["L1"]), np.abs(x - pasted).mean(), rtol=1e-4)
    assert abs(np.abs(x - g).mean() - float(out["L1"])) > 0.05   # not G's whole face
    assert Trainer(tiny_config(extra=extra), tmp_path / "s1", 1, images, labels,
                   batch_size=8, log=quiet).step.paste_regions is None
    with pytest.raises(ValueError, match=r"training.paste_regions=True: expected false "
                                         r"unless model.edit_regions > 0"):
        tiny_config(extra=["training.paste_regions=true"])


# Stage 2 with Q taught by real faces (training.q_real) and the paired term's partners.
Q_REAL = ["model.dimg_normalization=batch", "training.codes=intensity",
          "training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
          "training.stage2.losses.mismatch=0", "training.stage2.losses.q=1",
          "training.pair_intensities=[]", "training.q_real=true"]


def _q_real_faces(tiny_data):
    """Eight faces of one subject: 4 expressions x 2 intensities (0.2, 1)."""
    images, _ = tiny_data(8)
    return (images, np.arange(8) % 4, np.repeat([0.2, 1.0], 4).astype(np.float32),
            np.array(["s1"] * 8))


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_q_real_teaches_q_real_codes_and_weak_partners_leave_l1(tmp_path, tiny_config,
                                                                tiny_data):
    """``training.q_real``: D_img's loss takes Q's regression on the real faces and the
    partners at their own codes, and the partners as real faces, instead of Q on G's
    faces. ``training.pair_l1_min_intensity``: L1_pair is the mean over the partners at
    least that intense. ``training.dimg_intensity_label``: D_img sees label x intensity."""
    images, labels, t, groups = _q_real_faces(tiny_data)
    extra = Q_REAL + ["training.pair_l1_min_intensity=0.7",
                      "training.dimg_intensity_label=true"]
    tr = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                 log=quiet, intensities=t, pair_groups=groups)
    assert tr.step.q_real and tr.step.pair_l1_min_intensity == 0.7
    assert tr.step.dimg_intensity_label
    batch, out = _step_then_restore(tr)
    dimg = tr.nets.image_discriminator
    z = tr.nets.encoder(batch["image"], training=True)
    fake = tr.nets.decoder([z, batch["code"]], training=True)
    own = np.abs(batch["code"].numpy()[:, :1])             # each face's intensity
    np.testing.assert_allclose(np.sort(own[:, 0]), np.repeat([0.2, 1.0], 4), rtol=1e-6)
    label = batch["label"] * own
    pair_label = tf.one_hot(batch["pair_target"], 6) * np.abs(batch["pair_code"].numpy()[:, :1])

    def q_loss(q, code):
        return float(tf.reduce_sum(tf.reduce_mean(
            tf.square(tf.reshape(q - code, [-1, 6, 5])), axis=[0, 2])))

    real_logit, q_faces = dimg([batch["image"], label], training=True)
    pair_logit, q_pairs = dimg([batch["pair_image"], pair_label], training=True)
    _, q_fake = dimg([fake, label], training=True)
    one_hot_logit, _ = dimg([batch["image"], batch["label"]], training=True)

    def bce_real(logit):
        return float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            tf.ones_like(logit), logit)))

    np.testing.assert_allclose(float(out["D_img_real"]), bce_real(real_logit), rtol=1e-4)
    assert abs(bce_real(real_logit) - bce_real(one_hot_logit)) > 1e-4
    q_real = 0.5 * (q_loss(q_faces, batch["code"]) + q_loss(q_pairs, batch["pair_code"]))
    pair_real = bce_real(pair_logit)
    np.testing.assert_allclose(float(out["L_Q_real"]), q_real, rtol=1e-4)
    np.testing.assert_allclose(float(out["D_img_pair_real"]), pair_real, rtol=1e-4)
    np.testing.assert_allclose(float(out["L_Q"]), q_loss(q_fake, batch["code"]), rtol=1e-4)
    np.testing.assert_allclose(float(out["loss_D_img"]), float(
        out["D_img_real"] + out["D_img_fake"]) + q_real + pair_real, rtol=1e-5)
    # L1_pair: the strong partners only
    strong = np.abs(batch["pair_code"].numpy()[:, 0]) >= np.float32(0.7)
    assert 0 < strong.sum() < 8
    edit = tr.nets.decoder([z, batch["pair_code"]], training=True).numpy()
    per_face = np.abs(batch["pair_image"].numpy() - edit).reshape(8, -1).mean(1)
    np.testing.assert_allclose(float(out["L1_pair"]), per_face[strong].mean(), rtol=1e-4)
    assert abs(per_face[strong].mean() - per_face.mean()) > 1e-4
    # off (the default): no such terms, Q learns from G's faces
    off = Trainer(tiny_config(extra=extra[:-3]), tmp_path / "off", 2, images, labels,
                  batch_size=8, log=quiet, intensities=t, pair_groups=groups)
    _, out0 = _step_then_restore(off)
    assert float(out0["L_Q_real"]) == 0.0 and float(out0["D_img_pair_real"]) == 0.0
    np.testing.assert_allclose(float(out0["loss_D_img"]), float(
        out0["D_img_real"] + out0["D_img_fake"] + out0["L_Q"]), rtol=1e-5)
    with pytest.raises(ValueError, match=r"training.q_real=True: expected false unless "
                                         r"training.codes='intensity'"):
        tiny_config(extra=["training.q_real=true"])
    with pytest.raises(ValueError, match=r"training.pair_l1_min_intensity=0.5: expected 0 "
                                         r"unless the partners' intensities are known"):
        tiny_config(extra=["training.pair_l1_min_intensity=0.5"])
    with pytest.raises(ValueError, match=r"training.q_real=true needs the paired term's "
                                         r"partners \(training.stage2.losses.paired > 0\)"):
        Trainer(tiny_config(extra=extra + ["training.stage2.losses.paired=0"]),
                tmp_path / "unpaired", 2, images, labels, batch_size=8, log=quiet,
                intensities=t, pair_groups=groups)
    with pytest.raises(ValueError, match=r"training.dimg_intensity_label=True: expected "
                                         r"false unless training.codes='intensity'"):
        tiny_config(extra=["training.dimg_intensity_label=true"])


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_partners_teach_q_alone_without_dimg_pair_real(tmp_path, tiny_config, tiny_data):
    """``training.dimg_pair_real=false`` (with ``q_real``): D_img's loss is its real and
    fake terms plus Q's regression on the real faces and partners; the partners' real
    term is logged but not trained on. With ``model.q_sees_label=false`` Q's reading of
    the real faces is the same whatever label D_img is shown."""
    images, labels, t, groups = _q_real_faces(tiny_data)
    extra = Q_REAL + ["model.q_sees_label=false", "training.dimg_pair_real=false"]
    tr = Trainer(tiny_config(extra=extra), tmp_path, 2, images, labels, batch_size=8,
                 log=quiet, intensities=t, pair_groups=groups)
    assert tr.step.q_real and not tr.step.dimg_pair_real
    batch, out = _step_then_restore(tr)
    dimg = tr.nets.image_discriminator
    _, q_faces = dimg([batch["image"], batch["label"]], training=True)
    _, q_shuffled = dimg([batch["image"], tf.roll(batch["label"], 1, 1)], training=True)
    np.testing.assert_array_equal(q_faces.numpy(), q_shuffled.numpy())
    assert float(out["D_img_pair_real"]) > 0 and float(out["L_Q_real"]) > 0
    np.testing.assert_allclose(float(out["loss_D_img"]), float(
        out["D_img_real"] + out["D_img_fake"] + out["L_Q_real"]), rtol=1e-5)
    with pytest.raises(ValueError, match=r"training.dimg_pair_real=False: expected true "
                                         r"unless training.q_real=true"):
        tiny_config(extra=["training.dimg_pair_real=false"])


@pytest.mark.slow  # the built-in faces loaded at 32 px and two steps: about 20 s
def test_a_second_interrupt_stops_at_once_and_names_the_newest_checkpoint(
        tmp_path, tiny_config, monkeypatch, capsys):
    """A second Ctrl-C during the save-and-stop of the first ends scripts/train.py at once
    with status 130 and a line saying which checkpoint the same command resumes from,
    not a traceback."""
    from exprgan_tf.cli import train
    from exprgan_tf.training import Trainer

    fit = Trainer.fit

    def two_steps_then_interrupted(self, epochs=None, max_steps=None):
        fit(self, max_steps=2)   # saves ckpt-2
        raise KeyboardInterrupt  # what the handler raises on the second signal

    monkeypatch.setattr(Trainer, "fit", two_steps_then_interrupted)
    config = tmp_path / "tiny.json"
    tiny_config().save(config)
    run = tmp_path / "run"
    assert train.main(["--stage", "1", "--config", str(config), "--run-dir", str(run),
                       "--batch-size", "16"]) == 130
    saved = rd.latest_checkpoint(run, 1)
    assert saved.endswith("ckpt-2")
    assert ("Stopped without saving (a second interrupt): the newest checkpoint of stage 1 "
            f"is {saved}; run the same command to resume from it.") in capsys.readouterr().err


def test_the_trainer_trains_a_stage_with_its_own_partner_settings(tiny_config, tmp_path):
    """A stage's ``pair_intensities`` / ``pair_shares`` reach the trainer's inputs, and
    the run directory's config.json records what the stage trained with."""
    from exprgan_tf.config import ExprGANConfig
    from exprgan_tf.run_dir import config_path

    cfg = tiny_config(extra=["training.pair_intensities=[1]", "training.pair_pose=input",
                             "training.stage3.pair_intensities=[0,1]",
                             "training.stage3.pair_shares=[1,3]",
                             "training.stage3.losses.paired=1"])
    images, labels, _, kw = data.training_data(cfg, 3, num_subjects=10)
    trainer = Trainer(cfg, tmp_path / "run", 3, images, labels, batch_size=8, log=quiet, **kw)
    np.testing.assert_array_equal(trainer.inputs.pair_shares, [1, 3])
    assert sorted(set(trainer.inputs.pair_intensities.tolist())) == [0.0, 1.0]
    assert [len(c) > 0 for c in trainer.inputs.pair_levels[0]] == [True, True]
    saved = ExprGANConfig.load(config_path(tmp_path / "run")).training
    assert (saved.pair_intensities, saved.pair_shares) == ((0, 1), (1, 3))
    assert saved.stage3.pair_intensities == (0, 1)


def test_a_run_directory_keeps_its_architecture_but_not_the_editors_settings(tiny_config,
                                                                             tiny_data,
                                                                             tmp_path):
    images, labels = tiny_data(8)
    cfg = tiny_config()
    Trainer(cfg, tmp_path, 1, images, labels, batch_size=8, log=quiet)
    # the editor's settings training never reads may change from stage to stage
    Trainer(cfg.override(["model.intensity_scale=0.5"]), tmp_path, 2, images, labels,
            batch_size=8, log=quiet)
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path} was trained with another architecture or pre-processing (changed: "
            "model.decoder_final_filters, preprocess.radius).")):
        Trainer(cfg.override(["model.decoder_final_filters=8", "preprocess.radius=2"]),
                tmp_path, 2, images, labels, batch_size=8, log=quiet)


@pytest.mark.slow  # trains with a setting no preset uses (README, "Tests")
def test_expression_term_compares_the_paired_decode_in_the_expression_network(
        tmp_path, tiny_config, tiny_data):
    """``losses.expression``: ``L_expr_pair`` is the mean |difference| of the partner's
    and the paired decode's maps in the frozen expression network, each map divided by
    its mean on the training faces, and joins loss_EG times ``paired``."""
    from exprgan_tf.evaluation.classifier import build_expression_classifier, save_classifier
    from exprgan_tf.training.expression_features import EXPRESSION_NETWORK

    images, _ = tiny_data(8)
    labels = np.arange(8) % 6
    groups = np.array(["s1"] * 4 + ["s2"] * 4)
    net = build_expression_classifier(32, filters=(4, 4, 4, 4), dense_units=8, seed=3)
    path = save_classifier(net, str(tmp_path / "expr.keras"))
    extra = ["training.stage2.losses.paired=0.5", "training.stage2.losses.edit=0",
             "training.stage2.losses.q=1", "training.stage2.losses.mismatch=0",
             "model.dimg_normalization=batch", "training.pair_intensities=[]",
             f"training.expression_network={path}", "training.stage2.losses.expression=0.4"]
    t = Trainer(tiny_config(extra=extra), tmp_path / "run", 2, images, labels, batch_size=8,
                log=quiet, pair_groups=groups)
    batch, out = _step_then_restore(t)
    z = t.nets.encoder(batch["image"], training=True)
    edit = t.nets.decoder([z, batch["pair_code"]], training=True).numpy()
    inner = keras.Model(net.inputs, [net.get_layer(n).output
                                     for n in EXPRESSION_NETWORK["layers"]])
    scale = [np.mean(m) for m in _as_list(inner.predict(images.astype("float32"), verbose=0))]

    def maps(x):
        return [m / s for m, s in zip(_as_list(inner.predict((x + 1) * 127.5, verbose=0)),
                                      scale)]

    expected = np.mean([np.mean(np.abs(a - b)) for a, b in
                        zip(maps(batch["pair_image"].numpy()), maps(edit))])
    assert expected > 0.01
    np.testing.assert_allclose(float(out["L_expr_pair"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(out["loss_EG"]), float(
        out["L1"] + out["L_id"] + out["L_Q"]) + 0.5 * (float(out["L1_pair"])
                                                       + 0.4 * expected), rtol=1e-4)
    # off (the default): logged as 0
    off = Trainer(tiny_config(extra=extra[:6]), tmp_path / "off", 2, images, labels,
                  batch_size=8, log=quiet, pair_groups=groups)
    _, out = _step_then_restore(off)
    assert float(out["L_expr_pair"]) == 0.0
    with pytest.raises(ValueError, match=r"training.stage3.losses.expression=0.1: expected 0 "
                                         r"unless training.expression_network names"):
        tiny_config(extra=["training.stage3.losses.expression=0.1"])


def _as_list(maps):
    return maps if isinstance(maps, list) else [maps]
