"""Architecture tests. The golden parameter counts below were computed by hand from
docs/design.md, "Networks" (the original's layers), not read off the code:

Encoder "single", 128x128x3 -> 4x4x1024 -> 50:
  convs 5x5 with bias: 25*3*64+64 = 4864; 25*64*128+128 = 204928; 25*128*256+256 = 819456;
  25*256*512+512 = 3277312; 25*512*1024+1024 = 13108224  (sum 17414784)
  Dense 16384 -> 50: 819250                                     total 18234034
Encoder "dilated": two such conv stacks (34829568) + Dense 32768 -> 50 (1638450)
                                                                total 36468018
Decoder: Dense (50 + 8*30 = 290) -> 4*4*1024 with bias: 4767744
  3x3 convs without bias, input channels + 30 code channels:
  9*1054*512 = 4856832; 9*542*256 = 1248768; 9*286*128 = 329472; 9*158*64 = 91008;
  9*94*32 = 27072; 9*62*16 = 8928; 9*46*3 = 1242              total 11331066
D_z: 50*64+64 = 3264, 64*32+32 = 2080, 32*16+16 = 528, 16+1 = 17, BN offsets 64+32+16
                                                                trainable 6001
  + moving mean/var 2*(64+32+16) = 224                          total 6225
D_img (+ y of 6 after every layer), 128 -> 8x8:
  convs 25*9*16+16 = 3616; 25*22*32+32 = 17632; 25*38*64+64 = 60864; 25*70*128+128 = 224128
  Dense 8*8*134 = 8576 -> 1024: 8782848; logit 1030+1 = 1031; Q shared 1030*128+128 = 131968
  Q heads 6 * (128*64+64 + 64*5+5) = 51150
  BN offsets 16+32+64+128 + 1024 + 128 + 6*64 = 1776           trainable 9275349
  + moving mean/var 2*1776 = 3552                               total 9278901
"""

import re

import numpy as np
import pytest

import keras
from exprgan_tf.config import get_preset
from exprgan_tf.controller import intensity_code
from exprgan_tf.models import (build_decoder, build_encoder, build_image_discriminator,
                               build_latent_discriminator, build_networks, decode)
from helpers import plain_small

BUILDERS = {
    "encoder": build_encoder,
    "decoder": build_decoder,
    "latent_discriminator": build_latent_discriminator,
    "image_discriminator": build_image_discriminator,
}

GOLDEN = {  # preset, network -> (trainable, total)
    ("exprgan", "encoder"): (18234034, 18234034),
    ("proposed", "encoder"): (36468018, 36468018),
    ("exprgan", "decoder"): (11331066, 11331066),
    ("proposed", "decoder"): (11331066, 11331066),
    ("exprgan", "latent_discriminator"): (6001, 6225),
    ("exprgan", "image_discriminator"): (9275349, 9278901),
    ("proposed", "image_discriminator"): (9275349, 9278901),
    # the -small recipe's G: half widths, sees the face around its hole, reads the code
    # at its 32-channel output (non-trainable: BatchNorm statistics, the regions map)
    ("proposed-small", "decoder"): (1724991, 1734239),
    ("proposed-small", "encoder"): (8915634, 8915634),
}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_golden_parameter_counts(key):
    preset, net = key
    model = BUILDERS[net](get_preset(preset).model)
    assert (_trainable(model), model.count_params()) == GOLDEN[key]


