"""The IDX format of MNIST (LeCun et al.): reading and writing, gzip-compressed or raw.

Layout (all integers big-endian): two zero bytes, one dtype code, one byte ``ndim``, then
``ndim`` unsigned 32-bit dimension sizes, then the ``prod(dims)`` items in C order.

==========  =================  ==========  =================
dtype code  numpy dtype         dtype code  numpy dtype
==========  =================  ==========  =================
0x08        uint8               0x0C        >i4 (int32)
0x09        int8                0x0D        >f4 (float32)
0x0B        >i2 (int16)         0x0E        >f8 (float64)
==========  =================  ==========  =================

A file whose name ends in ``.gz`` is decompressed first. Every size is checked against the
number of bytes actually there before anything is allocated, so a lying header gives a
:class:`CorruptFileError` naming the file, never an out-of-memory or a numpy reshape error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.errors import CorruptFileError
from iirsnn.data.files import shape_problem

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def idx_content(path: str | os.PathLike) -> bytes:
    """The IDX bytes of ``path``: the file itself, or its decompressed content when it ends in ``.gz``.

    Raises :class:`CorruptFileError` naming the file when the gzip stream is truncated or garbled
    (bad header, bad deflate data, CRC or length mismatch).
    """
    path = Path(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptFileError(f"{path}: not a complete gzip file ({exc})") from exc


def parse_idx(content: bytes, name: str = "<bytes>") -> np.ndarray:
    """A new array of shape ``dims`` and the file's dtype (native byte order) from IDX ``content``.

    ``name`` names the source in errors: bad magic, unknown dtype code, or a payload whose size
    is not ``prod(dims) * itemsize`` (truncated or trailing bytes), or dims no numpy array can have.
    """
    if len(content) < 4:
        raise CorruptFileError(f"{name}: {len(content)} bytes, too short for an IDX header (4 bytes at least)")
    if content[0] != 0 or content[1] != 0:
        raise CorruptFileError(f"{name}: bad IDX magic {content[:4].hex()} (must start with two zero bytes)")
    code, ndim = content[2], content[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise CorruptFileError(f"{name}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise CorruptFileError(f"{name}: header announces {ndim} dimensions but the file has only "
                               f"{len(content)} bytes (needs {header} for the header)")
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    problem = shape_problem(dims, dtype.itemsize)
    if problem:
        raise CorruptFileError(f"{name}: the IDX header declares {problem}")
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    actual = len(content) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise CorruptFileError(f"{name}: {problem}: dims {list(dims)} of {dtype.name} need {expected} data "
                               f"bytes, the file has {actual}")
    return np.frombuffer(content, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` or raw); see :func:`parse_idx`."""
    return parse_idx(idx_content(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (any IDX dtype, up to 255 dimensions) encoded as IDX bytes."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use one of "
                        f"{sorted({d.name for d in IDX_DTYPES.values()})}")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file at ``path`` (gzip-compressed when it ends in ``.gz``), atomically."""
    path = Path(path)
    content = idx_bytes(array)
    atomic_write_bytes(path, gzip.compress(content, mtime=0) if path.suffix == ".gz" else content)
    return path
