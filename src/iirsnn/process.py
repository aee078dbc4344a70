"""Process-wide settings that speed up training: glibc's allocator mode and flush-to-zero.

Nothing here runs at ``import iirsnn``: a program asks for these settings by calling
:func:`tune_process`, once, at its start. The ``iirsnn`` command line calls it before every command
(and ``iirsnn bench`` hands the same settings to its measurement processes); the trainer
(``iirsnn.train``, still to come) must call it too; a library user calls it when wanted.

What it changes, for the whole process until it exits (nothing else is touched):

malloc (glibc on Linux only; elsewhere nothing is changed and the mode reads None)
    glibc's malloc parameters (``mallopt``), which hold for every allocation of every library and
    thread in the process (torch's CPU tensors come from malloc). By default glibc serves each block
    above its mmap threshold with a fresh mapping and unmaps it on free, so each training step faults
    its large tensors in again page by page; its threshold also moves (after a block of up to 32 MB
    is freed it rises to that block's size).

    - ``"reuse"`` (the default): large blocks come from the heap (``M_MMAP_MAX = 0``), which is never
      given back to the system (``M_TRIM_THRESHOLD`` = INT_MAX), so the next step reuses the same pages
      without faults. The price: the heap fragments, peak resident memory is about twice the live tensors.
    - ``"lean"``: every block of 1 MiB or more is its own mapping, returned on free
      (``M_MMAP_THRESHOLD`` = 1 MiB, which also stops the threshold from moving): resident memory
      follows the live tensors, and the steps pay the page faults.
    - ``"system"``: glibc's own defaults, untouched.

    glibc has no call that returns these parameters to its defaults, so the first mode decided in a
    process stays: asking for another one later is a RuntimeError.

flush_denormal (off unless asked for)
    ``torch.set_flush_denormal``: on x86 the FTZ (flush-to-zero) and DAZ (denormals-are-zero) bits of
    MXCSR, on ARM the FZ bit of FPCR, so that every float32 and float64 vector or scalar SSE/AVX/NEON
    operation reads and writes subnormal numbers as zero: slightly different results for all code
    (numpy's too), and none of the slow microcode that subnormal operands take on some cores. These
    bits belong to a thread: the call sets them on the calling thread, and threads it starts later
    inherit them; threads already running keep theirs, torch's intra-op thread pool among them once
    ``torch.set_num_threads`` or the first parallel operation has started it. So call this first
    thing in a program; if the pool already differs, the state reads ``"partial"`` and a RuntimeWarning
    says so. iirsnn's kernels are meant to write no subnormals (docs/derivation.md, section 5) and not to need
    it: it is offered for other code and for comparisons.

A child process made by ``fork`` (a DataLoader worker on Linux) inherits both settings; one started
afresh (``spawn``, ``subprocess``) has neither until it calls :func:`tune_process` itself.
Measured effect of each setting: docs/kernels.md ("Memory and process settings"), from
benchmarks/process_settings.py.
"""

from __future__ import annotations

import ctypes
import os
import platform
import warnings
from dataclasses import dataclass

import torch

MALLOC_MODES = ("reuse", "lean", "system")
LEAN_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_C_INT_MAX = 2**31 - 1
_SWITCHES = {"1": True, "on": True, "true": True, "0": False, "off": False, "false": False}

_malloc_mode: str | None = None  # the mode decided by the first tune_process call; None: none yet
_malloc_applied: str | None = None  # what was given to glibc: "reuse", "lean", or None (nothing)


@dataclass(frozen=True)
class ProcessSettings:
    """The process-wide settings in effect.

    malloc: the allocator mode iirsnn gave glibc (``"reuse"`` or ``"lean"``); None when it gave none
        (not asked yet, ``"system"`` asked for, or no glibc).
    flush_denormal: ``"on"`` or ``"off"``: whether the calling thread flushes a subnormal float32 result
        to zero (read by computing one, so it is the current state, whoever set it). ``"partial"``, only
        from :func:`tune_process` when it set or cleared the mode: torch's intra-op threads, which it
        checks then, differ from the calling thread.
    """

    malloc: str | None
    flush_denormal: str


