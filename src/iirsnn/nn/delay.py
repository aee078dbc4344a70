"""Delay: shift a sequence later in time by a whole number of steps (axonal delay)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from iirsnn import _checks
from iirsnn.nn.state import StatefulModule


class DelayState(NamedTuple):
    """The last ``steps`` inputs [steps, B, ...], oldest first."""

    inputs: torch.Tensor


def _carried(state: DelayState, x: torch.Tensor) -> torch.Tensor:
    """The carried inputs in x's dtype and device (like every carried state), so the output keeps x's dtype."""
    return _checks.float_tensor(state.inputs, "carried Delay state").to(device=x.device, dtype=x.dtype)


class Delay(StatefulModule):
    """``y[t] = x[t - steps]`` (zeros before the start, or the carried tail when stateful).

    x: [T, B, ...] -> [T, B, ...]. For a delay inside a filter use the ``"delay"`` synapse preset.
    """

    def __init__(self, steps: int, stateful: bool = False) -> None:
        super().__init__(stateful)
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.time_major(x, "input", 2)
        if self.steps == 0:
            return x
        state = self._initial_state()
        head = x.new_zeros((self.steps, *x.shape[1:])) if state is None else _carried(state, x)
        _checks.state_shape(head, (self.steps, *x.shape[1:]), "carried Delay state")
        full = torch.cat([head, x])
        self._keep_state(DelayState(full[full.shape[0] - self.steps:]))
        return full[: x.shape[0]]

    def forward_chunk(self, x: torch.Tensor, state: DelayState | None) -> tuple[torch.Tensor, DelayState | None]:
        """One chunk of a longer sequence with an explicit state (the last ``steps`` inputs)."""
        _checks.time_major(x, "input", 2)
        if self.steps == 0:
            return x, None
        head = x.new_zeros((self.steps, *x.shape[1:])) if state is None else _carried(state, x)
        full = torch.cat([head, x])
        return full[: x.shape[0]], DelayState(full[full.shape[0] - self.steps:])

    def extra_repr(self) -> str:
        return f"steps={self.steps}"
