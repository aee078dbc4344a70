"""AEDAT 3.1 files (iniVation / cAER; the IBM DVS128 Gesture release): polarity events in, and out.

Layout, from iniVation's AEDAT 3.1 documentation and libcaer's ``events/common.h`` and
``events/polarity.h``:

- a text header of lines starting with ``#``, the first ``#!AER-DAT3.1``, the last ``#!END-HEADER``
  (lines end with ``\\r\\n``);
- then packets, each a 28-byte little-endian header ``eventType int16, eventSource int16,
  eventSize int32, eventTSOffset int32, eventTSOverflow int32, eventCapacity int32, eventNumber int32,
  eventValid int32`` followed by ``eventSize * eventCapacity`` bytes of events, of which the first
  ``eventNumber`` are used;
- polarity events (type 1) are 8 bytes: ``uint32 data`` (bit 0 valid, bit 1 polarity, bits 2..16 y,
  bits 17..31 x) and ``int32 timestamp`` (µs, 31 bits); the full timestamp is
  ``(eventTSOverflow << 31) | timestamp``. Packets of other types (special events, frames, IMU) are
  skipped; events whose valid bit is 0 are dropped.

No official AEDAT file is available offline here: the reader is tested on files written by
:func:`write_aedat3` (and hand-made corrupt ones), which follows the same documentation; the
layout agrees with the readers of tonic (``tonic.io.read_dvs_ibm``) and SpikingJelly
(``load_aedat_v3``), which however ignore the valid bit (tonic also eventTSOverflow and eventNumber).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.errors import CorruptFileError, MissingDataError
from iirsnn.data.events import make_events

MAGIC = b"#!AER-DAT3."
HEADER_END = b"#!END-HEADER"
PACKET_HEADER = np.dtype([("eventType", "<i2"), ("eventSource", "<i2"), ("eventSize", "<i4"),
                          ("eventTSOffset", "<i4"), ("eventTSOverflow", "<i4"), ("eventCapacity", "<i4"),
                          ("eventNumber", "<i4"), ("eventValid", "<i4")])
POLARITY_EVENT = 1
POLARITY_DTYPE = np.dtype([("data", "<u4"), ("timestamp", "<i4")])
TS_OFFSET = 4
TS_OVERFLOW_SHIFT = 31
COORDINATE_MASK = 0x7FFF
DEFAULT_HEADER = ("#!AER-DAT3.1", "#Format: RAW", "#Source 1: DVS128", "#!END-HEADER")


def _header_end(data: bytes, path: Path) -> int:
    """Byte offset of the first packet, after checking the header's magic line and its end line."""
    if not data.startswith(MAGIC):
        version = data[:16].split(b"\n")[0]
        if data.startswith(b"#!AER-DAT"):
            raise CorruptFileError(f"{path}: {version!r} is not AEDAT 3.x; this reader reads AEDAT 3.1 only")
        raise CorruptFileError(f"{path}: bad magic {data[:11]!r}, expected {MAGIC!r} (not an AEDAT 3.1 file)")
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        if end < 0:
            break
        line = data[position:end].rstrip(b"\r")
        if not line.startswith(b"#"):
            raise CorruptFileError(f"{path}: header line at byte {position} does not start with '#' "
                                   f"and no {HEADER_END!r} came before it")
        position = end + 1
        if line == HEADER_END:
            return position
    raise CorruptFileError(f"{path}: the text header never ends (no {HEADER_END!r} line): truncated or not AEDAT 3.1")


def _packets(data: bytes, start: int, path: Path) -> Iterable[tuple[int, np.void]]:
    """(payload offset, header) of every packet, after checking its counts against the file size."""
    position = start
    while position < len(data):
        if len(data) - position < PACKET_HEADER.itemsize:
            raise CorruptFileError(f"{path}: truncated packet header at byte {position}: "
                                   f"{len(data) - position} of {PACKET_HEADER.itemsize} bytes")
        header = np.frombuffer(data, PACKET_HEADER, count=1, offset=position)[0]
        size, capacity = int(header["eventSize"]), int(header["eventCapacity"])
        number, valid = int(header["eventNumber"]), int(header["eventValid"])
        if size <= 0 or not 0 <= valid <= number <= capacity or int(header["eventTSOverflow"]) < 0:
            raise CorruptFileError(f"{path}: impossible packet header at byte {position}: eventSize={size}, "
                                   f"eventCapacity={capacity}, eventNumber={number}, eventValid={valid}, "
                                   f"eventTSOverflow={int(header['eventTSOverflow'])}")
        payload = position + PACKET_HEADER.itemsize
        if size * capacity > len(data) - payload:
            raise CorruptFileError(f"{path}: truncated packet at byte {position}: it declares {capacity} events of "
                                   f"{size} bytes, only {len(data) - payload} bytes remain")
        yield payload, header
        position = payload + size * capacity


