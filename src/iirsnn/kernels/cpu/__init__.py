"""Compiled CPU backend: fused scans and spike-sparse products in C (see ``build.py`` for why C).

:func:`library` builds and loads the kernels on first use; :func:`available` says whether that
worked (the reason is in :func:`unavailable_reason` otherwise), so that ``"auto"`` can fall back to
the portable torch backend. The ctypes signatures come from the table of what each kernel is handed
(:mod:`iirsnn.kernels.cpu.signatures`), which ``iirsnn.kernels.cpu.scans.run`` checks before every call.
"""

from __future__ import annotations

import ctypes
import threading

from iirsnn.kernels.cpu.build import BuildError, load
from iirsnn.kernels.cpu.signatures import KERNELS, ctypes_signature

_lock = threading.Lock()
_state: dict[str, object] = {}


def library() -> ctypes.CDLL:
    """The loaded kernel library (built on first call); raises BuildError if it cannot be had."""
    with _lock:
        if "lib" not in _state and "error" not in _state:
            try:
                lib = load()
                for name, kernel in KERNELS.items():
                    for suffix in ("_f32", "_f64"):
                        fn = getattr(lib, name + suffix)
                        fn.argtypes = ctypes_signature(name)
                        fn.restype = kernel.returns
                _state["lib"] = lib
            except BuildError as e:
                _state["error"] = str(e)
            except AttributeError as e:  # a kernel of the table is not in the library (an out-of-date build)
                _state["error"] = f"the compiled library lacks a kernel: {e}"
        if "lib" not in _state:
            raise BuildError(str(_state["error"]))
        return _state["lib"]


def available() -> bool:
    """True when the compiled kernels can be used in this process."""
    try:
        library()
        return True
    except BuildError:
        return False


def unavailable_reason() -> str | None:
    """Why the compiled kernels are unavailable, or None when they are available."""
    return None if available() else str(_state.get("error"))


__all__ = ["BuildError", "available", "library", "unavailable_reason"]
