"""Encoders the trainer applies to each batch on the device: the task's input -> the network's input.

``none`` passes time-major input through; ``current_lif`` is the paper's current-based LIF encoder of
analog series (sec. 5.3, ``[T, B, C] -> [T, B, 2C]`` with ``split_sign``); ``bernoulli_rate`` and ``repeat``
turn static inputs ``[B, ...]`` into ``steps`` steps (random spikes with probability = value, or the value
at every step). Random encoders draw from torch's global generator, whose state checkpoints keep.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from iirsnn.functional.encoders import bernoulli_rate, copy_along_time, current_lif_encoder


def _none(x: torch.Tensor) -> torch.Tensor:
    return x


def _current_lif(x: torch.Tensor, threshold: float = 1.0, tau: float = 4.0, gain: float = 1.0, bias: float = 0.0,
                 split_sign: bool = True, reset: str = "filter", reset_decay: float = 0.0) -> torch.Tensor:
    return current_lif_encoder(x, threshold=threshold, tau=tau, gain=gain, bias=bias, split_sign=split_sign,
                               reset=reset, reset_decay=reset_decay)


def _bernoulli_rate(x: torch.Tensor, steps: int = 25, gain: float = 1.0) -> torch.Tensor:
    return bernoulli_rate(x, steps, gain)


def _repeat(x: torch.Tensor, steps: int = 25) -> torch.Tensor:
    return copy_along_time(x, steps).contiguous()


ENCODERS: dict[str, Callable[..., torch.Tensor]] = {
    "none": _none, "current_lif": _current_lif, "bernoulli_rate": _bernoulli_rate, "repeat": _repeat,
}
STATIC_ENCODERS = ("bernoulli_rate", "repeat")  # the ones that add the time axis


def make_encoder(name: str, options: dict, static_input: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder ``name`` with ``options`` bound; ValueError naming an unknown option, or an encoder that
    does not fit the input (static inputs need one that adds steps; time-major ones one that does not)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {sorted(ENCODERS)}")
    fn = ENCODERS[name]
    known = list(inspect.signature(fn).parameters)[1:]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} of encoder {name!r}; its options: {known}")
    if static_input != (name in STATIC_ENCODERS):
        need = "one of " + ", ".join(STATIC_ENCODERS) if static_input else "none or current_lif"
        kind = "static (no time axis)" if static_input else "time-major"
        raise ValueError(f"encoder {name!r} does not fit the task's {kind} input: use {need}")
    return lambda x: fn(x, **options)
