"""How glibc's malloc serves large tensors: reuse freed pages (fast) or return them (lean).

glibc serves every allocation above its mmap threshold with a fresh mmap and unmaps it on free, so
each training step faults its large tensors in again page by page (about 2 GB/s here): on the conv
workload of the peer benchmark that was a third of the step. Its threshold also moves: after a large
block is freed it rises to that block's size (up to 32 MB), and blocks below it come from the heap.

Modes, chosen by the environment variable ``IIRSNN_MALLOC`` when iirsnn is imported:

- ``reuse`` (default): large blocks come from the heap (``M_MMAP_MAX = 0``), which is never trimmed
  (``M_TRIM_THRESHOLD``), so the next step reuses the same pages without faults. The price is
  fragmentation: peak resident memory is about twice the live tensors (peer benchmark, temporal
  network: 20-23 bytes per neuron-step, against 5.6 for its live tensors).
- ``lean``: every block of 1 MiB or more is its own mapping, returned on free (a fixed
  ``M_MMAP_THRESHOLD``, which also stops it from moving), so resident memory follows the live tensors;
  steps are slower by the page faults (benchmarks/RESULTS.md has both).
- ``system``: glibc's own defaults, untouched (also ``IIRSNN_TUNE_MALLOC=0``, the older spelling).
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
MODES = ("reuse", "lean", "system")
LEAN_THRESHOLD = 1 << 20
applied: str | None = None


def requested_mode() -> str:
    """The mode asked for by ``IIRSNN_MALLOC`` (default ``reuse``); ValueError naming the choices otherwise."""
    if os.environ.get("IIRSNN_TUNE_MALLOC") == "0":
        return "system"
    mode = os.environ.get("IIRSNN_MALLOC", "reuse").strip().lower()
    if mode not in MODES:
        raise ValueError(f"IIRSNN_MALLOC must be one of {list(MODES)}, got {mode!r}")
    return mode


def tune() -> str | None:
    """Apply the requested mode once per process; returns the mode in effect (None: not glibc, or ``system``)."""
    global applied
    if applied is not None:
        return applied
    mode = requested_mode()
    if mode == "system" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if mode == "reuse":
        largest_int = 2**31 - 1  # mallopt takes a C int
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, largest_int)
    else:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, LEAN_THRESHOLD)
    applied = mode if ok else None
    return applied
