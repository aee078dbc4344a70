"""Encoders: analog inputs to time-major spike trains (or repeated analog input) ``[T, B, ...]``.

=========================  ==============================================================
``copy_along_time``        the analog input repeated at every step (the paper authors' MNIST input)
``bernoulli_rate``         a spike with probability ``gain * x`` at every step
``poisson``                a spike with probability ``1 - exp(-rate dt)`` at every step
``latency``                at most one spike per input, earlier for larger inputs
``current_lif_encoder``    analog series injected as current into LIF neurons (the paper's sec. 5.3)
=========================  ==============================================================

Every output is a floating tensor of the input's dtype and device. The random encoders take an
optional ``torch.Generator`` (on the input's device) for reproducible draws.
"""

from __future__ import annotations

import math

import torch

from iirsnn import _checks
from iirsnn.functional.neuron import neuron_scan

LATENCY_MODES = ("linear", "log")


def _steps(T: object) -> int:
    """T as a positive int, else a TypeError/ValueError naming T."""
    return _checks.positive_int(T, "T (the number of time steps)")


def _number(value: object, name: str, allow_inf: bool = False) -> float:
    """A real Python number (not bool, not NaN; Inf only when allowed) as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _batch(x: object, name: str) -> torch.Tensor:
    """A finite floating tensor with at least a batch dimension [B, ...]."""
    x = _checks.float_tensor(x, name)
    if x.dim() == 0:
        raise ValueError(f"{name} must be [B, ...] with a batch dimension, got a 0-d tensor; use {name}.reshape(1)")
    _checks.finite(x, name)
    return x


def _within(v: torch.Tensor, name: str, low: float, high: float, meaning: str) -> None:
    """Raise unless every element of ``v`` lies in [low, high] (NaN fails)."""
    v = v.detach()
    if v.numel() and not bool(((v >= low) & (v <= high)).all()):
        raise ValueError(
            f"{name} must lie in [{low}, {high}] ({meaning}), got values in "
            f"[{v.min().item()}, {v.max().item()}]"
        )


def _spikes_with_probability(p: torch.Tensor, T: int, generator: torch.Generator | None) -> torch.Tensor:
    """[*S] probabilities -> [T, *S] independent 0/1 draws of p's dtype."""
    u = torch.rand((T, *p.shape), generator=generator, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


def copy_along_time(x: torch.Tensor, T: int) -> torch.Tensor:
    """The analog input repeated at every step (no randomness; the paper authors' MNIST input).

    Args:
        x: [B, ...] floating analog input (e.g. pixel intensities).
        T: number of time steps, a positive int.

    Returns:
        [T, B, ...]: a broadcast view of x (no copy; gradients flow to x). Call ``.clone()``
        before writing into it in place.
    """
    T = _steps(T)
    x = _batch(x, "x")
    return x.unsqueeze(0).expand(T, *x.shape)


def bernoulli_rate(x: torch.Tensor, T: int, gain: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Rate code: at every step, independently, a spike with probability ``gain * x``.

    Args:
        x: [B, ...] floating input; ``gain * x`` must lie in [0, 1].
        T: number of time steps, a positive int.
        gain: finite factor applied to x before it is used as a probability.
        generator: optional ``torch.Generator`` on x's device.

    Returns:
        [T, B, ...] spikes (0/1, x's dtype, no gradient).
    """
    T = _steps(T)
    x = _batch(x, "x")
    p = x.detach() * _number(gain, "gain")
    _within(p, "x * gain", 0.0, 1.0, "a spike probability per step; rescale x or gain")
    return _spikes_with_probability(p, T, generator)


def poisson(rates: torch.Tensor, T: int, dt: float = 1e-3,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson rate code: a spike in a bin of length dt with probability ``1 - exp(-rate dt)``.

    That probability is exact: the chance of at least one event of a Poisson process of rate
    ``rate`` in a bin of length ``dt`` (at most one spike per bin is emitted).

    Args:
        rates: [B, ...] floating firing rates in Hz, >= 0 (constant over time).
        T: number of time bins, a positive int.
        dt: bin length in seconds, > 0 (default 1 ms).
        generator: optional ``torch.Generator`` on rates' device.

    Returns:
        [T, B, ...] spikes (0/1, rates' dtype, no gradient).
    """
    T = _steps(T)
    rates = _batch(rates, "rates")
    dt = _number(dt, "dt")
    _checks.positive(dt, "dt")
    _within(rates, "rates", 0.0, math.inf, "firing rates in Hz")
    p = -torch.expm1(-rates.detach() * dt)
    return _spikes_with_probability(p, T, generator)


def _latency_times(x: torch.Tensor, T: int, tau: float | None, threshold: float,
                   mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike step (long) and whether the input fires at all, both [*S]."""
    fires = x > threshold
    if mode == "linear":
        _within(x, "x", 0.0, 1.0, "intensities for linear latency coding")
        slope = float(T - 1) if tau is None else tau
        t = slope * (1.0 - x)
    else:
        if threshold <= 0:
            raise ValueError(f"latency mode 'log' needs threshold > 0, got {threshold}")
        _within(x, "x", 0.0, math.inf, "input currents for log latency coding")
        rc = 1.0 if tau is None else tau
        t = torch.where(fires, rc * torch.log(x / (x - threshold)), torch.zeros_like(x))
    return torch.round(t).clamp(0, T - 1).long(), fires


def latency(x: torch.Tensor, T: int, tau: float | None = None, threshold: float = 0.0,
            mode: str = "linear") -> torch.Tensor:
    """Time-to-first-spike code: each input fires at most once, larger inputs earlier.

    ``mode="linear"`` (default): x in [0, 1] fires at step ``round(tau * (1 - x))`` with
    ``tau = T - 1`` by default, so x = 1 fires at t = 0 and small x near t = T - 1.
    ``mode="log"`` (snnTorch's RC model: the time an RC circuit driven by current x takes to
    charge to ``threshold``): x >= 0 fires at step ``round(tau * ln(x / (x - threshold)))``,
    ``tau = 1`` by default, needs ``threshold > 0``.

    In both modes inputs ``x <= threshold`` never fire, spike steps later than T - 1 are clipped
    to T - 1 (so every input above threshold fires exactly once; snnTorch drops them instead),
    and rounding is to the nearest step, ties to even (``torch.round``).

    Args:
        x: [B, ...] floating input, in [0, 1] (linear) or >= 0 (log).
        T: number of time steps, a positive int.
        tau: linear: steps per unit of (1 - x), default T - 1; log: the RC time constant in
            steps, default 1. A finite number > 0.
        threshold: finite; inputs at or below it never fire.
        mode: ``"linear"`` or ``"log"``.

    Returns:
        [T, B, ...] spikes (0/1, x's dtype, no gradient), at most one per input.
    """
    T = _steps(T)
    x = _batch(x, "x").detach()
    if mode not in LATENCY_MODES:
        raise ValueError(f"latency mode must be one of {list(LATENCY_MODES)}, got {mode!r}")
    if tau is not None:
        tau = _number(tau, "tau")
        _checks.positive(tau, "tau")
    times, fires = _latency_times(x, T, tau, _number(threshold, "threshold"), mode)
    steps = torch.arange(T, device=x.device).reshape(T, *[1] * x.dim())
    return ((steps == times) & fires).to(x.dtype)


def current_lif_encoder(x: torch.Tensor, threshold: float = 1.0, tau: float = 4.0, gain: float = 1.0,
                        bias: float = 0.0, split_sign: bool = False, reset: str = "filter",
                        reset_decay: float = 0.0) -> torch.Tensor:
    """Current-based LIF encoder for analog (multivariate) time series (the paper's sec. 5.3).

    The current ``I = gain * x + bias`` drives one LIF neuron per channel through
    :func:`iirsnn.functional.neuron_scan` with leak ``lambda = exp(-1/tau)``:
    ``V[t] = lambda V[t-1] + I[t] - threshold R[t]``, a spike when ``V[t] > threshold``. The
    default reset (``"filter"`` with ``reset_decay = 0``, so R[t] = O[t-1]) subtracts the
    threshold after a spike; ``reset_decay > 0`` gives the paper's decaying reset and
    ``reset="hard"`` resets V to 0. With ``split_sign=True`` each channel drives two neurons,
    one with the positive part ``max(I, 0)`` and one with the negative part ``max(-I, 0)``.

    The encoder is a fixed preprocessing step: x is detached, the spikes carry no gradient.

    Args:
        x: [T, B, C, ...] floating analog input (time-major).
        threshold: V_th > 0.
        tau: membrane time constant in steps, > 0; ``math.inf`` gives a non-leaky neuron
            (lambda = 1, an integrate-and-fire / sigma-delta encoder). Default 4.
        gain, bias: finite numbers; the current is ``gain * x + bias``.
        split_sign: two neurons per channel (positive part, negative part).
        reset: ``"filter"`` (default) or ``"hard"``, as in :func:`neuron_scan`.
        reset_decay: theta in [0, 1] of the filter reset (default 0: subtractive reset).

    Returns:
        [T, B, C, ...] spikes of x's dtype, or [T, B, 2C, ...] with ``split_sign``: channels
        ``[:C]`` encode the positive parts, ``[C:]`` the negative parts.
    """
    x = _checks.time_major(x, "x", 3, "[T, B, C, ...]")
    _checks.finite(x, "x")
    tau = _number(tau, "tau", allow_inf=True)
    _checks.positive(tau, "tau")
    current = _number(gain, "gain") * x.detach() + _number(bias, "bias")
    if split_sign:
        current = torch.cat([current.clamp(min=0.0), (-current).clamp(min=0.0)], dim=2)
    return neuron_scan(current, math.exp(-1.0 / tau), reset_decay, threshold, reset=reset)
