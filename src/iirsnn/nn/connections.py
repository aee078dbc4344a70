"""Weighted connections applied to whole sequences: one matmul / convolution over T*B.

Each is the torch.nn layer of the same name (same parameters, initialisation and state_dict keys)
with time folded into the batch: [T, B, ...] -> [T, B, ...]. Nothing loops over time.
"""

from __future__ import annotations

import torch

from iirsnn import _checks


def _fold(x: torch.Tensor, name: str, rank: int, layout: str) -> torch.Tensor:
    """[T, B, *rest] -> [T*B, *rest] after checking the rank and dtype."""
    _checks.float_tensor(x, name)
    if x.dim() != rank:
        raise ValueError(f"{name} must be time-major {layout} ({rank} dimensions), got shape {list(x.shape)}")
    return x.flatten(0, 1)


def _check_parameters(module: torch.nn.Module, x: torch.Tensor) -> None:
    """Raise unless the module's weight and bias have the input's dtype and device (say how to convert)."""
    _checks.matches_input(module.weight, "the layer's weight", x, "the input", module=True)
    if module.bias is not None:
        _checks.matches_input(module.bias, "the layer's bias", x, "the input", module=True)


class Linear(torch.nn.Linear):
    """Dense connection ``I = x W^T + b`` at every step: [T, B, in_features] -> [T, B, out_features].

    The weight is ``[out_features, in_features]`` as in torch.nn.Linear, stored column-major (it is the
    transpose of a contiguous ``[in_features, out_features]`` tensor): the spike-sparse products read
    rows of W^T and produce the weight gradient as W^T's, so neither needs a transposed copy per step.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.weight = torch.nn.Parameter(self.weight.detach().t().contiguous().t())

    def check_input(self, x: torch.Tensor) -> None:
        """Raise with a clear message unless x is time-major [T, B, in_features] floats of the weight's dtype."""
        if isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[-1] != self.in_features:
            hint = ""
            if x.shape[1] == self.in_features:
                hint = ("; it looks time-last [B, N, T] (the snn-iir layout): iirsnn is time-major, "
                        "use x.permute(2, 0, 1)")
            raise ValueError(f"input has {x.shape[-1]} features in its last dimension, expected "
                             f"in_features={self.in_features} (shape {list(x.shape)}, expected [T, B, "
                             f"{self.in_features}]){hint}")
        _fold(x, "input", 3, f"[T, B, {self.in_features}]")
        _check_parameters(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class _TimeFoldedConv:
    """Mixin: apply the torch convolution to [T*B, C, ...] and unfold."""

    rank: int
    layout: str

    def check_input(self, x: torch.Tensor) -> None:
        """Raise with a clear message unless x is time-major [T, B, C_in, ...] floats of the weight's dtype."""
        folded = _fold(x, "input", self.rank, self.layout)
        if folded.shape[1] != self.in_channels:
            raise ValueError(f"input has {x.shape[2]} channels at dim 2, expected in_channels={self.in_channels} "
                             f"(shape {list(x.shape)}, expected time-major {self.layout})")
        _check_parameters(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class Conv1d(_TimeFoldedConv, torch.nn.Conv1d):
    """1-D convolution at every step: [T, B, C_in, L] -> [T, B, C_out, L']."""

    rank, layout = 4, "[T, B, C, L]"


class Conv2d(_TimeFoldedConv, torch.nn.Conv2d):
    """2-D convolution at every step: [T, B, C_in, H, W] -> [T, B, C_out, H', W']."""

    rank, layout = 5, "[T, B, C, H, W]"
