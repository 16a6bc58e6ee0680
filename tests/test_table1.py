"""benchmarks/table1.py without training anything: which stages and seeds a rerun
skips (fake run directories with history.csv), the training queue's bookkeeping (a
stand-in command), and the table writer's aggregation and verdict on synthetic reports
(exprgan_tf.evaluation.comparison)."""

import csv
import json
import os
import sys

import pytest

from exprgan_tf.evaluation import comparison
from helpers import load_benchmark

table1 = load_benchmark("table1")
BUDGET = table1.make_budget([1, 12, 20])


def fake_run(run_dir, epochs, preset="proposed-small", seed=2018, identity="none",
             seconds=10.0):
    """A run directory whose history.csv holds ``epochs[s]`` epochs of stage s."""
    os.makedirs(run_dir, exist_ok=True)
    rows, step = [], 0
    for stage, n in zip((1, 2, 3), epochs):
        for epoch in range(1, n + 1):
            step += 81
            rows.append({"stage": stage, "epoch": epoch, "global_step": step,
                         "seconds": seconds, "l1": 0.1})
    with open(os.path.join(run_dir, "history.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, ["stage", "epoch", "global_step", "seconds", "l1"])
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"name": preset, "training": {"seed": seed},
                   "identity": {"network": identity}}, f)
    return run_dir


# --- which stages a rerun trains -------------------------------------------------------
def test_stages_to_train_from_history(tmp_path):
    d = str(tmp_path / "run")
    assert table1.stages_to_train(d, BUDGET) == [1, 2, 3]            # nothing yet
    fake_run(d, [1, 12, 5])                                          # killed in stage 3
    assert table1.stages_to_train(d, BUDGET, "proposed-small", 2018) == [3]
    fake_run(d, [1, 7, 0])                                           # killed in stage 2
    assert table1.stages_to_train(d, BUDGET) == [2, 3]
    fake_run(d, [1, 12, 20])
    assert table1.stages_to_train(d, BUDGET) == []
    assert table1.stages_to_train(d, table1.make_budget([1, 12, 30])) == [3]  # longer


def test_stages_to_train_refuses_another_budget_or_run(tmp_path):
    d = fake_run(str(tmp_path / "run"), [1, 12, 20], seed=2019)
    with pytest.raises(table1.BudgetError, match="20 epochs of stage 3, more than"):
        table1.stages_to_train(d, table1.make_budget([1, 12, 16]))
    with pytest.raises(table1.BudgetError, match="seed 2019, not 2018"):
        table1.stages_to_train(d, BUDGET, "proposed-small", 2018)
    with pytest.raises(table1.BudgetError, match="preset 'proposed-small', not 'exprgan-small'"):
        table1.stages_to_train(d, BUDGET, "exprgan-small", 2019)
    with pytest.raises(table1.BudgetError, match="identity 'none', not 'dlib_resnet'"):
        table1.stages_to_train(d, table1.make_budget([1, 12, 20], identity="dlib_resnet"))
    table1.write_json(os.path.join(d, table1.RUN_FILE),
                      {"budget": table1.make_budget([1, 12, 20], overrides=["x.y=1"])})
    with pytest.raises(table1.BudgetError, match="was trained with the budget"):
        table1.stages_to_train(d, BUDGET)
    gap = fake_run(str(tmp_path / "gap"), [1, 3, 20])
    with pytest.raises(table1.BudgetError, match="stage 3 is finished but stage 2"):
        table1.stages_to_train(gap, BUDGET)


def test_smoke_budget_reads_the_run_file(tmp_path):
    # --max-steps stops inside the first epoch: history.csv has no row, the run file
    # says which commands finished
    budget = table1.make_budget([1, 1, 1], max_steps=2)
    d = str(tmp_path / "run")
    os.makedirs(d)
    table1.write_json(os.path.join(d, table1.RUN_FILE),
                      {"budget": budget, "stages": {"1": {"done": True},
                                                    "2": {"done": False}}})
    assert table1.stages_to_train(d, budget) == [2, 3]


