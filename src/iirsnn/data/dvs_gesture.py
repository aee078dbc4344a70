"""DVS128 Gesture (Amir et al. 2017): the IBM release, cut into one sample per gesture, and
SLAYER's ten preprocessed sample streams.

The IBM release (``name="dvs128_gesture"``), in ``<root>/dvs128_gesture/`` or its ``DvsGesture/``
folder as the archive unpacks: one AEDAT 3.1 file per trial (``user01_fluorescent.aedat``, ...,
read by :mod:`iirsnn.data.aedat`), beside it ``<trial>_labels.csv`` (header
``class,startTime_usec,endTime_usec``, then one line per gesture, class 1..11, times in the
events' µs clock), and ``trials_to_train.txt`` / ``trials_to_test.txt`` listing the ``.aedat``
files of each split (standard split: 98 trials of users 1-23 / 24 trials of users 24-29). Each
gesture ``[start, end)`` is one sample. No checksums are published: :func:`verify` checks
presence, the label files and the AEDAT magic, and ``REMOTES`` is empty (the release is behind
IBM's Box page, not a checksummed URL).

SLAYER's samples (``name="dvs128_gesture_slayer_samples"``): ``1.bs2`` ... ``10.bs2``, 1.45 s of
real DVS128 events each in the N-MNIST 40-bit record format (:func:`iirsnn.data.nmnist.read_bin_events`,
x, y in 0..127). Their labels are inferred by eye (file k = class k - 1), not upstream: good for
pipeline tests, not for accuracy. ``SAMPLES_REMOTES`` are their raw files at the snapshot commit.

Frames are ``[T, 2, 128 / downsample, 128 / downsample]``. Default: 1450 bins of 1 ms over the
first 1.45 s of each gesture, 128 -> 32 (SLAYER's IBM Gesture setting); ``duration_us=None`` bins
the whole labelled gesture instead (then the bin width varies with the gesture's length).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from iirsnn.data.aedat import MAGIC, read_aedat3
from iirsnn.data.cache import cached
from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.events import FrameDataset, PackedFrames, crop_time, downsample, downsampled_size, frame_index
from iirsnn.data.files import dataset_dir, is_int64_field, require_files, sha256_file
from iirsnn.data.nmnist import files_fingerprint, read_bin_events

NAME = "dvs128_gesture"
SAMPLES_NAME = "dvs128_gesture_slayer_samples"
CLASSES = ["hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
           "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll",
           "air_drums", "air_guitar", "other_gestures"]
SENSOR_SIZE = (128, 128)
RELEASE_DIR = "DvsGesture"
TRIALS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
TRIAL_COUNTS = {"train": 98, "test": 24}
LABELS_SUFFIX = "_labels.csv"
LABELS_HEADER = "class,startTime_usec,endTime_usec"

REMOTES: list[Remote] = []

SLAYER_COMMIT = "01beeeb6a181546d6c6830382ce6086bfc587836"
SAMPLES_URL = (f"https://raw.githubusercontent.com/bamsumit/slayerPytorch/{SLAYER_COMMIT}"
               "/test/test_files/binarySpikeTestFiles/")
#: ``file: (bytes, events, sha256)`` of SLAYER's samples, from their SOURCE.md.
SAMPLE_FILES = {
    "1.bs2": (317355, 63471, "adb41d4a19c2f0815b67fc80ef72d0b58ff9d86a558f905730eb0c2639766214"),
    "2.bs2": (421300, 84260, "c96b1793ccccc3e737406a1a3a3b37cb917361038306a55e87577770c2405c3e"),
    "3.bs2": (565315, 113063, "d4855c3e1ae24365c37adf28c9284a414834af80a1c6df2231b8c777e484d874"),
    "4.bs2": (759395, 151879, "07c48e79ddac14dd561988629402bf60e6db4a0cf221d99f8ffd36cb284895f1"),
    "5.bs2": (905895, 181179, "c4da3051067361edb373145ceadb0df4a54fecee03f46cd36bcb3c97834789f7"),
    "6.bs2": (621220, 124244, "c0ce031709a03cd22bc8db540730431061f6a10514bc6a41469d1d2f3c23e959"),
    "7.bs2": (798085, 159617, "69af2762cc5884f0dd8a66c020813423de7a1d0a80560dcf05ed3cd559d87a34"),
    "8.bs2": (506440, 101288, "6148ca549a7be5b1e91234fd3040849d117a225dd3f69b5e180e467dff7f3951"),
    "9.bs2": (708865, 141773, "5e9c874ce7c76ba3ee5995b3dfc5cc2eff86306c0e3f97a2519a5211282fb690"),
    "10.bs2": (429680, 85936, "1d4050500bf39882d7b9b2174cc1810baaff6afb411e83284dc9613b296bcbcf"),
}
SAMPLES_REMOTES = [Remote(SAMPLES_URL + name, name, sha) for name, (_, _, sha) in SAMPLE_FILES.items()]
SAMPLES_DURATION_US = 1_450_000

_HINT = ("Expected the IBM DVS128 Gesture release (DvsGesture.tar.gz from research.ibm.com/dvsgesture, "
         "unpacked): the .aedat trials, their *_labels.csv, trials_to_train.txt and trials_to_test.txt")
_SAMPLES_HINT = (f"Expected SLAYER's 1.bs2 ... 10.bs2 (fetch_all(SAMPLES_REMOTES, directory) gets them from "
                 f"{SAMPLES_URL})")


def read_trials(path: Path) -> list[str]:
    """The ``.aedat`` file names listed in a ``trials_to_*.txt`` file, in order (blank lines skipped)."""
    names = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if not name.endswith(".aedat") or "/" in name or "\\" in name:
            raise CorruptFileError(f"{path}, line {number}: expected a trial file name '<trial>.aedat', "
                                   f"got {name[:80]!r}")
        names.append(name)
    if not names:
        raise CorruptFileError(f"{path}: no trials listed")
    return names


def read_labels(path: Path) -> np.ndarray:
    """The gestures of one trial: ``[G, 3]`` int64 rows ``(class 0..10, start µs, end µs)`` from a
    ``<trial>_labels.csv`` (classes 1..11 in the file)."""
    rows = []
    lines = [(n, line.strip()) for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines or lines[0][1].replace(" ", "") != LABELS_HEADER:
        raise CorruptFileError(f"{path}: the first line must be {LABELS_HEADER!r}")
    for number, line in lines[1:]:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not all(is_int64_field(f) for f in fields):
            raise CorruptFileError(f"{path}, line {number}: expected 'class,start,end' (integers below 2^63), "
                                   f"got {line[:80]!r}")
        label, start, end = (int(f) for f in fields)
        if not 1 <= label <= len(CLASSES) or start >= end:
            raise CorruptFileError(f"{path}, line {number}: class must be 1..{len(CLASSES)} and start < end, "
                                   f"got {line!r}")
        rows.append((label - 1, start, end))
    if not rows:
        raise CorruptFileError(f"{path}: no gestures listed")
    return np.array(rows, dtype=np.int64)


def release_dir(directory: Path) -> Path:
    """The folder of the IBM release's files: ``directory`` or its ``DvsGesture/``."""
    nested = directory / RELEASE_DIR
    return nested if (nested / TRIALS["train"]).is_file() or (nested / TRIALS["test"]).is_file() else directory


