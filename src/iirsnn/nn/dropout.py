"""Dropout with one mask for the whole sequence (the same units are dropped at every step)."""

from __future__ import annotations

import torch

from iirsnn import _checks


class Dropout(torch.nn.Module):
    """Zero a fraction ``p`` of units, the same ones at all T steps; scale the rest by 1/(1-p).

    x: [T, B, ...] -> [T, B, ...]; identity in eval mode. A mask redrawn at every step would
    destroy the temporal structure the filters carry.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.time_major(x, "input", 2)
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty((1, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
