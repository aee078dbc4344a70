"""Losses on output spike trains ``[T, B, ...]``.

=============================  ================================================================
``spike_count_cross_entropy``  softmax over output spike counts, cross-entropy (paper eq. 6-7)
``van_rossum_distance``        squared distance of synapse-filtered trains over 2T (eq. 8)
``spike_count_mse``            mean squared error of spike counts against target counts
=============================  ================================================================

``reduction`` is ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (one value per sample);
``spike_count_mse`` follows ``torch.nn.functional.mse_loss`` instead (see there).

Their gradients hold no subnormal floats (:mod:`iirsnn.subnormals`): the cross-entropy's softmax drops
probabilities below the cut-off (torch's would write them as subnormals once a count leads by 87 or more
in float32), and the trace distance zeroes filtered differences whose squares would fall below it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf

from iirsnn import _checks
from iirsnn.functional.filter import synapse_filter
from iirsnn.functional.presets import PRESETS, Coefficients, preset
from iirsnn.subnormals import cutoff, flush, flush_, square_cutoff

REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    return reduction


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """[B] -> scalar (mean, sum) or [B] (none)."""
    if reduction == "mean":
        return per_sample.mean()
    return per_sample.sum() if reduction == "sum" else per_sample


def _spike_counts_input(spikes: object, name: str) -> torch.Tensor:
    """A finite floating [T, B, K] tensor."""
    spikes = _checks.time_major(spikes, name, 3, "[T, B, K]")
    if spikes.dim() != 3:
        raise ValueError(f"{name} must be [T, B, K] (3 dimensions), got shape {list(spikes.shape)}")
    _checks.finite(spikes, name)
    return spikes


def _class_target(target: object, batch: int, classes: int, steps: int | None = None) -> torch.Tensor:
    """Class indices [B] (an integer tensor with values in [0, K)) as int64; ``steps`` (T of the spikes) lets
    the error of a target that matches T instead of B say that the spikes look batch-first."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target).__name__}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices (int64), got {target.dtype}; convert with target.long() "
            "(or target.argmax(-1) for one-hot targets)"
        )
    if tuple(target.shape) != (batch,):
        hint = ""
        if steps is not None and tuple(target.shape) == (steps,):
            hint = (f"; it matches the spikes' first size {steps} instead: the spikes look batch-first [B, T, K], "
                    "and iirsnn is time-major: the network's input must be [T, B, ...] (x.transpose(0, 1))")
        raise ValueError(
            f"target must be [B] = [{batch}] class indices (one per sample of spikes [T, B, K]), "
            f"got shape {list(target.shape)}{hint}"
        )
    if batch and not bool(((target >= 0) & (target < classes)).all()):
        raise ValueError(
            f"target class indices must lie in [0, {classes - 1}] (K = spikes.shape[2] = {classes}), "
            f"got values in [{target.min().item()}, {target.max().item()}]"
        )
    return target.long()


def _scale(scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a real number, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    return float(scale)


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Per-sample ``-log softmax(logits)[b, target[b]]`` for logits [B, K] and target [B] -> [B].

    The softmax drops entries below the cut-off of logits' dtype (exp(-69) in float32: they change the
    loss by less than its round-off), so that neither it nor its gradient ``p - onehot(target)`` holds a
    subnormal float.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        shifted = logits - logits.amax(1, keepdim=True)
        kept = shifted.masked_fill(shifted < math.log(cutoff(logits.dtype)), -math.inf).exp()
        total = kept.sum(1, keepdim=True)
        ctx.save_for_backward(kept / total, target)
        return total.log().squeeze(1) - shifted.gather(1, target[:, None]).squeeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        probabilities, target = ctx.saved_tensors
        g = probabilities.scatter_add(1, target[:, None], probabilities.new_full((target.shape[0], 1), -1.0))
        return flush_(g.mul_(grad[:, None])), None


