"""Speed options keep the numerics, and the FLOP counter behind
benchmarks/train_speed.py counts what a step runs."""

import numpy as np
import tensorflow as tf

import keras
from exprgan_tf.training import Trainer
from exprgan_tf.training.flops import graph_flops, step_flops
from test_training import quiet, tiny_config, tiny_data, weights_of


def _trainer(tmp_path, stage, extra=(), seed=11, **kwargs):
    keras.utils.set_random_seed(seed)
    images, labels = tiny_data()
    return Trainer(tiny_config(extra=list(extra)), tmp_path, stage, images, labels,
                   batch_size=8, log=quiet, **kwargs)


def _run(trainer, steps):
    batches = list(trainer.inputs.epoch(1).take(steps))
    return [{k: v.numpy() for k, v in trainer.step(b).items()} for b in batches]


def test_zero_weight_terms_left_out_give_bit_identical_steps(tmp_path):
    """Stage 2 has G_img, E_z and TV at weight 0: leaving them out of loss_EG removes
    their backward ops and changes no value and no weight, bit for bit."""
    tf.config.experimental.enable_op_determinism()
    runs = []
    for skip in (True, False):
        t = _trainer(tmp_path / str(skip), 2)
        t.step.skip_zero_weight_terms = skip  # before the first trace
        losses = _run(t, 3)
        batch = next(iter(t.inputs.epoch(0)))
        runs.append((losses, weights_of(t), step_flops(t.step, batch)["total"]))
    (l_skip, w_skip, f_skip), (l_all, w_all, f_all) = runs
    for a, b in zip(l_skip, l_all):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert l_skip[0]["TV"] > 0 and l_skip[0]["G_img"] > 0  # still computed and logged
    for name in w_skip:
        for a, b in zip(w_skip[name], w_all[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert f_skip < f_all  # the backward passes of the zero-weight terms are gone


def test_all_zero_weights_still_give_zero_gradients(tmp_path):
    t = _trainer(tmp_path, 1, ["training.stage1.losses.image_adversarial=0",
                               "training.stage1.losses.q=0"])
    before = weights_of(t)["decoder"]
    losses = _run(t, 1)[0]
    assert losses["loss_G"] == 0.0
    for a, b in zip(before, weights_of(t)["decoder"]):
        np.testing.assert_array_equal(a, b)  # Adam with zero gradients moves nothing


def test_flop_count_covers_forward_and_backward_and_skips_dead_ops():
    x = tf.ones((4, 3))
    w = tf.Variable(tf.ones((3, 2)))

    @tf.function
    def train_like(x):
        tf.matmul(x, tf.ones((3, 1000)))  # not needed by any output: not run, not counted
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.matmul(x, w))
        w.assign_sub(0.1 * tape.gradient(loss, w))
        return loss

    flops = graph_flops(train_like.get_concrete_function(x).graph)
    # forward x @ w and the weight gradient x^T @ dy: 2 * 4 * 3 * 2 FLOPs each
    assert flops["by_type"]["MatMul"] == 2 * (2 * 4 * 3 * 2)


def test_step_flops_counts_the_step_without_retracing_it(tmp_path):
    t = _trainer(tmp_path, 1)
    batch = next(iter(t.inputs.epoch(0)))
    t.step(batch)
    flops = step_flops(t.step, batch)
    assert t.step.trace_count == 1
    # G's convs, forward + both backprops, are in the count: at least 3x G's forward
    g_conv = sum(2 * np.prod(l.output.shape[1:]) * np.prod(l.kernel.shape[:3]) * 8
                 for l in t.nets.decoder.layers if isinstance(l, keras.layers.Conv2D))
    conv = sum(v for k, v in flops["by_type"].items() if k.startswith("Conv2D"))
    assert conv >= 3 * g_conv
