"""Learning curves of one run: loss and the task's metric per epoch, one line per split."""

from __future__ import annotations

import os

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from iirsnn.figures._canvas import DPI, new_figure, save
from iirsnn.figures.runs import metric_series, metrics_path, read_metrics

SPLITS = ("train", "val", "test")
METRICS = ("accuracy", "f1", "mse")  # the first one a run records is its task's metric


def task_metric(records: list[dict]) -> str | None:
    """The first of ``accuracy``, ``f1``, ``mse`` that any split of any record holds, else None."""
    for metric in METRICS:
        if any(metric_series(records, split, metric)[0] for split in SPLITS):
            return metric
    return None


def plot_curves(run_dir: str | os.PathLike, path: str | os.PathLike | None = None, *, dpi: int = DPI) -> Figure:
    """Per-epoch loss and task metric (accuracy, else f1, else mse) of every split in ``run_dir/metrics.jsonl``.

    Args:
        run_dir: the run directory (or its metrics file), read with :func:`~iirsnn.figures.read_metrics`.
        path: where to save the figure (PNG for ``.png``); not saved when None.

    Returns:
        the Figure: one axes for the loss and one for the metric (each only when some split has it), one
        line per split present (label = split name, x = epoch, y = the value, epochs lacking it skipped).

    Raises:
        ValueError: when no record holds a loss or a metric of any split.
    """
    records = read_metrics(run_dir)
    panels = [key for key in ("loss", task_metric(records)) if key is not None
              and any(metric_series(records, split, key)[0] for split in SPLITS)]
    if not panels:
        raise ValueError(f"{metrics_path(run_dir)}: no record holds a loss or one of {list(METRICS)} "
                         f"for any of the splits {list(SPLITS)}")
    fig = new_figure(5.0 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, key in zip(axes, panels, strict=True):
        for split in SPLITS:
            epochs, values = metric_series(records, split, key)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(metrics_path(run_dir).parent.name)
    return save(fig, path, dpi)