def _inputs(cfg, net, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.uniform(-1, 1, (batch, cfg.image_size, cfg.image_size, 3)).astype("float32")
    z = rng.uniform(-1, 1, (batch, cfg.latent_dim)).astype("float32")
    code = rng.uniform(-1, 1, (batch, cfg.code_dim)).astype("float32")
    onehot = np.eye(cfg.num_classes, dtype="float32")[rng.integers(0, 6, batch)]
    return {"encoder": img, "decoder": [z, code], "latent_discriminator": z,
            "image_discriminator": [img, onehot]}[net]


SMALL_SHAPES = {
    "encoder": [(2, 50)],
    "decoder": [(2, 64, 64, 3)],
    "latent_discriminator": [(2, 1)],
    "image_discriminator": [(2, 1), (2, 30)],
}


def _outputs(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("preset", ["exprgan-small", "proposed-small"])
@pytest.mark.parametrize("net", sorted(BUILDERS))
def test_small_output_shapes_and_round_trips(preset, net, tmp_path):
    cfg = get_preset(preset).model
    model = BUILDERS[net](cfg)
    x = _inputs(cfg, net)
    if net == "decoder":  # the recipe's G also sees the face it edits
        assert cfg.decoder_sees_face
        x = {"z": x[0], "code": x[1], "base": _inputs(cfg, "encoder")}
    out = _outputs(model, x)
    assert [o.shape for o in out] == SMALL_SHAPES[net]
    assert all(np.isfinite(o).all() for o in out)
    if net in ("encoder", "decoder"):  # tanh outputs
        assert all(np.abs(o).max() <= 1.0 for o in out)

    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    for a, b in zip(_outputs(clone, x), out):
        np.testing.assert_array_equal(a, b)

    path = tmp_path / f"{net}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(_outputs(loaded, x), out):
        np.testing.assert_array_equal(a, b)


def test_layer_names_are_stable_and_readable():
    nets = build_networks(get_preset("proposed-small").model)
    enc = [l.name for l in nets.encoder.layers]
    assert {"E_ch0_conv0", "E_ch1_conv4", "E_concat", "E_fc"} <= set(enc)
    assert nets.encoder.get_layer("E_ch1_conv0").dilation_rate == 2
    assert nets.encoder.get_layer("E_ch0_conv0").dilation_rate == 1
    dec = [l.name for l in nets.decoder.layers]
    assert {"G_fc", "G_conv0", "G_conv4", "G_conv_final", "G_conv_out"} <= set(dec)
    assert [n for n in dec if n.startswith("G_up")] == [f"G_up{i}" for i in range(5)]
    dimg = {l.name for l in nets.image_discriminator.layers}  # -small: spectral norm
    assert {"D_img_conv3_sn", "D_img_fc1_sn", "D_img_fc2", "D_img_q_shared",
            "D_img_q_cat5"} <= dimg
    batch = build_image_discriminator(get_preset("proposed-small").override(
        ["model.dimg_normalization=batch"]).model)
    assert {"D_img_conv3", "D_img_bn3", "D_img_fc1", "D_img_fc1_bn"} <= \
        {l.name for l in batch.layers}
    single = build_encoder(get_preset("exprgan-small").model)
    assert [l.name for l in single.layers if "conv" in l.name] == \
        [f"E_conv{i}" for i in range(5)]


def test_decoder_batch_norm_option():
    cfg = get_preset("exprgan").override(["model.decoder_batch_norm=true"]).model
    dec = build_decoder(cfg)
    # gamma + beta per channel (trainable) and moving mean/var: 512+256+128+64+32+16 = 1008
    assert (_trainable(dec), dec.count_params()) == (11331066 + 2016, 11331066 + 4032)
    assert [l.name for l in dec.layers if l.name.endswith("_bn")] == \
        [f"G_conv{i}_bn" for i in range(5)] + ["G_conv_final_bn"]


def test_spectral_image_discriminator_option(tmp_path):
    cfg = get_preset("exprgan").override(["model.dimg_normalization=spectral"]).model
    d = build_image_discriminator(cfg)
    # The trunk loses its BN offsets (16+32+64+128 + 1024 = 1264) and moving statistics;
    # each wrapped layer gains a non-trainable power-iteration vector u of its output
    # width (1264 again); Q keeps its BN (moving mean/var 2 * (128 + 6*64) = 1024).
    assert (_trainable(d), d.count_params()) == (9275349 - 1264, 9275349 - 1264 + 1264 + 1024)
    assert not [l for l in d.layers if l.name.startswith("D_img_bn")
                or l.name == "D_img_fc1_bn"]
    small = build_image_discriminator(get_preset("exprgan-small").override(
        ["model.dimg_normalization=spectral"]).model)
    x = _inputs(get_preset("exprgan-small").model, "image_discriminator")
    path = tmp_path / "dimg_sn.keras"
    small.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(_outputs(loaded, x), _outputs(small, x)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"model.dimg_normalization='layer': expected one of "
                                         r"\['batch', 'spectral'\]"):
        get_preset("exprgan-small").override(["model.dimg_normalization=layer"])


def test_decoder_output_depends_on_code():
    cfg = plain_small("exprgan-small").model
    dec = build_decoder(cfg)
    z, code = _inputs(cfg, "decoder")
    a = np.asarray(dec([z, code]))
    b = np.asarray(dec([z, -code]))
    assert np.abs(a - b).mean() > 1e-4


def test_blend_decoder_keeps_the_face_where_its_mask_is_one(tmp_path):
    plain = plain_small("exprgan-small").model
    cfg = plain_small("exprgan-small").override(["model.decoder_output=blend"]).model
    dec = build_decoder(cfg)
    # one more 3x3 conv, from the last features (16 channels + the 30-d code) to the
    # one-channel mask, with a bias
    assert dec.count_params() == build_decoder(plain).count_params() + 9 * (16 + 30) + 1
    assert [t.name for t in dec.inputs] == ["z", "code", "base"]
    z, code = _inputs(cfg, "decoder")
    base = np.random.default_rng(3).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    color = np.asarray(keras.Model(dec.inputs, dec.get_layer("G_tanh").output)(
        [z, code, base]))
    assert np.abs(color - base).mean() > 0.1
    mask = dec.get_layer("G_conv_mask")
    zero_kernel = np.zeros_like(mask.get_weights()[0])
    for bias, expected in ((60.0, base), (-60.0, color), (0.0, (base + color) / 2)):
        mask.set_weights([zero_kernel, np.array([bias], "float32")])
        np.testing.assert_allclose(decode(dec, z, code, base), expected, atol=1e-6)
    # no face to keep (a sample from the prior): a zero base
    np.testing.assert_allclose(decode(dec, z, code), color / 2, atol=1e-6)
    path = tmp_path / "blend.keras"
    dec.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(decode(loaded, z, code, base), decode(dec, z, code, base))
    # an image G ignores a base
    image_g = build_decoder(plain)
    np.testing.assert_array_equal(decode(image_g, z, code, base), image_g([z, code]))
    with pytest.raises(ValueError, match=r"model.decoder_output='overlay': expected one of "
                                         r"\['image', 'blend', 'residual'\]"):
        plain_small("exprgan-small").override(["model.decoder_output=overlay"])


def test_residual_decoder_draws_a_change_on_the_face(tmp_path):
    plain = plain_small("exprgan-small").model
    cfg = plain_small("exprgan-small").override(["model.decoder_output=residual"]).model
    dec = build_decoder(cfg)
    # the image G's weights and nothing more: the change is its tanh output
    assert dec.count_params() == build_decoder(plain).count_params()
    assert [t.name for t in dec.inputs] == ["z", "code", "base"]
    z, code = _inputs(cfg, "decoder")
    base = np.random.default_rng(3).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    change = np.asarray(keras.Model(dec.inputs, dec.get_layer("G_tanh").output)(
        [z, code, base]))
    assert np.abs(change).mean() > 0.05
    np.testing.assert_allclose(decode(dec, z, code, base), np.clip(base + change, -1, 1),
                               atol=1e-6)
    image, mask = decode(dec, z, code, base, with_mask=True)
    assert mask is None
    # a zero change gives the face back; no face (a sample from the prior): the change
    out = dec.get_layer("G_conv_out")
    out.set_weights([np.zeros_like(w) for w in out.get_weights()])
    np.testing.assert_array_equal(decode(dec, z, code, base), base)
    np.testing.assert_array_equal(decode(dec, z, code), np.zeros_like(base))
    path = tmp_path / "residual.keras"
    dec.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(decode(loaded, z, code, base), base)



def test_decoder_that_sees_the_face_gets_it_at_every_stage(tmp_path):
    plain = plain_small("exprgan-small").model
    cfg = plain_small("exprgan-small").override(["model.decoder_sees_face=true"]).model
    dec = build_decoder(cfg)
    assert [t.name for t in dec.inputs] == ["z", "code", "base"]
    # By hand: each conv after a stage whose maps get the face takes 3 more input
    # channels (3x3 kernels, no bias): G_conv0..4 (256, 128, 64, 32, 16 filters),
    # G_conv_final (16) and G_conv_out (3).
    assert cfg.decoder_filters == (256, 128, 64, 32, 16) and cfg.decoder_final_filters == 16
    extra = 9 * 3 * (256 + 128 + 64 + 32 + 16 + 16 + 3)
    assert dec.count_params() == build_decoder(plain).count_params() + extra == \
        build_decoder(plain).count_params() + 13905
    z, code = _inputs(cfg, "decoder")
    rng = np.random.default_rng(3)
    base = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    other = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    out = np.asarray(decode(dec, z, code, base))
    assert np.abs(out - np.asarray(decode(dec, z, code, other))).mean() > 1e-3
    # No face (a sample from the prior) is a zero face.
    np.testing.assert_array_equal(decode(dec, z, code),
                                  decode(dec, z, code, np.zeros_like(base)))
    # The stage at 8x8 gets the face averaged over 8x8 blocks.
    pooled = keras.Model(dec.inputs, dec.get_layer("G_face_pool_1").output)([z, code, base])
    np.testing.assert_allclose(
        pooled, base.reshape(2, 8, 8, 8, 8, 3).mean(axis=(2, 4)), atol=1e-6)
    path = tmp_path / "sees_face.keras"
    dec.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), out, atol=1e-6)
    with pytest.raises(ValueError, match=r"model.decoder_sees_face=1: expected true or "
                                         r"false"):
        plain_small("exprgan-small").override(["model.decoder_sees_face=1"])


