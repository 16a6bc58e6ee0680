"""The one training input path (``training/inputs.TrainingInputs``): batches from
arrays in memory, from a folder decoded once into memory, and from a folder streamed
file by file are the same batches; epochs are functions of (seed, epoch); a resume, a
worker's shard and a flip are exact; bad input is refused with a message."""

import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from exprgan_tf import data
from exprgan_tf.config import get_preset
from exprgan_tf.cli import prepare_data
from exprgan_tf.preprocessing import preprocess_fn
from exprgan_tf.training import TrainingInputs
from helpers import quiet

B = 8
STREAM = 0  # cache_bytes that streams every batch from the source


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The project's own writer at 32 px: 2 training subjects x 6 expressions x 3 frames
    (36 faces, 4 steps of 8 per epoch), 1 test subject; with the in-memory arrays
    ``load_split`` reads from it and the file list ``list_split`` gives."""
    root = tmp_path_factory.mktemp("data") / "faces"
    assert prepare_data.main(["--out", str(root), "--size", "32", "--num-subjects", "3"]) == 0
    images, labels, subjects = data.load_split(str(root), "train", 32)
    paths, file_labels, file_subjects = data.list_split(str(root), "train")
    np.testing.assert_array_equal(labels, file_labels)
    np.testing.assert_array_equal(subjects, file_subjects)
    return dict(root=root, images=images, labels=labels, subjects=subjects, paths=paths)


def _batches(ds):
    return [{k: (tuple(x.numpy() for x in v) if isinstance(v, tuple) else v.numpy())
             for k, v in b.items()} for b in ds]


def _assert_same(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        assert sorted(x) == sorted(y)
        for k in x:
            assert x[k].dtype == y[k].dtype, k
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _ids(batch_images, reference):
    """Index in ``reference`` of every image of ``batch_images`` (or of its mirror)."""
    out = []
    for img in batch_images:
        hits = [j for j, r in enumerate(reference)
                if np.array_equal(img, r) or np.array_equal(img, r[:, ::-1])]
        assert len(hits) == 1
        out.append(hits[0])
    return out


def test_streamed_and_cached_folder_give_the_in_memory_batches(folder, tiny_config):
    cfg = tiny_config()
    messages = []
    kw = dict(pair_groups=folder["subjects"], log=messages.append)
    memory = TrainingInputs(folder["images"], folder["labels"], cfg, B, **kw)
    cached = TrainingInputs(folder["paths"], folder["labels"], cfg, B, **kw)
    streamed = TrainingInputs(folder["paths"], folder["labels"], cfg, B, cache_bytes=STREAM,
                              **kw)
    assert not memory.streamed and not cached.streamed and streamed.streamed
    assert streamed.images is None
    np.testing.assert_array_equal(cached.images, memory.images)
    assert messages == [  # arrays in memory that fit say nothing
        "Training data: 36 image files, 0 MiB pre-processed (<= the 2048 MiB cache limit): "
        "decoded once and kept in memory.",
        "Training data: 36 image files, 0 MiB pre-processed (> the 0 MiB cache limit): "
        "streaming them, each batch read and pre-processed as it is needed."]
    for epoch, skip in ((0, 0), (1, 0), (2, 3)):
        expected = _batches(memory.epoch(epoch, skip))
        assert len(expected) == 4 - skip
        _assert_same(_batches(cached.epoch(epoch, skip)), expected)
        _assert_same(_batches(streamed.epoch(epoch, skip)), expected)
    # the batch dict the train step takes, with static shapes (one trace)
    spec = streamed.epoch(0).element_spec
    assert sorted(spec) == ["code", "image", "label", "pair_code", "pair_image",
                            "pair_target", "z_prior"]
    assert spec["image"].shape.as_list() == [B, 32, 32, 3]
    assert spec["pair_image"].shape.as_list() == [B, 32, 32, 3]


def test_unsharpened_targets_are_the_same_from_memory_files_and_streams(folder, tiny_config):
    """With preprocess.sharpen_targets off every source serves the same ``target`` (and
    partners) beside the sharpened ``image``."""
    cfg = tiny_config(extra=["preprocess.sharpen_targets=false"])
    kw = dict(pair_groups=folder["subjects"], log=quiet)
    memory = TrainingInputs(folder["images"], folder["labels"], cfg, B, **kw)
    cached = TrainingInputs(folder["paths"], folder["labels"], cfg, B, **kw)
    streamed = TrainingInputs(folder["paths"], folder["labels"], cfg, B, cache_bytes=STREAM,
                              **kw)
    assert streamed.streamed and streamed.targets is None
    np.testing.assert_array_equal(cached.targets, memory.targets)
    np.testing.assert_array_equal(
        memory.targets, preprocess_fn(cfg.preprocess.target)(folder["images"]).numpy())
    expected = _batches(memory.epoch(1, 1))
    assert "target" in expected[0]
    _assert_same(_batches(cached.epoch(1, 1)), expected)
    _assert_same(_batches(streamed.epoch(1, 1)), expected)


def test_given_targets_are_what_g_gives_back_from_every_source(folder, tiny_config):
    """``targets`` (``training.clean_targets``'s clean renders) replace the image as G's
    target and as the partners' faces, flipped with their inputs, whether the images
    come from memory, from files decoded once or streamed; E still sees the images."""
    cfg = tiny_config()
    clean = folder["images"][::-1].copy()  # any faces other than the images will do
    kw = dict(pair_groups=folder["subjects"], log=quiet, targets=clean)
    memory = TrainingInputs(folder["images"], folder["labels"], cfg, B, **kw)
    cached = TrainingInputs(folder["paths"], folder["labels"], cfg, B, **kw)
    streamed = TrainingInputs(folder["paths"], folder["labels"], cfg, B, cache_bytes=STREAM,
                              **kw)
    assert streamed.streamed and streamed.images is None
    target_fn = preprocess_fn(cfg.preprocess.target)
    np.testing.assert_array_equal(memory.targets, target_fn(clean).numpy())
    arrays = memory.epoch_arrays(1)
    plan = memory.epoch_plan(1)
    flip = plan["flip"][:, None, None, None]

    def expected(index):
        faces = memory.targets[index]
        return np.where(flip, faces[:, :, ::-1], faces)

    np.testing.assert_array_equal(arrays["target"], expected(plan["index"]))
    np.testing.assert_array_equal(arrays["pair_image"], expected(plan["pair_index"]))
    images = preprocess_fn(cfg.preprocess)(folder["images"]).numpy()[plan["index"]]
    np.testing.assert_array_equal(arrays["image"], np.where(flip, images[:, :, ::-1], images))
    batches = _batches(memory.epoch(1, 1))
    _assert_same(_batches(cached.epoch(1, 1)), batches)
    _assert_same(_batches(streamed.epoch(1, 1)), batches)
    with pytest.raises(ValueError, match=r"targets must have one face per training image, "
                                         r"shape \[36, 32, 32, 3\]"):
        TrainingInputs(folder["images"], folder["labels"], cfg, B, targets=clean[:5], log=quiet)


def test_an_epoch_is_a_permutation_with_matching_labels_in_range(folder, tiny_config):
    inputs = TrainingInputs(folder["paths"], folder["labels"], tiny_config(), B,
                            cache_bytes=STREAM, log=quiet)
    reference = preprocess_fn(tiny_config().preprocess)(folder["images"]).numpy()
    batches = _batches(inputs.epoch(0))
    ids = sum((_ids(b["image"], reference) for b in batches), [])
    assert len(ids) == 32 and len(set(ids)) == 32
    assert ids == inputs.epoch_plan(0)["index"][:32].tolist()
    for b in batches:
        assert -1.0 <= b["image"].min() and b["image"].max() <= 1.0
        assert (b["label"].sum(1) == 1).all()
        np.testing.assert_array_equal(b["label"].argmax(1),
                                      folder["labels"][_ids(b["image"], reference)])


def test_epochs_depend_on_seed_and_epoch_only(folder, tiny_config):
    def plan(seed, epoch):
        cfg = tiny_config(extra=[f"training.seed={seed}"])
        return TrainingInputs(folder["paths"], folder["labels"], cfg, B, cache_bytes=STREAM,
                              log=quiet).epoch_plan(epoch)

    a = plan(3, 1)
    tf.random.set_seed(123)  # the global TF seed plays no part
    np.random.seed(5)
    b = plan(3, 1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["index"].tolist() != plan(4, 1)["index"].tolist()
    assert a["index"].tolist() != plan(3, 2)["index"].tolist()


def test_flips_are_exact_mirrors_drawn_per_image_and_can_be_disabled(folder, tiny_config):
    reference = preprocess_fn(tiny_config().preprocess)(folder["images"]).numpy()
    for flip in (True, False):
        cfg = tiny_config(extra=[f"training.flip={str(flip).lower()}"])
        inputs = TrainingInputs(folder["paths"], folder["labels"], cfg, B, cache_bytes=STREAM,
                                log=quiet)
        plan = inputs.epoch_plan(0)
        b = _batches(inputs.epoch(0).take(2))
        images = np.concatenate([x["image"] for x in b])
        for k, img in enumerate(images):
            i, f = plan["index"][k], plan["flip"][k]
            np.testing.assert_array_equal(img, reference[i][:, ::-1] if f else reference[i])
        assert plan["flip"].any() == flip and (not flip or not plan["flip"].all())


def test_a_workers_replica_batches_make_up_its_share_of_each_global_batch(folder, tiny_config):
    inputs = TrainingInputs(folder["paths"], folder["labels"], tiny_config(), B,
                            cache_bytes=STREAM, log=quiet)
    skip = 1
    full = _batches(inputs.epoch(2, skip))
    # 2 workers x 2 replicas: per-replica batches of 2, each worker's in replica order
    shards = [_batches(inputs.epoch(2, skip, tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=w, num_replicas_in_sync=4))) for w in (0, 1)]
    assert [len(s) for s in shards] == [6, 6]  # 3 steps x 2 local replicas
    for step, batch in enumerate(full):
        parts = shards[0][2 * step:2 * step + 2] + shards[1][2 * step:2 * step + 2]
        for k in batch:
            np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), batch[k])


def test_files_decode_as_load_split_reads_them(tmp_path, tiny_config):
    """Odd sizes, grayscale and JPEG, in the generic layout: the streamed batches hold
    what load_split (Pillow, centre crop, Lanczos) gives."""
    rng = np.random.default_rng(0)
    for s in range(1, 4):
        for e, expression in enumerate(("happy", "sad", "anger")):
            folder = tmp_path / expression
            folder.mkdir(exist_ok=True)
            if e == 0:
                Image.fromarray(rng.integers(0, 256, (50, 40), np.uint8), mode="L").save(
                    folder / f"S{s}_a.jpg", quality=90)
            else:
                Image.fromarray(rng.integers(0, 256, (45, 61, 3), np.uint8)).save(
                    folder / f"S{s}_a.png")
    images, labels, _ = data.load_split(str(tmp_path), "all", 32)
    paths, _, _ = data.list_split(str(tmp_path), "all")
    cfg = tiny_config(extra=["training.flip=false"])
    memory = TrainingInputs(images, labels, cfg, 3, log=quiet)
    streamed = TrainingInputs(paths, labels, cfg, 3, cache_bytes=STREAM, log=quiet)
    _assert_same(_batches(streamed.epoch(0)), _batches(memory.epoch(0)))


def test_an_unreadable_file_is_named(folder, tiny_config, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    paths = [str(p) for p in folder["paths"]]
    streamed = TrainingInputs(paths, folder["labels"], tiny_config(), B, cache_bytes=STREAM,
                              log=quiet)
    paths[streamed.epoch_plan(0)["index"][0]] = str(bad)  # the first face of epoch 0
    message = re.escape(f"Cannot read the training image {bad} (UnidentifiedImageError")
    with pytest.raises(ValueError, match=message):  # decoding the cache
        TrainingInputs(paths, folder["labels"], tiny_config(), B, log=quiet)
    streamed = TrainingInputs(paths, folder["labels"], tiny_config(), B, cache_bytes=STREAM,
                              log=quiet)
    # in the first batch (Trainer.fit turns this into the ValueError: test_training.py)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        next(iter(streamed.epoch(0)))
    with pytest.raises(ValueError, match="epoch_arrays holds a whole epoch of images"):
        streamed.epoch_arrays(0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=np.zeros((4, 16, 16, 3), np.uint8)),
     r"images must have shape [N, 32, 32, 3]. Received: shape=(4, 16, 16, 3)"),
    (dict(labels=np.arange(3)), "labels must have shape [4]. Received: shape=(3,)"),
    (dict(labels=np.array([0, 1, 2, 6])),
     "labels must be in [0, 6). Received: min=0, max=6"),
    (dict(batch_size=5), "The training set has 4 images, fewer than one batch. Received: "
                         "batch_size=5"),
    (dict(images=["a.png", "b.png", "c.png"]), "labels must have shape [3]. "
                                               "Received: shape=(4,)"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message, tiny_config):
    args = dict(images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.arange(4), batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError) as e:
        TrainingInputs(config=tiny_config(), log=quiet, **args)
    assert str(e.value) == message


def test_list_split_refuses_the_built_in_set():
    with pytest.raises(ValueError, match="list_split lists the files of a dataset folder"):
        data.list_split(None)


def test_training_data_of_a_folder_is_its_file_list_and_the_configs_pairing(folder,
                                                                            tiny_config):
    cfg = tiny_config()
    paths, labels, subjects, kw = data.training_data(cfg, 2, str(folder["root"]))
    np.testing.assert_array_equal(paths, folder["paths"])
    np.testing.assert_array_equal(labels, folder["labels"])
    assert sorted(kw) == ["intensities", "pair_groups", "pair_pool", "targets"]
    assert kw["pair_pool"] is kw["intensities"] is kw["targets"] is None
    np.testing.assert_array_equal(kw["pair_groups"], folder["subjects"])
    with pytest.raises(ValueError, match=r"Built-in set options \['num_subjects'\] do not "
                                         r"apply to data on disk"):
        data.training_data(cfg, 2, str(folder["root"]), num_subjects=10)
    posed = cfg.override(["training.pair_intensities=[1]"])
    with pytest.raises(ValueError, match="only the built-in set"):
        data.training_data(posed, 2, str(folder["root"]))


def test_a_stage_draws_partners_at_its_own_intensities(tiny_config):
    """``training.stageN.pair_intensities`` / ``pair_shares`` replace the training
    section's for that stage: the pool ``training_data`` renders, the config the
    trainer reads (``ExprGANConfig.at_stage``), and the checks run on what each stage
    trains with."""
    cfg = tiny_config(extra=["training.pair_intensities=[1]", "training.pair_pose=input",
                             "training.stage3.pair_intensities=[0,0.5,1]",
                             "training.stage3.pair_shares=[1,2,7]"])
    assert cfg.at_stage(2) is cfg
    three = cfg.at_stage(3).training
    assert (three.pair_intensities, three.pair_shares) == ((0, 0.5, 1), (1, 2, 7))
    assert cfg.at_stage(3).at_stage(3) == cfg.at_stage(3)
    levels = {n: sorted(set(data.training_data(cfg, n, num_subjects=10)[3]["pair_pool"]
                            ["intensities"].tolist())) for n in (2, 3)}
    assert levels == {2: [1.0], 3: [0.0, 0.5, 1.0]}
    # a stage's own intensities come without the section's shares unless it sets its own
    mixed = tiny_config(extra=["training.pair_intensities=[0,1]", "training.pair_shares=[1,9]",
                               "training.pair_pose=input",
                               "training.stage2.pair_intensities=[1]"])
    assert mixed.at_stage(2).training.pair_shares == ()
    assert mixed.at_stage(3).training.pair_shares == (1, 9)
    with pytest.raises(ValueError, match=re.escape(
            "Invalid config value training.pair_shares=[1, 2]: expected one share per "
            "training.pair_intensities entry ([0, 0.5, 1]). (in stage 3, which sets "
            "training.stage3.pair_intensities=[0, 0.5, 1] and "
            "training.stage3.pair_shares=[1, 2])")):
        cfg.override(["training.stage3.pair_shares=[1,2]"])


def test_data_on_disk_turns_every_stages_partners_off(tiny_config):
    from exprgan_tf.cli.train import data_on_disk_fallbacks

    cfg = tiny_config(extra=["training.pair_intensities=[1]", "training.pair_pose=input",
                             "training.stage3.pair_intensities=[0,1]",
                             "training.stage3.pair_shares=[1,9]"])
    notes = []
    t = data_on_disk_fallbacks(cfg, log=lambda *a, **k: notes.append(a[0])).training
    for n in (1, 2, 3):
        assert (t.at_stage(n).pair_intensities, t.at_stage(n).pair_shares) == ((), ())
    assert t.pair_pose == "clean"
    assert notes[0].startswith("note: training.pair_intensities=[0, 1] (pair_pose=input)")
    # the -small recipe (partners weighted where they change, codes at the face's own
    # intensity) becomes what any labelled data can serve
    notes.clear()
    t = data_on_disk_fallbacks(get_preset("proposed-small"),
                               log=lambda *a, **k: notes.append(a[0])).training
    assert (t.pair_pose, t.pair_change, t.codes) == ("clean", 0.0, "sampled")
    assert [t.at_stage(n).pair_intensities for n in (1, 2, 3)] == [()] * 3
    assert "training.pair_change=0" in notes[0] and "training.codes=sampled" in notes[1]


def test_extra_subjects_join_the_training_split_and_leave_the_held_out_ones(tiny_config):
    """``training.extra_subjects`` adds built-in people after the held-out ones: they
    train (faces, partners, codes) and the test split is still the same people."""
    from exprgan_tf.data.faces import FaceSet

    cfg = tiny_config(extra=["training.pair_intensities=[1]", "training.pair_pose=input",
                             "training.codes=intensity", "training.extra_subjects=2"])
    images, labels, subjects, kw = data.training_data(cfg, 2, num_subjects=10)
    size = cfg.model.image_size
    assert sorted(set(subjects.tolist())) == [f"P{i:03d}" for i in (1, 2, 3, 4, 5, 6, 7, 8,
                                                                    9, 11, 12)]
    assert len(images) == 11 * 18 and len(kw["intensities"]) == len(images)
    # the extra people are the face set's P011 and P012, as it draws them anywhere
    rows = data.builtin_rows(num_subjects=10, extra_subjects=2, split="train")
    np.testing.assert_array_equal(images[-18:],
                                  data.render_rows(FaceSet(0, 12), rows[-18:], size))
    # each of their faces has its partners: 5 other expressions at intensity 1
    pool = kw["pair_pool"]
    assert np.bincount(pool["sources"], minlength=len(images)).tolist() == [5] * len(images)
    assert set(pool["groups"][pool["sources"] >= 9 * 18].tolist()) == \
        set(kw["pair_groups"][9 * 18:].tolist())
    assert str(pool["groups"][-1]).startswith("P012/")
    # the held-out split does not move
    test = data.load_split(None, "test", size, num_subjects=10, extra_subjects=2)
    np.testing.assert_array_equal(test[0], data.load_split(None, "test", size,
                                                           num_subjects=10)[0])
    assert set(test[2].tolist()) == {"P010"}


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_extra_subjects_must_be_a_count(value, tiny_config):
    with pytest.raises(ValueError, match=re.escape(
            f"Invalid config value training.extra_subjects={value!r}: expected an integer")):
        tiny_config(extra=[f"training.extra_subjects={str(value).lower()}"])
    with pytest.raises(ValueError, match="extra_subjects must be an integer >= 0"):
        data.builtin_rows(num_subjects=10, extra_subjects=value)


def test_extra_subjects_are_refused_for_data_on_disk_and_dropped_by_the_script(folder,
                                                                             tiny_config):
    from exprgan_tf.cli.train import data_on_disk_fallbacks

    cfg = tiny_config(extra=["training.extra_subjects=3"])
    with pytest.raises(ValueError, match=re.escape(
            "training.extra_subjects draws more subjects of the built-in set, not of data "
            "on disk")):
        data.training_data(cfg, 2, str(folder["root"]))
    notes = []
    kept = data_on_disk_fallbacks(cfg, log=lambda *a, **k: notes.append(a[0]))
    assert kept.training.extra_subjects == 0
    assert notes == ["note: training.extra_subjects=3 draws more people of the built-in "
                     "set; with --data training uses the people of your data "
                     "(training.extra_subjects=0)."]
    paths = data.training_data(kept, 2, str(folder["root"]))[0]
    np.testing.assert_array_equal(paths, folder["paths"])
