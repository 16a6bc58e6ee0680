import json
import re

import pytest

from exprgan_tf.config import PRESETS, ExprGANConfig, get_preset


def test_presets_have_the_documented_architecture():
    assert set(PRESETS) == {"exprgan", "exprgan-small", "proposed", "proposed-small",
                            "proposed_no_unsharp", "proposed_no_unsharp-small"}
    full = get_preset("proposed")
    assert (full.model.image_size, full.model.encoder, full.model.encoder_dilations) == \
        (128, "dilated", (1, 2))
    assert full.preprocess.unsharp_mask is True
    assert full.optimizer.learning_rate == 1e-4
    orig = get_preset("exprgan")
    assert (orig.model.encoder, orig.preprocess.unsharp_mask, orig.optimizer.learning_rate) \
        == ("single", False, 2e-4)
    assert orig.model.encoder_filters == (64, 128, 256, 512, 1024)
    assert orig.model.code_dim == 30
    small = get_preset("proposed_no_unsharp-small")
    assert (small.model.image_size, small.model.encoder, small.preprocess.unsharp_mask) == \
        (64, "dilated", False)
    assert small.model.encoder_filters == (32, 64, 128, 256, 512)


def test_stage_schedule_matches_the_original():
    t = get_preset("exprgan").training
    assert (t.stage1.epochs, t.stage1.batch_size) == (200, 60)
    assert (t.stage2.epochs, t.stage2.batch_size) == (50, 48)
    s3 = t.stage3.losses
    assert (s3.pixel, s3.identity, s3.q, s3.image_adversarial, s3.latent_adversarial,
            s3.total_variation) == (1.0, 1.0, 1.0, 0.01, 0.01, 0.001)
    s2 = t.stage2.losses
    assert (s2.image_adversarial, s2.latent_adversarial, s2.total_variation) == (0, 0, 0)


def test_small_presets_carry_the_cpu_recipe_and_full_presets_do_not():
    for base in ("exprgan", "proposed", "proposed_no_unsharp"):
        small, full = get_preset(f"{base}-small"), get_preset(base)
        assert (small.model.decoder_batch_norm, small.model.dimg_normalization) == \
            (True, "spectral")
        assert (full.model.decoder_batch_norm, full.model.dimg_normalization) == \
            (False, "batch")
        assert small.optimizer.learning_rate == 2e-4
        t = small.training
        assert [(s.epochs, s.batch_size, s.losses.mismatch, s.losses.edit, s.losses.paired,
                 s.losses.q) for s in (t.stage1, t.stage2, t.stage3)] == \
            [(1, 16, 1.0, 0.0, 0.0, 1.0), (12, 16, 0.0, 0.0, 1.0, 0.0),
             (45, 16, 1.0, 0.05, 1.0, 0.0)]
        assert [s.losses.gradient for s in (t.stage1, t.stage2, t.stage3)] == [0, 0, 1.0]
        # the original's other loss weights are kept
        assert (t.stage3.losses.image_adversarial, t.stage3.losses.latent_adversarial,
                t.stage3.losses.total_variation, t.stage2.losses.pixel) == (0.01, 0.01, 0.001, 1.0)
        # partners posed as the input: at the peak in stages 1-2, at five intensities in 3
        assert (t.codes, t.pair_pose, t.pair_change) == ("intensity", "input", 10.0)
        assert [(small.at_stage(n).training.pair_intensities,
                 small.at_stage(n).training.pair_shares) for n in (1, 2, 3)] == \
            [((1.0,), ())] * 2 + [((0, 0.25, 0.5, 0.75, 1), (0.1, 0.15, 0.15, 0.15, 0.45))]
        assert full.training.pair_intensities == () and full.training.codes == "sampled"
        assert (t.expression_regions, full.training.expression_regions) == (4.0, 0.0)
        assert (t.ema_momentum, full.training.ema_momentum) == (0.998, 0.0)
        assert (small.model.edit_regions, full.model.edit_regions) == (90.0, 0.0)
        # G draws into a hole of the face it sees, the code read at its output
        m = small.model
        assert (m.decoder_sees_face, m.decoder_face_hole, m.decoder_hole_blur,
                m.decoder_hole_blur_above, m.decoder_hole_blur_below, m.code_at,
                m.decoder_final_filters) == (True, True, 4, 0.625, 8, "output", 32)
        assert (full.model.decoder_sees_face, full.model.code_at) == (False, "layers")
        # the editor's settings of the shipped file are chosen at export, not here
        assert (m.paste_gate, m.intensity_scale) == (0.0, 1.0)
        for n in (1, 2, 3):
            losses = getattr(full.training, f"stage{n}").losses
            assert (losses.mismatch, losses.edit, losses.paired) == (0.0, 0.0, 0.0)
            assert losses.q == 1.0


def test_save_load_round_trip(tmp_path):
    cfg = get_preset("proposed-small").override(["model.latent_dim=64",
                                                 "training.stage2.epochs=3"])
    path = tmp_path / "config.json"
    cfg.save(path)
    text = path.read_text()
    assert '"latent_dim": 64' in text  # human readable
    assert ExprGANConfig.load(path) == cfg


def test_unknown_key_is_named(tmp_path):
    data = get_preset("exprgan").to_dict()
    data["model"]["latnt_dim"] = 3
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['model.latnt_dim'\]"):
        ExprGANConfig.load(path)


