"""Multivariate sensor time series: fixed lengths, per-channel standardisation, LIF spike encoding.

A series is a time-major float32 tensor ``[T, C]`` (frames x channels) whose length T varies from
sample to sample. :class:`SeriesDataset` is the base of the series loaders (Auslan, Japanese
Vowels, UEA): it keeps every series at its own length and gives each sample ``[L, C]`` with one
common length L chosen explicitly:

==============  ==================================================================================
``"pad"``       zeros appended after the series; a series longer than L is an error, never cut
``"crop"``      zeros appended to shorter series, longer ones cut to their first L frames
``"resample"``  linear interpolation of the whole series onto L frames (first and last frame kept)
==============  ==================================================================================

``length=None`` means the longest series of the dataset (``"pad"`` and ``"crop"`` only). The
original lengths are the dataset's ``lengths`` and the number of frames in each returned sample
that are data, not padding, is ``valid_lengths`` (masks: ``arange(L) < valid_lengths[:, None]``).
Standardisation (:class:`ChannelStats`) runs before padding, so padded frames are exactly zero.

:class:`CurrentLIFEncoding` is the paper's input encoding of analog channels (sec. 5.3) as a
per-sample transform ``[T, C] -> [T, 2C]`` spikes; on batches ``[T, B, C]`` call
:func:`iirsnn.functional.encoders.current_lif_encoder` with the same arguments instead, which runs
all samples in one scan.

:func:`parse_rows` is the checked parser of whitespace-separated text tables that the text
formats (Auslan ``.tsd``, Japanese Vowels) share.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from iirsnn.data.errors import CorruptFileError
from iirsnn.functional.encoders import current_lif_encoder

LENGTH_MODES = ("pad", "crop", "resample")
SeriesTransform = Callable[[torch.Tensor], torch.Tensor]


def parse_rows(lines: list[str], columns: int, path: str | os.PathLike,
               skip_blank: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The whitespace-separated numbers of ``lines``, one row per line: float64 [rows, columns] and
    the 0-based line index of each row [rows] (blank lines are skipped with ``skip_blank``).

    Raises :class:`CorruptFileError` naming ``path`` and the line for a line without exactly
    ``columns`` values (a truncated or garbled record), a token that is not a number, or NaN/Inf.
    """
    counts = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    wrong = np.flatnonzero((counts != columns) & ~(skip_blank & (counts == 0)))
    if wrong.size:
        first = int(wrong[0])
        raise CorruptFileError(f"{path}: line {first + 1} has {counts[first]} values, expected {columns} "
                               f"({wrong.size} such line(s); a truncated or garbled record)")
    try:
        values = np.array("\n".join(lines).split(), dtype=np.float64)
    except ValueError:
        for number, line in enumerate(lines, 1):
            for token in line.split():
                try:
                    float(token)
                except ValueError:
                    raise CorruptFileError(f"{path}: line {number}: {token!r} is not a number") from None
        raise CorruptFileError(f"{path}: holds a value that is not a number") from None
    if not np.isfinite(values).all():
        raise CorruptFileError(f"{path}: holds NaN or Inf values")
    return values.reshape(-1, columns), np.flatnonzero(counts)


def common_length(lengths: torch.Tensor, length: int | None, mode: str) -> int:
    """The common length L of the samples, checked against the series' own ``lengths`` [N].

    ``length=None`` gives the longest series (``"pad"``/``"crop"``; ``"resample"`` needs a length).
    Raises ValueError when ``mode="pad"`` would have to cut a series, naming how many are longer.
    """
    if mode not in LENGTH_MODES:
        raise ValueError(f"mode must be one of {list(LENGTH_MODES)}, got {mode!r}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1):
        raise ValueError(f"length must be None or a positive int, got {length!r}")
    if length is None:
        if mode == "resample":
            raise ValueError("mode='resample' needs an explicit length (the number of frames to resample to)")
        if lengths.numel() == 0:
            raise ValueError("length=None needs at least one series to take the longest length from")
        return int(lengths.max())
    length = int(length)
    longer = int((lengths > length).sum())
    if mode == "pad" and longer:
        raise ValueError(f"{longer} series are longer than length={length} (longest {int(lengths.max())} frames); "
                         "mode='pad' never cuts a series: pass a larger length, mode='crop' to keep the first "
                         f"{length} frames, or mode='resample'")
    return length


def valid_lengths(lengths: torch.Tensor, length: int, mode: str) -> torch.Tensor:
    """Frames of data (not padding) in each fitted sample: [N] long, from original ``lengths`` [N]."""
    if mode == "resample":
        return torch.full_like(lengths, length)
    return lengths.clamp(max=length)


def resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """Linear interpolation of ``x`` [T, ...] onto ``length`` frames [length, ...], end points kept.

    Frame i of the output samples the input at time ``i (T - 1) / (length - 1)``; a single-frame
    series is repeated. NaN (a missing value) spreads to the interpolated neighbours.
    """
    flat = x.reshape(x.shape[0], -1).T.unsqueeze(0)  # [1, features, T]
    if x.shape[0] == 1:
        out = flat.expand(1, flat.shape[1], length)
    else:
        out = F.interpolate(flat, size=length, mode="linear", align_corners=True)
    return out[0].T.reshape(length, *x.shape[1:]).contiguous()


def fit_length(x: torch.Tensor, length: int, mode: str) -> torch.Tensor:
    """``x`` [T, ...] brought to [length, ...] by ``mode`` (see the module docstring).

    Raises ValueError for ``mode="pad"`` and T > length: a series is never cut silently.
    """
    steps = x.shape[0]
    if mode == "resample":
        return x if steps == length else resample(x, length)
    if mode not in LENGTH_MODES:
        raise ValueError(f"mode must be one of {list(LENGTH_MODES)}, got {mode!r}")
    if steps > length:
        if mode == "pad":
            raise ValueError(f"a series of {steps} frames is longer than length={length}; "
                             "mode='pad' never cuts: use mode='crop' or 'resample'")
        return x[:length]
    if steps == length:
        return x
    return torch.cat([x, x.new_zeros(length - steps, *x.shape[1:])])


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and standard deviation, each [C]; calling it standardises a series.

    ``stats(x)`` maps ``x`` [T, C] to ``(x - mean) / std`` [T, C]. Fit it on the training split
    (:func:`channel_stats`) and pass the same object to the test split.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"series has {x.shape[-1]} channels, these statistics have {self.mean.shape[0]}")
        return ((x - self.mean) / self.std).to(x.dtype)


