"""N-MNIST (Orchard et al. 2015): the original ``.bin`` event files and SLAYER's ``NMNISTsmall`` subset.

Layouts under ``<root>/<name>/`` (found by what is on disk):

- the original release (``name="nmnist"``): ``Train/<digit>/<index>.bin`` and
  ``Test/<digit>/<index>.bin`` (unzip ``Train.zip`` and ``Test.zip`` there);
- SLAYER's subset (``name="nmnist_small"``): ``NMNISTsmall/`` with ``1.bs2`` ... ``1000.bs2``,
  ``60001.bs2`` ... ``60100.bs2``, the tab-separated index files ``train1K.txt`` / ``test100.txt``
  (header ``#sample #class``, CRLF line ends) and ``MANIFEST.sha256`` beside ``NMNISTsmall/``.

Records (both layouts, and SLAYER's ``.bs2`` files in general): 5 bytes, big-endian, no header:
byte 0 = x, byte 1 = y, bit 7 of byte 2 = polarity (1 = ON), the other 23 bits = time in µs.
A record with y = 240 is not an event but a timestamp overflow marker: it adds 2**13 µs to every
later timestamp (the convention of the dataset authors' reader, gorchard/event-Python; no
N-MNIST file of the subset has one).

Samples are in MNIST order (the original files by their index, the subset by its index files), so
sample k has the label of MNIST image k. Frames are ``[T, 2, 34, 34]`` from the start of the
recording, raw (not stabilised): the three ~100 ms saccades stay in place and land in the same
bins in every sample. Default: 300 bins of 1 ms (SLAYER's N-MNIST setting); 0.25 % of the subset's
events come after 300 ms (the last at 336.04 ms): ``duration_us=340_000`` keeps them.

``REMOTES`` is empty: the original release's only published checksums are MD5 sums of its zip
files, and the subset is 1102 single files whose sha256 sums live in its ``MANIFEST.sha256``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.cache import cached
from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.events import FrameDataset, PackedFrames, frame_index, make_events, sensor_width_height
from iirsnn.data.files import (
    dataset_dir,
    file_problem,
    is_int64_field,
    read_manifest,
    require_files,
    sha256_bytes,
    sha256_file,
)

NAME = "nmnist"
SMALL_NAME = "nmnist_small"
CLASSES = [str(digit) for digit in range(10)]
SENSOR_SIZE = (34, 34)
RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_INCREMENT_US = 2**13
MAX_TIMESTAMP_US = 2**23 - 1

SMALL_DIR = "NMNISTsmall"
SMALL_INDEX = {"train": "train1K.txt", "test": "test100.txt"}
SMALL_COUNTS = {"train": 1000, "test": 100}
SMALL_MANIFEST = "MANIFEST.sha256"
SMALL_MANIFEST_SHA256 = "5f6d86dac411a2f1d77b495d4db43d4ad5a561ab41fd0064d7a64dad9f89f02d"
ORIGINAL_DIRS = {"train": "Train", "test": "Test"}
ORIGINAL_COUNTS = {"train": 60000, "test": 10000}

REMOTES: list[Remote] = []

_HINT = ("Expected the original release (Train/<digit>/<index>.bin and Test/<digit>/<index>.bin, from "
         "Train.zip and Test.zip of the N-MNIST page) or SLAYER's subset (NMNISTsmall/ with *.bs2, train1K.txt "
         "and test100.txt, from the slayerPytorch repository)")


def read_bin_events(path: str | os.PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """The events of one N-MNIST ``.bin`` / SLAYER ``.bs2`` file.

    Args:
        path: the file.
        sensor_size: ``(W, H)``; an event outside it raises :class:`CorruptFileError`.

    Returns:
        ``[N]`` events of :data:`iirsnn.data.events.EVENT_DTYPE` in file order (overflow markers removed).
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise MissingDataError(f"{path}: event file not found") from None
    if raw.size == 0:
        raise CorruptFileError(f"{path}: empty file, expected 5-byte event records")
    if raw.size % RECORD_BYTES:
        raise CorruptFileError(f"{path}: truncated record: {raw.size} bytes is not a multiple of 5 (the last record "
                               f"has {raw.size % RECORD_BYTES} of 5 bytes)")
    records = raw.reshape(-1, RECORD_BYTES).astype(np.int64)
    x, y = records[:, 0], records[:, 1]
    t = ((records[:, 2] & 0x7F) << 16) | (records[:, 3] << 8) | records[:, 4]
    overflow = y == OVERFLOW_Y
    if overflow.any():
        t = t + OVERFLOW_INCREMENT_US * np.cumsum(overflow)
    if sensor_size is not None:
        width, height = sensor_width_height(sensor_size)
        outside = ((x >= width) | (y >= height)) & ~overflow
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise CorruptFileError(f"{path}: record {first} (byte {first * RECORD_BYTES}) has x={x[first]}, "
                                   f"y={y[first]}, outside the {width} x {height} sensor (garbled or not this dataset)")
    event = ~overflow
    return make_events(x[event], y[event], t[event], records[event, 2] >> 7)


