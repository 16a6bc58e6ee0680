"""The procedural face set: determinism, ground truth, expressions, lighting, errors."""

import numpy as np
import pytest

from exprgan_tf.config import EXPRESSIONS
from exprgan_tf.data import builtin
from exprgan_tf.data.faces import (ACTION_UNITS, EXPRESSION_AUS, LIGHTINGS, FaceSet,
                                   action_units)

SIZE = 32


@pytest.fixture(scope="module")
def faces():
    return FaceSet(seed=0, num_subjects=12)


def test_render_is_byte_identical_for_same_arguments(faces):
    a = faces.render(3, "fear", 0.7, lighting="weak", size=SIZE, jitter_seed=5)
    b = FaceSet(seed=0, num_subjects=12).render(3, 2, 0.7, "weak", SIZE, jitter_seed=5)
    assert a.dtype == np.uint8 and a.shape == (SIZE, SIZE, 3)
    assert a.tobytes() == b.tobytes()


def test_identity_does_not_depend_on_num_subjects():
    small = FaceSet(seed=4, num_subjects=3).render("P003", "anger", 1.0, size=SIZE)
    large = FaceSet(seed=4, num_subjects=300).render("P003", "anger", 1.0, size=SIZE)
    assert small.tobytes() == large.tobytes()


def test_seed_and_subject_change_the_face(faces):
    a = faces.render(0, 0, 0.0, size=SIZE)
    assert not np.array_equal(a, FaceSet(seed=1).render(0, 0, 0.0, size=SIZE))
    assert not np.array_equal(a, faces.render(1, 0, 0.0, size=SIZE))


def test_batch_render_equals_single_renders(faces):
    subjects, exprs, ints = [0, 5, 9, 2], [0, 3, 5, 1], [0.0, 0.5, 1.0, 0.25]
    lights, jit = ["strong", "weak", "dark", "weak"], [None, 1, 2, None]
    batch = faces.render_batch(subjects, exprs, ints, lights, SIZE, jit, chunk=3)
    for i in range(4):
        single = faces.render(subjects[i], exprs[i], ints[i], lights[i], SIZE, jit[i])
        assert np.array_equal(batch[i], single), i
    threaded = faces.render_batch(subjects, exprs, ints, lights, SIZE, jit, chunk=1, workers=2)
    assert np.array_equal(batch, threaded)


def test_intensity_zero_is_the_neutral_face_for_every_expression(faces):
    neutral = [faces.render(4, e, 0.0, "strong", SIZE) for e in range(6)]
    for img in neutral[1:]:
        assert np.array_equal(img, neutral[0])


def test_true_face_is_the_clean_strong_render(faces):
    truth = faces.true_face(2, "happiness", 0.6, size=SIZE)
    assert np.array_equal(truth, faces.render(2, 3, 0.6, "strong", SIZE, jitter_seed=None))
    assert not np.array_equal(truth, faces.render(2, 3, 0.6, "strong", SIZE, jitter_seed=0))


def test_true_faces_batches_true_face(faces):
    batch = faces.true_faces(["P002", "P005"], ["fear", "sadness"], [0.3, 1.0], size=SIZE)
    assert np.array_equal(batch[0], faces.true_face(1, 2, 0.3, SIZE))
    assert np.array_equal(batch[1], faces.true_face(4, 4, 1.0, SIZE))


def test_jitter_seed_changes_pose_and_noise_deterministically(faces):
    a = faces.render(1, 5, 1.0, "weak", SIZE, jitter_seed=1)
    assert np.array_equal(a, faces.render(1, 5, 1.0, "weak", SIZE, jitter_seed=1))
    assert not np.array_equal(a, faces.render(1, 5, 1.0, "weak", SIZE, jitter_seed=2))


def test_expressions_blend_continuously_and_differ_at_peak(faces):
    t = np.linspace(0.0, 1.0, 21)
    for e in range(6):
        seq = faces.render_batch([6] * 21, [e] * 21, t, "strong", 48).astype(float)
        steps = np.abs(np.diff(seq, axis=0)).mean(axis=(1, 2, 3))
        total = np.abs(seq[-1] - seq[0]).mean()
        assert total > 0.4, EXPRESSIONS[e]
        # No single 0.05 step carries more than a third of the whole change.
        assert steps.max() < total / 3 + 0.2, EXPRESSIONS[e]
    peak = faces.render_batch([6] * 6, range(6), [1.0] * 6, "strong", 48).astype(float)
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(peak[i] - peak[j]).mean() > 0.5, (EXPRESSIONS[i], EXPRESSIONS[j])


def test_lighting_conditions_order_brightness(faces):
    means = [faces.render(7, 3, 1.0, light, SIZE).mean() for light in LIGHTINGS]
    assert means[0] > means[1] > means[2]


def test_action_units_scale_with_intensity():
    aus = action_units("happiness", 0.5)
    assert set(aus) == set(ACTION_UNITS)
    assert aus["AU12"] == pytest.approx(0.5 * EXPRESSION_AUS["happiness"]["AU12"])
    assert aus["AU4"] == 0.0
    assert all(v == 0.0 for v in action_units("anger", 0.0).values())


