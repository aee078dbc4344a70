"""Hand malloc's free heap pages back to the system between the chunks of a checkpointed training step.

A checkpointed step (:mod:`iirsnn.nn.chunked`) recomputes one time chunk after another; torch's own tensors of
each chunk (products, sums, gradients) come from glibc's heap, which returns memory to the system only from
its top, so the holes between tensors of different lifetimes stay resident and the step's resident memory
grows with the number of chunks. ``malloc_trim(0)`` returns the free pages inside the heap too (it changes no
setting: the next allocation there faults its pages in again). Measured on the temporal benchmark at T 1200
with the kernels' own buffers on their own mappings (benchmarks/RESULTS.md, session 9): training bytes per
neuron-step 12.6-17.7 without it, 9.0-12.4 with it.

``iirsnn.config.trim_heap = False`` turns it off; outside glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from iirsnn import config


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_pages() -> bool:
    """Return the free pages of malloc's heaps to the system (when ``config.trim_heap``); whether any was returned."""
    trim = _malloc_trim() if config.trim_heap else None
    return bool(trim(0)) if trim is not None else False