def test_decoder_with_a_face_hole_cannot_see_the_face_where_the_editor_keeps_its_drawing(
        tmp_path):
    from exprgan_tf.data.regions import expression_regions
    cfg = plain_small().override(
        ["model.decoder_sees_face=true", "model.decoder_face_hole=true"]).model
    assert cfg.edit_regions == 90
    dec = build_decoder(cfg)
    whole = build_decoder(plain_small().override(
        ["model.decoder_sees_face=true"]).model)
    assert dec.count_params() == whole.count_params() + 64 * 64  # the map, not trained
    assert not dec.get_layer("G_face_hole").trainable_weights
    hole = expression_regions(64, 90) >= 0.1
    assert 0.3 < hole.mean() < 0.4 and hole[52, 32] and not hole[2, 2]  # mouth, corner
    np.testing.assert_array_equal(dec.get_layer("G_face_hole").regions.numpy()[..., 0], hole)
    z, code = _inputs(cfg, "decoder")
    rng = np.random.default_rng(4)
    base = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    out = np.asarray(decode(dec, z, code, base))
    # Any change inside the hole (the mouth, the eyes) leaves G's output as it was...
    inside = base.copy()
    inside[:, hole] = rng.uniform(-1, 1, inside[:, hole].shape)
    np.testing.assert_array_equal(decode(dec, z, code, inside), out)
    # ...one outside it (hair, background) does not.
    outside = base.copy()
    outside[:, ~hole] = 0.0
    assert np.abs(np.asarray(decode(dec, z, code, outside)) - out).mean() > 1e-4
    path = tmp_path / "face_hole.keras"
    dec.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), out, atol=1e-6)
    for extra in (["model.decoder_face_hole=true"],
                  ["model.decoder_sees_face=true", "model.edit_regions=0",
                   "model.decoder_face_hole=true"]):
        with pytest.raises(ValueError, match=r"model.decoder_face_hole=True: expected "
                                             r"false unless model.decoder_sees_face=true "
                                             r"and model.edit_regions > 0"):
            plain_small().override(extra)