def _gesture_windows(folder: Path, split: str) -> tuple[list[Path], list[np.ndarray]]:
    """The split's trial files and, per trial, its ``[G, 3]`` gesture rows."""
    (trials_path,) = require_files(folder, [TRIALS[split]], NAME, _HINT)
    trials = read_trials(trials_path)
    labels = [t.removesuffix(".aedat") + LABELS_SUFFIX for t in trials]
    paths = require_files(folder, [name for pair in zip(trials, labels, strict=True) for name in pair], NAME, _HINT)
    return paths[0::2], [read_labels(p) for p in paths[1::2]]


def _read_trial(path: Path) -> np.ndarray:
    """The events of one trial, checked to lie on the 128 x 128 sensor."""
    events = read_aedat3(path)
    outside = (events["x"] >= SENSOR_SIZE[0]) | (events["y"] >= SENSOR_SIZE[1])
    if outside.any():
        first = events[np.flatnonzero(outside)[0]]
        raise CorruptFileError(f"{path}: event at x={first['x']}, y={first['y']} outside the 128 x 128 DVS128 sensor")
    return events


def _gesture_index(events: np.ndarray, start: int, end: int, T: int, duration_us: int | None,
                   factor: int) -> np.ndarray:
    """Flat frame index of the events of the gesture ``[start, end)`` (its first ``duration_us``)."""
    duration = end - start if duration_us is None else duration_us
    cut = crop_time(events, start, min(end, start + duration))
    size = downsampled_size(SENSOR_SIZE, factor)
    return frame_index(downsample(cut, factor), size, n_time_bins=T, duration=duration, start=start)[0]