def tune_process(malloc: str | None = None, flush_denormal: bool | None = None) -> ProcessSettings:
    """Apply the process-wide settings that speed up training (see the module docstring); idempotent.

    Args:
        malloc: ``"reuse"``, ``"lean"`` or ``"system"``. None: the mode already decided in this process,
            else the environment variable ``IIRSNN_MALLOC``, else ``"reuse"``.
        flush_denormal: True sets flush-to-zero and denormals-are-zero on the calling thread (and the
            threads it starts later), False clears them. None: ``IIRSNN_FLUSH_DENORMAL`` (1/0, on/off,
            true/false) if set, else left as it is.

    Returns:
        The settings now in effect.

    Raises:
        ValueError: an unknown mode or switch, from an argument or the environment.
        RuntimeError: a malloc mode other than the one already applied in this process; or
            flush-to-zero asked for on a CPU where torch cannot set it.
    """
    mode, flush = _malloc_request(malloc), _flush_request(flush_denormal)  # both checked before either is applied
    _apply_malloc(mode)
    if flush is not None and not torch.set_flush_denormal(flush) and flush:
        raise RuntimeError("torch cannot set flush-to-zero on this CPU (it can on x86 with SSE3 and on ARM)")
    settings = ProcessSettings(malloc=_malloc_applied, flush_denormal=_flush_state(pool=flush is not None))
    if settings.flush_denormal == "partial":
        warnings.warn(f"flush-to-zero is now {'on' if flush else 'off'} on the calling thread only: torch's "
                      "intra-op threads had already started; call iirsnn.tune_process before "
                      "torch.set_num_threads or any parallel operation", RuntimeWarning, stacklevel=2)
    return settings


def process_settings() -> ProcessSettings:
    """The settings in effect now, on the calling thread; changes nothing (it multiplies one float on this thread)."""
    return ProcessSettings(malloc=_malloc_applied, flush_denormal=_flush_state(pool=False))


def _malloc_request(malloc: str | None) -> str:
    if malloc is None:
        if _malloc_mode is not None:
            return _malloc_mode
        return _parse_mode(os.environ.get("IIRSNN_MALLOC", "reuse"), "IIRSNN_MALLOC")
    return _parse_mode(malloc, "malloc")


def _parse_mode(text: str, name: str) -> str:
    mode = text.strip().lower()
    if mode not in MALLOC_MODES:
        raise ValueError(f"{name} must be one of {list(MALLOC_MODES)}, got {text!r}")
    return mode


def _apply_malloc(mode: str) -> None:
    global _malloc_mode, _malloc_applied
    if _malloc_mode is not None:
        if mode != _malloc_mode:
            raise RuntimeError(f"the malloc mode of this process is already {_malloc_mode!r} (glibc cannot return "
                               f"to its defaults), so it cannot become {mode!r}; ask for one mode, first thing")
        return
    libc = _glibc() if mode != "system" else None
    if libc is not None:
        if mode == "reuse":
            ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _C_INT_MAX)
        else:
            ok = libc.mallopt(_M_MMAP_THRESHOLD, LEAN_THRESHOLD)
        if not ok:
            raise RuntimeError(f"glibc's mallopt refused the {mode!r} allocator parameters")
        _malloc_applied = mode
    _malloc_mode = mode


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _flush_request(flush_denormal: bool | None) -> bool | None:
    if flush_denormal is not None:
        if not isinstance(flush_denormal, bool):
            raise ValueError(f"flush_denormal must be True, False or None, got {flush_denormal!r}")
        return flush_denormal
    text = os.environ.get("IIRSNN_FLUSH_DENORMAL")
    if text is None or not text.strip():
        return None
    if text.strip().lower() not in _SWITCHES:
        raise ValueError(f"IIRSNN_FLUSH_DENORMAL must be one of {list(_SWITCHES)}, got {text!r}")
    return _SWITCHES[text.strip().lower()]


def _flush_state(pool: bool) -> str:
    """'on' or 'off': whether a subnormal float32 product reads 0 on this thread; with ``pool``, 'partial'
    when it does not read the same on every intra-op thread (a parallel op, which starts them if none had)."""
    tiny, factor = 2e-30, 1e-10  # a normal float32 times a factor: 2e-40, subnormal (smallest normal 1.2e-38)
    here = (torch.tensor([tiny]) * factor).item() == 0.0  # one element: computed on the calling thread
    if pool:
        lanes = torch.full((65536 * torch.get_num_threads(),), tiny) * factor  # split over every intra-op thread
        if int((lanes == 0).sum()) != (lanes.numel() if here else 0):
            return "partial"
    return "on" if here else "off"
