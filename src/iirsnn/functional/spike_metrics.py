"""Metrics of output spike trains against target trains ``[T, B, N, ...]`` (no gradients; one value per sample).

=============================  ================================================================
``spike_timing_f1``            F1 of spikes matched one to one within ``tolerance`` steps
``filtered_mse``               the authors' associative-memory metric: mean squared difference of
                               the dual-exp filtered trains (filter peak 1), target delayed
=============================  ================================================================

Matching. An output spike and a target spike match when they belong to the same sample and
neuron and lie at most ``tolerance`` steps apart; each spike takes part in at most one match, and
the number of matches is the largest possible (a maximum bipartite matching per neuron).

Why greedy is optimal. Let S be the spikes not yet decided and e the earliest of them, say an
output spike (every spike before e is decided and gone, so e's possible partners in S are the
target spikes in ``[e, e + k]``). If there is none, e is matched in no matching of S: drop it.
Else pair e with the earliest such target spike u (u = e on a tie). Some maximum matching M of S
contains (e, u): if e is free in M, M with u's partner (if any) replaced by e is one; if M pairs e
with u' != u (so u <= u' <= e + k) and u with e' (e' >= e, an output spike of S), then
``u' - e' <= (e + k) - e = k`` and ``e' - u' <= (u + k) - u = k``, so swapping to (e, u), (e', u')
keeps |M| (if u is free in M, (e, u') becomes (e, u)). Hence OPT(S) = 1 + OPT(S - {e, u}), and by
induction the greedy is optimal. This is the two-pointer "earliest first" rule; :func:`spike_timing_f1`
runs it as one scan over time vectorised over samples and neurons: at step s it decides the free
spikes at s, whose candidates lie in ``[s, s + tolerance]`` of the other train.
"""

from __future__ import annotations

import torch

from iirsnn.functional.filter import synapse_filter
from iirsnn.functional.presets import dual_exp


