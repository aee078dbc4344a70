"""Synapse kernels (paper Figure 5): impulse responses of the IIR synapse filters, initial vs learned."""

from __future__ import annotations

import math
import os

import torch
from matplotlib.figure import Figure

from iirsnn.figures._canvas import DPI, new_figure, save
from iirsnn.functional.filter import synapse_filter
from iirsnn.functional.presets import Coefficients
from iirsnn.nn.synapse import SynapseFilter


def _coefficients(c, name: str) -> torch.Tensor:
    c = torch.as_tensor(c.detach() if isinstance(c, torch.Tensor) else c, dtype=torch.float64).cpu()
    if c.dim() not in (1, 2):
        raise ValueError(f"{name} must be [K] (one filter) or [C, K] (one per channel), got shape {list(c.shape)}")
    return c


def impulse_response(alpha, beta, steps: int) -> torch.Tensor:
    """Impulse responses of IIR filters ``F[t] = sum_p alpha[p-1] F[t-p] + sum_q beta[q] x[t-q]``.

    Computed with :func:`iirsnn.functional.synapse_filter` on a unit impulse at t = 0, in float64.

    Args:
        alpha: [P] one filter, or [K, P] one per channel (P may be 0).
        beta: [Q+1] or [K, Q+1]. A 1-D alpha or beta with the other 2-D serves all K channels.
        steps: response length (a positive int).

    Returns:
        [K, steps] float64: row k is kernel k at t = 0 .. steps-1 (K = 1 when both are 1-D).

    Raises:
        ValueError: on a bad ``steps``, coefficients that are not 1-D or 2-D, or 2-D ones with different K.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    alpha, beta = _coefficients(alpha, "alpha"), _coefficients(beta, "beta")
    rows = {c.shape[0] for c in (alpha, beta) if c.dim() == 2}
    if len(rows) > 1:
        raise ValueError(f"per-channel alpha {list(alpha.shape)} and beta {list(beta.shape)} must have the same "
                         "number of rows K")
    channels = rows.pop() if rows else 1
    impulse = torch.zeros(steps, 1, channels, dtype=torch.float64)
    impulse[0] = 1.0
    with torch.no_grad():
        return synapse_filter(impulse, alpha, beta)[:, 0, :].t().contiguous()


def synapse_coefficients(module: torch.nn.Module) -> list[Coefficients]:
    """The current (alpha, beta) of every :class:`iirsnn.nn.SynapseFilter` in ``module`` (itself included), in
    ``module.modules()`` order.

    Each is a detached CPU copy of the filter's ``alpha`` ([P] or [C, P]) and ``beta`` ([Q+1] or [C, Q+1]),
    fixed or learnable (for the reflection parametrization, the alpha it currently maps to), so a snapshot
    taken before training keeps the initial kernels.
    """
    with torch.no_grad():
        return [Coefficients(m.alpha.detach().cpu().clone(), m.beta.detach().cpu().clone())
                for m in module.modules() if isinstance(m, SynapseFilter)]


def plot_kernels(initial, learned, path: str | os.PathLike | None = None, steps: int = 40, max_kernels: int = 16,
                 *, dpi: int = DPI) -> Figure:
    """Initial (dashed) vs learned (solid) synapse kernels, one panel per kernel.

    Args:
        initial, learned: (alpha, beta) pairs as :func:`impulse_response` takes them (e.g. entries of
            :func:`synapse_coefficients` before and after training). A shared pair (K = 1) is compared
            with every kernel of a per-channel one.
        path: where to save the figure (PNG for ``.png``); not saved when None.
        steps: kernel length drawn (t = 0 .. steps-1).
        max_kernels: draw the first ``max_kernels`` kernels at most.

    Returns:
        the Figure: min(K, max_kernels) axes in rows of up to 4, each with two lines, ``"initial"``
        (dashed) and ``"learned"`` (solid), y = the [steps] impulse response of that kernel.

    Raises:
        ValueError: when both pairs are per-channel with different K, or max_kernels < 1.
    """
    if not isinstance(max_kernels, int) or max_kernels < 1:
        raise ValueError(f"max_kernels must be a positive int, got {max_kernels!r}")
    before, after = impulse_response(*initial, steps), impulse_response(*learned, steps)
    if before.shape[0] != after.shape[0] and 1 not in (before.shape[0], after.shape[0]):
        raise ValueError(f"initial has {before.shape[0]} kernels and learned {after.shape[0]}: they must match "
                         "(or one be a single shared kernel)")
    total = max(before.shape[0], after.shape[0])
    shown = min(total, max_kernels)
    cols = min(4, shown)
    rows = math.ceil(shown / cols)
    fig = new_figure(2.6 * cols + 0.4, 2.0 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    t = torch.arange(steps).numpy()
    for k, ax in enumerate(axes):
        if k >= shown:
            ax.set_visible(False)
            continue
        ax.plot(t, before[min(k, before.shape[0] - 1)].numpy(), linestyle="--", color="C0", label="initial")
        ax.plot(t, after[min(k, after.shape[0] - 1)].numpy(), linestyle="-", color="C1", label="learned")
        ax.grid(alpha=0.3)
        if total > 1:  # one shared kernel: the figure's title says it all
            ax.set_title(f"kernel {k}")
        if k + cols >= shown:  # the lowest panel of its column
            ax.set_xlabel("time step")
    axes[0].legend()
    title = "synapse kernels" if total > 1 else "synapse kernel (shared by the layer)"
    fig.suptitle(title + (f" (first {shown} of {total})" if shown < total else ""))
    return save(fig, path, dpi)
