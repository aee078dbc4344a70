"""N-TIDIGITS spike recordings in SLAYER's binary 1-D spike format (``.bs1``), and the one public sample.

N-TIDIGITS (Anumula et al. 2018) is TIDIGITS played to a 64-channel silicon cochlea. The full set
is not public; SLAYER-PyTorch ships one recording (label unknown) as a test file, kept here as
``<root>/ntidigits_slayer_sample/NTIDIGITS_1.bs1`` (898 events, channels 0..63, about 1.08 s).

``.bs1`` layout (SLAYER ``spikeFileIO.read1Dspikes``): one 40-bit big-endian record (5 bytes) per
event; bits 39..24 are the channel (neuron) id, bit 23 the polarity (1 = ON), bits 22..0 the
timestamp in microseconds. :func:`bin_events` turns events into a time-major spike tensor
``[T, 64]`` (polarity is not a separate channel: all N-TIDIGITS events are ON events).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.files import check_sha256, dataset_dir, require_files

NAME = "ntidigits_slayer_sample"
SAMPLE_FILE = "NTIDIGITS_1.bs1"
SAMPLE_SHA256 = "ed0454b248a1e24948f19300f660ad09abfb32470e8c0db3e6a86fe86bb061eb"
SAMPLE_EVENTS = 898
N_CHANNELS = 64
RECORD_BYTES = 5
MAX_TIME_US = (1 << 23) - 1
_SLAYER_COMMIT = "01beeeb6a181546d6c6830382ce6086bfc587836"
REMOTES = [Remote(f"https://raw.githubusercontent.com/bamsumit/slayerPytorch/{_SLAYER_COMMIT}/test/test_files/"
                  f"binarySpikeTestFiles/{SAMPLE_FILE}", SAMPLE_FILE, SAMPLE_SHA256)]


@dataclass(frozen=True)
class Events1D:
    """Spike events of a 1-D sensor, each [E]: ``channel`` (int64), ``polarity`` (int64, 1 ON, 0 OFF),
    ``time_us`` (int64 microseconds), in file order."""

    channel: np.ndarray
    polarity: np.ndarray
    time_us: np.ndarray

    def __len__(self) -> int:
        return len(self.time_us)


def parse_bs1(content: bytes, name: str = "<bytes>", n_channels: int = N_CHANNELS) -> Events1D:
    """The events of the ``.bs1`` bytes ``content``.

    Raises :class:`CorruptFileError` naming ``name`` when the content is empty, not a whole number
    of 5-byte records (truncated) or names a channel outside ``0..n_channels-1`` (garbled).
    """
    if not content or len(content) % RECORD_BYTES:
        raise CorruptFileError(f"{name}: {len(content)} bytes is not a whole, non-zero number of "
                               f"{RECORD_BYTES}-byte .bs1 records (truncated or not a .bs1 file)")
    records = np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD_BYTES).astype(np.int64)
    channel = (records[:, 0] << 8) | records[:, 1]
    polarity = records[:, 2] >> 7
    time_us = ((records[:, 2] & 0x7F) << 16) | (records[:, 3] << 8) | records[:, 4]
    outside = int((channel >= n_channels).sum())
    if outside:
        raise CorruptFileError(f"{name}: {outside} of {len(channel)} events have a channel id outside "
                               f"0..{n_channels - 1} (largest {int(channel.max())}): garbled or not a "
                               f"{n_channels}-channel recording")
    return Events1D(channel, polarity, time_us)


def read_bs1(path: str | os.PathLike, n_channels: int = N_CHANNELS) -> Events1D:
    """The events of the ``.bs1`` file ``path``; see :func:`parse_bs1`."""
    path = Path(path)
    return parse_bs1(path.read_bytes(), str(path), n_channels)


def bs1_bytes(events: Events1D) -> bytes:
    """``events`` encoded as ``.bs1`` records; ValueError when a field does not fit its bits."""
    channel, polarity, time_us = (np.asarray(a, dtype=np.int64) for a in (events.channel, events.polarity,
                                                                            events.time_us))
    if channel.min(initial=0) < 0 or channel.max(initial=0) > 0xFFFF:
        raise ValueError("channel ids must be in 0..65535 (16 bits)")
    if not np.isin(polarity, (0, 1)).all():
        raise ValueError("polarities must be 0 or 1")
    if time_us.min(initial=0) < 0 or time_us.max(initial=0) > MAX_TIME_US:
        raise ValueError(f"timestamps must be in 0..{MAX_TIME_US} us (23 bits)")
    word = (channel << 24) | (polarity << 23) | time_us
    shifts = np.arange(8 * (RECORD_BYTES - 1), -1, -8)
    return ((word[:, None] >> shifts) & 0xFF).astype(np.uint8).tobytes()


def write_bs1(path: str | os.PathLike, events: Events1D) -> Path:
    """Write ``events`` as a ``.bs1`` file at ``path``, atomically; see :func:`bs1_bytes`."""
    path = Path(path)
    atomic_write_bytes(path, bs1_bytes(events))
    return path


def bin_events(events: Events1D, n_channels: int = N_CHANNELS, bin_us: float = 1000, n_bins: int | None = None,
               binary: bool = False) -> torch.Tensor:
    """Events as a time-major spike tensor [T, n_channels] float32: entry (t, c) counts the events of
    channel c with ``t * bin_us <= time_us < (t + 1) * bin_us`` (or is 1 where any, with ``binary``).

    ``n_bins=None`` gives T just long enough for the last event; a given ``n_bins`` that is too
    short for some events raises ValueError (events are never dropped silently).
    """
    if not bin_us > 0:
        raise ValueError(f"bin_us must be a positive number of microseconds, got {bin_us}")
    bins = (np.asarray(events.time_us, dtype=np.int64) // bin_us).astype(np.int64)
    needed = int(bins.max()) + 1 if len(bins) else 0
    if n_bins is None:
        n_bins = needed
    elif n_bins < needed:
        raise ValueError(f"n_bins={n_bins} of {bin_us} us is too short: {int((bins >= n_bins).sum())} events come "
                         f"later (the last in bin {needed - 1})")
    counts = torch.zeros(n_bins * n_channels, dtype=torch.float32)
    flat = torch.from_numpy(bins * n_channels + np.asarray(events.channel, dtype=np.int64))
    counts.index_add_(0, flat, torch.ones(len(flat)))
    counts = counts.view(n_bins, n_channels)
    return counts.clamp(max=1) if binary else counts


def load_sample(root: str | os.PathLike | None = None, bin_us: float = 1000) -> tuple[Events1D, torch.Tensor]:
    """The events of the public N-TIDIGITS sample and their spike tensor [T, 64] (see :func:`bin_events`)."""
    directory = dataset_dir(NAME, root)
    (path,) = require_files(directory, [SAMPLE_FILE], "N-TIDIGITS sample",
                            f"get it from {REMOTES[0].url} (sha256 {SAMPLE_SHA256})")
    events = read_bs1(path)
    return events, bin_events(events, bin_us=bin_us)


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the N-TIDIGITS sample on disk (empty: all good): missing, wrong sha256, not 898 events."""
    try:
        directory = dataset_dir(NAME, root)
        path = directory / SAMPLE_FILE
        if not path.is_file():
            return [f"{path}: missing (get it from {REMOTES[0].url})"]
        check_sha256(path, SAMPLE_SHA256)
        events = read_bs1(path)
    except DataError as exc:
        return [str(exc)]
    return [] if len(events) == SAMPLE_EVENTS else [f"{path}: {len(events)} events, expected {SAMPLE_EVENTS}"]
