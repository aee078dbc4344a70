"""A fresh Agg-backed Figure and saving it; nothing here touches pyplot or matplotlib's global state."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 150


def new_figure(width: float, height: float) -> Figure:
    """A Figure of ``width x height`` inches (constrained layout) with its own Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | os.PathLike | None, dpi: int) -> Figure:
    """Write ``fig`` to ``path`` (format from the suffix, PNG for ``.png``), creating parent directories;
    nothing when ``path`` is None. Returns ``fig``."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig
