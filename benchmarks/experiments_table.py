"""A Markdown table of finished runs: validation-selected test figure, maximum test over epochs, epochs, time.

Runs are grouped by a label (the run directory's name without a trailing ``-s<seed>``); a group of several
seeds gives the mean and the range.

    python benchmarks/experiments_table.py runs/final/*/
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path


def row(label: str, runs: list[dict]) -> str:
    metric = "accuracy" if "accuracy" in runs[0]["selected"]["test"] else "f1"
    sel = [100 * r["selected"]["test"][metric] for r in runs]
    val = [100 * r["selected"]["val"][metric] for r in runs if "val" in r["selected"]]
    top = [100 * r["max_test_over_epochs"][metric] for r in runs if "max_test_over_epochs" in r]
    def fmt(values):
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"
    seconds = statistics.mean(r["train_seconds"] for r in runs)
    cells = [label, fmt(val) if val else "-", fmt(sel), fmt(top) if top else "-", runs[0]["epochs"], len(runs),
             f"{seconds:.0f} s"]
    return "| " + " | ".join(map(str, cells)) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    groups: dict[str, list[dict]] = {}
    for run in map(Path, args.runs):
        path = run / "results.json"
        if path.is_file():
            groups.setdefault(re.sub(r"-s\d+$", "", run.name), []).append(json.loads(path.read_text()))
    print("| run | validation (%) | test, validation-selected (%) | max test over epochs (%) | epochs | seeds | "
          "training time |")
    print("|---|---|---|---|---|---|---|")
    for label, runs in sorted(groups.items()):
        print(row(label, runs))


if __name__ == "__main__":
    main()