def test_plan_skips_finished_seeds(tmp_path):
    root = str(tmp_path)
    fake_run(table1.run_dir_of(root, "exprgan-small", 2018), [1, 12, 20], "exprgan-small", 2018)
    fake_run(table1.run_dir_of(root, "exprgan-small", 2019), [1, 4, 0], "exprgan-small", 2019)
    fake_run(table1.run_dir_of(root, "proposed-small", 2018), [1, 12, 20], "proposed-small", 2018)
    todo = table1.plan(root, ["exprgan-small", "proposed-small"], [2018, 2019], BUDGET)
    assert todo == {("exprgan-small", 2018): [], ("exprgan-small", 2019): [2, 3],
                    ("proposed-small", 2018): [], ("proposed-small", 2019): [1, 2, 3]}


def test_train_command_and_times(tmp_path):
    budget = table1.make_budget([1, 12, 20], max_steps=5, overrides=["training.codes=intensity"])
    cmd = table1.train_command("exprgan-small", 2019, 3, "/r", budget)
    assert cmd[1:] == ["-m", "exprgan_tf.cli.train", "--stage", "3", "--preset",
                       "exprgan-small", "--run-dir", "/r", "--epochs", "20",
                       "--set", "training.seed=2019", "--set", "identity.network=none",
                       "--set", "training.codes=intensity", "--max-steps", "5"]
    d = fake_run(str(tmp_path / "run"), [1, 12, 20], seconds=30.0)
    table1.write_json(os.path.join(d, table1.RUN_FILE), {"stages": {
        "1": {"wall_seconds": 100.0}, "2": {"wall_seconds": 500.5}, "3": {"wall_seconds": 900}}})
    times = table1.run_times(d)
    assert times["train_seconds"] == 33 * 30.0
    assert times["wall_seconds"] == 1500.5
    assert times["stages"]["stage3"] == {"epochs": 20, "steps": 33 * 81, "seconds": 600.0}


def test_training_queue_skips_finished_stages_and_reports_failures(tmp_path, monkeypatch):
    # the real command trains; a stand-in that exits at once tests the bookkeeping
    calls = []

    def stand_in(preset, seed, stage, run_dir, budget):
        calls.append((preset, seed, stage))
        return [sys.executable, "-c", f"import sys; sys.exit({3 if seed == 7 else 0})"]

    monkeypatch.setattr(table1, "train_command", stand_in)
    budget = table1.make_budget([1, 1, 1], max_steps=2)
    queue = table1.TrainingQueue(budget, str(tmp_path), jobs=2)
    status = queue.train_all([("proposed-small", 1), ("proposed-small", 7)])
    assert status == {("proposed-small", 1): "done",
                      ("proposed-small", 7): "stage 1 failed with exit status 3 (see "
                      + os.path.join(str(tmp_path), "proposed-small_seed7",
                                     "table1_stage1.log") + ")"}
    assert sorted(calls) == [("proposed-small", 1, 1), ("proposed-small", 1, 2),
                             ("proposed-small", 1, 3), ("proposed-small", 7, 1)]
    info = table1.read_json(os.path.join(str(tmp_path), "proposed-small_seed1", table1.RUN_FILE))
    assert info["budget"] == budget and info["seed"] == 1
    assert [info["stages"][s]["done"] for s in "123"] == [True, True, True]
    assert all(info["stages"][s]["commands"] == 1 for s in "123")
    calls.clear()                                    # a rerun: only the failed run again
    status = queue.train_all([("proposed-small", 1), ("proposed-small", 7)])
    assert calls == [("proposed-small", 7, 1)]
    info = table1.read_json(os.path.join(str(tmp_path), "proposed-small_seed7", table1.RUN_FILE))
    assert info["stages"]["1"]["commands"] == 2 and info["stages"]["1"]["last_exit_status"] == 3
    queue.stop.set()                                 # after a stop request nothing starts
    calls.clear()
    assert queue.train_all([("proposed-small", 8)]) == {("proposed-small", 8): "stopped"}
    assert calls == []


