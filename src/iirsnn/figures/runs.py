"""Reading a training run's per-epoch records (``<run_dir>/metrics.jsonl``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def metrics_path(run_dir: str | os.PathLike) -> Path:
    """The metrics file of a run: ``run_dir/metrics.jsonl``, or ``run_dir`` itself when it is a file."""
    path = Path(run_dir)
    return path if path.is_file() else path / METRICS_FILE


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (or of ``run_dir`` when it is the file itself), one per epoch.

    Each line is one JSON object, e.g. ``{"epoch": 1, "train": {"loss": 1.2, "accuracy": 0.6}, "val": {...}}``;
    blank lines are skipped.

    Returns:
        list of dicts, in file order (length = number of non-blank lines).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        ValueError: naming the file and line when a line is not JSON or not a JSON object.
    """
    path = metrics_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file {path} (a run directory holds {METRICS_FILE}, one JSON object "
                                "per epoch)")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not JSON ({error.msg}): {line.strip()[:80]!r}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def metric_series(records: list[dict], split: str, metric: str) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of ``record[split][metric]`` over the records that have it (null skipped).

    The epoch is the record's ``"epoch"``, else its 1-based position. Both lists have the same length,
    0 when no record has the value.
    """
    epochs, values = [], []
    for position, record in enumerate(records, start=1):
        scores = record.get(split)
        if not isinstance(scores, dict) or scores.get(metric) is None:
            continue
        epochs.append(record.get("epoch", position))
        values.append(float(scores[metric]))
    return epochs, values
