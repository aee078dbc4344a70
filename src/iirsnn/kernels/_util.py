"""Small helpers shared by the scan backends."""

from __future__ import annotations

import torch


def sum_to_shape(g: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Sum ``g`` over the dimensions that broadcasting added to or expanded from ``shape``.

    g: [*lead, *shape_broadcast]; returns a tensor of exactly ``shape``.
    """
    shape = tuple(shape)
    extra = g.dim() - len(shape)
    if extra > 0:
        g = g.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape)
