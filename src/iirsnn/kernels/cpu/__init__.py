"""Compiled CPU backend: fused scans and spike-sparse products in C (see ``build.py`` for why C).

:func:`library` builds and loads the kernels on first use; :func:`available` says whether that
worked (the reason is in :func:`unavailable_reason` otherwise), so that ``"auto"`` can fall back to
the portable torch backend.
"""

from __future__ import annotations

import ctypes
import threading

from iirsnn.kernels.cpu.build import BuildError, load

_lock = threading.Lock()
_state: dict[str, object] = {}

_i64, _i32, _f64, _p = ctypes.c_int64, ctypes.c_int, ctypes.c_double, ctypes.c_void_p
_SIGNATURES = {
    "neuron_forward": [_p, _p, _p, _p, _p, _p, _p, _p, _i64, _p, _i64, _f64, _i32, _i64, _i64, _i32],
    "neuron_backward": [_p, _p, _p, _p, _p, _p, _p, _p, _i64, _p, _i64, _f64, _i32, _i32, _i32, _f64, _p,
                        _p, _p, _p, _p, _p, _i64, _i64, _i32],
    "reset_trace": [_p, _i32, _p, _p, _i64, _f64, _p, _i64, _i64, _i32],
    "filter_forward": [_p, _p, _p, _p, _p, _i64, _p, _i64, _i64, _i64, _i64, _i32],
    "filter_backward": [_p, _p, _p, _p, _p, _p, _p, _i64, _p, _p, _p, _p, _p, _p, _i64, _i64, _i64, _i64, _i32],
    "filter_neuron_forward": [_p, _p, _i64, _p, _i64, _p, _i64, _p, _i32, _p, _p, _i64, _p, _i64, _f64, _i32, _i64,
                              _i64, _p, _i32],
    "filter_neuron_backward": [_p, _p, _i32, _p, _i64, _p, _i64, _p, _i64, _p, _i64, _f64, _i32, _i32, _i32, _f64, _p,
                               _p, _p, _p, _p, _i64, _i64, _i32],
    "csr_count": [_p, _i64, _i64, _p, _i32],
    "csr_fill": [_p, _i64, _i64, _p, _p, _p, _i32],
    "spmm_csr": [_p, _p, _p, _p, _p, _i64, _i64, _i32],
    "spmm_csc": [_p, _p, _p, _p, _p, _i64, _i64, _i64, _i32],
    "csr_to_csc": [_p, _p, _p, _i64, _i64, _p, _p, _p, _p, _i32],
    "bits_count": [_p, _i64, _i64, _i64, _p, _i32],
    "bits_fill": [_p, _i64, _i64, _i64, _p, _p, _i32],
}
_RETURNS = {"csr_count": ctypes.c_int}


def library() -> ctypes.CDLL:
    """The loaded kernel library (built on first call); raises BuildError if it cannot be had."""
    with _lock:
        if "lib" not in _state and "error" not in _state:
            try:
                lib = load()
                for name, args in _SIGNATURES.items():
                    for suffix in ("_f32", "_f64"):
                        fn = getattr(lib, name + suffix)
                        fn.argtypes = args
                        fn.restype = _RETURNS.get(name)
                _state["lib"] = lib
            except BuildError as e:
                _state["error"] = str(e)
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