def _pair(output: object, target: object, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """output and target as tensors of one shape [T, B, ...] (>= 3 dimensions), dtype and device."""
    for name, x in (("output", output), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what}: {name} must be a torch.Tensor, got {type(x).__name__}")
        if x.is_complex():
            raise TypeError(f"{what}: {name} must hold real 0/1 spikes, got {x.dtype}")
        if x.is_meta:
            raise ValueError(f"{what}: {name} is on the meta device, which holds no values")
        if x.dim() < 3:
            raise ValueError(f"{what}: {name} must be time-major [T, B, N, ...] (at least 3 dimensions), "
                             f"got shape {list(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{what}: {name} has no time steps (shape {list(x.shape)})")
    if output.shape != target.shape:
        raise ValueError(f"{what}: output and target must have one shape [T, B, N, ...], got output "
                         f"{list(output.shape)} and target {list(target.shape)}")
    if output.dtype != target.dtype:
        raise TypeError(f"{what}: output is {output.dtype} but target is {target.dtype}; convert one, "
                        f"e.g. target.to(output.dtype)")
    if output.device != target.device:
        raise ValueError(f"{what}: output is on {output.device} but target is on {target.device}; move one, "
                         f"e.g. target.to(output.device)")
    return output, target


def _binary(x: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """x (0/1 values of any real dtype) as bool, else ValueError."""
    if x.dtype == torch.bool:
        return x
    spikes = x != 0
    if x.numel() and not bool((spikes == (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)]
        raise ValueError(f"{what}: {name} must hold 0/1 spikes, found {bad.numel()} other value(s), "
                         f"e.g. {bad.flatten()[0].item()}; threshold it first, e.g. ({name} > 0.5).float()")
    return spikes


def _tolerance(tolerance: object) -> int:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be an integer number of steps >= 0, got {tolerance!r}")
    return tolerance


def spike_timing_f1(output: torch.Tensor, target: torch.Tensor, tolerance: int = 2) -> torch.Tensor:
    """Per-sample F1 of output spikes against target spikes matched within ``tolerance`` steps.

    precision = matched output spikes / output spikes, recall = matched target spikes / target
    spikes, F1 = 2 P R / (P + R) = 2 matches / (output spikes + target spikes), with the largest
    number of one-to-one matches of spikes of the same neuron at most ``tolerance`` steps apart
    (module docstring: the earliest-first greedy attains it).

    Args:
        output: [T, B, N, ...] 0/1 spikes (bool, integer or floating; one dtype with target).
        target: 0/1 spikes of output's shape, dtype and device.
        tolerance: the largest time difference of a match, in steps (an int >= 0; 0: same step).

    Returns:
        [B] float32 (float64 for float64 input) F1 per sample; 1 where both trains of a sample are empty,
        0 where only one is.
    """
    what = "spike_timing_f1"
    output, target = _pair(output, target, what)
    k = _tolerance(tolerance)
    out = _binary(output.detach(), "output", what).flatten(2)  # [T, B, M]
    tgt = _binary(target.detach(), "target", what).flatten(2)
    steps = out.shape[0]
    dtype = torch.float64 if output.dtype == torch.float64 else torch.float32
    n_out = out.sum(dim=(0, 2)).to(dtype)
    n_tgt = tgt.sum(dim=(0, 2)).to(dtype)
    if k == 0:
        matches = (out & tgt).sum(dim=(0, 2)).to(dtype)
    else:
        # free[t]: a spike at t not yet matched; k steps of padding for the windows at the end
        pad = out.new_zeros((k, *out.shape[1:]))
        free_out = torch.cat([out, pad]).clone()
        free_tgt = torch.cat([tgt, pad]).clone()
        first = torch.arange(k + 1, 0, -1, device=out.device).view(k + 1, 1, 1)  # earliest candidate scores highest
        matched = torch.zeros(out.shape[1:], dtype=torch.int64, device=out.device)
        for s in range(steps):
            o, g = free_out[s], free_tgt[s]
            if not bool((o | g).any()):
                continue
            both = o & g
            for mine, other in ((o & ~g, free_tgt), (g & ~o, free_out)):
                window = other[s: s + k + 1]  # candidates at s .. s + k (those before s are decided)
                score = window * first
                best, lag = score.max(0)
                hit = mine & (best > 0)
                if bool(hit.any()):
                    # clear the chosen candidate: one-hot of lag where hit
                    chosen = torch.zeros_like(window).scatter_(0, lag.unsqueeze(0), hit.unsqueeze(0))
                    window &= ~chosen
                    matched += hit
            matched += both
            free_out[s] = False
            free_tgt[s] = False
        matches = matched.sum(1).to(dtype)
    total = n_out + n_tgt
    f1 = torch.where(total > 0, 2 * matches / total.clamp(min=1), torch.ones_like(total))
    return f1


def filtered_mse(output: torch.Tensor, target: torch.Tensor, tau_m: float = 8.0, tau_s: float = 2.0,
                 delay: int = 0) -> torch.Tensor:
    """The authors' associative-memory metric: per-sample mean squared difference of filtered trains.

    Both trains pass through the dual exponential kernel ``c (a^s - b^s)``, a = exp(-1/tau_m),
    b = exp(-1/tau_s), s >= 1, scaled so that its peak is exactly 1 (``presets.dual_exp(tau_m, tau_s,
    lag=1, normalize=True)``; the authors' ``filter_layer`` scales by the continuous-time peak factor
    v_0 instead, within 1-2 % of it), zero initial state. The target is first delayed by ``delay``
    steps (zeros before; the authors use 4). Then ``mse[b] = mean_{t, n} (F_out - F_target)^2``, as
    ``torch.nn.MSELoss()`` over one sample.

    Args:
        output: [T, B, N, ...] floating output spikes.
        target: [T, B, N, ...] floating target spikes (one shape, dtype and device with output), undelayed.
        tau_m, tau_s: the kernel's time constants in steps (defaults 8 and 2: the authors' associative memory).
        delay: steps the target is shifted later, an int in 0 .. T-1.

    Returns:
        [B] of output's dtype, without gradient.
    """
    what = "filtered_mse"
    output, target = _pair(output, target, what)
    if not output.is_floating_point():
        raise TypeError(f"{what}: output and target must be floating point, got {output.dtype}; "
                        "convert them, e.g. output.float()")
    steps = output.shape[0]
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay < steps:
        raise ValueError(f"{what}: delay must be an integer number of steps in 0..{steps - 1}, got {delay!r}")
    alpha, beta = dual_exp(tau_m, tau_s, lag=1, normalize=True, dtype=output.dtype)
    with torch.no_grad():
        shifted = torch.zeros_like(target)
        shifted[delay:] = target[: steps - delay]
        diff = synapse_filter(output - shifted, alpha, beta)  # linear: filter the difference once
        return diff.square().mean(dim=[d for d in range(diff.dim()) if d != 1])
