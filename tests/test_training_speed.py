"""Speed options keep the numerics: zero-weight terms left out, XLA, mixed precision;
and the FLOP counter behind benchmarks/train_speed.py counts what a step runs."""

import sys

import numpy as np
import pytest
import tensorflow as tf

import keras
from exprgan_tf.training import Trainer
from exprgan_tf.training.flops import graph_flops, step_flops
from exprgan_tf.training.precision import dtype_policy
from helpers import load_benchmark, quiet, tiny_config, tiny_data, weights_of


def _trainer(tmp_path, stage, extra=(), seed=11, **kwargs):
    keras.utils.set_random_seed(seed)
    images, labels = tiny_data()
    return Trainer(tiny_config(extra=list(extra)), tmp_path, stage, images, labels,
                   batch_size=8, log=quiet, **kwargs)


def _run(trainer, steps):
    batches = list(trainer.inputs.epoch(1).take(steps))
    return [{k: v.numpy() for k, v in trainer.step(b).items()} for b in batches]


@pytest.mark.slow  # two deterministic trainers plus a FLOP count: about 50 s
def test_zero_weight_terms_left_out_give_bit_identical_steps(tmp_path):
    """Stage 2 has G_img, E_z and TV at weight 0: leaving them out of loss_EG removes
    their backward ops and changes no value and no weight, bit for bit."""
    tf.config.experimental.enable_op_determinism()
    runs = []
    for skip in (True, False):
        t = _trainer(tmp_path / str(skip), 2)
        t.step = t.step.rebuilt(skip_zero_weight_terms=skip)
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
    # trainable weights only: the -small decoder's BatchNorm moving statistics update
    # on every training-mode forward pass, gradient or not
    before = [w.numpy().copy() for w in t.nets.decoder.trainable_weights]
    losses = _run(t, 1)[0]
    assert losses["loss_G"] == 0.0
    for a, b in zip(before, t.nets.decoder.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())  # Adam with zero gradients moves nothing


@pytest.mark.slow  # XLA compiles the whole stage-3 step: 30 s on a free core, 1-2 min shared
def test_xla_step_equals_the_plain_step(tmp_path):
    """jit_compile=True computes the same step as the plain one, every network included
    (stage 3), within float tolerance (XLA picks its own kernels). Adam's epsilon=1
    keeps its update proportional to the gradient, so float noise in tiny gradients
    is not blown up to +-lr."""
    extra = ["optimizer.epsilon=1.0", "optimizer.learning_rate=0.01"]
    runs = []
    for jit in (False, True):
        t = _trainer(tmp_path / str(jit), 3, extra + [f"training.jit_compile={str(jit).lower()}"])
        runs.append((_run(t, 2), weights_of(t), t.step.trace_count))
    (l_plain, w_plain, _), (l_xla, w_xla, traces) = runs
    assert traces == 1
    for a, b in zip(l_plain, l_xla):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for name in w_plain:
        for a, b in zip(w_plain[name], w_xla[name]):
            np.testing.assert_allclose(b, a, atol=1e-5, err_msg=name)


