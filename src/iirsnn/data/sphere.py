"""NIST SPHERE audio files (TIDIGITS, TIMIT, ...): reading 16-bit PCM, and writing it.

Layout: an ASCII header of ``header_size`` bytes (a multiple of 1024, usually 1024), then the
samples. The header is ``NIST_1A\\n``, the header size as a decimal line (``   1024\\n``), then
one field per line, ``name -type value`` with type ``-i`` (integer), ``-r`` (real) or ``-sN``
(a string of N characters), up to a line ``end_head``; the rest is padding. The fields read here:

=====================  ==============================================================================
``sample_count``       samples per channel (required)
``sample_rate``        Hz (required)
``sample_n_bytes``     bytes per sample (required; only 2 is supported)
``channel_count``      channels, interleaved (default 1)
``sample_byte_format`` ``01`` little-endian, ``10`` big-endian (required)
``sample_coding``      ``pcm`` (default); anything else, e.g. ``pcm,embedded-shorten-v2.00`` (shorten
                       compression, common in LDC distributions), is refused with a hint to convert
                       the file with ``sph2pipe``
``sample_checksum``    when present: the sum of the 16-bit samples modulo 2**16, checked
=====================  ==============================================================================

Sizes are checked against the file before anything is allocated: a lying header gives a
:class:`CorruptFileError` naming the file, never an out-of-memory or a numpy error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.audio import Waveform, pcm_to_float
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.files import shape_problem

SPHERE_MAGIC = b"NIST_1A\n"
HEADER_SIZE_DIGITS = 7  # the header size line: 7 characters and a line break
BYTE_ORDERS = {"01": "<i2", "10": ">i2"}
SPH2PIPE_HINT = ("convert it to plain PCM first with NIST's sph2pipe: `sph2pipe -f sph -p IN OUT` (keeps SPHERE) "
                 "or `sph2pipe -f wav -p IN OUT` (RIFF WAV; both are read here)")
_FIELD = re.compile(r"(\S+)\s+-(i|r|s(\d+))\s(.*)")

Header = dict[str, int | float | str]


class UnsupportedAudioError(DataError):
    """A well-formed audio file in an encoding this reader does not decode (e.g. shorten-compressed SPHERE)."""


def parse_sphere_header(content: bytes, name: str = "<bytes>") -> tuple[Header, int]:
    """The fields of the SPHERE header at the start of ``content`` and the header size in bytes.

    Raises :class:`CorruptFileError` naming ``name`` for a bad magic, an impossible header size,
    a malformed field line or a header without ``end_head``.
    """
    if not content.startswith(SPHERE_MAGIC):
        raise CorruptFileError(f"{name}: bad SPHERE magic {content[:8]!r} (expected {SPHERE_MAGIC!r})")
    size_line = content[8:16]
    if len(size_line) < 8 or not size_line.endswith(b"\n") or not size_line[:7].strip().isdigit():
        raise CorruptFileError(f"{name}: bad SPHERE header size line {size_line!r} (expected e.g. b'   1024\\n')")
    header_size = int(size_line[:7])
    if header_size < 16 or header_size > len(content):
        raise CorruptFileError(f"{name}: impossible SPHERE header size {header_size} "
                               f"for a file of {len(content)} bytes")
    try:
        text = content[16:header_size].decode("ascii")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{name}: SPHERE header is not ASCII ({exc})") from exc
    fields: Header = {}
    for line in text.split("\n"):
        if line.strip() == "end_head":
            return fields, header_size
        if not line.strip() or line.startswith(";"):
            continue
        match = _FIELD.fullmatch(line)
        if match is None:
            raise CorruptFileError(f"{name}: malformed SPHERE header line {line!r} (expected 'name -i|-r|-sN value')")
        field, kind, length, value = match.groups()
        fields[field] = _field_value(kind, length, value, line, name)
    raise CorruptFileError(f"{name}: SPHERE header of {header_size} bytes has no 'end_head' line")


def _field_value(kind: str, length: str | None, value: str, line: str, name: str) -> int | float | str:
    """One header value: ``-i`` int, ``-r`` float, ``-sN`` the N characters of the string."""
    try:
        if kind == "i":
            return int(value)
        if kind == "r":
            return float(value)
    except ValueError as exc:
        raise CorruptFileError(f"{name}: SPHERE header line {line!r}: {value!r} is not a number") from exc
    digits = length.lstrip("0") or "0"  # more than 7 digits: beyond any header (int() refuses 4301 and more)
    if len(digits) > HEADER_SIZE_DIGITS or len(value) < int(digits):
        raise CorruptFileError(f"{name}: SPHERE header line {line[:80]!r}: string shorter than its length "
                               f"{length[:20]}")
    return value[: int(digits)]


def _integer(fields: Header, field: str, name: str, default: int | None = None, minimum: int = 0) -> int:
    """The integer ``field`` of a header (``default`` when absent), at least ``minimum``."""
    value = fields.get(field, default)
    if value is None:
        raise CorruptFileError(f"{name}: SPHERE header lacks the field {field!r}")
    if not isinstance(value, int) or value < minimum:
        raise CorruptFileError(f"{name}: SPHERE field {field}={value!r} is not an integer >= {minimum}")
    return value


def parse_sphere(content: bytes, name: str = "<bytes>") -> tuple[Header, np.ndarray]:
    """The header and the int16 samples [sample_count, channel_count] of the SPHERE file ``content``.

    Raises :class:`UnsupportedAudioError` for a coding other than PCM or a sample size other than
    2 bytes, and :class:`CorruptFileError` for a bad header, a payload whose size does not match it
    (truncated or trailing bytes) or a wrong ``sample_checksum``.
    """
    fields, header_size = parse_sphere_header(content, name)
    coding = str(fields.get("sample_coding", "pcm"))
    byte_format = str(fields.get("sample_byte_format", ""))
    if coding != "pcm" or "shortpack" in byte_format:
        what = "shorten-compressed" if "shorten" in coding else f"sample_coding {coding!r}, byte format {byte_format!r}"
        raise UnsupportedAudioError(f"{name}: SPHERE file is {what}, not plain PCM; {SPH2PIPE_HINT}")
    n_bytes = _integer(fields, "sample_n_bytes", name, minimum=1)
    if n_bytes != 2:
        raise UnsupportedAudioError(f"{name}: {n_bytes}-byte SPHERE samples are not supported (16-bit PCM only); "
                                    f"{SPH2PIPE_HINT}")
    if byte_format not in BYTE_ORDERS:
        raise CorruptFileError(f"{name}: SPHERE sample_byte_format {byte_format!r} is not one of {list(BYTE_ORDERS)}")
    count = _integer(fields, "sample_count", name)
    channels = _integer(fields, "channel_count", name, default=1, minimum=1)
    _integer(fields, "sample_rate", name, minimum=1)
    problem = shape_problem((count, channels), n_bytes)
    if problem:
        raise CorruptFileError(f"{name}: the SPHERE header declares {problem} (samples x channels)")
    expected, actual = count * channels * n_bytes, len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise CorruptFileError(f"{name}: {problem}: the SPHERE header announces {count} samples x {channels} "
                               f"channel(s) ({expected} bytes), the file holds {actual} bytes after the header")
    samples = np.frombuffer(content, dtype=BYTE_ORDERS[byte_format], offset=header_size).reshape(count, channels)
    samples = samples.astype(np.int16)
    if "sample_checksum" in fields and fields["sample_checksum"] != sample_checksum(samples):
        raise CorruptFileError(f"{name}: SPHERE sample_checksum {fields['sample_checksum']} does not match the "
                               f"samples' {sample_checksum(samples)} (the samples are corrupt)")
    return fields, samples


def sample_checksum(samples: np.ndarray) -> int:
    """NIST's checksum of 16-bit samples (any shape): their sum modulo 2**16."""
    return int(samples.astype(np.int64).sum()) % (1 << 16)


