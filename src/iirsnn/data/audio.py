"""Spoken utterances as MFCC sequences: WAV reading (standard library ``wave``) and MFCC features (librosa).

A waveform is :class:`Waveform`: samples ``[n_samples, n_channels]`` float32 in [-1, 1] and a rate.
:class:`MfccConfig` turns a mono waveform into a fixed-size MFCC sequence ``[n_frames, n_mfcc]``
(the paper's TIDIGITS input is 90 frames x 20 coefficients):

- analysis: a Hann window of ``window_ms`` (25 ms) every ``hop_ms`` (10 ms), FFT size the next power
  of two (256 samples at 8 kHz, 512 at 20 kHz), ``n_mels`` (40) Slaney mel bands from 0 Hz to the
  Nyquist frequency, power in dB (librosa ``power_to_db``, floor 80 dB under the utterance's peak),
  DCT-II (orthonormal), the first ``n_mfcc`` coefficients. Frames are centred: a waveform of n
  samples gives ``1 + n // hop`` frames.
- the number of frames is fixed by ``fit``, an explicit choice, never a silent cut:

  ============  ===============================================================================
  ``resample``  MFCC at the fixed hop, then linear interpolation of the frames onto ``n_frames``
                (first and last frame kept): every utterance is time-normalised, nothing is lost
  ``pad``       the waveform is zero-padded at its end to ``n_frames`` frames (``n_frames * hop``
                of audio: 0.9 s at the defaults); a longer utterance is an error
  ``crop``      like ``pad``, but a longer utterance is cut to its first ``n_frames`` frames
  ============  ===============================================================================

MFCC needs librosa, the optional extra ``audio`` (``pip install iirsnn[audio]``); it is imported
only when features are computed. :class:`MfccFileDataset` is the base of the spoken-digit loaders
(FSDD, TIDIGITS): it computes the features of all its files once, through the on-disk cache.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from iirsnn.data.cache import cached
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.timeseries import resample

FRAME_FITS = ("resample", "pad", "crop")
_WAV_DTYPES = {1: np.dtype("u1"), 2: np.dtype("<i2"), 4: np.dtype("<i4")}


@dataclass(frozen=True)
class Waveform:
    """Audio ``samples`` [n_samples, n_channels] float32 in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    def mono(self) -> np.ndarray:
        """The mean of the channels, [n_samples] float32."""
        return self.samples.mean(axis=1, dtype=np.float32)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """Integer PCM samples (uint8 offset binary, int16 or int32) as float32 in [-1, 1], same shape."""
    if pcm.dtype == np.uint8:
        return (pcm.astype(np.float32) - 128.0) / 128.0
    return pcm.astype(np.float32) / float(2 ** (8 * pcm.dtype.itemsize - 1))


def read_wav(path: str | os.PathLike) -> Waveform:
    """The PCM samples of the RIFF/WAVE file ``path`` (8-, 16- or 32-bit integer, any channel count).

    Raises :class:`CorruptFileError` naming the file when it is not a readable PCM WAV (bad magic,
    missing chunks, an unsupported sample format) or its data chunk holds fewer frames than the
    header announces (a truncated file).
    """
    path = Path(path)
    content = path.read_bytes()  # parsing from memory: a lying chunk size cannot make wave allocate more
    try:
        with wave.open(io.BytesIO(content)) as w:
            n_channels, width, rate, n_frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(n_frames)
    except (wave.Error, EOFError, RuntimeError) as exc:  # wave raises a bare RuntimeError for an impossible chunk size
        reason = str(exc) or ("the file ends inside its header" if isinstance(exc, EOFError)
                              else "a chunk size does not fit its chunk")
        raise CorruptFileError(f"{path}: not a readable PCM WAV file ({reason})") from exc
    if width not in _WAV_DTYPES:
        raise CorruptFileError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32-bit PCM)")
    if rate <= 0:
        raise CorruptFileError(f"{path}: impossible sample rate {rate} Hz in the header")
    expected = n_frames * n_channels * width
    if len(data) != expected:
        raise CorruptFileError(f"{path}: truncated: the header announces {n_frames} frames ({expected} bytes), "
                               f"the data chunk holds {len(data)} bytes")
    pcm = np.frombuffer(data, dtype=_WAV_DTYPES[width]).reshape(n_frames, n_channels)
    return Waveform(pcm_to_float(pcm), rate)


def _librosa():
    """The librosa module, or an ImportError saying which extra to install."""
    try:
        import librosa
    except ImportError as exc:
        raise ImportError("MFCC features need librosa: pip install iirsnn[audio]") from exc
    return librosa


def mfcc(samples: np.ndarray, sample_rate: int, n_mfcc: int = 20, window_ms: float = 25.0, hop_ms: float = 10.0,
         n_mels: int = 40) -> np.ndarray:
    """MFCC of mono ``samples`` [n] as [1 + n // hop, n_mfcc] float32 (see the module doc for the analysis).

    ``hop`` is ``round(hop_ms * sample_rate / 1000)`` samples. Raises ValueError for an empty
    waveform or ``n_mfcc > n_mels`` (the DCT would give fewer coefficients than asked for).
    """
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"mfcc needs a non-empty mono waveform [n], got shape {list(samples.shape)}")
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc={n_mfcc} is more than n_mels={n_mels}: the DCT of {n_mels} bands has "
                         f"only {n_mels} coefficients")
    window, hop = _samples(window_ms, sample_rate), _samples(hop_ms, sample_rate)
    n_fft = 1 << (window - 1).bit_length()
    features = _librosa().feature.mfcc(y=np.ascontiguousarray(samples, dtype=np.float32), sr=sample_rate,
                                       n_mfcc=n_mfcc, n_fft=n_fft, win_length=window, hop_length=hop,
                                       n_mels=n_mels, window="hann", center=True)
    return np.ascontiguousarray(features.T, dtype=np.float32)