def read_aedat3(path: str | os.PathLike) -> np.ndarray:
    """The valid polarity events of an AEDAT 3.1 file.

    Returns:
        ``[N]`` events of :data:`iirsnn.data.events.EVENT_DTYPE` (x, y, t in µs with the overflow
        counter applied, p) in file order.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingDataError(f"{path}: AEDAT file not found") from None
    words, times = [], []
    for payload, header in _packets(data, _header_end(data, path), path):
        if int(header["eventType"]) != POLARITY_EVENT:
            continue
        if int(header["eventSize"]) != POLARITY_DTYPE.itemsize or int(header["eventTSOffset"]) != TS_OFFSET:
            raise CorruptFileError(f"{path}: polarity packet at byte {payload - PACKET_HEADER.itemsize} has "
                                   f"eventSize={int(header['eventSize'])}, eventTSOffset={int(header['eventTSOffset'])}"
                                   f"; polarity events are 8 bytes with the timestamp at offset 4")
        events = np.frombuffer(data, POLARITY_DTYPE, count=int(header["eventNumber"]), offset=payload)
        if (events["timestamp"] < 0).any():
            raise CorruptFileError(f"{path}: negative timestamp in the polarity packet at byte "
                                   f"{payload - PACKET_HEADER.itemsize} (timestamps are 31-bit)")
        words.append(events["data"])
        times.append(events["timestamp"].astype(np.int64) | (int(header["eventTSOverflow"]) << TS_OVERFLOW_SHIFT))
    word = np.concatenate(words) if words else np.zeros(0, np.uint32)
    time = np.concatenate(times) if times else np.zeros(0, np.int64)
    valid = (word & 1).astype(bool)
    word, time = word[valid], time[valid]
    return make_events((word >> 17) & COORDINATE_MASK, (word >> 2) & COORDINATE_MASK, time, (word >> 1) & 1)


def packet_bytes(event_type: int, payload: bytes, event_size: int, event_number: int, *, ts_overflow: int = 0,
                 event_valid: int | None = None, ts_offset: int = TS_OFFSET, source: int = 1) -> bytes:
    """One packet: the 28-byte header and ``payload`` (``event_size * capacity`` bytes, the capacity
    being ``len(payload) // event_size``); ``event_valid`` defaults to ``event_number``."""
    header = np.zeros(1, PACKET_HEADER)
    header[0] = (event_type, source, event_size, ts_offset, ts_overflow, len(payload) // event_size, event_number,
                 event_number if event_valid is None else event_valid)
    return header.tobytes() + payload


def polarity_packets(events: np.ndarray, packet_events: int = 4096, valid: np.ndarray | None = None) -> list[bytes]:
    """Polarity packets of ``events [N]`` (x, y < 32768, t >= 0 in µs), at most ``packet_events`` per packet,
    a new packet wherever the timestamp overflow counter ``t >> 31`` changes; ``valid [N]`` bool
    (default all True) sets each event's valid bit."""
    x, y, t, p = (events[name].astype(np.int64) for name in ("x", "y", "t", "p"))
    if ((x < 0) | (x > COORDINATE_MASK) | (y < 0) | (y > COORDINATE_MASK) | (t < 0)).any():
        raise ValueError("x and y must lie in 0..32767 and t must be >= 0")
    valid = np.ones(len(x), bool) if valid is None else np.asarray(valid, bool)
    records = np.empty(len(x), POLARITY_DTYPE)
    records["data"] = (x << 17) | (y << 2) | ((p != 0).astype(np.int64) << 1) | valid.astype(np.int64)
    records["timestamp"] = t & ((1 << TS_OVERFLOW_SHIFT) - 1)
    overflow = t >> TS_OVERFLOW_SHIFT
    cuts = np.union1d(np.flatnonzero(np.diff(overflow)) + 1, np.arange(0, len(x), packet_events))
    packets = []
    for begin, end in zip(cuts, [*cuts[1:], len(x)], strict=True):
        chunk = records[begin:end]
        packets.append(packet_bytes(POLARITY_EVENT, chunk.tobytes(), POLARITY_DTYPE.itemsize, len(chunk),
                                    ts_overflow=int(overflow[begin]), event_valid=int(valid[begin:end].sum())))
    return packets


def write_aedat3(path: str | os.PathLike, packets: Iterable[bytes], header: Iterable[str] = DEFAULT_HEADER) -> None:
    """Write an AEDAT 3.1 file (atomically): the ``header`` lines (the first ``#!AER-DAT3.1``, the last
    ``#!END-HEADER``), each ended by ``\\r\\n``, then ``packets`` (from :func:`polarity_packets` or
    :func:`packet_bytes`)."""
    text = b"".join(line.encode("ascii") + b"\r\n" for line in header)
    atomic_write_bytes(Path(path), text + b"".join(packets))