def _frame_shape(T: int, factor: int) -> tuple[int, int, int, int]:
    """``(T, 2, H, W)`` after downsampling by ``factor``."""
    width, height = downsampled_size(SENSOR_SIZE, factor)
    return T, 2, height, width


class DVSGesture(FrameDataset):
    """The gestures of the IBM DVS128 Gesture release as ``(frames [T, 2, 128/d, 128/d] float32, class 0..10)``.

    Args:
        root: directory holding ``dvs128_gesture/`` (or that directory itself); default ``$IIRSNN_DATA``.
        train: the trials of ``trials_to_train.txt``, else those of ``trials_to_test.txt``.
        T: number of time bins.
        duration_us: the bins cover ``[start, start + duration_us)`` of each gesture (events after its end
            are left out); None: the whole gesture ``[start, end)``.
        downsample: integer factor d of the spatial downsampling (4: 128 x 128 -> 32 x 32).
        binary: 1 where a cell has any event instead of the count.
        transform: applied to each frame tensor.
        cache: keep the binned frames in the on-disk cache (parsing the AEDAT files is the slow part).
        cache_dir: the cache directory (default ``$IIRSNN_CACHE/data`` or ``~/.cache/iirsnn/data``).

    Attributes:
        targets: ``[N]`` int64 classes; classes: the 11 class names;
        trials: the AEDAT file of each sample; windows: ``[N, 2]`` int64 ``(start, end)`` µs of each gesture.
    """

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, T: int = 1450,
                 duration_us: int | None = 1_450_000, downsample: int = 4, binary: bool = False,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> None:
        folder = release_dir(dataset_dir(NAME, root))
        split = "train" if train else "test"
        trial_paths, gestures = _gesture_windows(folder, split)
        shape = _frame_shape(T, downsample)

        def indices() -> Iterator[np.ndarray]:
            for path, rows in zip(trial_paths, gestures, strict=True):
                events = _read_trial(path)
                for _, start, end in rows:
                    yield _gesture_index(events, int(start), int(end), T, duration_us, downsample)

        def build() -> dict[str, torch.Tensor]:
            return PackedFrames.from_indices(indices(), shape, "DVS Gesture: frames",
                                             sum(len(rows) for rows in gestures)).to_tensors()

        labels_paths = [p.with_name(p.stem + LABELS_SUFFIX) for p in trial_paths]
        params = {"format": "packed-frames-1", "split": split, "T": T, "duration_us": duration_us,
                  "downsample": downsample, "files": files_fingerprint(trial_paths + labels_paths)}
        frames = PackedFrames.from_tensors(cached(NAME, params, build, cache_dir, enabled=cache), f"{NAME} cache")
        rows = np.concatenate(gestures)
        super().__init__(frames, torch.from_numpy(rows[:, 0].copy()), CLASSES, binary, transform)
        self.root = folder
        self.train = train
        self.trials = [path for path, g in zip(trial_paths, gestures, strict=True) for _ in range(len(g))]
        self.windows = torch.from_numpy(rows[:, 1:].copy())

    def events(self, index: int) -> np.ndarray:
        """The raw events ``[N]`` (tonic's x, y, t, p) of gesture ``index``, cut from its trial's AEDAT file."""
        start, end = (int(v) for v in self.windows[index])
        return crop_time(_read_trial(self.trials[index]), start, end)