def _samples(ms: float, sample_rate: int) -> int:
    """``ms`` milliseconds as a whole number of samples (at least one)."""
    return max(1, round(ms * sample_rate / 1000))


@dataclass(frozen=True)
class MfccConfig:
    """How an utterance becomes an MFCC sequence [n_frames, n_mfcc]; see the module doc.

    ``fit`` is one of ``"resample"``, ``"pad"``, ``"crop"``; the other fields are those of :func:`mfcc`.
    """

    n_mfcc: int = 20
    n_frames: int = 90
    fit: str = "resample"
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40

    def __post_init__(self) -> None:
        if self.fit not in FRAME_FITS:
            raise ValueError(f"fit must be one of {list(FRAME_FITS)}, got {self.fit!r}")
        for field in ("n_mfcc", "n_frames", "n_mels"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        if not (self.window_ms > 0 and self.hop_ms > 0):
            raise ValueError(f"window_ms and hop_ms must be positive, got {self.window_ms} and {self.hop_ms}")

    def features(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The MFCC sequence [n_frames, n_mfcc] float32 of mono ``samples`` [n].

        Raises ValueError with ``fit="pad"`` when the utterance is longer than ``n_frames`` frames.
        """
        options = {"n_mfcc": self.n_mfcc, "window_ms": self.window_ms, "hop_ms": self.hop_ms, "n_mels": self.n_mels}
        if self.fit == "resample":
            return resample(torch.from_numpy(mfcc(samples, sample_rate, **options)), self.n_frames).numpy()
        hop = _samples(self.hop_ms, sample_rate)
        longest, shortest = self.n_frames * hop - 1, (self.n_frames - 1) * hop  # 1 + n // hop == n_frames
        if samples.size > longest:
            if self.fit == "pad":
                raise ValueError(f"the utterance has {samples.size} samples ({1 + samples.size // hop} frames), more "
                                 f"than n_frames={self.n_frames} hold; fit='pad' never cuts: use fit='crop', "
                                 "fit='resample', a larger n_frames or a larger hop_ms")
            samples = samples[:longest]
        elif samples.size < shortest:
            samples = np.concatenate([samples, np.zeros(shortest - samples.size, dtype=samples.dtype)])
        return mfcc(samples, sample_rate, **options)

    def cache_params(self) -> dict[str, object]:
        """Every parameter of the features, with the librosa version, for :func:`cached`."""
        try:
            version = metadata.version("librosa")
        except metadata.PackageNotFoundError:
            version = None
        return {**asdict(self), "librosa": version}


class MfccFileDataset(Dataset):
    """Utterances as MFCC sequences: sample i is (features [n_frames, n_mfcc] float32, int label).

    ``paths`` are the audio files (named in the cache key relative to ``directory``, with their
    sizes), ``read`` turns one into a :class:`Waveform`. The features of all files are computed on
    the first access and kept (through ``cached`` unless ``cache=False``); ``targets`` [N] long is
    there without reading any audio. ``transform`` is applied to each sample's features.
    """

    def __init__(self, name: str, directory: Path, paths: Sequence[Path], labels: Sequence[int],
                 classes: Sequence[str], read: Callable[[Path], Waveform], mfcc: MfccConfig,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None, cache: bool,
                 cache_dir: str | os.PathLike | None) -> None:
        self.name, self.directory, self.paths = name, directory, list(paths)
        self.classes = list(classes)
        self.targets = torch.tensor(list(labels), dtype=torch.long)
        self.read, self.mfcc, self.transform = read, mfcc, transform
        self.cache, self.cache_dir = cache, cache_dir
        self._features: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.features()[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])

    def features(self) -> torch.Tensor:
        """The features of all files, [N, n_frames, n_mfcc] float32, computed (or loaded) once."""
        if self._features is None:
            files = [[p.relative_to(self.directory).as_posix(), p.stat().st_size] for p in self.paths]
            params = {"files": files, "mfcc": self.mfcc.cache_params()}
            entry = cached(self.name, params, self._build, directory=self.cache_dir, enabled=self.cache)
            self._features = entry["features"]
        return self._features

    def _build(self) -> dict[str, torch.Tensor]:
        """Read each file and compute its features: {"features": [N, n_frames, n_mfcc]}."""
        out = torch.empty(len(self.paths), self.mfcc.n_frames, self.mfcc.n_mfcc)
        for i, path in enumerate(tqdm(self.paths, desc=f"{self.name}: MFCC", disable=None, leave=False)):
            waveform = self.read(path)
            try:
                out[i] = torch.from_numpy(self.mfcc.features(waveform.mono(), waveform.sample_rate))
            except ValueError as exc:
                raise DataError(f"{path}: {exc}") from exc
        return {"features": out}
