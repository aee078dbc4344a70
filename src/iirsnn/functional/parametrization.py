"""Stable parameterisation of learnable IIR feedback coefficients by reflection coefficients.

The feedback part of a synapse filter is stable when every root of
``A(z) = 1 - alpha_1 z^-1 - ... - alpha_P z^-P`` lies inside the unit circle. Raw coefficients
learned by gradient descent can leave that region and the filter then blows up. Every stable A of
order P corresponds to exactly one vector of reflection coefficients k in (-1, 1)^P (the
Schur-Cohn / Levinson step-up recursion), real and complex poles alike; learning u with
k = tanh(u) therefore reaches every stable filter and only stable ones, whatever the step size.
"""

from __future__ import annotations

import numpy as np
import torch


def reflection_to_alpha(k: torch.Tensor) -> torch.Tensor:
    """Step-up recursion: reflection coefficients k [..., P] in (-1, 1) -> feedback alpha [..., P].

    With A_m(z) = A_{m-1}(z) + k_m z^-m A_{m-1}(1/z) on the polynomial coefficients a (A = 1 + sum a_i z^-i),
    alpha = -a. Differentiable; P = 0 gives an empty tensor.
    """
    P = k.shape[-1]
    a: list[torch.Tensor] = []
    for m in range(P):
        km = k[..., m]
        a = [a[i] + km * a[m - 1 - i] for i in range(m)] + [km]
    if not a:
        return k.clone()
    return -torch.stack(a, dim=-1)


def alpha_to_reflection(alpha: torch.Tensor) -> torch.Tensor:
    """Step-down recursion, the inverse of :func:`reflection_to_alpha`: alpha [..., P] -> k [..., P].

    Raises ValueError when a filter is not strictly stable (some |k| >= 1).
    """
    a = [-alpha[..., i] for i in range(alpha.shape[-1])]
    ks: list[torch.Tensor] = []
    for m in range(len(a), 0, -1):
        km = a[m - 1]
        if bool((km.abs() >= 1).any()):
            raise ValueError(
                "alpha describes an unstable filter (a pole on or outside the unit circle): "
                f"reflection coefficient {km.flatten()[km.abs().flatten().argmax()].item():.6g} has |k| >= 1"
            )
        ks.insert(0, km)
        a = [(a[i] - km * a[m - 2 - i]) / (1 - km * km) for i in range(m - 1)]
    if not ks:
        return alpha.clone()
    return torch.stack(ks, dim=-1)


def pole_radius(alpha: torch.Tensor) -> torch.Tensor:
    """Largest pole magnitude of each filter: alpha [..., P] -> [...] (float64; < 1 means stable)."""
    flat = alpha.detach().double().cpu().reshape(-1, alpha.shape[-1]).numpy()
    radii = [np.abs(np.roots(np.concatenate([[1.0], -row]))).max() if row.size else 0.0 for row in flat]
    return torch.tensor(radii, dtype=torch.float64).reshape(alpha.shape[:-1])
