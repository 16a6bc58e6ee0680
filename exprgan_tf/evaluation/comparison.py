"""Several models, several seeds each: every measure as mean and range over the seeds,
the input-unchanged baseline and the paper's Table I beside it, and a verdict computed
from the numbers (``benchmarks/table1.py`` writes it).

A run's numbers are one flat dict (:func:`run_metrics`): the learning report of
:mod:`~exprgan_tf.evaluation.learning` plus FID, the Fréchet distance over dlib
descriptors and the training times. A measure that was not taken holds a string saying
why, never a silent gap.

**When is a difference real?** Only when the seed ranges do not overlap: every seed of
one model is better than every seed of the other (:func:`compare`). With two seeds per
model that is the most the data can say; a difference inside the seed spread is reported
as such.

Example:
    >>> from exprgan_tf.evaluation.comparison import compare, summarize
    >>> runs = {"a": [{"expression": 0.90}, {"expression": 0.93}],
    ...         "b": [{"expression": 0.80}, {"expression": 0.82}]}
    >>> stats = summarize(runs)
    >>> round(stats["a"]["expression"]["mean"], 3)
    0.915
    >>> compare(stats["a"]["expression"], stats["b"]["expression"], "higher")["outcome"]
    'better'
"""

from __future__ import annotations

import dataclasses

from exprgan_tf.config import EXPRESSIONS

PAPER_COLUMNS = ("exprgan", "proposed_no_unsharp", "proposed")
"""The columns of the paper's Table I (ExprGAN, proposed without unsharp masking,
proposed), by preset name without ``-small``."""

NOT_MEASURED = "not measured"


@dataclasses.dataclass(frozen=True)
class Measure:
    """One row of the comparison.

    Attributes:
        key: its key in :func:`run_metrics`; the input-unchanged baseline is
            ``key + "_input"``.
        group: what measures it.
        label: the quantity.
        kind: how to print it: ``"pct"``, ``"num1"`` ... ``"num4"`` (decimals).
        better: ``"higher"``, ``"lower"`` or ``""`` (not compared).
        paper: the paper's value per :data:`PAPER_COLUMNS` (text, as printed there),
            or ``None``.
        verdict: whether the verdict compares models on it.
        short: its name in the verdict's sentences (default ``label``).
    """

    key: str
    group: str
    label: str
    kind: str
    better: str = ""
    paper: tuple | None = None
    verdict: bool = False
    short: str = ""

    @property
    def name(self) -> str:
        return self.short or self.label


_JUDGE = "CNN expression classifier (Fig. 4)"
_PCA = "PCA eigenfaces, 6 persons x 6 expressions"
MEASURES = (
    Measure("expression", _JUDGE, "requested expression, accuracy", "pct", "higher",
            ("91%", "94%", "97%"), verdict=True, short="CNN expression accuracy"),
    *(Measure(f"expression_{name}", _JUDGE, f"... {name}", "pct", "higher")
      for name in EXPRESSIONS),
    Measure("pca_at_10", _PCA, "recognition accuracy at 10 eigenfaces", "pct", "higher",
            ("96%", "- (100% at 14)", "100%"), verdict=True,
            short="PCA recognition at 10 eigenfaces"),
    Measure("pca_best", _PCA, "best recognition accuracy", "pct", "higher",
            ("96%", "100%", "100%")),
    Measure("pca_best_components", _PCA, "fewest eigenfaces reaching it", "num1", "lower",
            ("10", "14", "10")),
    Measure("fid", "FID (ImageNet InceptionV3)", "edits vs real training faces", "num2",
            "lower", ("91.32", "84.73", "79.10"), verdict=True, short="FID"),
    Measure("fd_dlib", "FD, dlib descriptors (not FID)", "edits vs real training faces",
            "num4", "lower", verdict=True, short="FD over dlib descriptors"),
    Measure("ntt_pixels", "Identity", "nearest true target, pixels", "pct", "higher",
            verdict=True, short="identity (nearest true target, pixels)"),
    Measure("ntt_dlib", "Identity", "nearest true target, dlib descriptors", "pct",
            "higher"),
    Measure("same_person", "Identity", "dlib same person (input, edit)", "pct", "higher"),
    Measure("l1", "Ground truth", "L1 to true target ([0, 1] units)", "num4", "lower",
            verdict=True, short="L1 to the true target"),
    Measure("ssim", "Ground truth", "SSIM to true target", "num3", "higher", verdict=True,
            short="SSIM to the true target"),
    Measure("intensity_spearman", "Intensity", "Spearman(requested, estimated)", "num3",
            "higher", verdict=True, short="intensity Spearman"),
    Measure("train_minutes", "Time", "training steps (history.csv), min", "num1"),
    Measure("wall_minutes", "Time", "training commands, wall, min", "num1"),
)
MEASURE = {m.key: m for m in MEASURES}


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return d if isinstance(d, str) else None
        d = d.get(k)
    return d


