"""Surrogate gradients of the spike function O = H(V - V_th).

The forward pass is always the exact Heaviside step (a spike when V > V_th, strictly, as in the
paper authors' code). The backward pass replaces the Dirac delta dH/dV by a smooth pseudo
derivative ``eps(x)`` of ``x = V - V_th``:

=================  =========================================  ==========================
name               eps(x)                                     parameter (default)
=================  =========================================  ==========================
``gaussian``       exp(-x^2 / (2 s^2)) / (sqrt(2 pi) s)        ``sigma`` s = 0.4 (paper eq. 19,
                   (derivative of the erfc-smoothed step)     the authors' code)
``fast_sigmoid``   1 / (k |x| + 1)^2                          ``slope`` k = 25
``sigmoid``        k sig(k x) (1 - sig(k x))                  ``slope`` k = 4
``arctan``         (a / 2) / (1 + (pi a x / 2)^2)             ``alpha`` a = 2
``triangle``       max(0, 1 - |x| / w) / w                    ``width`` w = 1
=================  =========================================  ==========================

``gaussian``, ``sigmoid``, ``arctan`` and ``triangle`` integrate to 1 over x (true pseudo
densities); ``fast_sigmoid`` integrates to 2/k, as in snnTorch and Zenke's SuperSpike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Surrogate:
    """A named pseudo-derivative ``eps(x)`` of the Heaviside step, ``x = V - V_th``.

    ``kind`` and ``param`` identify it for the compiled kernels; ``derivative`` evaluates it.
    """

    kind: str
    param: float

    def __post_init__(self) -> None:
        if self.kind not in _DERIVATIVES:
            raise ValueError(f"unknown surrogate {self.kind!r}; choose one of {sorted(_DERIVATIVES)}")
        if not (isinstance(self.param, (int, float)) and math.isfinite(self.param) and self.param > 0):
            raise ValueError(f"surrogate {self.kind!r} parameter must be a finite number > 0, got {self.param}")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """eps(x) elementwise; x: any shape, returns the same shape and dtype."""
        return _DERIVATIVES[self.kind](x, float(self.param))

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) = (x > 0) as x's dtype, with ``derivative`` as its gradient (autograd function)."""
        return _SpikeFunction.apply(x, self)


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(-(x * x) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)


def _fast_sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    return 1.0 / (slope * x.abs() + 1.0) ** 2


def _sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    s = torch.sigmoid(slope * x)
    return slope * s * (1.0 - s)


def _arctan(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)


def _triangle(x: torch.Tensor, width: float) -> torch.Tensor:
    return (1.0 - x.abs() / width).clamp(min=0.0) / width


_DERIVATIVES = {
    "gaussian": _gaussian,
    "fast_sigmoid": _fast_sigmoid,
    "sigmoid": _sigmoid,
    "arctan": _arctan,
    "triangle": _triangle,
}
#: the number by which the compiled and GPU kernels know each kind (kernels/cpu/scans.c, kernels/gpu)
SURROGATE_CODES = {"gaussian": 0, "fast_sigmoid": 1, "sigmoid": 2, "arctan": 3, "triangle": 4}
_DEFAULT_PARAMS = {"gaussian": 0.4, "fast_sigmoid": 25.0, "sigmoid": 4.0, "arctan": 2.0, "triangle": 1.0}
_ALIASES = {"erfc": "gaussian"}


def gaussian(sigma: float = 0.4) -> Surrogate:
    """The paper's erfc-derived Gaussian surrogate (eq. 19); sigma 0.4 as in the authors' code."""
    return Surrogate("gaussian", sigma)


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """SuperSpike / snnTorch fast sigmoid: 1 / (slope |x| + 1)^2."""
    return Surrogate("fast_sigmoid", slope)


def sigmoid(slope: float = 4.0) -> Surrogate:
    """Derivative of sigmoid(slope x): slope sig (1 - sig)."""
    return Surrogate("sigmoid", slope)


def arctan(alpha: float = 2.0) -> Surrogate:
    """Derivative of arctan(pi alpha x / 2) / pi + 1/2."""
    return Surrogate("arctan", alpha)


def triangle(width: float = 1.0) -> Surrogate:
    """Triangle of half-width ``width`` and unit area."""
    return Surrogate("triangle", width)


def get_surrogate(spec: str | Surrogate) -> Surrogate:
    """A Surrogate from itself or a name (``"gaussian"`` or its alias ``"erfc"``, ``"fast_sigmoid"``, ...)."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str):
        kind = _ALIASES.get(spec, spec)
        if kind in _DEFAULT_PARAMS:
            return Surrogate(kind, _DEFAULT_PARAMS[kind])
        raise ValueError(
            f"unknown surrogate {spec!r}; choose one of {sorted([*_DEFAULT_PARAMS, *_ALIASES])} "
            "or pass an iirsnn.functional.Surrogate"
        )
    raise TypeError(f"surrogate must be a name or a Surrogate, got {type(spec).__name__}")


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None
