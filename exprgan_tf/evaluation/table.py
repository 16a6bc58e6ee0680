"""Table I writer: one row per measure, one column per model, as Markdown and CSV.

Example:
    >>> from exprgan_tf.evaluation.table import Row, markdown_table
    >>> print(markdown_table(["A", "B"], [Row("FID", "FID score", [91.3, None], "{:.2f}")]))
    | - | Metric | A | B |
    |---|---|---|---|
    | FID | FID score | 91.30 | n/a |
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os

MISSING = "n/a"


@dataclasses.dataclass(frozen=True)
class Row:
    """One measure of Table I.

    Attributes:
        group: what measures it (``"CNN Expression Classifier"``, ``"FID"``, ...).
        metric: the quantity (``"Accuracy"``, ``"FID score"``, ...).
        values: one per model column; a number, a string, or ``None`` (not measured).
        fmt: format of numbers in Markdown (``"{:.1%}"``, ``"{:.2f}"``, ...); the CSV
            holds the unformatted number.
        better: ``"higher"``, ``"lower"`` or ``""`` - shown after the metric in Markdown.
    """

    group: str
    metric: str
    values: list
    fmt: str = "{:.3f}"
    better: str = ""

    def cell(self, value) -> str:
        if value is None:
            return MISSING
        if isinstance(value, str):
            return value
        return self.fmt.format(value)


_ARROWS = {"higher": " (↑)", "lower": " (↓)", "": ""}


def _check(columns, rows):
    for row in rows:
        if len(row.values) != len(columns):
            raise ValueError(f"Row {row.group!r}/{row.metric!r} has {len(row.values)} values "
                             f"for {len(columns)} columns {list(columns)}")
        if row.better not in _ARROWS:
            raise ValueError(f"Row.better must be 'higher', 'lower' or ''. "
                             f"Received: {row.better!r}")


def markdown_table(columns, rows) -> str:
    """The table as GitHub Markdown (no trailing newline)."""
    _check(columns, rows)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| - | Metric | " + " | ".join(esc(c) for c in columns) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        cells = [row.group, row.metric + _ARROWS[row.better]] + [row.cell(v) for v in row.values]
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    return "\n".join(lines)


def csv_table(columns, rows) -> str:
    """The table as CSV: ``group,metric,<column>...``; numbers unformatted (``repr`` of
    the float rounded to 6 significant digits), missing values empty."""
    _check(columns, rows)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["group", "metric"] + list(columns))
    for row in rows:
        vals = []
        for v in row.values:
            if v is None:
                vals.append("")
            elif isinstance(v, bool) or isinstance(v, str):
                vals.append(str(v))
            elif isinstance(v, int):
                vals.append(str(v))
            else:
                vals.append(f"{float(v):.6g}")
        w.writerow([row.group, row.metric] + vals)
    return out.getvalue()


def write_table(columns, rows, out_prefix, title: str = "Table I", notes=()) -> dict:
    """Write ``<out_prefix>.md`` (title, table, notes as a list) and ``<out_prefix>.csv``.

    Returns:
        ``{"markdown": path, "csv": path}``.
    """
    out_prefix = os.fspath(out_prefix)
    os.makedirs(os.path.dirname(out_prefix) or ".", exist_ok=True)
    md = [f"# {title}", "", markdown_table(columns, rows), ""]
    if notes:
        md += [f"- {n}" for n in notes] + [""]
    with open(out_prefix + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(out_prefix + ".csv", "w", encoding="utf-8", newline="") as f:
        f.write(csv_table(columns, rows))
    return {"markdown": out_prefix + ".md", "csv": out_prefix + ".csv"}
