"""Flatten: [T, B, *feature] -> [T, B, prod(feature)]."""

from __future__ import annotations

import torch

from iirsnn import _checks
from iirsnn.kernels import buffers


class Flatten(torch.nn.Module):
    """Flatten everything after the time and batch dimensions: [T, B, ...] -> [T, B, N]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.time_major(x, "input", 3)
        return buffers.contiguous(x).flatten(2)  # a copy of a channels-last input in a cached buffer
