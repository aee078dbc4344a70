"""Large buffers of the compiled kernels: their own memory mappings, reused from one training step to the next.

Two behaviours of glibc's malloc cost iirsnn's steps time or memory. A block above the mmap threshold gets a
fresh mapping and is unmapped on free; the threshold rises to the largest block freed so far, but never above
32 MiB, so a step that makes tensors of 40-80 MB (the conv benchmark's layer outputs, potentials and
gradients) faults all of them in again, page by page: about 1 GB of page faults in each conv step. Blocks
below the threshold come from the heap, which returns memory only from its top: tensors of a few MB with
different lifetimes (a layer's potentials kept for the backward, its gradients, the loss's tensors) leave
holes, and resident memory grows to about twice what is live (the temporal benchmark's training bytes per
neuron-step: 19-22 with glibc's defaults, about 8 in checkpointed training when the whole process maps every
block of 1 MiB or more on its own).
Changing glibc's parameters would change them for every library of the process (:func:`iirsnn.tune_process`
does that, when a program asks). This module keeps the buffers that iirsnn's own kernels write instead: a
buffer of :data:`MIN_BYTES` (1 MiB) or more comes from a cache of blocks, each block its own anonymous
mapping (never part of malloc's heap, so it cannot fragment it), a block is free again once no tensor uses
its memory (its storage's reference count), and blocks left unused for :data:`IDLE_REQUESTS` requests of
any size are unmapped (checked every IDLE_REQUESTS requests; on a miss, those idle for longer than
:data:`MISS_IDLE_REQUESTS` plus twice their size class's longest gap between requests), so the cache follows
the steps' working set. With glibc's defaults for everything else, the temporal benchmark's training went from
20-22 bytes per neuron-step to 13-14 (with the default chunks of long sequences and :mod:`iirsnn.kernels.heap`;
benchmarks/RESULTS.md, session 9).

``iirsnn.config.reuse_buffers = False`` turns the cache off; :func:`clear` empties it.
"""

from __future__ import annotations

import math
import mmap
import threading

import torch

from iirsnn import config

MIN_BYTES = 1 << 20
IDLE_REQUESTS = 4096
"""Free blocks not handed out for this many requests (of any size, cached or not) are unmapped."""
MISS_IDLE_REQUESTS = 16
"""On a miss (a new block is about to be mapped) free blocks idle for this many requests plus twice the longest
gap between two requests of their size class are unmapped first: a miss often means that the working set
changed (chunked training after a whole-sequence evaluation), and the blocks of the old one would otherwise
stay resident beside the new one, while the classes a step asks for once a step keep their blocks."""
_lock = threading.Lock()
_blocks: dict[int, list[_Block]] = {}
_class_last: dict[int, int] = {}  # size class -> the request that last asked for it
_class_gap: dict[int, int] = {}  # size class -> the longest gap in requests between two requests of it
_requests = 0


class _Block:
    """One cached allocation: its storage on an anonymous mapping of its own (held here, so it stays mapped; unmapped
    when the block and every tensor on it are gone) and when it was last handed out."""

    __slots__ = ("last_request", "storage")

    def __init__(self, nbytes: int) -> None:
        self.storage = torch.frombuffer(mmap.mmap(-1, nbytes), dtype=torch.uint8).untyped_storage()
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
        _count_request()
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
    """A free block of exactly ``nbytes`` (a size class), cached or new; stale blocks are released on a miss."""
    global _requests
    with _lock:
        _requests += 1
        last = _class_last.get(nbytes)
        if last is not None:
            _class_gap[nbytes] = max(_class_gap.get(nbytes, 0), _requests - last)
        _class_last[nbytes] = _requests
        for block in _blocks.get(nbytes, ()):
            if block.free():
                block.last_request = _requests
                return block
        _release_idle(MISS_IDLE_REQUESTS, gap_factor=2)
        block = _Block(nbytes)
        block.last_request = _requests
        _blocks.setdefault(nbytes, []).append(block)
        return block


def _count_request() -> None:
    """Count a request the cache does not serve: blocks idle for IDLE_REQUESTS requests of any size are released."""
    global _requests
    if not _blocks:
        return
    with _lock:
        _requests += 1
        if _requests % IDLE_REQUESTS == 0:
            _release_idle(IDLE_REQUESTS)


def _release_idle(idle: int, gap_factor: int = 0, keep_since: int | None = None) -> None:
    """Drop the free blocks not handed out during the last ``idle`` requests plus ``gap_factor`` times the longest
    gap between two requests of their size class (on a miss: 2, so that a class a training step asks for once a
    step keeps its blocks from step to step), except in the size classes asked for after request ``keep_since``
    (call with the lock held)."""
    for nbytes, blocks in list(_blocks.items()):
        if keep_since is not None and _class_last.get(nbytes, 0) > keep_since:
            continue
        limit = idle + gap_factor * _class_gap.get(nbytes, 0)
        kept = [b for b in blocks if not (b.free() and _requests - b.last_request > limit)]
        if kept:
            _blocks[nbytes] = kept
        else:
            del _blocks[nbytes]


def requests() -> int:
    """The number of buffers asked for so far (a mark for :func:`release_unused_since`)."""
    return _requests


def release_unused_since(mark: int) -> None:
    """Unmap the free blocks of the size classes not asked for since request ``mark`` (of :func:`requests`) unless
    the class is asked for periodically (idle for at most twice its longest gap): a loop whose iterations ask for
    the same buffers (the chunks of a checkpointed step) keeps one iteration's working set, and also the blocks
    of its classes that only some iterations need at once (a checkpointed step's inference forward asks for
    the outputs' class but not for the extra blocks of the recomputation's potentials and gradients: unmapping
    them faulted 10 MB in again each step of the temporal benchmark in chunks of 100)."""
    with _lock:
        _release_idle(_requests - mark, gap_factor=2, keep_since=mark)


def cached_bytes() -> tuple[int, int]:
    """(bytes of all cached blocks, bytes of those in use now)."""
    with _lock:
        blocks = [b for bs in _blocks.values() for b in bs]
        return sum(b.storage.nbytes() for b in blocks), sum(b.storage.nbytes() for b in blocks if not b.free())


def clear() -> None:
    """Forget every cached block: free ones go back to the allocator now, ones in use when their tensors go."""
    with _lock:
        _blocks.clear()
        _class_last.clear()
        _class_gap.clear()