def test_discriminator_uses_label():
    cfg = get_preset("exprgan-small").model
    d = build_image_discriminator(cfg)
    img, onehot = _inputs(cfg, "image_discriminator")
    a = _outputs(d, [img, onehot])[0]
    b = _outputs(d, [img, np.roll(onehot, 1, axis=1)])[0]
    assert not np.allclose(a, b)


def test_q_reads_the_face_alone_when_q_sees_label_is_false():
    """``model.q_sees_label=false``: Q's code is a function of the image only (its own
    convs), D_img's logit still depends on the label."""
    cfg = get_preset("proposed-small").model
    seen = build_image_discriminator(cfg)
    alone = build_image_discriminator(get_preset("proposed-small").override(
        ["model.q_sees_label=false"]).model)
    # Q's convs (5x5, 3-16-32-64-128, biases): 1216 + 12832 + 51264 + 204928 = 270240;
    # Q's shared Dense reads 4*4*128 = 2048 features instead of 512 + 6 (label):
    # (2048 - 518) * 128 = 195840; spectral norm's u vectors 16+32+64+128 = 240.
    assert _trainable(alone) - _trainable(seen) == 270240 + 195840 == 466080
    assert alone.count_params() - seen.count_params() == 466080 + 240
    assert [l.name for l in alone.layers if l.name.startswith("D_img_q_conv")] == \
        [f"D_img_q_conv{i}_sn" for i in range(4)]
    img, onehot = _inputs(cfg, "image_discriminator")
    logit_a, q_a = _outputs(alone, [img, onehot])
    logit_b, q_b = _outputs(alone, [img, np.roll(onehot, 1, axis=1)])
    np.testing.assert_array_equal(q_a, q_b)
    assert np.abs(logit_a - logit_b).max() > 1e-3
    _, q_other = _outputs(alone, [img[::-1], onehot])
    np.testing.assert_allclose(q_other, q_a[::-1], atol=1e-6)   # each face's own reading
    assert np.abs(q_other - q_a).max() > 1e-4
    q_seen_a = _outputs(seen, [img, onehot])[1]
    q_seen_b = _outputs(seen, [img, np.roll(onehot, 1, axis=1)])[1]
    assert np.abs(q_seen_a - q_seen_b).max() > 1e-4          # the original's Q reads it
    with pytest.raises(ValueError, match=r"model.q_sees_label='no': expected true or false"):
        get_preset("proposed-small").override(["model.q_sees_label=no"])


def test_bad_model_config_is_rejected():
    with pytest.raises(ValueError, match=r"model.image_size=48: expected a multiple of "
                                         r"2\*\*len\(encoder_filters\) = 32"):
        get_preset("exprgan-small").override(["model.image_size=48"])


def _bn_layers(model):
    return [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_batch_norm_is_synchronised_only_with_several_replicas(monkeypatch):
    import tensorflow as tf

    from exprgan_tf.models import _blocks

    assert not _blocks.synchronized_batch_norm()  # the default strategy: one replica
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():  # one replica too
        d = build_latent_discriminator(get_preset("exprgan-small").model)
    assert [l.synchronized for l in _bn_layers(d)] == [False] * 3

    class TwoReplicas:
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: TwoReplicas())
    assert _blocks.synchronized_batch_norm()


