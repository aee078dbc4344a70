"""Hidden firing-rate map (paper Figure 4): samples sorted by class, with a strip marking each sample's class."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from iirsnn.figures._canvas import DPI, new_figure, save


def sort_by_label(rates, labels) -> tuple[np.ndarray, np.ndarray]:
    """``rates`` [S, N], ``labels`` [S] ints -> (rates [S, N], labels [S]) with samples sorted by label
    (stable: samples of a class keep their order)."""
    rates = torch.as_tensor(rates).detach().cpu().double()
    labels = torch.as_tensor(labels).detach().cpu()
    if rates.dim() != 2:
        raise ValueError(f"rates must be [S, N] (samples, neurons), got shape {list(rates.shape)}")
    if labels.shape != rates.shape[:1]:
        raise ValueError(f"labels must be [S] = [{rates.shape[0]}] (one per row of rates), got shape "
                         f"{list(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    order = torch.sort(labels, stable=True).indices
    return rates[order].numpy(), labels[order].numpy()


def _class_name(class_names, label: int) -> str:
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, label))
    return str(class_names[label])


def plot_rate_map(rates, labels, path: str | os.PathLike | None = None,
                  class_names: Sequence[str] | Mapping[int, str] | None = None, *, dpi: int = DPI,
                  cmap: str = "viridis") -> Figure:
    """Firing rate of every hidden neuron for every sample, samples grouped by class.

    Args:
        rates: [S, N] firing rate of N hidden neurons for S samples (e.g. 64), tensor or array.
        labels: [S] integer class of each sample.
        path: where to save the figure (PNG for ``.png``); not saved when None.
        class_names: names indexed by label (a sequence, or a mapping label -> name) for the strip's
            ticks; the label numbers when None.

    Returns:
        the Figure with three axes, labelled (``Axes.get_label()``) ``"classes"``: the class strip, an
        image [S, 1] of the sorted labels, one colour per class; ``"rates"``: the image [S, N] of the
        rates with samples (rows, y) sorted by label and neurons on x; and the rates' colour bar.

    Raises:
        ValueError: on shapes that do not match or non-integer labels.
    """
    rates, labels = sort_by_label(rates, labels)
    classes = np.unique(labels)
    fig = new_figure(7.0, 4.5)
    strip_ax, rate_ax = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1, 24]})
    strip_ax.set_label("classes")
    rate_ax.set_label("rates")
    if len(classes):
        edges = np.concatenate([[classes[0] - 0.5], (classes[:-1] + classes[1:]) / 2, [classes[-1] + 0.5]])
        colours = ListedColormap([f"C{i % 10}" for i in range(len(classes))])
        strip_ax.imshow(labels[:, None].astype(np.float64), aspect="auto", interpolation="nearest", cmap=colours,
                        norm=BoundaryNorm(edges, len(classes)))
        centres = [np.flatnonzero(labels == c).mean() for c in classes]
        strip_ax.set_yticks(centres, [_class_name(class_names, int(c)) for c in classes])
    strip_ax.set_xticks([])
    strip_ax.set_ylabel("sample (sorted by class)")
    peak = float(rates.max()) if rates.size and rates.max() > 0 else 1.0
    image = rate_ax.imshow(rates, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0.0, vmax=peak)
    rate_ax.set_xlabel("hidden neuron")
    rate_ax.tick_params(labelleft=False)
    rate_ax.set_title("firing rate")
    fig.colorbar(image, ax=rate_ax, label="firing rate")
    return save(fig, path, dpi)