def run_metrics(report, fid=None, fd_dlib=None, times=None) -> dict:
    """The flat numbers of one run.

    Args:
        report: a learning report (``learning.public(learning_report(...))``).
        fid: ``{"edits": float, "input_unchanged": float}``, or a string saying why it
            was not measured (``None``: :data:`NOT_MEASURED`).
        fd_dlib: the same for the Fréchet distance over dlib descriptors.
        times: ``{"train_seconds": ..., "wall_seconds": ...}`` (either may be absent).

    Returns:
        ``{key: number | None | str}`` for every :data:`MEASURES` key, and
        ``key + "_input"`` for the input-unchanged baselines that exist.
    """
    e, p = report["expression"], report["pca"]
    n, g, i = report["nearest_true_target"], report["ground_truth"], report["intensity"]
    sp = report["same_person"]
    m = {"expression": e["accuracy"], "expression_input": e["input_unchanged"],
         "pca_at_10": p["accuracy_at_10"],
         "pca_at_10_input": p["input_unchanged"]["accuracy_at_10"],
         "pca_best": p["best_accuracy"], "pca_best_input": p["input_unchanged"]["best_accuracy"],
         "pca_best_components": p["best_components"],
         "pca_best_components_input": p["input_unchanged"]["best_components"],
         "ntt_pixels": n["pixels"]["edit"], "ntt_pixels_input": n["pixels"]["input_unchanged"],
         "ntt_dlib": _get(n, "dlib", "edit"), "ntt_dlib_input": _get(n, "dlib", "input_unchanged"),
         "same_person": _get(sp, "edit"),
         "l1": g["l1"], "l1_input": g.get("l1_input"),
         "ssim": g["ssim"], "ssim_input": g.get("ssim_input"),
         "intensity_spearman": i["spearman"],
         "intensity_spearman_input": _get(i, "input_unchanged", "spearman")}
    for name in EXPRESSIONS:
        m[f"expression_{name}"] = e["per_class"].get(name)
    for key, value in (("fid", fid), ("fd_dlib", fd_dlib)):
        if isinstance(value, dict):
            m[key], m[key + "_input"] = value.get("edits"), value.get("input_unchanged")
        else:
            m[key] = value if isinstance(value, str) else NOT_MEASURED
    times = times or {}
    for key, src in (("train_minutes", "train_seconds"), ("wall_minutes", "wall_seconds")):
        m[key] = times[src] / 60.0 if times.get(src) is not None else None
    return m


def aggregate(values) -> dict:
    """Mean and range of the numbers among ``values`` (one per seed).

    Returns:
        ``{"mean", "min", "max", "n", "values"}``; with no number at all
        ``{"n": 0, "missing": reason}`` (the first string among ``values``, or
        :data:`NOT_MEASURED`).
    """
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not nums:
        reasons = [v for v in values if isinstance(v, str)]
        return {"n": 0, "missing": reasons[0] if reasons else NOT_MEASURED}
    return {"mean": sum(nums) / len(nums), "min": min(nums), "max": max(nums),
            "n": len(nums), "values": nums}


def summarize(runs: dict) -> dict:
    """``{model: [run_metrics of each seed]}`` -> ``{model: {key: aggregate}}`` over
    every key any run has."""
    out = {}
    for model, seeds in runs.items():
        keys = dict.fromkeys(k for r in seeds for k in r)
        out[model] = {k: aggregate([r.get(k) for r in seeds]) for k in keys}
    return out


def compare(a: dict, b: dict, better: str) -> dict:
    """Is model ``a`` better than model ``b`` on one measure, beyond the seed spread?

    Args:
        a, b: :func:`aggregate` of each model's seeds.
        better: ``"higher"`` or ``"lower"``.

    Returns:
        ``{"outcome", "diff", "gain", "spread"}``: ``diff`` = mean(a) - mean(b),
        ``gain`` = ``diff`` signed so that positive is better for ``a``, ``spread`` =
        the larger of the two seed ranges; ``outcome`` is ``"better"`` / ``"worse"``
        (every seed of ``a`` beats / loses to every seed of ``b``), ``"within"`` (the
        ranges overlap), ``"equal"`` (every value the same), ``"one seed"`` (a model
        has fewer than two seeds: the spread is unknown) or ``"not measured"``.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower'. Received: {better!r}")
    if not a.get("n") or not b.get("n"):
        return {"outcome": "not measured", "diff": None, "gain": None, "spread": None}
    diff = a["mean"] - b["mean"]
    gain = diff if better == "higher" else -diff
    spread = max(a["max"] - a["min"], b["max"] - b["min"])
    out = {"diff": diff, "gain": gain, "spread": spread}
    if a["min"] == a["max"] == b["min"] == b["max"]:
        return {**out, "outcome": "equal"}
    if a["n"] < 2 or b["n"] < 2:
        return {**out, "outcome": "one seed"}
    a_wins = a["min"] > b["max"] if better == "higher" else a["max"] < b["min"]
    b_wins = b["min"] > a["max"] if better == "higher" else b["max"] < a["min"]
    return {**out, "outcome": "better" if a_wins else "worse" if b_wins else "within"}


def fmt(value, kind: str) -> str:
    """One number as :class:`Measure` ``kind`` prints it."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{value:.1%}"
    return f"{value:.{int(kind[3:])}f}"


def fmt_diff(diff, kind: str) -> str:
    """A signed difference: percentage points for ``"pct"``."""
    if kind == "pct":
        return f"{diff * 100:+.1f} points"
    return f"{diff:+.{int(kind[3:])}f}"


def cell(stats: dict, kind: str) -> str:
    """``mean (min-max)``, just the value for one seed, or :data:`NOT_MEASURED` (the
    reason belongs in a note: it is the same for every model)."""
    if not stats.get("n"):
        return NOT_MEASURED
    mean = fmt(stats["mean"], kind)
    if stats["n"] == 1:
        return mean
    return f"{mean} ({fmt(stats['min'], kind)}-{fmt(stats['max'], kind)})"


def paper_cell(measure: Measure, models) -> str:
    """The paper's values of ``measure`` for ``models`` (preset names), ``" / "``-joined."""
    if measure.paper is None:
        return ""
    vals = []
    for model in models:
        base = model[:-len("-small")] if model.endswith("-small") else model
        vals.append(measure.paper[PAPER_COLUMNS.index(base)] if base in PAPER_COLUMNS
                    else "-")
    return " / ".join(vals)


def baseline_cell(summary: dict, measure: Measure) -> str:
    """The input-unchanged value (the mean over every run that has it; it does not
    depend on the model), ``"-"`` where it is undefined (a Spearman correlation of a
    constant), or ``""`` where no baseline applies."""
    key = measure.key + "_input"
    vals = [s[key] for s in summary.values() if s.get(key, {}).get("n")]
    if not vals:
        return "-" if any(key in s for s in summary.values()) else ""
    return fmt(sum(v["mean"] for v in vals) / len(vals), measure.kind)


def table_rows(summary: dict, models):
    """:class:`~exprgan_tf.evaluation.table.Row` s (text cells): one per measure any
    model has, columns = ``models`` + input unchanged + the paper's values."""
    from exprgan_tf.evaluation.table import Row

    rows = []
    for m in MEASURES:
        if not any(m.key in summary[model] for model in models):
            continue
        values = [cell(summary[model].get(m.key, {"n": 0}), m.kind) for model in models]
        values += [baseline_cell(summary, m), paper_cell(m, models)]
        rows.append(Row(m.group, m.label, values, better=m.better))
    return rows


_OUTCOME_TEXT = {
    "better": "better beyond the seed spread",
    "worse": "worse beyond the seed spread",
    "within": "within the seed spread (the seed ranges overlap)",
    "equal": "equal for every seed",
    "one seed": "one seed only: the spread is unknown",
    "not measured": "not measured",
}


def _paper_diff(measure: Measure, a: str, b: str):
    """The paper's ``a - b`` difference of ``measure`` as text, when both are numbers."""
    if measure.paper is None:
        return None
    vals = []
    for model in (a, b):
        base = model[:-len("-small")] if model.endswith("-small") else model
        if base not in PAPER_COLUMNS:
            return None
        text = measure.paper[PAPER_COLUMNS.index(base)]
        try:
            vals.append(float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0))
        except ValueError:
            return None
    return (f"paper: {measure.paper[PAPER_COLUMNS.index(_base(a))]} vs "
            f"{measure.paper[PAPER_COLUMNS.index(_base(b))]} "
            f"({fmt_diff(vals[0] - vals[1], measure.kind)})")