# --- aggregation and verdict on synthetic reports ---------------------------------------
def fake_report(expression=0.85, pca10=1.0, ntt=0.95, l1=0.05, ssim=0.6, spearman=0.3):
    per_class = {name: expression for name in comparison.EXPRESSIONS}
    pca_in = {"best_accuracy": 1.0, "best_components": 1, "accuracy_at_10": 1.0}
    return {
        "edits": 864, "heldout_subjects": ["P073"],
        "expression": {"accuracy": expression, "per_class": per_class,
                       "input_unchanged": 1 / 6, "judge_on_real": 0.993},
        "pca": {"best_accuracy": pca10, "best_components": 4, "accuracy_at_10": pca10,
                "persons": ["P073"] * 6, "input_unchanged": pca_in},
        "nearest_true_target": {"pixels": {"edit": ntt, "input_unchanged": 1.0},
                                "dlib": "not measured (no weights)"},
        "same_person": "not measured (no weights)",
        "ground_truth": {"l1": l1, "ssim": ssim, "l1_input": 0.0379, "ssim_input": 0.688},
        "intensity": {"spearman": spearman, "input_unchanged": {"spearman": None}}}


def metrics(**kw):
    return comparison.run_metrics(fake_report(**kw), fid="not measured (--no-fid)",
                                  fd_dlib={"edits": kw.get("l1", 0.05) * 10,
                                           "input_unchanged": 0.02},
                                  times={"train_seconds": 2400.0, "wall_seconds": 2640.0})


def test_run_metrics_and_summary():
    runs = {"exprgan-small": [metrics(expression=0.80), metrics(expression=0.82)],
            "proposed-small": [metrics(expression=0.90, l1=0.04),
                               metrics(expression=0.93, l1=0.06)]}
    s = comparison.summarize(runs)
    e = s["proposed-small"]["expression"]
    assert e["mean"] == pytest.approx(0.915) and (e["min"], e["max"], e["n"]) == (0.90, 0.93, 2)
    assert s["proposed-small"]["expression_happiness"]["mean"] == pytest.approx(0.915)
    assert s["proposed-small"]["l1"]["values"] == [0.04, 0.06]
    assert s["exprgan-small"]["wall_minutes"]["mean"] == pytest.approx(44.0)
    assert s["exprgan-small"]["fid"] == {"n": 0, "missing": "not measured (--no-fid)"}
    assert s["exprgan-small"]["ntt_dlib"] == {"n": 0, "missing": "not measured (no weights)"}
    assert s["exprgan-small"]["fd_dlib_input"]["mean"] == pytest.approx(0.02)
    assert comparison.cell(e, "pct") == "91.5% (90.0%-93.0%)"
    assert comparison.cell(s["proposed-small"]["fid"], "num2") == "not measured"
    rows = {(r.group, r.metric): r.values for r in comparison.table_rows(s, list(runs))}
    rows.update({k[1]: v for k, v in rows.items() if k[0] != "FID (ImageNet InceptionV3)"})
    assert rows["requested expression, accuracy"] == [
        "81.0% (80.0%-82.0%)", "91.5% (90.0%-93.0%)", "16.7%", "91% / 97%"]
    assert rows["L1 to true target ([0, 1] units)"][2] == "0.0379"
    assert rows["Spearman(requested, estimated)"][2] == "-"        # undefined baseline
    assert rows[("FID (ImageNet InceptionV3)", "edits vs real training faces")] == [
        "not measured", "not measured", "", "91.32 / 79.10"]
    assert rows["edits vs real training faces"] == [                       # the FD
        "0.5000 (0.5000-0.5000)", "0.5000 (0.4000-0.6000)", "0.0200", ""]