@pytest.mark.slow  # a precision option, like XLA: about 20 s
def test_mixed_bfloat16_step_is_finite_float32_and_keeps_float32_variables(tmp_path):
    t = _trainer(tmp_path, 3, ["training.precision=mixed_bfloat16"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    conv = t.nets.decoder.get_layer("G_conv0")
    assert (conv.dtype_policy.name, conv.compute_dtype, conv.variable_dtype) == (
        "mixed_bfloat16", "bfloat16", "float32")
    for name in ("E_tanh",):
        assert t.nets.encoder.get_layer(name).compute_dtype == "float32"
    assert t.nets.decoder.get_layer("G_tanh").compute_dtype == "float32"
    assert t.nets.image_discriminator.get_layer("D_img_fc2").compute_dtype == "float32"
    assert t.nets.latent_discriminator.get_layer("D_z_fc3").compute_dtype == "float32"
    assert all(type(o) is keras.optimizers.Adam for o in t.optimizers.values())
    before = weights_of(t)
    batch = next(iter(t.inputs.epoch(0)))
    out = t.step(batch)
    assert set(out) == set(t.step.keys)
    for k, v in out.items():
        assert v.dtype == tf.float32, k
        assert np.isfinite(v.numpy()), k
    variables = [v for net in t.nets.as_dict().values() for v in net.weights]
    variables += [v for o in t.optimizers.values() for v in o.variables
                  if "iteration" not in v.path]
    assert {v.dtype for v in variables} == {"float32"}
    fake = t.nets.decoder([batch["z_prior"], batch["code"]], training=False)
    assert fake.dtype == tf.float32
    after = weights_of(t)
    for name in ("encoder", "decoder", "latent_discriminator", "image_discriminator"):
        assert any(not np.array_equal(a, b) for a, b in zip(before[name], after[name])), name


@pytest.mark.slow  # a precision option, like XLA: about 20 s
def test_mixed_float16_skips_an_overflowing_step_and_trains(tmp_path):
    t = _trainer(tmp_path, 2, ["training.precision=mixed_float16"])
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer)
               for o in t.optimizers.values())
    assert t.nets.encoder.get_layer("E_ch0_conv1").compute_dtype == "float16"
    eg = t.optimizers["EG"]
    first = [w.numpy().copy() for w in t.nets.decoder.trainable_weights]
    # A scale of 2^40 overflows float16 in the backward pass: E+G's update is skipped
    # and its scale halved; the other optimisers keep their own scales.
    eg.dynamic_scale.assign(2.0 ** 40)
    for losses in _run(t, 1):
        assert all(np.isfinite(v) and v.dtype == np.float32 for v in losses.values())
    assert float(eg.dynamic_scale.numpy()) == 2.0 ** 39
    for a, b in zip(first, t.nets.decoder.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())
    eg.dynamic_scale.assign(2.0 ** 8)  # float16 holds this scale: the steps train
    for losses in _run(t, 3):
        assert all(np.isfinite(v) and v.dtype == np.float32 for v in losses.values())
    assert any(not np.array_equal(a, b.numpy())
               for a, b in zip(first, t.nets.decoder.trainable_weights))


def test_bad_precision_is_refused():
    with pytest.raises(ValueError, match=r"training.precision='float64': expected one of "
                                         r"\['float32', 'mixed_float16', 'mixed_bfloat16'\]"):
        tiny_config(extra=["training.precision=float64"])
    with pytest.raises(ValueError, match=r"Received: precision='half'"):
        with dtype_policy("half"):
            pass


