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
        return x * self._mask(x)

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """[1, B, ...]: 0 for dropped units, 1/(1-p) for the others."""
        keep = torch.empty((1, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return keep / (1.0 - self.p)

    def forward_chunk(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One chunk of a longer sequence: the mask drawn for the first chunk is the state, so every chunk
        drops the same units."""
        _checks.time_major(x, "input", 2)
        if not self.training or self.p == 0.0:
            return x, None
        mask = self._mask(x) if mask is None else mask
        return x * mask, mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
