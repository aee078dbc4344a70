"""Reconstruction rasters (paper Figure 3): target, noisy input and network outputs side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from iirsnn.figures._canvas import DPI, new_figure, save


def spike_raster(spikes, name: str) -> torch.Tensor:
    """``spikes`` [T, N] (tensor or array) -> its spike coordinates [M, 2] as (t, n) rows in row-major order,
    one per nonzero entry."""
    spikes = torch.as_tensor(spikes).detach()
    if spikes.dim() != 2:
        raise ValueError(f"{name} must be a [T, N] raster (time, neuron), got shape {list(spikes.shape)}")
    return torch.nonzero(spikes.cpu())


def plot_reconstruction(target, noisy, outputs: Mapping[str, torch.Tensor], path: str | os.PathLike | None = None,
                        *, dpi: int = DPI, marker_size: float = 2.0) -> Figure:
    """Spike rasters, one panel each: ``"target"``, ``"noisy input"``, then one per entry of ``outputs``.

    Args:
        target, noisy: [T, N] 0/1 spike tensors (or arrays); every nonzero entry is one spike.
        outputs: panel title -> [T, N] output raster, e.g. ``{"epoch 1": out_1, "epoch 50": out_50}``.
        path: where to save the figure (PNG for ``.png``); not saved when None.
        marker_size: scatter marker area (points^2).

    Returns:
        the Figure: 2 + len(outputs) axes in a row, each with one scatter of its spikes (x = time step t,
        y = neuron n, one point per spike). Neuron 0 is at the top, so a pattern made from a drawing
        (image row = neuron, column = time step) shows upright.

    Raises:
        ValueError: when a raster is not 2-D or the rasters differ in shape.
    """
    panels = {"target": target, "noisy input": noisy, **outputs}
    shapes = {title: tuple(torch.as_tensor(spikes).shape) for title, spikes in panels.items()}
    points = {title: spike_raster(spikes, repr(title)) for title, spikes in panels.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"the rasters must share one shape [T, N], got {shapes}")
    steps, neurons = shapes["target"]
    fig = new_figure(3.0 * len(panels), 3.2)
    axes = fig.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (title, tn) in zip(axes, points.items(), strict=True):
        ax.scatter(tn[:, 0].numpy(), tn[:, 1].numpy(), s=marker_size, marker="s", c="black", linewidths=0)
        ax.set_title(title)
        ax.set_xlabel("time step")
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(neurons - 0.5, -0.5)
    axes[0].set_ylabel("neuron")
    return save(fig, path, dpi)