def _base(model):
    return model[:-len("-small")] if model.endswith("-small") else model


def question(summary: dict, a: str, b: str, title: str) -> dict:
    """Compare model ``a`` with model ``b`` on every verdict measure.

    Returns:
        ``{"title", "answer", "lines", "outcomes"}``: a one-sentence answer, one line
        per measure (means, difference, seed ranges, outcome, the paper's difference),
        and ``{key: compare(...)}``.
    """
    outcomes, lines = {}, []
    for m in MEASURES:
        if not m.verdict or m.key not in summary[a] or m.key not in summary[b]:
            continue
        sa, sb = summary[a][m.key], summary[b][m.key]
        c = compare(sa, sb, m.better)
        outcomes[m.key] = c
        name = m.name[:1].upper() + m.name[1:]
        if c["outcome"] == "not measured":
            lines.append(f"{name}: not measured ({sa.get('missing') or sb.get('missing')}).")
            continue
        text = (f"{name}: {fmt(sa['mean'], m.kind)} vs {fmt(sb['mean'], m.kind)} "
                f"({fmt_diff(c['diff'], m.kind)}; seeds {cell(sa, m.kind)} vs "
                f"{cell(sb, m.kind)}): {_OUTCOME_TEXT[c['outcome']]}")
        paper = _paper_diff(m, a, b)
        lines.append(text + (f"; {paper}." if paper else "."))
    label = lambda keys: ", ".join(MEASURE[k].name for k in keys)  # noqa: E731
    wins = [k for k, c in outcomes.items() if c["outcome"] == "better"]
    losses = [k for k, c in outcomes.items() if c["outcome"] == "worse"]
    measured = [k for k, c in outcomes.items() if c["outcome"] != "not measured"]
    rest = [k for k in measured if k not in wins and k not in losses]
    if not measured:
        answer = f"Cannot tell: nothing was measured for both {a} and {b}."
    elif any(c["outcome"] == "one seed" for c in outcomes.values()) and not (wins or losses):
        answer = (f"Cannot tell: {a} or {b} has a single seed, so the spread between seeds "
                  "is unknown and no difference can be called real.")
    elif wins and not losses:
        answer = (f"Yes: {a} is better than {b} beyond the seed spread on {label(wins)}"
                  + (f"; on {label(rest)} the difference is within the seed spread."
                     if rest else "."))
    elif losses and not wins:
        answer = (f"No: {a} is worse than {b} beyond the seed spread on {label(losses)}, "
                  f"and better beyond it on no measure"
                  + (f" (within the spread: {label(rest)})." if rest else "."))
    elif wins and losses:
        answer = (f"Mixed: {a} is better than {b} beyond the seed spread on {label(wins)}, "
                  f"worse on {label(losses)}"
                  + (f"; within the spread on {label(rest)}." if rest else "."))
    else:
        answer = (f"No: on every measure the difference between {a} and {b} is within the "
                  "spread between seeds, so on this data and budget neither is better.")
    return {"title": title, "answer": answer, "lines": lines, "outcomes": outcomes}


def verdict(summary: dict, proposed="proposed-small", exprgan="exprgan-small",
            no_unsharp="proposed_no_unsharp-small") -> list:
    """The two questions of the paper's Table I: does the proposed model beat ExprGAN,
    and does the unsharp mask help? A :func:`question` each (for the models present)."""
    out = []
    if proposed in summary and exprgan in summary:
        out.append(question(summary, proposed, exprgan,
                            f"Does {proposed} beat {exprgan}?"))
    if proposed in summary and no_unsharp in summary:
        out.append(question(summary, proposed, no_unsharp,
                            f"Does the unsharp mask help ({proposed} vs {no_unsharp})?"))
    return out


def verdict_markdown(questions, seeds_note: str = "") -> str:
    """The verdict as Markdown: per question, its answer then one bullet per measure."""
    lines = ["A difference counts as real only when every seed of one model is better "
             "than every seed of the other (the seed ranges do not overlap)."
             + (f" {seeds_note}" if seeds_note else ""), ""]
    if not questions:
        lines += ["No verdict: it compares proposed-small with exprgan-small and with "
                  "proposed_no_unsharp-small, and this table lacks one of them.", ""]
    for q in questions:
        lines += [f"**{q['title']}** {q['answer']}", ""]
        lines += [f"- {line}" for line in q["lines"]] + [""]
    return "\n".join(lines).rstrip() + "\n"
