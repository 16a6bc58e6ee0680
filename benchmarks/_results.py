"""What every benchmark records next to its numbers, and how it writes them.

``run_header`` says when, with which command and on how loaded a machine a result was
measured; ``write_result`` writes ``<stem>.json`` (and ``<stem>.md`` when given).
"""

import datetime
import json
import os
import sys


def run_header(script: str, argv=None) -> dict:
    """``date`` (UTC), the ``command`` that reproduces the run and ``load_start`` (the
    1-minute load average now). ``argv`` is the script's arguments (``None``: this
    process's)."""
    args = sys.argv[1:] if argv is None else argv
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["python", f"benchmarks/{script}", *args]),
            "load_start": round(os.getloadavg()[0], 2)}


def write_result(stem: str, result: dict, markdown=None) -> None:
    """Write ``result`` to ``<stem>.json`` and, if given, the ``markdown`` lines (or
    text) to ``<stem>.md``, creating the folder. A ``stem`` ending in ``.json`` is
    taken as the JSON path itself."""
    stem = stem[:-len(".json")] if stem.endswith(".json") else stem
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    if markdown is not None:
        text = markdown if isinstance(markdown, str) else "\n".join(markdown)
        with open(stem + ".md", "w", encoding="utf-8") as f:
            f.write(text)