def test_plain_and_synchronised_batch_norm_agree_on_one_replica(monkeypatch, tiny_config):
    """The training forward pass, the gradients and the moving statistics of D_img and
    of a BatchNorm decoder are the same numbers with either path (float rounding aside:
    the synchronised path's variance is E[x^2] - E[x]^2), and the weights are the same
    variables, so either loads the other's weights."""
    import tensorflow as tf

    from exprgan_tf.models import _blocks, decoder

    cfg = tiny_config("exprgan-small", ["model.dimg_normalization=batch",
                                        "model.decoder_batch_norm=true"]).model
    plain = [build_image_discriminator(cfg), build_decoder(cfg)]
    monkeypatch.setattr(_blocks, "synchronized_batch_norm", lambda: True)
    monkeypatch.setattr(decoder, "synchronized_batch_norm", lambda: True)
    synced = [build_image_discriminator(cfg), build_decoder(cfg)]
    for p, s in zip(plain, synced):
        assert {l.synchronized for l in _bn_layers(p)} == {False}
        assert {l.synchronized for l in _bn_layers(s)} == {True}
        assert [w.path for w in p.weights] == [w.path for w in s.weights]
        s.set_weights(p.get_weights())

    rng = np.random.default_rng(0)
    inputs = [[rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
               np.eye(6, dtype="float32")[[0, 2, 3, 5]]],
              [rng.uniform(-1, 1, (4, cfg.latent_dim)).astype("float32"),
               rng.uniform(-1, 1, (4, cfg.code_dim)).astype("float32")]]

    def run(model, x):
        with tf.GradientTape() as tape:
            outs = tf.nest.flatten(model(x, training=True))
            loss = sum(tf.reduce_sum(o * o) for o in outs)
        grads = tape.gradient(loss, model.trainable_weights)
        return ([o.numpy() for o in outs], [g.numpy() for g in grads],
                [w.numpy() for w in model.non_trainable_weights])

    for p, s, x in zip(plain, synced, inputs):
        for a, b in zip(run(p, x), run(s, x)):
            assert len(a) == len(b) > 0
            # within 1e-4 of the largest output / gradient / statistic (a conv bias
            # before BatchNorm has a true gradient of 0: only its rounding differs)
            scale = max(np.abs(v).max() for v in b)
            worst = max(np.abs(u - v).max() for u, v in zip(a, b))
            assert worst <= 1e-4 * scale, (worst, scale)
        # the moving statistics moved (momentum 0.999: by 0.1% of the batch mean)
        assert any(np.abs(w.numpy()).max() > 0 for w in p.non_trainable_weights
                   if "moving_mean" in w.path)


