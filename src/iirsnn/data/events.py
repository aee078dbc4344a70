"""Event-camera streams: tonic-style event arrays, time windows, spatial downsampling and frames.

Events are a numpy structured array with the fields ``x``, ``y``, ``t`` (microseconds) and ``p``
(polarity, 0 = OFF, 1 = ON), tonic's convention (``tonic.io.events_struct``): arrays from tonic's
readers work here and :data:`EVENT_DTYPE` arrays work in tonic's transforms. A frame stack is
time-major ``[T, 2, H, W]``: channel 0 counts OFF events, channel 1 ON events.

=========================  ======================================================================
``make_events``            x, y, t, p arrays -> events ``[N]`` of :data:`EVENT_DTYPE`
``crop_time``              the events with ``start <= t < end``
``downsample``             ``x // factor``, ``y // factor`` (128 x 128 -> 32 x 32 for factor 4)
``time_bins``              the time bin of every event of a window (by number of bins or bin width)
``frame_index``            flat index into ``[T, 2, H, W]`` of every event in the window
``to_frames``              events -> ``[T, 2, H, W]`` float32 counts (or 0/1)
``PackedFrames``           many frame stacks stored as their nonzero cells (what the cache holds)
``FrameDataset``           base of the event datasets: ``(frames [T, 2, H, W], label)`` samples
=========================  ======================================================================

Time bins cover a window ``[start, start + duration)`` given by the caller, so bin ``k`` spans the
same time in every sample (N-MNIST's three saccades land in the same bins in every recording).
This differs on purpose from tonic's ``ToFrame(n_time_bins=...)``, which spans each sample's first
to last event, so its bin edges move from sample to sample.

No dependency on tonic: tonic 1.7 pulls in 32 packages (librosa, numba + llvmlite, scipy,
scikit-learn, h5py, ...: 130 MB of wheels, 543 MB installed, checked with pip in a scratch venv)
for what is here a few vectorised numpy lines.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from iirsnn._checks import positive_int
from iirsnn.data.errors import CorruptFileError

#: tonic's event layout: pixel column ``x``, row ``y``, time ``t`` in µs, polarity ``p`` (True = ON).
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.bool_)])
EVENT_FIELDS = ("x", "y", "t", "p")
POLARITIES = 2


def _check_events(events: object) -> np.ndarray:
    """``events`` if it is a 1-d structured array with the fields x, y, t, p."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not isinstance(events, np.ndarray) or names is None or not set(EVENT_FIELDS) <= set(names):
        raise TypeError("events must be a numpy structured array with the fields x, y, t, p (tonic's "
                        f"convention, see iirsnn.data.events.EVENT_DTYPE), got {type(events).__name__}"
                        + (f" with fields {names}" if names else ""))
    if events.ndim != 1:
        raise ValueError(f"events must be 1-d [N], got shape {events.shape}")
    return events


def sensor_width_height(sensor_size: Sequence[int]) -> tuple[int, int]:
    """``(W, H)`` from a tonic-style ``sensor_size`` ``(W, H)`` or ``(W, H, 2)``."""
    if len(sensor_size) not in (2, 3) or (len(sensor_size) == 3 and sensor_size[2] != POLARITIES):
        raise ValueError(f"sensor_size must be (width, height) or (width, height, 2), got {tuple(sensor_size)}")
    return positive_int(sensor_size[0], "sensor width"), positive_int(sensor_size[1], "sensor height")


