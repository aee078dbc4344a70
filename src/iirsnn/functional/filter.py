"""The synapse filter (eq. 5d): a general IIR filter along time, per presynaptic channel."""

from __future__ import annotations

from typing import NamedTuple

import torch

from iirsnn import _checks, kernels

_STATE_NAMES = ("state.outputs", "state.inputs")


class FilterState(NamedTuple):
    """Carried history of a synapse filter, oldest first.

    outputs: [P, B, C, ...] the last P filter outputs F; inputs: [Q, B, C, ...] the last Q inputs.
    """

    outputs: torch.Tensor
    inputs: torch.Tensor


def _coefficient_view(c: torch.Tensor, name: str, x: torch.Tensor, min_len: int) -> torch.Tensor:
    """[K] (shared) or [C, K] (per channel) -> [K, 1, C or 1, 1, ...] broadcasting against [B, C, ...]."""
    if not isinstance(c, torch.Tensor):
        c = torch.as_tensor(c, dtype=x.dtype)
    _checks.float_tensor(c, name)
    channels = x.shape[2]
    if c.dim() == 1:
        view = c.reshape(c.shape[0], *[1] * (x.dim() - 1))
    elif c.dim() == 2:
        if c.shape[0] != channels:
            raise ValueError(
                f"per-channel {name} has shape {list(c.shape)}: its first dimension must be the "
                f"channel count C = x.shape[2] = {channels}"
            )
        view = c.t().reshape(c.shape[1], 1, channels, *[1] * (x.dim() - 3))
    else:
        raise ValueError(f"{name} must be [K] (shared) or [C, K] (per channel), got shape {list(c.shape)}")
    if c.shape[-1] < min_len:
        raise ValueError(f"{name} needs at least {min_len} coefficient(s) along its last dimension, "
                         f"got shape {list(c.shape)}")
    _checks.finite(c, name)
    return view.to(device=x.device, dtype=x.dtype)


def synapse_filter(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, state: FilterState | None = None,
                   *, return_state: bool = False, backend: str | None = None):
    """Filter every channel along time: ``F[t] = sum_p alpha_p F[t-p] + sum_q beta_q x[t-q]`` (eq. 5d).

    Args:
        x: [T, B, C, ...] time-major input (spikes or any signal), floating point.
        alpha: [P] shared or [C, P] per-channel feedback coefficients (alpha[..., p-1] multiplies
            F[t-p]); P may be 0. alpha, beta and the state are converted to x's dtype and device.
        beta: [Q+1] shared or [C, Q+1] per-channel feed-forward coefficients (beta[..., q]
            multiplies x[t-q]; Q > 0 models axonal delay).
        state: history carried from a previous chunk (zeros when None).
        return_state: also return the final :class:`FilterState`, so that a sequence cut into
            chunks gives exactly the result of the whole sequence.
        backend: ``"auto"``, ``"torch"`` or ``"reference"`` (default ``iirsnn.config.backend``).

    Returns:
        F: [T, B, C, ...] of x's dtype, and the final state when ``return_state``. float32 and float64 run on
        the compiled kernels, float16 and bfloat16 on the portable torch backend.
    """
    x = _checks.time_major(x, "x", 3, "[T, B, C, ...]")
    a = _coefficient_view(alpha, "alpha", x, 0)
    b = _coefficient_view(beta, "beta", x, 1)
    _checks.finite(x, "x")
    P, Q = a.shape[0], b.shape[0] - 1
    if state is None:
        f_hist = x.new_zeros((P, *x.shape[1:]))
        x_hist = x.new_zeros((Q, *x.shape[1:]))
    else:
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError("state must be a FilterState(outputs, inputs) as returned with return_state=True")
        f_hist, x_hist = (_checks.float_tensor(s, name) for s, name in zip(state, _STATE_NAMES, strict=True))
        _checks.state_shape(f_hist, (P, *x.shape[1:]), "state.outputs")
        _checks.state_shape(x_hist, (Q, *x.shape[1:]), "state.inputs")
        _checks.finite(f_hist, "state.outputs")
        _checks.finite(x_hist, "state.inputs")
        f_hist, x_hist = (s.to(device=x.device, dtype=x.dtype) for s in (f_hist, x_hist))
    impl = kernels.synapse_filter_impl(backend, x)
    F, f_last, x_last = impl(x, a, b, f_hist, x_hist)
    return (F, FilterState(f_last, x_last)) if return_state else F


def impulse_response(alpha: torch.Tensor, beta: torch.Tensor, length: int) -> torch.Tensor:
    """Kernel k[0..length-1] of a shared filter (alpha [P], beta [Q+1]): its response to a unit impulse.

    Returns a tensor [length] of alpha's dtype (float64 for lists).
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    alpha = torch.as_tensor(alpha, dtype=alpha.dtype if isinstance(alpha, torch.Tensor) else torch.float64)
    beta = torch.as_tensor(beta, dtype=alpha.dtype)
    impulse = torch.zeros(length, 1, 1, dtype=alpha.dtype)
    impulse[0] = 1.0
    with torch.no_grad():
        return synapse_filter(impulse, alpha, beta)[:, 0, 0]