def test_verdict_clear_win_and_within_the_seed_spread():
    runs = {"exprgan-small": [metrics(expression=0.80), metrics(expression=0.82)],
            "proposed_no_unsharp-small": [metrics(expression=0.84), metrics(expression=0.86)],
            "proposed-small": [metrics(expression=0.90), metrics(expression=0.93)]}
    questions = comparison.verdict(comparison.summarize(runs))
    beat, unsharp = questions
    assert beat["outcomes"]["expression"]["outcome"] == "better"
    assert beat["outcomes"]["expression"]["diff"] == pytest.approx(0.105)
    assert beat["outcomes"]["fid"]["outcome"] == "not measured"
    assert beat["outcomes"]["l1"]["outcome"] == "equal"
    assert beat["answer"].startswith("Yes: proposed-small is better than exprgan-small "
                                     "beyond the seed spread on CNN expression accuracy;")
    line = beat["lines"][0]
    assert line == ("CNN expression accuracy: 91.5% vs 81.0% (+10.5 points; seeds 91.5% "
                    "(90.0%-93.0%) vs 81.0% (80.0%-82.0%)): better beyond the seed spread; "
                    "paper: 97% vs 91% (+6.0 points).")
    assert unsharp["outcomes"]["expression"]["outcome"] == "better"   # 90-93 vs 84-86

    # the same question when the seeds overlap: a negative result, said plainly
    runs["proposed-small"] = [metrics(expression=0.80), metrics(expression=0.90)]
    beat, unsharp = comparison.verdict(comparison.summarize(runs))
    assert unsharp["outcomes"]["expression"]["outcome"] == "within"
    assert unsharp["outcomes"]["expression"]["spread"] == pytest.approx(0.10)
    assert unsharp["answer"] == (
        "No: on every measure the difference between proposed-small and "
        "proposed_no_unsharp-small is within the spread between seeds, so on this data "
        "and budget neither is better.")
    assert "within the seed spread (the seed ranges overlap)" in unsharp["lines"][0]
    assert "paper: 97% vs 94% (+3.0 points)" in unsharp["lines"][0]
    md = comparison.verdict_markdown([beat, unsharp])
    assert "**Does the unsharp mask help (proposed-small vs proposed_no_unsharp-small)?** No:" in md


def test_verdict_worse_mixed_and_single_seed():
    runs = {"exprgan-small": [metrics(ntt=0.97), metrics(ntt=0.98)],
            "proposed-small": [metrics(ntt=0.90), metrics(ntt=0.92)]}
    (q,) = comparison.verdict(comparison.summarize(runs))
    assert q["answer"].startswith("No: proposed-small is worse than exprgan-small beyond "
                                  "the seed spread on identity (nearest true target, pixels)")
    runs["proposed-small"] = [metrics(ntt=0.90, l1=0.03), metrics(ntt=0.92, l1=0.031)]
    (q,) = comparison.verdict(comparison.summarize(runs))
    assert q["answer"].startswith("Mixed: proposed-small is better than exprgan-small beyond "
                                  "the seed spread on FD over dlib descriptors, L1 to the "
                                  "true target, worse on identity")
    one = {"exprgan-small": [metrics(expression=0.5)], "proposed-small": [metrics(expression=0.9)]}
    (q,) = comparison.verdict(comparison.summarize(one))
    assert q["outcomes"]["expression"]["outcome"] == "one seed"
    assert q["answer"].startswith("Cannot tell:")