def make_events(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Events ``[N]`` of :data:`EVENT_DTYPE` from the 1-d arrays ``x``, ``y``, ``t`` (µs), ``p`` (0/1), each ``[N]``."""
    columns = [np.asarray(a) for a in (x, y, t, p)]
    if any(c.ndim != 1 for c in columns) or len({len(c) for c in columns}) != 1:
        raise ValueError(f"x, y, t, p must be 1-d arrays of one length, got shapes {[c.shape for c in columns]}")
    events = np.empty(len(columns[0]), EVENT_DTYPE)
    for name, column in zip(EVENT_FIELDS, columns, strict=True):
        events[name] = column
    return events


def crop_time(events: np.ndarray, start: int, end: int) -> np.ndarray:
    """The events ``[M]`` of ``events [N]`` with ``start <= t < end`` (µs), in their order; times unchanged."""
    events = _check_events(events)
    if end < start:
        raise ValueError(f"crop_time needs start <= end, got start={start}, end={end}")
    t = events["t"]
    return events[(t >= start) & (t < end)]


def downsample(events: np.ndarray, factor: int) -> np.ndarray:
    """Events with ``x // factor`` and ``y // factor``: a ``W x H`` sensor becomes
    ``ceil(W / factor) x ceil(H / factor)`` and the events of each ``factor x factor`` block add up in
    frames. ``events [N]`` -> a new array ``[N]``."""
    events = _check_events(events)
    factor = positive_int(factor, "factor")
    out = events.copy()
    out["x"] = events["x"] // factor
    out["y"] = events["y"] // factor
    return out


def downsampled_size(sensor_size: Sequence[int], factor: int) -> tuple[int, int]:
    """``(W, H)`` of a ``sensor_size`` ``(W, H[, 2])`` sensor after :func:`downsample` by ``factor``."""
    width, height = sensor_width_height(sensor_size)
    factor = positive_int(factor, "factor")
    return -(-width // factor), -(-height // factor)


def time_bins(t: np.ndarray, *, n_time_bins: int | None = None, time_window: int | None = None,
              duration: int | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Time bins of the window ``[start, start + duration)`` (µs).

    Give exactly one of ``n_time_bins`` (T equal bins: bin ``floor((t - start) T / duration)``) or
    ``time_window`` (bins of that width: ``T = ceil(duration / time_window)``, the last one possibly
    shorter). ``duration`` defaults to the span from ``start`` to the last timestamp.

    Args:
        t: ``[N]`` integer timestamps in µs.

    Returns:
        ``(bins [M] int64, inside [N] bool, T)``: the bin of each of the M timestamps inside the
        window (in their order), which timestamps those are, and the number of bins.
    """
    if (n_time_bins is None) == (time_window is None):
        raise ValueError("give exactly one of n_time_bins and time_window")
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"timestamps must be integers (µs), got {t.dtype}")
    start = operator.index(start)
    if duration is None:
        if t.size == 0:
            raise ValueError("no events: give duration explicitly")
        duration = max(int(t.max()) - start + 1, 1)
    duration = positive_int(duration, "duration")
    relative = t.astype(np.int64) - start
    inside = (relative >= 0) & (relative < duration)
    relative = relative[inside]
    if n_time_bins is not None:
        T = positive_int(n_time_bins, "n_time_bins")
        if duration * T >= 2**62:
            raise ValueError(f"duration * n_time_bins = {duration} * {T} is too large")
        return relative * T // duration, inside, T
    window = positive_int(time_window, "time_window")
    return relative // window, inside, -(-duration // window)


def frame_index(events: np.ndarray, sensor_size: Sequence[int], **window: int | None) -> tuple[np.ndarray, int]:
    """Flat index into ``[T, 2, H, W]`` of each event of the time window; ``window`` are the keyword
    arguments of :func:`time_bins`. ``events [N]`` -> ``(index [M] int64, T)``; events outside the window
    are left out, events outside the sensor raise ValueError."""
    events = _check_events(events)
    width, height = sensor_width_height(sensor_size)
    bins, inside, T = time_bins(events["t"], **window)
    kept = events[inside]
    x, y, p = kept["x"].astype(np.int64), kept["y"].astype(np.int64), kept["p"].astype(np.int64)
    outside = (x < 0) | (x >= width) | (y < 0) | (y >= height) | (p < 0) | (p > 1)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise ValueError(f"event (x={x[first]}, y={y[first]}, p={p[first]}) lies outside the {width} x {height} "
                         "sensor with polarities 0/1")
    return ((bins * POLARITIES + p) * height + y) * width + x, T


def to_frames(events: np.ndarray, sensor_size: Sequence[int], *, binary: bool = False,
              **window: int | None) -> np.ndarray:
    """Event counts per time bin, polarity and pixel.

    Args:
        events: ``[N]`` structured array with fields x, y, t, p.
        sensor_size: ``(W, H)`` or tonic's ``(W, H, 2)``.
        binary: 1 where a cell has any event instead of the count.
        window: ``n_time_bins`` or ``time_window``, and optionally ``duration`` and ``start`` (µs), as in
            :func:`time_bins`.

    Returns:
        ``[T, 2, H, W]`` float32; channel 0 = OFF, 1 = ON.
    """
    width, height = sensor_width_height(sensor_size)
    index, T = frame_index(events, sensor_size, **window)
    frames = np.bincount(index, minlength=T * POLARITIES * height * width).astype(np.float32)
    if binary:
        np.minimum(frames, 1.0, out=frames)
    return frames.reshape(T, POLARITIES, height, width)


def _smallest_int_dtype(maximum: int, signed: tuple[torch.dtype, ...]) -> torch.dtype:
    """The first of ``signed`` whose range holds ``maximum``."""
    for dtype in signed:
        if maximum <= torch.iinfo(dtype).max:
            return dtype
    raise ValueError(f"{maximum} does not fit int64")