def test_sequence_runs_from_neutral_to_peak(faces):
    seq = faces.sequence(0, "surprise", num_frames=4, lighting="strong", size=SIZE)
    assert seq.shape == (4, SIZE, SIZE, 3)
    assert np.array_equal(seq[0], faces.render(0, 0, 0.0, "strong", SIZE))
    assert np.array_equal(seq[-1], faces.render(0, 5, 1.0, "strong", SIZE))


@pytest.mark.parametrize("kwargs, message", [
    (dict(expression="smile"), "expression must be an index 0-5 or one of ['anger', "
                               "'disgust', 'fear', 'happiness', 'sadness', 'surprise'] (or a "
                               "synonym: "),
    (dict(expression="smile"), "Received: expression='smile'"),
    (dict(expression=6), "Received: expression=6"),
    (dict(intensity=1.5), "intensity must be in [0, 1]. Received: intensity=1.5"),
    (dict(lighting="bright"), "lighting must be one of ['strong', 'weak', 'dark']. "
                              "Received: lighting='bright'"),
    (dict(size=4), "size must be an integer >= 8. Received: size=4"),
    (dict(subject=12), "subject must be an index 0-11 or an id P001-P012. "
                       "Received: subject=12"),
    (dict(jitter_seed=-1), "jitter_seed must be None or an integer >= 0. "
                           "Received: jitter_seed=-1"),
])
def test_bad_arguments_raise_clear_errors(faces, kwargs, message):
    args = dict(subject=0, expression=0, intensity=0.5, lighting="weak", size=SIZE,
                jitter_seed=None)
    args.update(kwargs)
    with pytest.raises(ValueError) as e:
        faces.render(**args)
    assert message in str(e.value)


def test_faceset_rejects_bad_construction():
    with pytest.raises(ValueError, match=r"num_subjects must be a positive integer. "
                                         r"Received: num_subjects=0"):
        FaceSet(num_subjects=0)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0. Received: seed=-3"):
        FaceSet(seed=-3)


def test_builtin_rows_are_oulu_sized():
    train = builtin.builtin_rows(split="train")
    test = builtin.builtin_rows(split="test")
    assert len(train) == 1296 and len(test) == 144
    assert sorted({r["subject"] for r in train}) == [f"P{i:03d}" for i in range(1, 73)]
    assert sorted({r["subject"] for r in test}) == [f"P{i:03d}" for i in range(73, 81)]
    assert {r["intensity"] for r in train} == {0.8, 0.9, 1.0}
    assert {r["lighting"] for r in train} == set(LIGHTINGS)
    assert np.bincount([r["label"] for r in train]).tolist() == [216] * 6


def test_clean_faces_are_the_true_faces_of_the_training_frames(tmp_path):
    """``data.clean_faces`` (the targets of ``training.clean_targets``): for every face of
    ``load_split``, in its order, the centred noise-free render of the same subject,
    expression, intensity and lighting; refused for data on disk."""
    from exprgan_tf import data

    rows = builtin.builtin_rows(num_subjects=10, split="test")
    faces, labels, _ = data.load_split(None, "test", 32, num_subjects=10)
    clean = data.clean_faces(None, "test", 32, num_subjects=10)
    assert clean.shape == faces.shape == (len(rows), 32, 32, 3)
    renderer = FaceSet(num_subjects=10)
    for i in (0, 7, len(rows) - 1):
        r = rows[i]
        np.testing.assert_array_equal(
            clean[i], renderer.true_face(r["subject"], r["label"], r["intensity"], 32,
                                         lighting=r["lighting"]))
    assert np.abs(clean.astype(float) - faces).mean() > 2.0  # the jitter and noise
    with pytest.raises(ValueError, match="training.clean_targets=false"):
        data.clean_faces(str(tmp_path), "train", 32)


def test_a_posed_render_is_the_same_capture_without_noise_in_any_expression():
    """``poses_of`` gives a face the pose, light and gain of another frame of the same
    subject, lighting and jitter seed, and no sensor noise."""
    faces = FaceSet(num_subjects=3)
    frame = dict(subjects=[1], lightings="dark", size=48, jitter_seeds=[2])
    noisy = faces.render_batch(expressions=[4], intensities=[0.9], **frame).astype(float)
    own = faces.render_batch(expressions=[4], intensities=[0.9], poses_of=[(4, 0.9)],
                             **frame).astype(float)
    smile = faces.render_batch(expressions=[3], intensities=[1.0], poses_of=[("sadness", 0.9)],
                               **frame).astype(float)
    clean_smile = faces.render_batch(expressions=[3], intensities=[1.0], **dict(
        frame, jitter_seeds=None)).astype(float)
    # the dark lighting's sensor noise: sigma 4 levels, mean 0, on every pixel
    assert abs((noisy - own).mean()) < 0.2 and 3.5 < (noisy - own).std() < 4.5
    # only the expression differs from the posed sad face: the same hair and
    # background, the mouth and eyes changed
    changed = np.abs(smile - own).max(axis=-1) > 8
    assert 0.01 < changed.mean() < 0.15
    assert np.abs(smile - clean_smile).mean() > 3 * np.abs(smile - own).mean()
    with pytest.raises(ValueError, match="needs a jitter seed"):
        faces.render_batch([1], [3], [1.0], "dark", 48, None, poses_of=[(4, 0.9)])
    with pytest.raises(ValueError, match=r"poses_of must have one entry per face \(1\)"):
        faces.render_batch([1], [3], [1.0], "dark", 48, [2], poses_of=[None, None])


