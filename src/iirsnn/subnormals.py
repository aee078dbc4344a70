"""No subnormal floats: the cut-off below which iirsnn writes a value as exactly zero, per dtype.

A subnormal (denormal) float lies below the dtype's smallest normal number (float32: 2^-126 ~ 1.2e-38).
Intel cores compute with subnormal operands or results in slow microcode (10-15x; a conv training step
measured 4.7 s against 0.30 s with flush-to-zero), and every product with one stays subnormal. The
Gaussian surrogate exp(-(V - V_th)^2 / (2 sigma^2)) leaves float32's normal range once |V - V_th| > 5.3
at sigma 0.4, and decaying states and adjoints (lambda^t V, theta^t S, alpha^t F) pass through it too.

So every backend of iirsnn (torch, cpu, gpu; not the reference, which is the plain equations) writes
a value whose magnitude is below :func:`cutoff` as exactly 0: surrogate derivatives, potentials,
reset traces, filter outputs, adjoints and gradients. It never depends on the process's FTZ/DAZ state.

Why these cut-offs (float32 and bfloat16: 2^-100 ~ 7.9e-31; float64: 2^-900 ~ 1.2e-271):

- **No sum of kept values is subnormal.** A float32 of magnitude >= 2^-103 is a multiple of 2^-126 (its
  last mantissa bit is worth 2^-126 or more), so sums and differences of such values are multiples of
  2^-126 too: exactly 0 or normal, however they cancel (the spike-sparse products and the time
  recursions are such sums). float64 needs magnitudes >= 2^-970 for the same, bfloat16 >= 2^-119.
- **Products keep a margin.** A kept value times any factor of magnitude >= 2^-26 (1.5e-8: a weight, a
  decay, 1/T or 1/B of a mean) is still normal, so the dense products that torch computes on
  iirsnn's gradients (G W, the convolutions' backward) make none either. The smallest normal itself
  would not do: products of values just above it with the weights fall below it again (the fused
  backward stayed three times slower with a cut-off at 2^-126).
- **Results do not change.** A gradient contribution below 2^-100 is 2^-70 below anything an optimiser
  acts on (Adam's eps is 1e-8; an SGD step of lr * 1e-30 moves no float32 weight): the cut-off only
  truncates far tails, of decays and of the surrogate (Gaussian, sigma 0.4: beyond |V - V_th| = 4.7,
  where float32 itself leaves the normal range at 5.3).
  float64's 2^-900 lies 2^-800 below the float64 round-off of any value that matters: it changes no
  result at all, and keeps the margin above 2^-970.
- **float16** has no room for a margin (its smallest normal is 2^-14 ~ 6.1e-5, ten binades below 1):
  only its subnormals are flushed, so products in float16 can still make new ones. Train in
  bfloat16 (same range as float32) or float32 instead.
"""

from __future__ import annotations

import math

import torch

_CUTOFFS = {
    torch.float64: 2.0**-900,
    torch.float32: 2.0**-100,
    torch.bfloat16: 2.0**-100,
    torch.float16: 2.0**-14,
}


def cutoff(dtype: torch.dtype) -> float:
    """Magnitudes below this are written as 0 in tensors of ``dtype`` (a floating dtype)."""
    try:
        return _CUTOFFS[dtype]
    except KeyError:
        raise TypeError(f"no subnormal cut-off for {dtype}: iirsnn computes in float16, bfloat16, float32 "
                        "or float64") from None


def square_cutoff(dtype: torch.dtype) -> float:
    """Magnitudes below this are zeroed before squaring, so that the squares stay at or above :func:`cutoff`."""
    return math.sqrt(cutoff(dtype))


def flush_(x: torch.Tensor, below: float | None = None) -> torch.Tensor:
    """In place: entries of ``x`` with magnitude below ``below`` (default ``cutoff(x.dtype)``) become 0.

    NaN and Inf are kept. Returns ``x``.
    """
    return x.masked_fill_(x.abs() < (cutoff(x.dtype) if below is None else below), 0)


def flush(x: torch.Tensor, below: float | None = None) -> torch.Tensor:
    """``x`` with magnitudes below ``below`` (default ``cutoff(x.dtype)``) as 0, differentiable (autograd
    passes the gradient of the kept entries)."""
    return torch.where(x.abs() < (cutoff(x.dtype) if below is None else below), x.new_zeros(()), x)


def count(x: torch.Tensor) -> int:
    """Number of subnormal entries of a floating tensor (nonzero and below its dtype's smallest normal; 0 for a
    meta tensor, which has no values)."""
    if not x.is_floating_point() or x.numel() == 0 or x.is_meta:
        return 0
    return int(((x != 0) & (x.abs() < torch.finfo(x.dtype).tiny)).sum())