def test_write_outputs_on_synthetic_runs(tmp_path):
    entries = []
    for preset, accs in (("exprgan-small", (0.80, 0.82)),
                         ("proposed_no_unsharp-small", (0.84, 0.86)),
                         ("proposed-small", (0.90, 0.93))):
        for seed, acc in zip((2018, 2019), accs):
            entries.append({"preset": preset, "seed": seed, "run_dir": f"runs/{preset}_{seed}",
                            "metrics": metrics(expression=acc),
                            "times": {"stages": {"stage1": {"steps": 81},
                                                 "stage2": {"steps": 972},
                                                 "stage3": {"steps": 1620}}}})
    meta = {"command": "python benchmarks/table1.py --no-fid", "date": "today",
            "load_start": 1.0, "runs": "runs", "tensorflow": "2.x", "cpu_count": 2}
    out = table1.write_outputs(str(tmp_path), entries, list(table1.PRESETS), [2018, 2019],
                               BUDGET, meta, {}, ["a note"])
    md = open(out["markdown"]).read()
    assert "Command: `python benchmarks/table1.py --no-fid`" in md
    assert "stage 1 / 2 / 3 = 1 / 12 / 20 epochs" in md and "SMOKE" not in md
    assert ("| CNN expression classifier (Fig. 4) | requested expression, accuracy (↑) | "
            "81.0% (80.0%-82.0%) | 85.0% (84.0%-86.0%) | 91.5% (90.0%-93.0%) | 16.7% | "
            "91% / 94% / 97% |") in md
    assert "**Does proposed-small beat exprgan-small?** Yes:" in md
    assert "| proposed-small | 2019 | `runs/proposed-small_2019` | 81 / 972 / 1620 |" in md
    data = json.load(open(out["json"]))
    assert data["summary"]["proposed-small"]["expression"]["values"] == [0.90, 0.93]
    rows = list(csv.DictReader(open(out["csv"])))
    row = [r for r in rows if r["measure"] == "expression" and r["model"] == "exprgan-small"][0]
    assert float(row["mean"]) == pytest.approx(0.81) and row["values"] == "0.8;0.82"
    assert row["paper"] == "91%" and float(row["input_unchanged"]) == pytest.approx(1 / 6)


# --- the scorer's FID / FD plumbing (stand-in feature extractors) -----------------------
def test_scorer_fid_and_fd_against_the_reference(monkeypatch):
    import keras
    import numpy as np

    from exprgan_tf.evaluation import fid, learning

    monkeypatch.setattr(learning, "dlib_descriptor", lambda weights=None: None)
    scorer = table1.Scorer(64, fid_weights="inception.h5")
    pool = keras.Sequential([keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D()])
    built = []
    monkeypatch.setattr(fid, "inception_feature_extractor", lambda w: built.append(w) or pool)
    rng = np.random.default_rng(0)
    faces = lambda n, hi: rng.integers(0, hi, (n, 8, 8, 3)).astype(np.uint8)  # noqa: E731
    real, inputs, edits = faces(20, 255), faces(12, 200), faces(12, 100)
    monkeypatch.setattr(scorer, "_train_faces", lambda: real)
    mean = lambda x: np.asarray(x, np.float64).mean(axis=(1, 2))  # noqa: E731
    out = scorer.fid(edits, inputs)
    assert out["edits"] == pytest.approx(fid.fid_from_features(mean(real), mean(edits)))
    assert out["input_unchanged"] == pytest.approx(fid.fid_from_features(mean(real),
                                                                         mean(inputs)))
    assert out["edits"] > out["input_unchanged"] > 0          # darker edits: further away
    scorer.fid(faces(12, 50), inputs)
    assert built == ["inception.h5"]                          # one extractor, one reference

    scorer.descriptor = lambda x, training=False: np.asarray(x).mean(axis=(1, 2))
    fd = scorer.fd_dlib(mean(edits) / 127.5 - 1, mean(inputs) / 127.5 - 1)
    assert fd["edits"] == pytest.approx(fid.fid_from_features(mean(real) / 127.5 - 1,
                                                               mean(edits) / 127.5 - 1))
    assert scorer.fd_value({"fd_dlib": fd}) is fd
    scorer.fid_weights, scorer.fid_reason = None, "not measured (--no-fid)"
    assert scorer.fid_value({"fid": out}) == "not measured (--no-fid)"