def spike_count_cross_entropy(spikes: torch.Tensor, target: torch.Tensor, scale: float = 1.0,
                              reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the softmax over output spike counts (paper eq. 6-7).

    ``p[b, k] = softmax_k(scale * sum_t spikes[t, b, k])``, loss ``-log p[b, target[b]]``.

    Args:
        spikes: [T, B, K] output spikes (any floating values), K classes.
        target: [B] integer class indices in [0, K).
        scale: factor > 0 on the counts before the softmax (a temperature of 1 / scale).
        reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` ([B]).

    Returns:
        A scalar, or [B] for ``reduction="none"``.
    """
    spikes = _spike_counts_input(spikes, "spikes")
    if spikes.shape[2] == 0:
        raise ValueError(f"spikes must have at least one class (K = spikes.shape[2]), got shape {list(spikes.shape)}")
    target = _class_target(target, spikes.shape[1], spikes.shape[2], spikes.shape[0])
    scale = _scale(scale)
    reduction = _reduction(reduction)
    logits = spikes.sum(0) * scale
    return _reduce(_SoftmaxCrossEntropy.apply(logits, target.to(logits.device)), reduction)


def _kernel(kernel: str | Coefficients | tuple, tau_m: float, tau_s: float, tau: float | None,
            like: torch.Tensor) -> Coefficients:
    if isinstance(kernel, str):
        if kernel not in PRESETS:
            raise ValueError(f"kernel must be a preset name {list(PRESETS)} or Coefficients(alpha, beta), "
                             f"got {kernel!r}")
        return preset(kernel, tau_m=tau_m, tau_s=tau_s, tau=tau, dtype=like.dtype)
    if isinstance(kernel, tuple) and len(kernel) == 2:
        return Coefficients(*kernel)
    raise TypeError(f"kernel must be a preset name {list(PRESETS)} or Coefficients(alpha, beta), "
                    f"got {type(kernel).__name__}")


def _target_like(target: object, output: torch.Tensor) -> torch.Tensor:
    """A finite floating target of output's shape, in output's dtype."""
    target = _checks.float_tensor(target, "target")
    if target.shape != output.shape:
        raise ValueError(f"target must have the shape of output {list(output.shape)}, got {list(target.shape)}")
    _checks.finite(target, "target")
    return target.to(output.dtype)


def van_rossum_distance(output: torch.Tensor, target: torch.Tensor, kernel: str | Coefficients = "dual_exp",
                        tau_m: float = 4.0, tau_s: float = 1.0, tau: float | None = None,
                        reduction: str = "mean") -> torch.Tensor:
    """Van Rossum style distance of spike trains (docs/derivation.md eq. (15)), differentiable in output.

    Both trains pass through the same synapse filter k (:func:`iirsnn.functional.synapse_filter`,
    zero initial state), then ``d[b] = sum_{t, n} ((k * output)[t, b, n] - (k * target)[t, b, n])^2 / (2 T)``.
    The filter is linear, so it is applied once, to the difference of the trains.

    Args:
        output: [T, B, N, ...] floating output spikes.
        target: floating target spikes of output's shape (cast to output's dtype).
        kernel: a preset name of :mod:`iirsnn.functional.presets` (default ``"dual_exp"``: the
            kernel ``a^s - b^s``, a = exp(-1/tau_m), b = exp(-1/tau_s), eq. 4c) or
            ``Coefficients(alpha, beta)`` (shared [P], [Q+1] or per neuron [N, P], [N, Q+1];
            gradients flow to them). With Coefficients the time constants are unused.
        tau_m, tau_s: time constants of the preset in steps (defaults 4 and 1, the authors' code).
        tau: time constant of the ``first_order`` and ``alpha`` presets (default ``tau_s``).
        reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` ([B]).

    Returns:
        A scalar, or [B] for ``reduction="none"``.
    """
    output = _checks.time_major(output, "output", 3, "[T, B, N, ...]")
    _checks.finite(output, "output")
    target = _target_like(target, output)
    reduction = _reduction(reduction)
    alpha, beta = _kernel(kernel, tau_m, tau_s, tau, output)
    diff = flush(synapse_filter(output - target, alpha, beta), square_cutoff(output.dtype))  # squares stay normal
    per_sample = diff.square().sum(dim=[d for d in range(diff.dim()) if d != 1]) / (2 * output.shape[0])
    return _reduce(per_sample, reduction)


def _count_target(target_counts: object, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Non-negative finite counts [B, K] (integer or floating) in like's dtype."""
    if not isinstance(target_counts, torch.Tensor):
        raise TypeError(f"target_counts must be a torch.Tensor, got {type(target_counts).__name__}")
    if target_counts.dtype == torch.bool or target_counts.is_complex():
        raise TypeError(f"target_counts must hold real spike counts, got {target_counts.dtype}; "
                        "convert with target_counts.float()")
    if target_counts.shape != shape:
        raise ValueError(f"target_counts must be [B, K] = {list(shape)} (the spike counts of spikes [T, B, K]), "
                         f"got shape {list(target_counts.shape)}")
    counts = target_counts.to(like.dtype)
    _checks.finite(counts, "target_counts")
    if counts.numel() and not bool((counts >= 0).all()):
        raise ValueError(f"target_counts must be >= 0, got a minimum of {counts.min().item()}")
    return counts


def spike_count_mse(spikes: torch.Tensor, target_counts: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error of output spike counts ``sum_t spikes[t]`` against target counts.

    Equals ``torch.nn.functional.mse_loss(spikes.sum(0), target_counts, reduction=reduction)``:
    ``"mean"`` averages over all B * K entries, ``"sum"`` sums them, ``"none"`` gives [B, K].

    Args:
        spikes: [T, B, K] output spikes (floating).
        target_counts: [B, K] target spike counts >= 0 (integer or floating).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or [B, K] for ``reduction="none"``.
    """
    spikes = _spike_counts_input(spikes, "spikes")
    counts = spikes.sum(0)
    target = _count_target(target_counts, counts.shape, counts)
    return nnf.mse_loss(counts, target.to(counts.device), reduction=_reduction(reduction))