@dataclass(frozen=True)
class PackedFrames:
    """N count-frame stacks ``[T, 2, H, W]`` stored as their nonzero cells: a few bytes per cell with
    an event instead of ``4 T 2 H W`` bytes per sample.

    Attributes:
        index: ``[nnz]`` flat cell index into ``[T, 2, H, W]`` (int32 or int64), samples back to back.
        count: ``[nnz]`` events in that cell (uint8, int16 or int32, the smallest that holds the maximum).
        offsets: ``[N + 1]`` int64; sample ``i`` is ``index[offsets[i]:offsets[i + 1]]``.
        shape: ``(T, 2, H, W)``.
    """

    index: torch.Tensor
    count: torch.Tensor
    offsets: torch.Tensor
    shape: tuple[int, int, int, int]

    @classmethod
    def from_indices(cls, samples: Iterable[np.ndarray], shape: Sequence[int], desc: str | None = None,
                     total: int | None = None) -> PackedFrames:
        """Pack the flat frame indices of each sample's events (``[M_i]``, repeats = several events);
        with ``desc``, a progress bar (on a terminal) over the ``total`` samples."""
        if desc is not None:
            samples = tqdm(samples, desc=desc, total=total, disable=None, leave=False)
        shape = tuple(int(s) for s in shape)
        index_dtype = _smallest_int_dtype(int(np.prod(shape)) - 1, (torch.int32, torch.int64))
        cells, counts, lengths = [], [], [0]
        for index in samples:  # narrowed per sample: the peak memory of a large split stays 8 bytes per cell
            cell, count = np.unique(np.asarray(index, dtype=np.int64), return_counts=True)
            cells.append(torch.from_numpy(cell).to(index_dtype))
            counts.append(torch.from_numpy(count).to(torch.int32))
            lengths.append(len(cell))
        cell = torch.cat(cells) if cells else torch.zeros(0, dtype=index_dtype)
        count = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.int32)
        largest = int(count.max()) if len(count) else 0
        count_dtype = _smallest_int_dtype(largest, (torch.uint8, torch.int16, torch.int32))
        return cls(cell, count.to(count_dtype), torch.from_numpy(np.cumsum(lengths)), shape)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to cache: ``index``, ``count``, ``offsets`` and ``shape`` (int64 ``[4]``)."""
        return {"index": self.index, "count": self.count, "offsets": self.offsets,
                "shape": torch.tensor(self.shape, dtype=torch.int64)}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], source: str) -> PackedFrames:
        """The inverse of :meth:`to_tensors`; :class:`CorruptFileError` naming ``source`` when the
        tensors are inconsistent (a cache entry of another version)."""
        try:
            index, count, offsets = tensors["index"], tensors["count"], tensors["offsets"]
            shape = tuple(int(s) for s in tensors["shape"].tolist())
        except (KeyError, AttributeError, TypeError) as exc:
            raise CorruptFileError(f"{source}: packed frames lack {exc}") from None
        consistent = (len(shape) == 4 and index.shape == count.shape and offsets.dim() == 1 and len(offsets) >= 1
                      and int(offsets[0]) == 0 and int(offsets[-1]) == len(index)
                      and bool((offsets[1:] >= offsets[:-1]).all())
                      and (len(index) == 0 or 0 <= int(index.min()) <= int(index.max()) < int(np.prod(shape))))
        if not consistent:
            raise CorruptFileError(f"{source}: packed frames are inconsistent (offsets, index range or shape)")
        return cls(index, count, offsets, shape)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> torch.Tensor:
        """Frames of sample ``i``: ``[T, 2, H, W]`` float32 counts."""
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        i %= len(self)
        begin, end = int(self.offsets[i]), int(self.offsets[i + 1])
        frames = torch.zeros(int(np.prod(self.shape)), dtype=torch.float32)
        frames[self.index[begin:end].long()] = self.count[begin:end].float()
        return frames.view(self.shape)


class FrameDataset(Dataset):
    """Base of the event datasets: sample ``i`` is ``(frames [T, 2, H, W] float32, label int)``.

    Args:
        frames: the packed count frames of all samples.
        targets: ``[N]`` int64 labels.
        classes: class names, ``classes[label]``.
        binary: 1 where a cell has any event instead of the count.
        transform: applied to each frame tensor.
    """

    def __init__(self, frames: PackedFrames, targets: torch.Tensor, classes: Sequence[str], binary: bool,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        if len(frames) != len(targets):
            raise CorruptFileError(f"{len(frames)} frame stacks for {len(targets)} labels")
        self.frames = frames
        self.targets = targets
        self.classes = list(classes)
        self.binary = binary
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames = self.frames[index]
        if self.binary:
            frames.clamp_(max=1.0)
        if self.transform is not None:
            frames = self.transform(frames)
        return frames, int(self.targets[index])
