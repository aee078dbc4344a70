"""Keep freed memory in the process instead of returning it to the OS after every step (glibc only).

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and
unmaps it on free, so each training step faults in its large tensors page by page again: on the
conv workload of the peer benchmark that was a third of the step (0.68 s of kernel time in a
0.93 s step, 1.2 GB of page faults). Serving large blocks from the heap (M_MMAP_MAX = 0) and not
trimming it (M_TRIM_THRESHOLD) lets the next step reuse the same pages: the step took 0.60 s.
The price: memory freed by the process is kept for reuse rather than given back to the OS.

Applied once when iirsnn is imported; ``IIRSNN_TUNE_MALLOC=0`` in the environment leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
applied = False


def tune() -> bool:
    """Apply the setting (idempotent); returns whether it is in effect."""
    global applied
    if applied or os.environ.get("IIRSNN_TUNE_MALLOC") == "0":
        return applied
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    largest_int = 2**31 - 1  # mallopt takes a C int
    applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, largest_int))
    return applied