def test_decoder_hole_blur_shows_g_the_cell_means_of_the_face_inside_the_hole(tmp_path):
    cfg = plain_small().override(
        ["model.decoder_sees_face=true", "model.decoder_face_hole=true",
         "model.decoder_hole_blur=8"]).model
    dec = build_decoder(cfg)
    blank = build_decoder(plain_small().override(
        ["model.decoder_sees_face=true", "model.decoder_face_hole=true"]).model)
    assert dec.count_params() == blank.count_params()  # the blur has no weights
    hole = dec.get_layer("G_face_hole").regions.numpy()[..., 0] > 0.5
    z, code = _inputs(cfg, "decoder")
    rng = np.random.default_rng(5)
    base = rng.uniform(-0.5, 0.5, (2, 64, 64, 3)).astype("float32")
    out = np.asarray(decode(dec, z, code, base))
    # Moving brightness between two hole pixels of one 8x8 cell keeps every cell's mean:
    # G's output stays as it was (up to float rounding)...
    shuffled = base.copy()
    for r in range(0, 64, 8):
        for c in range(0, 64, 8):
            ys, xs = np.nonzero(hole[r:r + 8, c:c + 8])
            if len(ys) >= 2:
                shuffled[:, r + ys[0], c + xs[0]] += 0.4
                shuffled[:, r + ys[1], c + xs[1]] -= 0.4
    assert np.abs(shuffled - base).max() == pytest.approx(0.4)
    np.testing.assert_allclose(decode(dec, z, code, shuffled), out, atol=2e-5)
    # ...while brightening the hole, which the blank hole of decoder_face_hole hides,
    # reaches it.
    brighter = base.copy()
    brighter[:, hole] += 0.4
    assert np.abs(np.asarray(decode(dec, z, code, brighter)) - out).mean() > 1e-4
    np.testing.assert_array_equal(decode(blank, z, code, brighter),
                                  decode(blank, z, code, base))
    dec.save(tmp_path / "hole_blur.keras")
    loaded = keras.saving.load_model(tmp_path / "hole_blur.keras", safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), out, atol=1e-6)
    for extra, expected in (
            (["model.decoder_hole_blur=8"], "0 unless model.decoder_face_hole=true"),
            (["model.decoder_sees_face=true", "model.decoder_face_hole=true",
              "model.decoder_hole_blur=7"], "0 or a positive divisor of model.image_size=64")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            plain_small().override(extra)


def test_decoder_hole_blur_above_fills_the_hole_only_above_that_row(tmp_path):
    """With decoder_hole_blur_above=0.625 G sees the cell means in the hole above row 40
    (as with the whole fill), a blank in the hole from row 40 down, the face outside."""
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true",
            "model.decoder_hole_blur=4"]
    full = build_decoder(plain_small().override(hole).model)
    cfg = plain_small().override(
        hole + ["model.decoder_hole_blur_above=0.625"]).model
    dec = build_decoder(cfg)
    # the cut adds only its fixed row map (64 x 64, not trained)
    assert dec.count_params() == full.count_params() + 64 * 64
    assert (sum(int(np.prod(w.shape)) for w in dec.trainable_weights)
            == sum(int(np.prod(w.shape)) for w in full.trainable_weights))
    hole_map = dec.get_layer("G_face_hole").regions.numpy()[..., 0] > 0.5
    upper = np.arange(64)[:, None] < 40
    low, high = hole_map & ~upper, hole_map & upper
    assert low.sum() > 300 and high.sum() > 300
    z, code = _inputs(cfg, "decoder")
    base = np.random.default_rng(6).uniform(-0.5, 0.5, (2, 64, 64, 3)).astype("float32")

    def seen(g, face):
        return np.asarray(keras.Model(g.inputs, g.get_layer("G_face_hole").output)(
            [z, code, face]))

    cut, whole = seen(dec, base), seen(full, base)
    np.testing.assert_array_equal(cut[:, low], 0.0)
    np.testing.assert_allclose(cut[:, high], whole[:, high], atol=1e-6)
    np.testing.assert_array_equal(cut[:, ~hole_map], base[:, ~hole_map])
    assert np.abs(whole[:, low]).mean() > 0.01  # the whole fill does show the mouth
    dec.save(tmp_path / "hole_blur_above.keras")
    loaded = keras.saving.load_model(tmp_path / "hole_blur_above.keras", safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    for extra, expected in (
            (hole[:2] + ["model.decoder_hole_blur_above=0.5"],
             "1.0 unless model.decoder_hole_blur > 0"),
            (hole + ["model.decoder_hole_blur_above=0"],
             "a fraction of the image height in (0, 1]")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            plain_small().override(extra)


def test_decoder_hole_blur_below_fills_the_hole_under_the_cut_with_coarser_cells(tmp_path):
    """decoder_hole_blur_below=8: above row 40 the hole shows the 4 x 4 cell means, below
    it the 8 x 8 ones (each as the whole hole shows them with that cell size), the face
    outside; no weight more than the blank cut."""
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true"]
    preset = plain_small()
    cfg = preset.override(hole + ["model.decoder_hole_blur=4",
                                  "model.decoder_hole_blur_above=0.625",
                                  "model.decoder_hole_blur_below=8"]).model
    dec = build_decoder(cfg)
    blank = build_decoder(preset.override(hole + ["model.decoder_hole_blur=4",
                                                  "model.decoder_hole_blur_above=0.625"]).model)
    fine = build_decoder(preset.override(hole + ["model.decoder_hole_blur=4"]).model)
    coarse = build_decoder(preset.override(hole + ["model.decoder_hole_blur=8"]).model)
    assert dec.count_params() == blank.count_params()
    hole_map = dec.get_layer("G_face_hole").regions.numpy()[..., 0] > 0.5
    upper = np.arange(64)[:, None] < 40
    low, high = hole_map & ~upper, hole_map & upper
    z, code = _inputs(cfg, "decoder")
    base = np.random.default_rng(7).uniform(-0.5, 0.5, (2, 64, 64, 3)).astype("float32")

    def seen(g):
        return np.asarray(keras.Model(g.inputs, g.get_layer("G_face_hole").output)(
            [z, code, base]))

    cut = seen(dec)
    np.testing.assert_allclose(cut[:, high], seen(fine)[:, high], atol=1e-6)
    np.testing.assert_allclose(cut[:, low], seen(coarse)[:, low], atol=1e-6)
    np.testing.assert_array_equal(cut[:, ~hole_map], base[:, ~hole_map])
    assert np.abs(cut[:, low]).mean() > 0.01      # not the blank of decoder_hole_blur_above
    dec.save(tmp_path / "hole_blur_below.keras")
    loaded = keras.saving.load_model(tmp_path / "hole_blur_below.keras", safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    for extra, expected in (
            (["model.decoder_hole_blur=4", "model.decoder_hole_blur_below=8"],
             "0 unless model.decoder_hole_blur_above < 1"),
            (["model.decoder_hole_blur=4", "model.decoder_hole_blur_above=0.625",
              "model.decoder_hole_blur_below=6"],
             "0 or a positive divisor of model.image_size=64")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            preset.override(hole + extra)


def test_code_knots_decoder_starts_as_the_plain_one_and_its_knots_bend_the_code(tmp_path):
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true"]
    plain = build_decoder(plain_small().override(hole).model)
    cfg = plain_small().override(hole + ["model.code_knots=9"]).model
    dec = build_decoder(cfg)
    assert dec.count_params() == plain.count_params() + 30 * 9   # a value per entry and knot
    for layer in plain.layers:
        dec.get_layer(layer.name).set_weights(layer.get_weights())
    z, code = _inputs(cfg, "decoder")
    base = np.random.default_rng(3).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    out = np.asarray(decode(dec, z, code, base))
    np.testing.assert_allclose(out, decode(plain, z, code, base), atol=1e-5)
    # a knot's values reach G's output: moving the knots at 0.75 (none of the inputs
    # lies between 0.5 and 1) changes nothing, moving those at 0.25 does
    knots = dec.get_layer("G_code_knots").values
    code = np.where(np.abs(code) > 0.4, np.sign(code), 0.25).astype("float32")
    before = np.asarray(decode(dec, z, code, base))
    start = knots.numpy()
    knots.assign(start + np.eye(9, dtype="float32")[7] * 0.5)
    np.testing.assert_array_equal(decode(dec, z, code, base), before)
    knots.assign(start + np.eye(9, dtype="float32")[5] * 0.5)
    assert np.abs(np.asarray(decode(dec, z, code, base)) - before).mean() > 1e-4
    dec.save(tmp_path / "knots.keras")
    loaded = keras.saving.load_model(tmp_path / "knots.keras", safe_mode=True)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    for bad in ("1", "-2"):
        with pytest.raises(ValueError, match=re.escape(
                "0 (G takes the code as it is) or an integer >= 2")):
            plain_small().override([f"model.code_knots={bad}"])
    with pytest.raises(ValueError, match="code_knot_gain.*a number > 0"):
        plain_small().override(["model.code_knots=9", "model.code_knot_gain=0"])


def test_code_at_output_decoder_is_linear_in_the_code_before_its_tanh(tmp_path):
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true"]
    plain = build_decoder(plain_small().override(hole).model)
    cfg = plain_small().override(hole + ["model.code_at=output"]).model
    dec = build_decoder(cfg)
    # no layer but the last reads c: the 290-wide start and the 30 code channels of every
    # later layer are gone, and the last conv draws 31 images' worth of channels
    final_in = 16 + 3
    assert dec.count_params() == (
        plain.count_params() - 30 * 8 * 2 * 2 * 512                            # G_fc
        - 9 * 30 * (256 + 128 + 64 + 32 + 16 + 16 + 3)                        # 30 code inputs
        + 9 * final_in * 3 * 30)                                               # 30 more maps
    assert "G_code_mix" in [layer.name for layer in dec.layers]
    z, _ = _inputs(cfg, "decoder")
    base = np.random.default_rng(3).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    for layer in dec.layers:   # weights large enough for a visible response to the code
        layer.set_weights([w * 4 for w in layer.get_weights()])

    def pre_tanh(s):
        out = np.asarray(decode(dec, z, intensity_code([3, 5], s), base), np.float64)
        return np.arctanh(np.clip(out, -1 + 1e-6, 1 - 1e-6))

    zero, half, full = pre_tanh(0.0), pre_tanh(0.5), pre_tanh(1.0)
    assert np.abs(full - zero).mean() > 1e-2
    inside = (np.abs(zero) < 3) & (np.abs(full) < 3)     # tanh not saturated
    np.testing.assert_allclose(half[inside], ((zero + full) / 2)[inside], atol=2e-3)
    dec.save(tmp_path / "code_at.keras")
    loaded = keras.saving.load_model(tmp_path / "code_at.keras", safe_mode=True)
    code = intensity_code([3, 5], 0.7)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    with pytest.raises(ValueError, match=re.escape("one of ['layers', 'output']")):
        plain_small().override(["model.code_at=start"])
    for other in ("model.decoder_output=blend", "model.code_knots=9"):
        with pytest.raises(ValueError, match="code_at.*'layers' unless"):
            plain_small().override(hole + ["model.code_at=output", other])


def test_code_levels_draw_a_map_of_their_own_at_each_level(tmp_path):
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true",
            "model.code_at=output"]
    plain = build_decoder(plain_small().override(hole).model)
    cfg = plain_small().override(hole + ["model.code_levels=4"]).model
    dec = build_decoder(cfg)
    # the last conv draws 1 + 6 x 4 images' worth of channels instead of 1 + 30
    final_in = 16 + 3
    assert dec.count_params() == plain.count_params() + 9 * final_in * 3 * (24 - 30)
    mixed = keras.Model(dec.inputs, dec.get_layer("G_code_mix").output)  # before the tanh
    maps = keras.Model(dec.inputs, dec.get_layer("G_conv_out").output)
    z, _ = _inputs(cfg, "decoder")
    base = np.random.default_rng(5).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    labels = np.array([3, 5])

    def pre_tanh(s):
        code = np.asarray(intensity_code(labels, s), "float32")
        return np.asarray(mixed([z, code, base]), np.float64)

    # at intensity s = k / 4, the zero code's map plus level k's map of the target class
    # minus level k's of the other five; 0 is the zero code's map alone
    m = np.asarray(maps([z, np.zeros((2, 30), "float32"), base]), np.float64)
    m = m.reshape(2, 64, 64, 1 + 6 * 4, 3)
    for k, s in enumerate((0.25, 0.5, 0.75, 1.0)):
        sign = -np.ones((2, 6))
        sign[np.arange(2), labels] = 1
        want = m[:, :, :, 0] + np.einsum("nhwlc,nl->nhwc",
                                         m[:, :, :, 1:].reshape(2, 64, 64, 6, 4, 3)[..., k, :],
                                         sign)
        np.testing.assert_allclose(pre_tanh(s), want, atol=1e-4)
    np.testing.assert_allclose(pre_tanh(0.0), m[:, :, :, 0], atol=1e-5)
    # between two levels, their maps shared linearly; the response is not linear in s
    np.testing.assert_allclose(pre_tanh(0.6), 0.6 * pre_tanh(0.5) + 0.4 * pre_tanh(0.75),
                               atol=1e-4)
    assert np.abs(pre_tanh(0.5) - (pre_tanh(0.0) + pre_tanh(1.0)) / 2).mean() > 1e-3
    dec.save(tmp_path / "levels.keras")
    loaded = keras.saving.load_model(tmp_path / "levels.keras", safe_mode=True)
    code = intensity_code(labels, 0.7)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    for bad, why in (("1", "an integer >= 2"), ("-2", "an integer >= 2"),
                     ("2.5", "expected an integer")):
        with pytest.raises(ValueError, match=re.escape(why)):
            plain_small().override(hole + [f"model.code_levels={bad}"])
    with pytest.raises(ValueError, match=re.escape("0 unless model.code_at='output'")):
        plain_small().override(hole[:2] + ["model.code_levels=4"])


def test_rest_sees_face_gives_only_the_zero_codes_map_the_face_in_the_hole(tmp_path):
    hole = ["model.decoder_sees_face=true", "model.decoder_face_hole=true",
            "model.code_at=output"]
    plain = build_decoder(plain_small().override(hole).model)
    cfg = plain_small().override(hole + ["model.rest_sees_face=true"]).model
    keras.utils.set_random_seed(7)
    dec = build_decoder(cfg)
    # A's own convs: 3x3 from the last features (16 + 3 face) and the whole face to 16,
    # then 3x3 to 3; D's conv keeps its 30 maps, A's 3 move off it
    final_in = 16 + 3
    assert dec.count_params() == (plain.count_params() - 9 * final_in * 3
                                  + 9 * (final_in + 3) * 16 + 9 * 16 * 3)
    mixed = keras.Model(dec.inputs, dec.get_layer("G_code_mix").output)  # before the tanh
    hole_map = dec.get_layer("G_face_hole").regions.numpy()[..., 0] > 0.5
    z, _ = _inputs(cfg, "decoder")
    base = np.random.default_rng(4).uniform(-0.5, 0.5, (2, 64, 64, 3)).astype("float32")
    brighter = base.copy()
    brighter[:, hole_map] += 0.4

    def pre_tanh(face, s):
        code = np.asarray(intensity_code([3, 5], s), "float32")
        return np.asarray(mixed([z, code, face]), np.float64)

    # the zero code's face changes with the face inside the hole (by 0.002-0.005 on
    # average there at Keras's initial weights, over six draws)...
    assert np.abs(pre_tanh(brighter, 0.0) - pre_tanh(base, 0.0))[:, hole_map].mean() > 5e-4
    # ...but what the code adds, D = f(1) - f(0), does not (up to float rounding)
    d_base = pre_tanh(base, 1.0) - pre_tanh(base, 0.0)
    d_brighter = pre_tanh(brighter, 1.0) - pre_tanh(brighter, 0.0)
    np.testing.assert_allclose(d_brighter, d_base, atol=1e-5)
    assert np.abs(d_base).mean() > 1e-3
    dec.save(tmp_path / "rest.keras")
    loaded = keras.saving.load_model(tmp_path / "rest.keras", safe_mode=True)
    code = intensity_code([3, 5], 0.7)
    np.testing.assert_allclose(decode(loaded, z, code, base), decode(dec, z, code, base),
                               atol=1e-6)
    with pytest.raises(ValueError, match=re.escape(
            "rest_sees_face=True: expected false unless model.code_at='output'")):
        plain_small().override(hole[:2] + ["model.rest_sees_face=true"])
