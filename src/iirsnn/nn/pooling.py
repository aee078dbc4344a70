"""Spatial pooling of whole sequences: [T, B, C, H, W] -> [T, B, C, H', W'].

Max pooling of binary spikes is a logical OR and keeps them binary; average pooling gives
fractions; sum pooling (the average times the window size) counts the spikes in each window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as tnf

from iirsnn import _checks


class _Pool2d(torch.nn.Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive int, got {kernel_size!r}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, H, W] -> [T, B, C, H', W']."""
        _checks.float_tensor(x, "input")
        if x.dim() != 5:
            raise ValueError(f"input must be time-major [T, B, C, H, W], got shape {list(x.shape)}")
        return self._pool(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each window (on spikes: a spike if any input in the window spiked)."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return tnf.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each window (zero padding counts in the mean)."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return tnf.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class SumPool2d(_Pool2d):
    """Sum over each window."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return tnf.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)