@pytest.mark.parametrize("override, message", [
    ("model.latent_dim=0", r"model.latent_dim=0: expected a positive number"),
    ("model.encoder=triple", r"model.encoder='triple': expected one of \['single', 'dilated'\]"),
    ("model.image_size=100", r"model.image_size=100: expected a multiple of"),
    ("model.encoder_kernel=4", r"model.encoder_kernel=4: expected an odd kernel size"),
    ("optimizer.beta_1=1.5", r"optimizer.beta_1=1.5: expected a value in \[0, 1\)"),
    ("training.stage3.losses.identity=-1", r"training.stage3.losses.identity=-1.0"),
    ("preprocess.radius=-2", r"preprocess.radius=-2.0: expected a number >= 0"),
    ("training.stage1.batch_size=\"8\"", r"training.stage1.batch_size='8': expected an integer"),
    ("identity.network=facenet", r"identity.network='facenet'"),
    ("training.frames=0", r"training.frames=0: expected a positive integer \(3: the peak"),
    ("model.edit_regions=40", r"model.edit_regions=40.0: expected 0 \(G's whole face\) or a "
                              r"percentile in \(50, 100\]"),
    ('identity.layers=["a","b"]', r"identity.layer_weights=\(1, 2, 3\): expected one weight "
                                  r"per layer in identity.layers \(2\)"),
])
def test_bad_values_name_field_and_value(override, message):
    with pytest.raises(ValueError, match=message):
        base = get_preset("exprgan")
        if override.startswith("identity.layers"):  # needs weights of another length
            base = base.override(["identity.layer_weights=[1, 2, 3]"])
        base.override([override])


def test_override_errors():
    with pytest.raises(ValueError, match="Unknown config key 'model.nope'"):
        get_preset("exprgan").override(["model.nope=1"])
    with pytest.raises(ValueError, match="must look like key.path=value"):
        get_preset("exprgan").override(["model.latent_dim"])
    with pytest.raises(ValueError, match="Unknown preset 'big'"):
        get_preset("big")


def test_invalid_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: Config is not valid JSON"):
        ExprGANConfig.load(path)


@pytest.mark.parametrize("value", ["[1.5]", "[NaN]", "[true]", "[-0.1, 0.5]"])
def test_pair_intensities_must_lie_in_0_1(value):
    with pytest.raises(ValueError, match=r"training.pair_intensities=.*numbers in \[0, 1\]"):
        get_preset("proposed-small").override([f"training.pair_intensities={value}"])


def test_pair_pose_is_a_known_kind_of_a_rendered_pool():
    assert get_preset("proposed-small").training.pair_pose == "input"   # the recipe's
    full = get_preset("proposed")
    assert full.training.pair_pose == "clean"
    assert full.override(["training.pair_pose=input", "training.pair_intensities=[1]"]
                         ).training.pair_pose == "input"
    with pytest.raises(ValueError, match=r"training.pair_pose='posed'.*one of \['clean', "
                                         r"'input'\]"):
        full.override(["training.pair_pose=posed", "training.pair_intensities=[1]"])
    with pytest.raises(ValueError, match=r"training.pair_pose='input'.*'clean' when "
                                         r"training.pair_intensities is empty"):
        full.override(["training.pair_pose=input"])


def test_training_codes_must_be_a_known_kind():
    assert get_preset("proposed").training.codes == "sampled"
    assert get_preset("proposed-small").training.codes == "intensity"   # the recipe's
    assert get_preset("proposed-small").override(
        ["training.codes=sampled"]).training.codes == "sampled"
    with pytest.raises(ValueError, match=r"training.codes=.*one of \['sampled', 'intensity'\]"):
        get_preset("proposed-small").override(["training.codes=peak"])


@pytest.mark.parametrize("key, raw", [
    ("optimizer.learning_rate", "NaN"), ("optimizer.learning_rate", "Infinity"),
    ("optimizer.beta_1", "NaN"), ("model.bn_momentum", "NaN"),
    ("training.stage2.losses.pixel", "-Infinity"), ("preprocess.amount", "NaN"),
])
def test_non_finite_numbers_in_a_config_file_are_refused(key, raw, tmp_path):
    # json.loads reads NaN and Infinity, and `nan <= 0` is False: range checks alone let
    # them through (a NaN learning rate trained a run of NaN weights that exited 0).
    data = get_preset("exprgan-small").to_dict()
    section, *rest = key.split(".")
    node = data[section]
    for part in rest[:-1]:
        node = node[part]
    node[rest[-1]] = 0.5
    text = json.dumps(data).replace(f'"{rest[-1]}": 0.5', f'"{rest[-1]}": {raw}')
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: Invalid config value "
                                         rf"{re.escape(key)}=-?(nan|inf): expected a finite"):
        ExprGANConfig.load(path)


@pytest.mark.parametrize("values", [[float("nan")], [1.0, float("inf")]])
def test_non_finite_numbers_in_lists_are_refused(values):
    with pytest.raises(ValueError, match=r"identity.layer_weights=\(.*\): expected numbers >= 0"):
        get_preset("exprgan-small").override([f"identity.layer_weights={json.dumps(values)}"])


def test_one_reading_of_an_expression():
    from exprgan_tf.config import expression_index

    assert [expression_index(e) for e in (0, "5", " Happy ", "joy", "su", "dis", "f")] == [
        0, 5, 3, 3, 5, 1, 2]
    assert expression_index("Surprised", whole_words=True) == 5
    for word in ("3", "f", "sur"):  # a dataset folder is read by whole words only
        with pytest.raises(ValueError, match=f"Received: expression='{word}'"):
            expression_index(word, whole_words=True)
    for bad in (6, -1, True, "s", "smile", ""):  # "s": sadness or surprise
        with pytest.raises(ValueError, match=r"expression must be an index 0-5 or one of "):
            expression_index(bad)