def channel_stats(series: Sequence[torch.Tensor], min_std: float = 1e-6) -> ChannelStats:
    """Mean and std per channel over every frame of ``series`` (each [T_i, C]), missing (NaN) values
    ignored. A channel with std below ``min_std`` (constant) gets std 1, so it maps to zero.

    Raises ValueError for no series, or a channel without a single observed value.
    """
    if len(series) == 0:
        raise ValueError("channel_stats needs at least one series")
    frames = torch.cat([s.reshape(s.shape[0], -1) for s in series]).double()
    mean = torch.nanmean(frames, dim=0)
    if bool(torch.isnan(mean).any()):
        empty = torch.isnan(mean).nonzero().flatten().tolist()
        raise ValueError(f"channels {empty} have no observed (non-missing) value")
    std = torch.nanmean((frames - mean) ** 2, dim=0).sqrt()
    std = torch.where(std < min_std, torch.ones_like(std), std)
    return ChannelStats(mean.float(), std.float())


@dataclass(frozen=True)
class CurrentLIFEncoding:
    """The paper's encoding of analog channels (sec. 5.3): each value drives an LIF neuron as current.

    A per-sample transform ``[T, C, ...] -> [T, 2C, ...]`` (``[T, C, ...]`` with ``split_sign=False``)
    of 0/1 spikes, built on :func:`iirsnn.functional.encoders.current_lif_encoder`: the current
    ``gain * x + bias`` is integrated by an LIF neuron with leak ``exp(-1/tau)``, and the neuron
    fires when its potential exceeds ``threshold``, then subtracts it (``reset="filter"``,
    ``reset_decay=0``).

    ``split_sign=True`` (the default here) gives each channel two neurons, one driven by the
    positive part of the current and one by the negative part; channels ``[:C]`` are the positive
    neurons, ``[C:]`` the negative. Sensor channels such as hand positions and standardised values
    are signed, and a single neuron would stay silent for every negative value, so the negative
    half of the signal would be lost. Standardise first (:class:`ChannelStats`) so that one gain
    suits every channel; padded zeros then inject no current.
    """

    threshold: float = 1.0
    tau: float = 4.0
    gain: float = 1.0
    bias: float = 0.0
    split_sign: bool = True
    reset: str = "filter"
    reset_decay: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spikes = current_lif_encoder(x.unsqueeze(1), threshold=self.threshold, tau=self.tau, gain=self.gain,
                                     bias=self.bias, split_sign=self.split_sign, reset=self.reset,
                                     reset_decay=self.reset_decay)
        return spikes.squeeze(1)


class SeriesDataset(Dataset):
    """Labelled variable-length series, each sample fitted to one common length.

    Sample i is ``(x, label)``: x = ``transform(fit_length(normalize(series[i]), length, mode))``,
    [length, C] float32 (or whatever ``transform`` returns), label an int index into ``classes``.

    Attributes:
        series: the series at their own lengths, each [T_i, C] float32.
        targets: [N] long labels. classes: the class names.
        lengths: [N] long original lengths T_i. valid_lengths: [N] long frames of data per sample.
        length, mode: the common length L and how series are fitted to it.
        normalize: a :class:`ChannelStats` (or any [T, C] -> [T, C] callable) or None; may be set later.
        transform: applied last to the fitted sample, or None.
    """

    def __init__(self, series: list[torch.Tensor], targets: torch.Tensor, classes: list[str],
                 length: int | None = None, mode: str = "pad",
                 normalize: SeriesTransform | None = None, transform: SeriesTransform | None = None) -> None:
        if len(series) != len(targets):
            raise ValueError(f"{len(series)} series but {len(targets)} targets")
        self.series = series
        self.targets = targets
        self.classes = classes
        self.lengths = torch.tensor([s.shape[0] for s in series], dtype=torch.long)
        self.length = common_length(self.lengths, length, mode)
        self.mode = mode
        self.valid_lengths = valid_lengths(self.lengths, self.length, mode)
        self.normalize = normalize
        self.transform = transform

    def channel_stats(self) -> ChannelStats:
        """Per-channel statistics of this dataset's series (fit them on the training split)."""
        return channel_stats(self.series)

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.series[index]
        if self.normalize is not None:
            x = self.normalize(x)
        x = fit_length(x, self.length, self.mode)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])