def test_a_posed_pool_holds_each_face_in_its_other_expressions():
    from exprgan_tf import data

    rows = builtin.builtin_rows(num_subjects=10, split="test")
    faces, labels, _ = data.load_split(None, "test", 32, num_subjects=10)
    pool = data.pair_pool(None, "test", 32, (0.5, 1.0), "input", num_subjects=10,
                          changes=True)
    assert pool["images"].shape == (len(rows) * 5 * 2, 32, 32, 3)
    for k in (0, 7):
        mine = pool["sources"] == k
        assert sorted(zip(pool["labels"][mine].tolist(), pool["intensities"][mine].tolist())) \
            == [(e, t) for e in range(6) if e != labels[k] for t in (0.5, 1.0)]
    r = rows[7]
    happy = int(np.flatnonzero((pool["sources"] == 7) & (pool["labels"] == 3)
                               & (pool["intensities"] == 1))[0])
    np.testing.assert_array_equal(pool["images"][happy], FaceSet(num_subjects=10).render_batch(
        [r["subject"]], [3], [1.0], r["lighting"], 32, [r["jitter_seed"]],
        poses_of=[(r["label"], r["intensity"])])[0])
    # where the partner differs from its face's own capture without noise
    own = FaceSet(num_subjects=10).render_batch(
        [r["subject"]], [r["label"]], [r["intensity"]], r["lighting"], 32,
        [r["jitter_seed"]], poses_of=[(r["label"], r["intensity"])])
    from exprgan_tf.data.regions import change_maps
    np.testing.assert_array_equal(pool["changes"][happy],
                                  change_maps(pool["images"][happy:happy + 1], own)[0])
    assert pool["changes"].shape == pool["images"].shape[:3]
    assert 0.02 < pool["changes"][happy].mean() < 0.5
    plain = data.pair_inputs(None, "test", image_size=32, intensities=(1.0,), pose="input",
                             num_subjects=10)["pair_pool"]
    assert plain["sources"].shape == (len(rows) * 5,)
    assert "changes" not in plain   # rendered only when asked for
    with pytest.raises(ValueError, match="changes=True needs pose='input'"):
        data.pair_pool(None, "test", 32, (1.0,), num_subjects=10, changes=True)
    with pytest.raises(ValueError, match=r"pose must be one of \['clean', 'input'\]"):
        builtin.pair_pool_rows(rows, (1.0,), "posed")
    clean_rows = builtin.builtin_rows(num_subjects=10, split="test", jitter=False)
    with pytest.raises(ValueError, match="pose='input' needs jittered rows"):
        builtin.pair_pool_rows(clean_rows, (1.0,), "input")


def test_pair_pool_renders_every_group_in_every_expression_at_each_intensity(tmp_path):
    from exprgan_tf import data

    rows = builtin.builtin_rows(num_subjects=10, split="test")
    pool = data.pair_pool(None, "test", 32, (0.0, 1.0), num_subjects=10)
    groups = sorted({f"{r['subject']}/{r['lighting']}" for r in rows})
    assert sorted(set(pool["groups"].tolist())) == groups
    assert pool["images"].shape == (len(groups) * 6 * 2, 32, 32, 3)
    for g in groups:
        mine = pool["groups"] == g
        assert sorted(zip(pool["labels"][mine].tolist(), pool["intensities"][mine].tolist())) \
            == [(e, t) for e in range(6) for t in (0.0, 1.0)]
    # the partners are the clean true faces in the group's lighting; at intensity 0 the
    # neutral face, whatever the label
    faces = FaceSet(num_subjects=10)
    subject, light = groups[0].split("/")
    mine = pool["groups"] == groups[0]
    happy = int(np.flatnonzero(mine & (pool["labels"] == 3) & (pool["intensities"] == 1))[0])
    np.testing.assert_array_equal(pool["images"][happy],
                                  faces.true_face(subject, 3, 1.0, 32, lighting=light))
    neutral = pool["images"][mine & (pool["intensities"] == 0)]
    assert len(neutral) == 6 and all(np.array_equal(n, neutral[0]) for n in neutral)
    # the Trainer's arguments in one call; no pool without intensities
    both = data.pair_inputs(None, "test", image_size=32, intensities=(0.5,), num_subjects=10)
    assert both["pair_pool"]["images"].shape[0] == len(groups) * 6
    assert list(both["pair_groups"]) == [f"{r['subject']}/{r['lighting']}" for r in rows]
    with pytest.raises(ValueError, match="only the built-in set"):
        data.pair_pool(str(tmp_path), "train", 32, (0.5,))
    with pytest.raises(ValueError, match=r"intensities must be a non-empty list"):
        builtin.pair_pool_rows(rows, (1.5,))