def encode_bin_events(events: np.ndarray) -> bytes:
    """The 5-byte records of ``events [N]`` (x, y < 256, y != 240, 0 <= t < 2**23 µs, no overflow markers)."""
    x, y, t, p = (events[name].astype(np.int64) for name in ("x", "y", "t", "p"))
    if ((x < 0) | (x > 255) | (y < 0) | (y > 255) | (y == OVERFLOW_Y)).any():
        raise ValueError("x and y must lie in 0..255 and y must not be 240 (the overflow marker)")
    if ((t < 0) | (t > MAX_TIMESTAMP_US)).any():
        raise ValueError(f"t must lie in 0..{MAX_TIMESTAMP_US} µs (23 bits)")
    records = np.stack([x, y, ((p != 0).astype(np.int64) << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1)
    return records.astype(np.uint8).tobytes()


def write_bin_events(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write ``events [N]`` as an N-MNIST ``.bin`` / SLAYER ``.bs2`` file (atomically)."""
    atomic_write_bytes(Path(path), encode_bin_events(events))


def read_index(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids and labels ``([N] int64, [N] int64)`` of a SLAYER index file (``#`` header, ``id<TAB>label``)."""
    ids, labels = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not all(is_int64_field(f) for f in fields) or int(fields[1]) >= len(CLASSES):
            raise CorruptFileError(f"{path}, line {number}: expected '<sample id> <digit 0-9>' (a sample id below "
                                   f"2^63), got {line[:80]!r}")
        ids.append(int(fields[0]))
        labels.append(int(fields[1]))
    if not ids:
        raise CorruptFileError(f"{path}: no samples listed")
    if len(set(ids)) != len(ids):
        raise CorruptFileError(f"{path}: a sample id is listed twice")
    return np.array(ids, dtype=np.int64), np.array(labels, dtype=np.int64)


def _is_small(directory: Path) -> bool:
    """Whether ``directory`` holds SLAYER's subset (an ``NMNISTsmall/`` folder)."""
    return (directory / SMALL_DIR).is_dir()


def _original_samples(directory: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files and labels of the original layout's split, in MNIST order (by the index in the file name)."""
    split_dir = directory / ORIGINAL_DIRS[split]
    digit_dirs = [split_dir / digit for digit in CLASSES]
    missing = [str(d) for d in digit_dirs if not d.is_dir()]
    if missing:
        raise MissingDataError(f"{NAME}: {len(missing)} class folder(s) missing:\n  " + "\n  ".join(missing)
                               + f"\n{_HINT}")
    entries = []
    for label, digit_dir in enumerate(digit_dirs):
        for path in digit_dir.glob("*.bin"):
            if not (path.stem.isascii() and path.stem.isdigit()):
                raise CorruptFileError(f"{path}: unexpected file name, expected <index>.bin")
            entries.append((int(path.stem), label, path))
    if not entries:
        raise MissingDataError(f"{NAME}: no .bin files under {split_dir}\n{_HINT}")
    entries.sort()
    indices = [index for index, _, _ in entries]
    if len(set(indices)) != len(indices):
        raise CorruptFileError(f"{split_dir}: a sample index appears in two class folders")
    return [path for _, _, path in entries], np.array([label for _, label, _ in entries], dtype=np.int64)


def _small_samples(folder: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files and labels of the SLAYER subset's split, in the order of its index file."""
    (index_path,) = require_files(folder, [SMALL_INDEX[split]], SMALL_NAME, _HINT)
    ids, labels = read_index(index_path)
    return require_files(folder, [f"{i}.bs2" for i in ids], SMALL_NAME, _HINT), labels


def list_samples(directory: Path, train: bool) -> tuple[list[Path], np.ndarray]:
    """The event files ``[N]`` and labels ``[N]`` int64 of a split, in MNIST order, for either layout."""
    split = "train" if train else "test"
    if _is_small(directory):
        return _small_samples(directory / SMALL_DIR, split)
    if (directory / ORIGINAL_DIRS[split]).is_dir():
        return _original_samples(directory, split)
    raise MissingDataError(f"{directory}: no N-MNIST {split} split found\n{_HINT}")


def files_fingerprint(paths: list[Path]) -> str:
    """sha256 of the names, sizes and modification times of ``paths`` (a cache key part that changes with the data)."""
    lines = []
    for path in paths:
        stat = path.stat()
        lines.append(f"{path.name} {stat.st_size} {stat.st_mtime_ns}")
    return sha256_bytes("\n".join(lines).encode())


class NMNIST(FrameDataset):
    """N-MNIST digits as event frames ``(frames [T, 2, 34, 34] float32, digit)``.

    Args:
        root: directory holding ``<name>/`` (or that directory itself); default ``$IIRSNN_DATA``.
        train: the training split, else the test split.
        T: number of time bins.
        duration_us: the window ``[0, duration_us)`` from the start of the recording that the T bins cover.
        binary: 1 where a cell has any event instead of the count.
        transform: applied to each frame tensor.
        name: ``"nmnist"`` (the original release) or ``"nmnist_small"`` (SLAYER's subset).
        cache: keep the binned frames in the on-disk cache (:func:`iirsnn.data.cache.cached`).
        cache_dir: the cache directory (default ``$IIRSNN_CACHE/data`` or ``~/.cache/iirsnn/data``).

    Attributes:
        targets: ``[N]`` int64 labels; classes: ``["0", ..., "9"]``; files: the event file of each sample.
    """

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, T: int = 300,
                 duration_us: int = 300_000, binary: bool = False,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, name: str = NAME,
                 cache: bool = True, cache_dir: str | os.PathLike | None = None) -> None:
        directory = dataset_dir(name, root)
        files, labels = list_samples(directory, train)
        window = {"n_time_bins": T, "duration": duration_us, "start": 0}

        def build() -> dict[str, torch.Tensor]:
            indices = (frame_index(read_bin_events(f, SENSOR_SIZE), SENSOR_SIZE, **window)[0] for f in files)
            return PackedFrames.from_indices(indices, (T, 2, SENSOR_SIZE[1], SENSOR_SIZE[0]), f"{name}: frames",
                                             len(files)).to_tensors()

        params = {"format": "packed-frames-1", "split": "train" if train else "test", "T": T,
                  "duration_us": duration_us, "start_us": 0, "files": files_fingerprint(files)}
        frames = PackedFrames.from_tensors(cached(name, params, build, cache_dir, enabled=cache), f"{name} cache")
        super().__init__(frames, torch.from_numpy(labels), CLASSES, binary, transform)
        self.root = directory
        self.train = train
        self.files = files

    def events(self, index: int) -> np.ndarray:
        """The raw events ``[N]`` (tonic's x, y, t, p) of sample ``index``, read from its file."""
        return read_bin_events(self.files[index], SENSOR_SIZE)


def _verify_small(directory: Path) -> list[str]:
    """Problems of the SLAYER subset: manifest checksum, every file's sha256, index files and counts."""
    manifest = directory / SMALL_MANIFEST
    if not manifest.is_file():
        return [f"{manifest}: missing (the sha256 list of NMNISTsmall/)"]
    problems = []
    if sha256_file(manifest) != SMALL_MANIFEST_SHA256:
        problems.append(f"{manifest}: sha256 differs from the published {SMALL_MANIFEST_SHA256}")
    folder = directory / SMALL_DIR
    try:
        entries = read_manifest(manifest)
    except CorruptFileError as exc:
        return [*problems, str(exc)]
    for name, expected in sorted(entries.items()):
        problem = file_problem(folder / name, expected, manifest.name)
        if problem:
            problems.append(problem)
    for split, index in SMALL_INDEX.items():
        try:
            ids, _ = read_index(folder / index)
        except (DataError, OSError) as exc:
            problems.append(f"{folder / index}: unreadable ({exc})")
            continue
        if len(ids) != SMALL_COUNTS[split]:
            problems.append(f"{folder / index}: {len(ids)} samples, expected {SMALL_COUNTS[split]}")
        unlisted = [f"{i}.bs2" for i in ids if f"{i}.bs2" not in entries]
        if unlisted:
            problems.append(f"{folder / index}: {len(unlisted)} listed file(s) not in {manifest.name}, "
                            f"e.g. {unlisted[0]}")
    return problems


def _verify_original(directory: Path) -> list[str]:
    """Problems of the original layout: class folders, sample counts, record lengths (no checksums published)."""
    problems = []
    for split, expected in ORIGINAL_COUNTS.items():
        try:
            files, _ = _original_samples(directory, split)
        except DataError as exc:
            problems.append(str(exc).split("\n")[0])
            continue
        if len(files) != expected:
            problems.append(f"{directory / ORIGINAL_DIRS[split]}: {len(files)} samples, expected {expected}")
        bad = [f for f in files if f.stat().st_size == 0 or f.stat().st_size % RECORD_BYTES]
        problems.extend(f"{f}: {f.stat().st_size} bytes is not a whole number of 5-byte records" for f in bad)
    return problems


def verify(root: str | os.PathLike | None = None, name: str = NAME) -> list[str]:
    """Problems with the N-MNIST files of ``<root>/<name>/`` (either layout); an empty list when all is well.

    The subset is checked against its ``MANIFEST.sha256`` (whose own sha256 is published in its
    SOURCE.md); the original release by sample counts and record lengths. Never raises for a bad file.
    """
    try:
        directory = dataset_dir(name, root)
    except MissingDataError as exc:
        return [str(exc)]
    if _is_small(directory):
        return _verify_small(directory)
    if any((directory / d).is_dir() for d in ORIGINAL_DIRS.values()):
        return _verify_original(directory)
    return [f"{directory}: no N-MNIST files found. {_HINT}"]
