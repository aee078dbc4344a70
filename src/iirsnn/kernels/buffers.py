"""Large buffers of the compiled kernels, reused from one training step to the next.

glibc gives every block above its mmap threshold a fresh mapping and unmaps it on free. The threshold
rises to the size of the largest block freed so far, but never above 32 MiB, so a step that makes
tensors of 40-80 MB (the conv benchmark's layer outputs, potentials and gradients) faults all of them
in again, page by page: about 1 GB of page faults in each conv step here. Changing glibc's parameters
would change them for the whole process (:func:`iirsnn.tune_process` does that, when a program asks).
This module keeps the buffers that iirsnn's own kernels write instead: a buffer of :data:`MIN_BYTES`
(32 MiB) or more comes from a cache of blocks, a block is free again once no tensor uses its memory
(its storage's reference count), and blocks left unused for :data:`IDLE_REQUESTS` requests are handed
back to the allocator, so the cache follows the steps' working set. Smaller buffers come from
``torch.empty``: glibc reuses most of their pages from its heap and hands the memory freed last to the
next block of any size, which keeps it in the cache (caching blocks from 1 MiB removed the temporal
benchmark's remaining 1-7 thousand page faults a step, but its steps were no faster: slower in three of
four interleaved A/B runs, within noise in four more).

``iirsnn.config.reuse_buffers = False`` turns the cache off; :func:`clear` empties it.
"""

from __future__ import annotations

import math
import threading

import torch

from iirsnn import config

MIN_BYTES = 32 << 20  # glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
IDLE_REQUESTS = 512
_lock = threading.Lock()
_blocks: dict[int, list[_Block]] = {}
_requests = 0


class _Block:
    """One cached allocation: its storage (held here, so its memory stays mapped) and when it was last handed out."""

    __slots__ = ("last_request", "storage")

    def __init__(self, nbytes: int) -> None:
        self.storage = torch.empty(nbytes, dtype=torch.uint8).untyped_storage()
        self.last_request = 0

    def free(self) -> bool:
        """Whether no tensor uses the block (the only reference to its storage is this block's)."""
        return torch._C._storage_Use_Count(self.storage._cdata) == 1


def size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to one of eight steps per power of two (at most 12.5 % more)."""
    step = 1 << max(0, nbytes.bit_length() - 4)
    return -(-nbytes // step) * step


def empty(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
          stride: tuple[int, ...] | None = None) -> torch.Tensor:
    """An uninitialised CPU tensor of ``shape`` and ``dtype`` (contiguous, or with the ``stride`` of a dense
    layout such as channels-last), from the cache when it is large.

    The tensor is no view (its own version counter and autograd history); its memory returns to the
    cache when the tensor and every view of it are gone.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or not config.reuse_buffers:
        return torch.empty(shape, dtype=dtype) if stride is None else torch.empty_strided(shape, stride, dtype=dtype)
    block = _take(size_class(nbytes))
    return torch.empty(0, dtype=dtype).set_(block.storage, 0, tuple(shape), stride)


def empty_like(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """:func:`empty` of t's shape, in t's memory layout (as ``torch.empty_like``) and dtype unless given;
    ``torch.empty_like`` itself for tensors off the CPU."""
    dtype = t.dtype if dtype is None else dtype
    if t.device.type != "cpu":
        return torch.empty_like(t, dtype=dtype)
    stride = None if t.is_contiguous() else torch.empty_like(t, device="meta").stride()
    return empty(t.shape, dtype, stride)


def contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t`` if it is contiguous, else a contiguous copy of it (in a cached buffer on the CPU; differentiable)."""
    if t.is_contiguous() or t.device.type != "cpu":
        return t.contiguous()
    return empty(t.shape, t.dtype).copy_(t)


def converted(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` if it has ``dtype``, else a copy of it in ``dtype`` and t's layout (cached on the CPU; differentiable)."""
    if t.dtype == dtype:
        return t
    return empty_like(t, dtype).copy_(t)


def _take(nbytes: int) -> _Block:
    """A free block of exactly ``nbytes`` (a size class), cached or new; idle blocks are released on a miss."""
    global _requests
    with _lock:
        _requests += 1
        for block in _blocks.get(nbytes, ()):
            if block.free():
                block.last_request = _requests
                return block
        _release_idle()
        block = _Block(nbytes)
        block.last_request = _requests
        _blocks.setdefault(nbytes, []).append(block)
        return block


def _release_idle() -> None:
    """Drop the free blocks not handed out during the last IDLE_REQUESTS requests (call with the lock held)."""
    for nbytes, blocks in list(_blocks.items()):
        kept = [b for b in blocks if not (b.free() and _requests - b.last_request > IDLE_REQUESTS)]
        if kept:
            _blocks[nbytes] = kept
        else:
            del _blocks[nbytes]


def cached_bytes() -> tuple[int, int]:
    """(bytes of all cached blocks, bytes of those in use now)."""
    with _lock:
        blocks = [b for bs in _blocks.values() for b in bs]
        return sum(b.storage.nbytes() for b in blocks), sum(b.storage.nbytes() for b in blocks if not b.free())


def clear() -> None:
    """Forget every cached block: free ones go back to the allocator now, ones in use when their tensors go."""
    with _lock:
        _blocks.clear()
