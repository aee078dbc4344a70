"""Ablation (paper Figure 6): one split's metric per epoch for several runs, e.g. learned vs fixed kernels."""

from __future__ import annotations

import os
from collections.abc import Mapping

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from iirsnn.figures._canvas import DPI, new_figure, save
from iirsnn.figures.runs import metric_series, metrics_path, read_metrics


def plot_ablation(runs: Mapping[str, str | os.PathLike], path: str | os.PathLike | None = None,
                  split: str = "test", metric: str = "accuracy", *, dpi: int = DPI) -> Figure:
    """``record[split][metric]`` per epoch, one line per run.

    Args:
        runs: label -> run directory (or metrics file), e.g. ``{"learned kernels": dir_a, "fixed kernels": dir_b}``.
        path: where to save the figure (PNG for ``.png``); not saved when None.
        split, metric: which value to draw (epochs of a run lacking it are skipped).

    Returns:
        the Figure: one axes, one line per run in ``runs`` order (label = the run's label, x = epoch).

    Raises:
        ValueError: when ``runs`` is empty, or a run has no epoch with ``split``/``metric`` (naming the run,
            its file and what its records hold instead).
    """
    if not runs:
        raise ValueError("runs is empty: give at least one label -> run directory")
    series = {}
    for label, run_dir in runs.items():
        records = read_metrics(run_dir)
        epochs, values = metric_series(records, split, metric)
        if not epochs:
            held = sorted({f"{name}/{key}" for record in records for name, scores in record.items()
                           if isinstance(scores, dict) for key in scores})
            raise ValueError(f"run {label!r} ({metrics_path(run_dir)}) has no {split}/{metric} in any epoch; "
                             f"its records hold {held or 'no split values'}")
        series[label] = epochs, values
    fig = new_figure(5.5, 3.8)
    ax = fig.add_subplot()
    for label, (epochs, values) in series.items():
        ax.plot(epochs, values, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{split} {metric}")
    ax.set_title(f"{split} {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path, dpi)