def read_sphere(path: str | os.PathLike) -> Waveform:
    """The samples of the 16-bit PCM SPHERE file ``path`` as a :class:`Waveform`; see :func:`parse_sphere`."""
    path = Path(path)
    fields, samples = parse_sphere(path.read_bytes(), str(path))
    return Waveform(pcm_to_float(samples), int(fields["sample_rate"]))


def sphere_bytes(samples: np.ndarray, sample_rate: int, byte_format: str = "01",
                 fields: Mapping[str, int | float | str] | None = None) -> bytes:
    """int16 ``samples`` [n] or [n, channels] as a PCM SPHERE file, with its checksum.

    ``fields`` adds header fields or replaces the written ones (a string value is written as ``-sN``).
    """
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"SPHERE samples must be int16, got {samples.dtype}")
    if byte_format not in BYTE_ORDERS:
        raise ValueError(f"byte_format must be one of {list(BYTE_ORDERS)}, got {byte_format!r}")
    samples = samples.reshape(samples.shape[0], -1)
    header: dict[str, int | float | str] = {
        "sample_count": samples.shape[0], "channel_count": samples.shape[1], "sample_n_bytes": 2,
        "sample_rate": sample_rate, "sample_byte_format": byte_format, "sample_coding": "pcm",
        "sample_checksum": sample_checksum(samples), **(fields or {})}
    lines = [f"{k} {_field_type(v)} {v}" for k, v in header.items()]
    text = "\n".join(lines).encode("ascii") + b"\nend_head\n"
    header_size = -(-(16 + len(text)) // 1024) * 1024
    head = SPHERE_MAGIC + f"{header_size:>7}\n".encode() + text
    return head.ljust(header_size, b" ") + samples.astype(BYTE_ORDERS[byte_format]).tobytes()


def _field_type(value: int | float | str) -> str:
    """The SPHERE type tag of a header value."""
    if isinstance(value, str):
        return f"-s{len(value)}"
    return "-r" if isinstance(value, float) else "-i"


def write_sphere(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, byte_format: str = "01",
                 fields: Mapping[str, int | float | str] | None = None) -> Path:
    """Write int16 ``samples`` [n] or [n, channels] as a PCM SPHERE file at ``path``, atomically;
    see :func:`sphere_bytes`."""
    path = Path(path)
    atomic_write_bytes(path, sphere_bytes(samples, sample_rate, byte_format, fields))
    return path
