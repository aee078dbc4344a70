"""Batching for the models, which take time-major input ``[T, B, ...]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def time_major_collate(batch: Sequence[tuple]) -> tuple:
    """A ``DataLoader`` ``collate_fn``: samples ``(x [T, ...], ..., label)`` -> ``(x [T, B, ...], ..., labels [B])``.

    Every tensor field with a time axis is stacked along a new batch axis 1; ints and 0-d tensors
    become a LongTensor/stacked tensor of length B. Samples must share T (the datasets pad or
    resample explicitly); a mismatch raises naming the shapes.
    """
    if not batch:
        raise ValueError("time_major_collate got an empty batch")
    fields = []
    for i, column in enumerate(zip(*batch, strict=True)):
        first = column[0]
        if isinstance(first, torch.Tensor) and first.dim() > 0:
            shapes = {tuple(t.shape) for t in column}
            if len(shapes) > 1:
                raise ValueError(f"field {i} of the samples has different shapes {sorted(shapes)}: pad or resample "
                                 "them to one length (the datasets' length=/mode= options)")
            fields.append(torch.stack(column, dim=1))
        elif isinstance(first, torch.Tensor):
            fields.append(torch.stack(column))
        else:
            fields.append(torch.as_tensor(column))
    return tuple(fields)
