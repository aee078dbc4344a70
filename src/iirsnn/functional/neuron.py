"""The spiking neuron (eq. 5a, 5c, 5e): membrane filter, reset filter, threshold."""

from __future__ import annotations

from typing import NamedTuple

import torch

from iirsnn import _checks, kernels
from iirsnn.functional.surrogates import Surrogate, get_surrogate

RESETS = ("filter", "hard")


class NeuronState(NamedTuple):
    """Carried neuron state, each [B, ...].

    v: the last membrane potential V[T-1]. s: the reset trace after the last step,
    S[T-1] = theta S[T-2] + O[T-1] (``reset="filter"``; this is the paper's R[T]), or the last
    spike O[T-1] (``reset="hard"``).
    """

    v: torch.Tensor
    s: torch.Tensor


def _decay(value: float | torch.Tensor, name: str, current: torch.Tensor) -> torch.Tensor:
    """A decay per step in [0, 1], scalar or broadcastable to one step [B, ...] of the current."""
    if isinstance(value, torch.Tensor):
        _checks.float_tensor(value, name)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value), dtype=torch.float64)  # exact, then cast to the current's dtype
    else:
        raise TypeError(f"{name} must be a float or a floating tensor, got {type(value).__name__}")
    _checks.in_unit_interval(value, name)
    _checks.broadcastable_to(value, current.shape[1:], name, "one step of the current [B, ...] =")
    return value.to(device=current.device, dtype=current.dtype)


def neuron_options(threshold: float | torch.Tensor, surrogate: str | Surrogate, reset: str,
                   dtype: torch.dtype) -> tuple[float, Surrogate]:
    """Check the scalar neuron options shared by the scans and the whole-layer functions.

    Returns the threshold as a float (> 0, finite in ``dtype``) and the surrogate as a :class:`Surrogate`.
    """
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {list(RESETS)}, got {reset!r}")
    if isinstance(threshold, torch.Tensor):
        if threshold.numel() != 1 or threshold.requires_grad:
            raise ValueError("threshold must be a positive float (a one-element tensor without grad is accepted)")
        threshold = float(threshold)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise TypeError(f"threshold must be a float, got {type(threshold).__name__}")
    threshold = float(threshold)
    _checks.positive(threshold, "threshold")
    if not threshold < torch.finfo(dtype).max:
        raise ValueError(f"threshold must be finite and representable in {dtype}, got {threshold}")
    return threshold, get_surrogate(surrogate)


def neuron_scan(current: torch.Tensor, leak: float | torch.Tensor, reset_decay: float | torch.Tensor,
                threshold: float = 1.0, surrogate: str | Surrogate = "gaussian", reset: str = "filter",
                detach_reset: bool = False, state: NeuronState | None = None, *,
                return_voltage: bool = False, return_state: bool = False, backend: str | None = None):
    """Run LIF neurons with a reset filter over a whole sequence.

    ``reset="filter"`` (the paper): ``R[t] = theta R[t-1] + O[t-1]``,
    ``V[t] = lambda V[t-1] + I[t] - V_th R[t]``, ``O[t] = H(V[t] - V_th)`` (a spike when V > V_th).
    The reset is a negative self-impulse decaying with theta (an adaptive threshold); theta = 0
    gives the subtractive ("soft") reset. ``reset="hard"``: ``V[t] = lambda V[t-1] (1 - O[t-1]) + I[t]``,
    reset to zero; ``reset_decay`` is then unused. ``lambda = 0`` is the authors' "membrane_filter: False".

    Args:
        current: [T, B, ...] input current I (time-major), floating point.
        leak: lambda in [0, 1], a float or a tensor broadcastable to [B, ...] (per neuron, e.g.
            [N] or [C, 1, 1]); may require grad.
        reset_decay: theta in [0, 1], like ``leak``.
        threshold: V_th > 0.
        surrogate: name or :class:`Surrogate` giving dO/dV in the backward (default: the paper's
            Gaussian, sigma 0.4).
        reset: ``"filter"`` or ``"hard"``.
        detach_reset: stop the gradient through the reset path (O -> R, or O -> the hard reset).
        state: :class:`NeuronState` carried from a previous chunk (zeros when None). leak, reset_decay and the
            state are converted to current's dtype and device.
        return_voltage: also return V [T, B, ...].
        return_state: also return the final :class:`NeuronState`.
        backend: ``"auto"``, ``"torch"`` or ``"reference"`` (default ``iirsnn.config.backend``).

    Returns:
        spikes [T, B, ...] (0/1 in current's dtype: float32 and float64 run on the compiled kernels, float16 and
        bfloat16 on the portable torch backend); with the flags, a tuple
        ``(spikes, V, state)`` holding only what was asked for, in that order.
    """
    current = _checks.time_major(current, "current", 2, "[T, B, ...]")
    threshold, surrogate = neuron_options(threshold, surrogate, reset, current.dtype)
    lam = _decay(leak, "leak", current)
    theta = _decay(reset_decay, "reset_decay", current)
    _checks.finite(current, "current")
    if state is None:
        v0 = current.new_zeros(current.shape[1:])
        s0 = current.new_zeros(current.shape[1:])
    else:
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError("state must be a NeuronState(v, s) as returned with return_state=True")
        v0, s0 = (_checks.float_tensor(s, name) for s, name in zip(state, ("state.v", "state.s"), strict=True))
        _checks.state_shape(v0, current.shape[1:], "state.v")
        _checks.state_shape(s0, current.shape[1:], "state.s")
        _checks.finite(v0, "state.v")
        _checks.finite(s0, "state.s")
        v0, s0 = (s.to(device=current.device, dtype=current.dtype) for s in (v0, s0))
    impl = kernels.neuron_scan_impl(backend, current)
    spikes, V, v_last, s_last = impl(current, lam, theta, threshold, surrogate, reset, detach_reset, v0, s0)
    if not (return_voltage or return_state):
        return spikes
    out = (spikes,)
    if return_voltage:
        out += (V,)
    if return_state:
        out += (NeuronState(v_last, s_last),)
    return out
