"""Synapse filter presets as IIR coefficients (alpha: feedback, beta: feed-forward).

The filter of eq. 5d is ``F[t] = sum_{p=1..P} alpha[p-1] F[t-p] + sum_{q=0..Q} beta[q] O[t-q]``.
With a = exp(-1/tau_m), b = exp(-1/tau_s), a = exp(-1/tau) and ``lag`` L (the step at which a
spike first reaches F; the paper's text uses L = 1, the authors' code L = 0):

=============================  ===================  ===================  =======================
preset                         alpha                beta[L]              kernel k[s], s >= L
=============================  ===================  ===================  =======================
``none`` (simple LIF)          ()                   1 (L = 0)            delta[s]
``first_order(tau)``           (a,)                 1                    a^(s-L)
``dual_exp(tau_m, tau_s)``     (a + b, -a b)        a - b                a^(s-L+1) - b^(s-L+1)
``alpha(tau)``                 (2a, -a^2)           a / tau              ((s-L+1)/tau) a^(s-L+1)
``delay(d)``                   ()                   beta[d] = 1          delta[s - d]
=============================  ===================  ===================  =======================

With L = 1 the dual exponential kernel is the paper's eq. 4c, k[s] = a^s - b^s (negative when
tau_m < tau_s: the formula is kept as written; ``normalize=True`` makes it positive). The paper prints
alpha_2 = -exp((tau_m + tau_s) / (tau_m tau_s)); the sign of the exponent is a typo, alpha_2 = -a b.
``normalize=True`` scales beta so that the kernel peaks at 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from iirsnn import _checks


class Coefficients(NamedTuple):
    """IIR coefficients: alpha [P] (feedback, alpha[p-1] multiplies F[t-p]) and beta [Q+1]."""

    alpha: torch.Tensor
    beta: torch.Tensor


PRESETS = ("none", "first_order", "dual_exp", "alpha", "delay")


def _decay(tau: float, name: str) -> float:
    if not isinstance(tau, (int, float)) or not math.isfinite(tau):
        raise ValueError(f"{name} must be a finite number, got {tau!r}")
    _checks.positive(tau, name)
    return math.exp(-1.0 / tau)


def _check_lag(lag: int) -> int:
    if not isinstance(lag, int) or lag < 0:
        raise ValueError(f"lag must be an integer >= 0, got {lag!r}")
    return lag


def _make(alpha: list[float], beta: list[float], dtype: torch.dtype | None) -> Coefficients:
    dtype = dtype or torch.get_default_dtype()
    return Coefficients(torch.tensor(alpha, dtype=dtype), torch.tensor(beta, dtype=dtype))


def _normalized(alpha: list[float], beta: list[float], longest_tau: float) -> list[float]:
    """Scale beta so that the kernel's largest-magnitude value is +1 (it lies within 10 time constants).

    A kernel that is negative (dual_exp with tau_m < tau_s) thereby becomes positive.
    """
    from iirsnn.functional.filter import impulse_response

    length = len(beta) + int(10 * longest_tau) + 2
    kernel = impulse_response(torch.tensor(alpha, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64),
                              length)
    peak = kernel[kernel.abs().argmax()].item()
    return [bq / peak for bq in beta]


def none(dtype: torch.dtype | None = None) -> Coefficients:
    """No synapse dynamics (simple LIF neuron): P = 0, beta = (1,), F = O."""
    return _make([], [1.0], dtype)


def first_order(tau: float, lag: int = 0, dtype: torch.dtype | None = None) -> Coefficients:
    """First-order low pass, kernel a^(s - lag), a = exp(-1/tau)."""
    a, lag = _decay(tau, "tau"), _check_lag(lag)
    return _make([a], [0.0] * lag + [1.0], dtype)


def dual_exp(tau_m: float, tau_s: float, lag: int = 1, normalize: bool = False,
             dtype: torch.dtype | None = None) -> Coefficients:
    """Dual exponential (eq. 4c): kernel a^s - b^s for lag 1, a = exp(-1/tau_m), b = exp(-1/tau_s)."""
    a, b, lag = _decay(tau_m, "tau_m"), _decay(tau_s, "tau_s"), _check_lag(lag)
    if tau_m == tau_s:
        raise ValueError(
            f"dual_exp needs tau_m != tau_s (got both {tau_m}): the kernel a^s - b^s vanishes; "
            "use the 'alpha' preset for the equal-time-constant limit"
        )
    alpha, beta = [a + b, -a * b], [0.0] * lag + [a - b]
    return _make(alpha, _normalized(alpha, beta, max(tau_m, tau_s)) if normalize else beta, dtype)


def alpha(tau: float, lag: int = 1, normalize: bool = False, dtype: torch.dtype | None = None) -> Coefficients:
    """Alpha function: kernel (s / tau) a^s for lag 1, a = exp(-1/tau)."""
    a, lag = _decay(tau, "tau"), _check_lag(lag)
    coef_a, beta = [2 * a, -a * a], [0.0] * lag + [a / tau]
    return _make(coef_a, _normalized(coef_a, beta, tau) if normalize else beta, dtype)


def delay(d: int, dtype: torch.dtype | None = None) -> Coefficients:
    """Pure axonal delay of d steps: beta[d] = 1, no feedback."""
    if not isinstance(d, int) or d < 0:
        raise ValueError(f"delay d must be an integer >= 0, got {d!r}")
    return _make([], [0.0] * d + [1.0], dtype)


def preset(name: str, *, tau_m: float = 4.0, tau_s: float = 1.0, tau: float | None = None,
           d: int = 1, lag: int | None = None, normalize: bool = False,
           dtype: torch.dtype | None = None) -> Coefficients:
    """Coefficients of a preset by name; ``tau`` defaults to ``tau_s`` for first_order and alpha."""
    if name == "none":
        return none(dtype)
    if name == "first_order":
        return first_order(tau if tau is not None else tau_s, 0 if lag is None else lag, dtype)
    if name == "dual_exp":
        return dual_exp(tau_m, tau_s, 1 if lag is None else lag, normalize, dtype)
    if name == "alpha":
        return alpha(tau if tau is not None else tau_s, 1 if lag is None else lag, normalize, dtype)
    if name == "delay":
        return delay(d, dtype)
    raise ValueError(f"unknown synapse preset {name!r}; choose one of {list(PRESETS)}")
