"""Sequences as lanes: the [T, L] view the compiled and GPU kernels work on, with per-lane parameters."""

from __future__ import annotations

import torch


def lane_params(params: torch.Tensor, lanes: torch.Size) -> tuple[torch.Tensor, int]:
    """Per-lane values of ``params`` [K, *bshape] (bshape broadcasting to ``lanes`` = [B, *features]).

    Returns (a contiguous [K, period] tensor, period): lane l uses column l % period; period is 1
    (shared, and without lanes, when no lane reads it), prod(features) (per feature, the same for every
    sample) or L (varies over the batch).
    """
    K, bshape = params.shape[0], params.shape[1:]
    if lanes.numel() == 0:
        return params.new_zeros((K, 1)), 1
    if K == 0 or all(n == 1 for n in bshape):
        return params.reshape(K, 1).contiguous(), 1
    if len(bshape) == len(lanes) and bshape[0] != 1:
        full = torch.broadcast_to(params, (K, *lanes))
    else:
        trailing = bshape[1:] if len(bshape) == len(lanes) else bshape
        full = torch.broadcast_to(params.reshape(K, *trailing), (K, *lanes[1:]))
    return full.reshape(K, -1).contiguous(), full[0].numel()
