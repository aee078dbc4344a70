"""The fused forward's spikes as bits, kept beside its float output for the next layer.

The next dense layer needs its input's spike index (CSR). Built from the float spikes it costs two reads of
them (count, then fill: about 1 ms for the temporal benchmark's [300, 16, 500]); built from the bits the fused
forward writes as it fires (1/32 of the floats) it costs almost nothing. The bits are found again by the
spikes' address and are used only while the spikes are alive and unmodified (their version counter, shared
by every view, is unchanged), and only for a contiguous view of all of them.
"""

from __future__ import annotations

import weakref

import torch

_registry: dict[int, tuple[weakref.ref, int, int, torch.Tensor]] = {}


def remember(spikes: torch.Tensor, bits: torch.Tensor) -> None:
    """Keep ``bits`` [T, ceil(L / 64)] int64 (lane l of step t in bit l % 64 of word l / 64) for ``spikes`` [T, ...]."""
    if spikes.numel() == 0:
        return
    key = spikes.data_ptr()

    def forget(ref: weakref.ref, key: int = key) -> None:
        entry = _registry.get(key)
        if entry is not None and entry[0] is ref:
            del _registry[key]

    _registry[key] = (weakref.ref(spikes, forget), spikes._version, spikes.numel(), bits)


def bits_of(x: torch.Tensor) -> torch.Tensor | None:
    """The bits of ``x`` when x is a contiguous view of all of a fused forward's spikes, unmodified; else None."""
    entry = _registry.get(x.data_ptr()) if x.numel() else None
    if entry is None:
        return None
    ref, version, numel, bits = entry
    spikes = ref()
    if spikes is None or spikes._version != version or x.numel() != numel or x.dtype != spikes.dtype:
        return None
    return bits if x.is_contiguous() else None