class DVSGestureSamples(FrameDataset):
    """SLAYER's ten DVS128 Gesture streams (1.45 s each; labels inferred, file k = class k - 1) as
    ``(frames [T, 2, 128/d, 128/d] float32, class)``.

    Args:
        root: directory holding ``dvs128_gesture_slayer_samples/`` (or that directory); default ``$IIRSNN_DATA``.
        T: number of time bins over ``[0, duration_us)``.
        duration_us: the time window from the start of each stream.
        downsample: integer factor d of the spatial downsampling (4: 128 x 128 -> 32 x 32).
        binary, transform, cache, cache_dir: as in :class:`DVSGesture`.

    Attributes:
        targets: ``[10]`` int64 classes 0..9; classes: the 11 class names; files: the ``.bs2`` file of each sample.
    """

    def __init__(self, root: str | os.PathLike | None = None, T: int = 1450,
                 duration_us: int = SAMPLES_DURATION_US, downsample: int = 4, binary: bool = False,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> None:
        directory = dataset_dir(SAMPLES_NAME, root)
        files = require_files(directory, SAMPLE_FILES, SAMPLES_NAME, _SAMPLES_HINT)
        shape = _frame_shape(T, downsample)

        def build() -> dict[str, torch.Tensor]:
            indices = (_gesture_index(read_bin_events(f, SENSOR_SIZE), 0, duration_us, T, duration_us, downsample)
                       for f in files)
            return PackedFrames.from_indices(indices, shape, "DVS Gesture samples: frames", len(files)).to_tensors()

        params = {"format": "packed-frames-1", "T": T, "duration_us": duration_us, "downsample": downsample,
                  "files": files_fingerprint(files)}
        frames = PackedFrames.from_tensors(cached(SAMPLES_NAME, params, build, cache_dir, enabled=cache),
                                           f"{SAMPLES_NAME} cache")
        super().__init__(frames, torch.arange(len(files)), CLASSES, binary, transform)
        self.root = directory
        self.files = files

    def events(self, index: int) -> np.ndarray:
        """The raw events ``[N]`` (tonic's x, y, t, p) of sample ``index``, read from its file."""
        return read_bin_events(self.files[index], SENSOR_SIZE)


def _magic(path: Path) -> bytes:
    """The first bytes of ``path`` (as many as the AEDAT 3 magic has), empty when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC))
    except OSError:
        return b""


def _verify_release(directory: Path) -> list[str]:
    """Problems of the IBM release: trial lists and their counts, label files, AEDAT magic."""
    folder = release_dir(directory)
    problems = []
    for split, expected in TRIAL_COUNTS.items():
        path = folder / TRIALS[split]
        try:
            trials = read_trials(path)
        except (DataError, OSError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        if len(trials) != expected:
            problems.append(f"{path}: {len(trials)} trials, expected {expected} (the standard split)")
        for trial in trials:
            aedat, labels = folder / trial, folder / (trial.removesuffix(".aedat") + LABELS_SUFFIX)
            for path in (aedat, labels):
                if not path.is_file():
                    problems.append(f"{path}: missing")
            if labels.is_file():
                try:
                    read_labels(labels)
                except DataError as exc:
                    problems.append(str(exc))
            if aedat.is_file() and _magic(aedat) != MAGIC:
                problems.append(f"{aedat}: bad magic, not an AEDAT 3.1 file")
    return problems


def _verify_samples(directory: Path) -> list[str]:
    """Problems of SLAYER's samples: presence, size and sha256 of each of the ten files."""
    problems = []
    for name, (size, _, sha256) in SAMPLE_FILES.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != size:
            problems.append(f"{path}: {path.stat().st_size} bytes, expected {size}")
        elif sha256_file(path) != sha256:
            problems.append(f"{path}: sha256 does not match the published {sha256}")
    return problems


def verify(root: str | os.PathLike | None = None, name: str = NAME) -> list[str]:
    """Problems with the files of ``<root>/<name>/`` (``"dvs128_gesture"`` or ``"dvs128_gesture_slayer_samples"``);
    an empty list when all is well. Never raises for a bad file."""
    if name not in (NAME, SAMPLES_NAME):
        raise ValueError(f"name must be {NAME!r} or {SAMPLES_NAME!r}, got {name!r}")
    try:
        directory = dataset_dir(name, root)
    except MissingDataError as exc:
        return [str(exc)]
    return _verify_release(directory) if name == NAME else _verify_samples(directory)