def test_tensorboard_gets_every_loss_of_every_step(tmp_path):
    """The compiled scalar writer logs what the eager per-loss calls logged: each loss
    of each step under stage<N>/<name> at that step's global step."""
    import glob

    from exprgan_tf import run_dir as rd
    t = _trainer(tmp_path, 1)
    returned, step = [], t.step

    class Recording:
        def __call__(self, batch):
            out = step(batch)
            returned.append({k: float(v) for k, v in out.items()})
            return out

        def __getattr__(self, name):
            return getattr(step, name)

    t.step = Recording()
    t.fit(epochs=1)
    t.writer.flush()
    logged = {}
    for path in glob.glob(str(tmp_path / rd.LOGS_DIR / "stage1" / "*tfevents*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    logged[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    expected = {(f"stage1/{k}", i + 1): v for i, r in enumerate(returned) for k, v in r.items()}
    assert len(returned) == 3 and logged == expected


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


def test_conv_gradients_count_the_forward_multiply_adds():
    """A 'valid' 5x5 conv over a padded, subsampled 8x8 map (as DilatedConv2D):
    forward, input gradient and filter gradient are 2 * 4*4 outputs * 5*5*3 taps * 8
    filters * batch 2 each (TF's registry would count the gradients 4x: 8*8 inputs)."""
    x = tf.ones((2, 8, 8, 3))
    k = tf.Variable(tf.ones((5, 5, 3, 8)))

    @tf.function
    def train_like(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(tf.pad(x, [[0, 0], [4, 4], [4, 4], [0, 0]])[:, ::2, ::2], k, 1,
                             "VALID")  # DilatedConv2D's dilation 2, stride 2 (old form)
            loss = tf.reduce_sum(y)
        dx, dk = tape.gradient(loss, [x, k])
        return loss, dx, dk

    flops = graph_flops(train_like.get_concrete_function(x).graph)["by_type"]
    one = 2 * (2 * 4 * 4 * 8) * 5 * 5 * 3
    assert (flops["Conv2D"], flops["Conv2DBackpropInput"], flops["Conv2DBackpropFilter"]) == (
        one, one, one)


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


# --- benchmarks/train_speed.py --external: another implementation's step as a variant --

def test_external_variant_fills_placeholders_and_reads_its_last_json_line():
    speed = load_benchmark("train_speed")
    script = ("import json, sys; print('warming up'); "
              "print(json.dumps(dict(img_per_s=float(sys.argv[1]) * 10 + int(sys.argv[2]),"
              " argv=sys.argv[1:])))")
    v = speed.parse_external(
        f'port={sys.executable} -c "{script}" {{batch}} {{stage}} {{image_size}} '
        f'{{preset}} {{steps}} {{warmup}}')
    assert v["label"] == "port" and v["code"] is None and v["env"] == {}
    run = dict(stage=3, batch=16, size="full", preset="exprgan", steps=4, warmup=2)
    r = speed._run_external(v, run, timeout=60)
    assert r["img_per_s"] == 163.0
    assert r["argv"] == ["16", "3", "128", "exprgan", "4", "2"]
    assert r["external"].endswith("16 3 128 exprgan 4 2")


def test_external_variant_failures_say_what_was_expected():
    speed = load_benchmark("train_speed")
    for bad in ("no-equals-sign", "=cmd", "port=", "port=run --size {size}"):
        with pytest.raises(Exception, match="--external") as e:
            speed.parse_external(bad)
    assert "unknown placeholder 'size'" in str(e.value)
    v = speed.parse_external(f"port={sys.executable} -c \"print('no json here')\"")
    r = speed._run_external(v, dict(stage=2, batch=8, size="small", preset="exprgan",
                                     steps=1, warmup=0), timeout=60)
    assert "without a last line holding a JSON object with img_per_s" in r["error"]
    assert "no json here" in r["error"] and "img_per_s" not in {k for k in r if k != "error"}


def test_report_shows_an_external_variant_beside_the_reference(tmp_path):
    speed = load_benchmark("train_speed")
    cfg = dict(key="s3_exprgan_full_b16_none", stage=3, preset="exprgan", size="full",
               batch=16, identity="none")
    own = dict(cfg, variant="default", round=0, setup_s=1.0, trace_s=2.0, step_s=3.2,
               loop_s=3.3, host_ms=100.0, img_per_s=4.8, gflop_per_image=10.0, gflops=48.0,
               matmul_in_run_gflops=80.0, peak_rss_mib=900, trace_count=1, onednn=True,
               load_before=0.1, load_after=1.9)
    ext = dict(cfg, variant="port", round=0, img_per_s=3.2, external="python p.py",
               load_before=1.9, load_after=2.0)
    result = dict(date="d", command="c", load_start=0.0, load_end=2.0, note="",
                  machine=dict(cpu="cpu", cpu_count=2, cores_usable=2, python="3",
                               cpu_flags=["avx2"]),
                  warmup=1, steps=3, rounds=1, cache_identity=True, runs=[own, ext],
                  variants=[dict(label="default", code=None, overrides=[], env={}),
                            dict(label="port", code=None, overrides=[], env={},
                                 external="python p.py --batch {batch}")],
                  limits={"default": [dict(matmul_float32_gflops=100.0,
                                           matmul_bfloat16_gflops=None)]})
    md = speed.write_report(result, str(tmp_path / "r.md"))
    assert "`port` = another implementation, `python p.py --batch {batch}`" in md
    assert "Machine limit for `port`" not in md
    rows = [l for l in md.splitlines() if l.startswith("| 3 | exprgan")]
    header = next(l for l in md.splitlines() if l.startswith("| stage |"))
    assert all(r.count("|") == header.count("|") for r in rows)
    assert "| port | - | | | | | | 3.20 | - |" in rows[1]
    assert "| s3_exprgan_full_b16_none | 4.80, 60% | 3.20 (0.67x) |" in md


def test_onednn_variants_cap_at_avx2_only_where_there_is_more_to_give_up():
    speed = load_benchmark("train_speed")
    labels = lambda flags: [v["label"] for v in speed.onednn_variants(frozenset(flags))]
    assert labels({"avx2", "fma"}) == ["default", "onednn_off"]
    assert labels({"avx2", "avx512f"}) == ["default", "onednn_off", "onednn_avx2", "off_avx2"]
    off_avx2 = speed.onednn_variants({"avx512f"})[3]
    assert off_avx2["env"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}
