"""The associative-memory experiment (paper sec. 5.1): spike patterns, their generator, the corruption model.

A pattern is time-major ``[T, N]`` (T time steps, N neurons), float32 0/1. The network is shown
a corrupted copy and trained to reproduce the clean pattern at its output.

Patterns. The authors' ten patterns (``associative_target.npy``, stored ``[P, N, T]`` = pattern,
neuron, step, 300 x 300 each) are read by :func:`load_patterns` and transposed to ``[P, T, N]``.
They were made from the drawings in ``images/``: each drawing, resized to N x T pixels (image row
= neuron, image column = time step), thresholded, then thinned by a fixed grid (one spike every
5 steps, on every third neuron, shifted by one neuron from one such step to the next; see
:func:`sparsity_grid`). Label k of the file is the drawing ``PATTERN_NAMES[k]`` (the authors'
directory-listing order; found by regenerating each pattern, SOURCE.md does not state it).

Generator, for where the file is absent or other patterns are wanted::

    patterns = patterns_from_images(glyph_images("ABCDEFGHIJ"))   # built-in 5x7 font, no extra
    patterns = patterns_from_images(read_drawings(root))          # images/*.png, needs Pillow

Corruption (the authors' script, drawn per sample): :class:`Corruption` and :func:`corrupt`, made of
:func:`delete_neurons`, :func:`delete_steps`, :func:`delete_block`, :func:`jitter` and
:func:`add_background`. :class:`AssociativeMemory` pairs corrupted copies with their targets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import check_sha256, dataset_dir, require_files, sha256_file

NAME = "associative_memory"
TARGET_FILE = "associative_target.npy"
TARGET_SHA256 = "703bd971b920c5d67ec025c2e036d9440449d7eef1b012bbb9c619c7715b0abc"
PATTERN_NAMES = ["parallel", "intersection", "b", "triangle", "d", "a", "triangle2", "c", "mult", "triangle3"]
IMAGE_SHA256 = {
    "a": "972f91ed6ec188139649fb1e595f85a01b0ad3c5d94636c7c88e48fa68b66aab",
    "b": "86b6ad097556e2bc56efea088ac2cc6642a891d9976d29432505fcdb9735683b",
    "c": "a79f9802873fbb450fe3b46363340b1675ce40bae487520b8c57d2ba1304a42b",
    "d": "3571c754bea5a8847a9abb7e492ba5f36410a4c4dbbab96a20377fcc905e94d7",
    "intersection": "c2ab0be67f60611b084baf62f8dcd908335a3db1c4f45e421fefbc86ae7fe785",
    "mult": "d90c670e48fa9462b2c77b8a4f65b150ef90adb9613acb7c4c6192b285e537f7",
    "parallel": "794e1bb4627c6f792cd8f14d7c118237f2a6e1bb3b28babcc41b2326cede20b7",
    "triangle": "a222752dd4f8dd343f0b37e27c9a8e3fc25f7a054cf9237aa5e7c4960c50778a",
    "triangle2": "e28dd3a9c563acf5fafaddce0d16a19b439960c1fcd40c8e1014f98444933fcb",
    "triangle3": "b1730350c6a189149cf4e618db6f26fbd4176422e1f3b08ec8cb2c45da279131",
}
SOURCE_URL = ("https://raw.githubusercontent.com/Snow-Crash/snn-iir/"
              "cb1e7faaabfe91de27c109c121da0e52077be944/examples/dataset/")
REMOTES = [Remote(SOURCE_URL + TARGET_FILE, TARGET_FILE, TARGET_SHA256)] + [
    Remote(f"{SOURCE_URL}images/{name}.png", f"images/{name}.png", sha) for name, sha in IMAGE_SHA256.items()]

_HINT = (f"Put {TARGET_FILE} (from the paper authors' repository Snow-Crash/snn-iir, examples/dataset/) there, "
         "e.g. with iirsnn.data.download.fetch_all(iirsnn.data.associative.REMOTES, directory), or pass "
         "patterns=patterns_from_images(glyph_images('ABCDEFGHIJ')) to use generated patterns instead")


# --- the authors' file ---------------------------------------------------------------------------

def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of a NumPy ``.npy`` file, without pickles, its size checked against the header first.

    Raises :class:`CorruptFileError` naming the file for a bad magic or header, an object dtype,
    or a data size other than the header's ``prod(shape) * itemsize`` (truncated or trailing bytes).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(f)
        except (ValueError, OSError, SyntaxError) as exc:
            raise CorruptFileError(f"{path}: not a valid .npy file ({exc})") from exc
        if dtype.hasobject or dtype.itemsize == 0:
            raise CorruptFileError(f"{path}: unsupported dtype {dtype} (Python objects or empty items)")
        count = int(np.prod(shape, dtype=object))
        expected = count * dtype.itemsize
        actual = size - f.tell()
        if actual != expected:
            problem = "truncated" if actual < expected else "has trailing bytes"
            raise CorruptFileError(f"{path}: {problem}: shape {list(shape)} of {dtype} needs {expected} data "
                                   f"bytes, the file has {actual}")
        data = np.fromfile(f, dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran_order else "C")


def _check_patterns(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as float32 ``[P, A, B]`` after checking it is 3-D and holds only 0 and 1."""
    if array.ndim != 3 or 0 in array.shape:
        raise CorruptFileError(f"{name}: expected non-empty patterns [P, N, T], got shape {list(array.shape)}")
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise CorruptFileError(f"{name}: spike patterns must hold only 0 and 1 (dtype {array.dtype})")
    return array.astype(np.float32)


def load_patterns(root: str | os.PathLike | None = None) -> torch.Tensor:
    """The authors' ten target patterns, time-major ``[P=10, T=300, N=300]`` float32 0/1.

    The file (``[P, N, T]``) is checked against its sha256 before it is parsed.
    """
    directory = dataset_dir(NAME, root)
    (path,) = require_files(directory, [TARGET_FILE], NAME, _HINT)
    check_sha256(path, TARGET_SHA256)
    return torch.from_numpy(_check_patterns(read_npy(path), str(path))).transpose(1, 2).contiguous()


# --- the generator -------------------------------------------------------------------------------

def sparsity_grid(n_steps: int = 300, n_neurons: int = 300, step_stride: int = 5,
                  neuron_stride: int = 3) -> torch.Tensor:
    """The authors' thinning grid, bool ``[T, N]``: True at steps ``t`` with ``t % step_stride == 0``
    and neurons ``n`` with ``n % neuron_stride == (t // step_stride) % neuron_stride``."""
    steps = torch.arange(n_steps).unsqueeze(1)
    neurons = torch.arange(n_neurons).unsqueeze(0)
    return (steps % step_stride == 0) & (neurons % neuron_stride == (steps // step_stride) % neuron_stride)


def _resize_nearest(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``image`` [H, W] sampled at the centres of a ``rows x cols`` grid over it (nearest neighbour)."""
    h, w = image.shape
    row_index = ((2 * np.arange(rows) + 1) * h) // (2 * rows)
    col_index = ((2 * np.arange(cols) + 1) * w) // (2 * cols)
    return image[np.ix_(row_index, col_index)]


def patterns_from_images(images: Sequence[np.ndarray] | np.ndarray, n_steps: int = 300, n_neurons: int = 300,
                         step_stride: int = 5, neuron_stride: int = 3, threshold: float = 0.5) -> torch.Tensor:
    """Spike patterns ``[P, T, N]`` float32 0/1 from P images of darkness ``[H, W]`` (1 = black ink;
    a list of such arrays, or one ``[P, H, W]`` array).

    Each image is resized to ``n_neurons x n_steps`` pixels (nearest neighbour; image row = neuron,
    column = time step), a pixel with darkness >= ``threshold`` is a spike, and only spikes on
    :func:`sparsity_grid` are kept (the authors' settings are the defaults).
    """
    if len(images) == 0:
        raise ValueError("patterns_from_images needs at least one image")
    grid = sparsity_grid(n_steps, n_neurons, step_stride, neuron_stride).numpy()
    patterns = []
    for k, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 2 or 0 in image.shape:
            raise ValueError(f"image {k} must be a non-empty 2-D array of darkness [H, W], got shape {image.shape}")
        dark = _resize_nearest(image, n_neurons, n_steps) >= threshold
        patterns.append((dark.T & grid).astype(np.float32))
    return torch.from_numpy(np.stack(patterns))


def read_drawing(path: str | os.PathLike) -> np.ndarray:
    """Darkness ``[H, W]`` float32 in [0, 1] of an image file: 1 - luminance after compositing any
    transparency over white (needs Pillow: ``pip install iirsnn[images]``)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading drawings needs Pillow: pip install iirsnn[images]") from exc
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"drawing {path} not found")
    try:
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptFileError(f"{path}: not a readable image ({exc})") from exc
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    luminance = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float32)
    return 1.0 - luminance / 255.0


def read_drawings(root: str | os.PathLike | None = None, names: Sequence[str] = PATTERN_NAMES) -> list[np.ndarray]:
    """Darkness ``[H, W]`` of ``images/<name>.png`` for each name (default: the file's pattern order)."""
    directory = dataset_dir(NAME, root) / "images"
    paths = require_files(directory, [f"{name}.png" for name in names], NAME,
                          "the drawings are in the paper authors' repository Snow-Crash/snn-iir, "
                          "examples/dataset/images/")
    return [read_drawing(path) for path in paths]


# A 5x7 font: per glyph seven rows, two hex digits each, the low five bits left to right.
_FONT_HEX = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C", "A": "0E1111111F1111", "B": "1E11111E11111E",
    "C": "0E11101010110E", "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E", "J": "0702020202120C",
    "K": "11121418141211", "L": "1010101010101F", "M": "111B1515111111", "N": "11111915131111",
    "O": "0E11111111110E", "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E", "V": "11111111110A04",
    "W": "1111111515150A", "X": "11110A040A1111", "Y": "1111110A040404", "Z": "1F01020408101F",
}


def glyph_images(text: str, margin: int = 1) -> list[np.ndarray]:
    """One darkness image per character of ``text`` from a built-in 5x7 bitmap font (digits and
    letters, case-insensitive): float32 ``[7 + 2 margin, 5 + 2 margin]``, 1 = ink, with ``margin``
    blank pixels around the glyph."""
    images = []
    for char in text.upper():
        if char not in _FONT_HEX:
            raise ValueError(f"no glyph for {char!r}; the built-in font has {''.join(_FONT_HEX)}")
        rows = bytes.fromhex(_FONT_HEX[char])
        bits = np.array([[(row >> (4 - col)) & 1 for col in range(5)] for row in rows], dtype=np.float32)
        images.append(np.pad(bits, margin))
    return images


# --- the corruption model ------------------------------------------------------------------------

def _pattern(pattern: torch.Tensor) -> torch.Tensor:
    """``pattern`` if it is a floating ``[T, N]`` tensor, else a TypeError/ValueError."""
    if not isinstance(pattern, torch.Tensor) or not pattern.is_floating_point():
        raise TypeError(f"pattern must be a floating torch.Tensor [T, N], got {type(pattern).__name__}"
                        + (f" of {pattern.dtype}" if isinstance(pattern, torch.Tensor) else ""))
    if pattern.dim() != 2:
        raise ValueError(f"pattern must be [T, N], got shape {list(pattern.shape)}")
    return pattern


def _span(first: int, count: int, size: int, what: str) -> slice:
    """The slice ``first:first+count`` after checking it lies within ``0..size``."""
    if count < 0 or first < 0 or first + count > size:
        raise ValueError(f"{what} {first}..{first + count - 1} ({count} of them) outside the pattern's 0..{size - 1}")
    return slice(first, first + count)


def delete_neurons(pattern: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """``pattern [T, N]`` without the spikes of neurons ``first .. first + count - 1`` (a copy)."""
    out = _pattern(pattern).clone()
    out[:, _span(first, count, out.shape[1], "neurons")] = 0
    return out


def delete_steps(pattern: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """``pattern [T, N]`` without the spikes of steps ``first .. first + count - 1`` (a copy)."""
    out = _pattern(pattern).clone()
    out[_span(first, count, out.shape[0], "steps")] = 0
    return out


def delete_block(pattern: torch.Tensor, first_step: int, steps: int, first_neuron: int, neurons: int) -> torch.Tensor:
    """``pattern [T, N]`` without the spikes in the block of ``steps`` x ``neurons`` whose first
    step and neuron are ``first_step`` and ``first_neuron`` (a copy)."""
    out = _pattern(pattern).clone()
    out[_span(first_step, steps, out.shape[0], "steps"), _span(first_neuron, neurons, out.shape[1], "neurons")] = 0
    return out


def jitter(pattern: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Every spike of ``pattern [T, N]`` moved in time by ``round(normal(0, std))`` steps, clipped to
    ``0 .. T-1``; spikes of one neuron that land on the same step merge. Returns 0/1 ``[T, N]``."""
    pattern = _pattern(pattern)
    if not std >= 0:
        raise ValueError(f"jitter std must be >= 0 (steps), got {std}")
    steps, neurons = torch.nonzero(pattern, as_tuple=True)
    noise = torch.randn(steps.shape, generator=generator, device=pattern.device, dtype=torch.float64)
    moved = (steps + torch.round(noise * std).long()).clamp_(0, pattern.shape[0] - 1)
    out = torch.zeros_like(pattern)
    out[moved, neurons] = 1
    return out


def add_background(pattern: torch.Tensor, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``pattern [T, N]`` with a spike added at each neuron-step independently with ``probability``
    (existing spikes stay; values become 0/1)."""
    pattern = _pattern(pattern)
    if not 0 <= probability <= 1:
        raise ValueError(f"background spike probability must lie in [0, 1], got {probability}")
    noise = torch.rand(pattern.shape, generator=generator, device=pattern.device) < probability
    return ((pattern != 0) | noise).to(pattern.dtype)


DELETIONS = ("neurons", "steps", "block")


@dataclass(frozen=True)
class Corruption:
    """How a sample is corrupted, drawn anew for each (defaults: the authors' ``associative_memory.py``).

    With probability ``p_modify`` the pattern is modified: with probability ``p_jitter`` its spikes
    are jittered by ``jitter_std`` steps (:func:`jitter`); then with probability ``p_delete`` one
    deletion of a kind drawn uniformly from ``deletions`` is applied at a uniformly drawn place:
    ``"neurons"``: ``n_neurons_deleted`` adjacent neurons, all steps (rows of the authors' [N, T]);
    ``"steps"``: ``n_steps_deleted`` adjacent steps, all neurons (columns); ``"block"``:
    ``block_steps`` x ``block_neurons``. Then, always, background spikes with probability
    ``p_background`` per neuron-step (:func:`add_background`). ``Corruption.clean()`` changes nothing.
    """

    p_modify: float = 0.4
    p_jitter: float = 0.7
    jitter_std: float = 1.0
    p_delete: float = 0.5
    deletions: tuple[str, ...] = ("block", "neurons")
    n_neurons_deleted: int = 40
    n_steps_deleted: int = 30
    block_steps: int = 40
    block_neurons: int = 40
    p_background: float = 0.005

    def __post_init__(self) -> None:
        for name in ("p_modify", "p_jitter", "p_delete", "p_background"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"Corruption.{name} must lie in [0, 1], got {getattr(self, name)}")
        if not self.jitter_std >= 0:
            raise ValueError(f"Corruption.jitter_std must be >= 0 (steps), got {self.jitter_std}")
        unknown = set(self.deletions) - set(DELETIONS)
        if unknown or not self.deletions:
            raise ValueError(f"Corruption.deletions must be a non-empty tuple of {DELETIONS}, got {self.deletions}")
        for name in ("n_neurons_deleted", "n_steps_deleted", "block_steps", "block_neurons"):
            if getattr(self, name) < 0:
                raise ValueError(f"Corruption.{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def clean(cls) -> Corruption:
        """No corruption at all: every sample is its clean pattern."""
        return cls(p_modify=0.0, p_background=0.0)

    def check_fits(self, n_steps: int, n_neurons: int) -> None:
        """Raise ValueError when a deletion this corruption can apply is larger than a ``[T, N]`` pattern."""
        if self.p_modify == 0 or self.p_delete == 0:
            return
        sizes = {"neurons": [("n_neurons_deleted", self.n_neurons_deleted, n_neurons, "neurons")],
                 "steps": [("n_steps_deleted", self.n_steps_deleted, n_steps, "steps")],
                 "block": [("block_steps", self.block_steps, n_steps, "steps"),
                           ("block_neurons", self.block_neurons, n_neurons, "neurons")]}
        for kind in self.deletions:
            for name, width, size, unit in sizes[kind]:
                if width > size:
                    raise ValueError(f"Corruption.{name} = {width} exceeds the pattern's {size} {unit}")


def corrupt(pattern: torch.Tensor, corruption: Corruption, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of ``pattern [T, N]`` drawn as :class:`Corruption` describes, 0/1 ``[T, N]``.

    All draws come from ``generator`` (on the pattern's device) in a fixed order, so a seeded
    generator gives the same result every time.
    """
    pattern = _pattern(pattern)
    n_steps, n_neurons = pattern.shape
    corruption.check_fits(n_steps, n_neurons)

    def uniform() -> float:
        return float(torch.rand((), generator=generator, device=pattern.device))

    def integer(high: int) -> int:
        return int(torch.randint(high, (), generator=generator, device=pattern.device))

    def start(size: int, width: int) -> int:
        return integer(size - width + 1)

    out = pattern
    if uniform() < corruption.p_modify:
        if uniform() < corruption.p_jitter:
            out = jitter(out, corruption.jitter_std, generator)
        kind = corruption.deletions[integer(len(corruption.deletions))]
        if uniform() < corruption.p_delete:
            if kind == "neurons":
                out = delete_neurons(out, start(n_neurons, corruption.n_neurons_deleted), corruption.n_neurons_deleted)
            elif kind == "steps":
                out = delete_steps(out, start(n_steps, corruption.n_steps_deleted), corruption.n_steps_deleted)
            else:
                out = delete_block(out, start(n_steps, corruption.block_steps), corruption.block_steps,
                                   start(n_neurons, corruption.block_neurons), corruption.block_neurons)
    return add_background(out, corruption.p_background, generator)


# --- the dataset ---------------------------------------------------------------------------------

def _sample_seed(seed: int, index: int) -> int:
    """A 64-bit seed of sample ``index`` under ``seed``, independent of the order samples are read in."""
    return int(np.random.SeedSequence((seed, index)).generate_state(1, np.uint64)[0])


class AssociativeMemory(Dataset):
    """Corrupted copies of the associative-memory patterns, each with its clean target (paper sec. 5.1).

    Args:
        root: directory holding ``associative_memory/`` (default ``$IIRSNN_DATA``); read only when
            ``patterns`` is None.
        n_corrupted: corrupted copies per pattern; ``len(dataset) = P * n_corrupted`` (authors: 100).
        corruption: the corruption model (default: the authors' settings).
        seed: an int makes sample i's corruption fixed (its own generator, seeded from (seed, i)),
            whatever the access order or DataLoader worker; None draws anew from torch's global
            generator at every access (the authors' setup: fresh corruption every epoch).
        patterns: ``[P, T, N]`` 0/1 patterns to use instead of the file, e.g.
            ``patterns_from_images(glyph_images("ABCDEFGHIJ"))``.
        classes: the names of the P patterns (default ``PATTERN_NAMES`` for the file, else "0", "1", ...).
        target_delay: the target is the pattern shifted this many steps later, zeros before (the
            authors use 4, the network's latency); default 0.
        transform: applied to the corrupted pattern.

    ``dataset[i]`` is ``(corrupted [T, N], target [T, N], label)`` with float32 0/1 tensors and
    ``label = i % P`` (the patterns take turns). ``targets`` holds all labels.
    """

    def __init__(self, root: str | os.PathLike | None = None, n_corrupted: int = 100,
                 corruption: Corruption | None = None, seed: int | None = 0, patterns: torch.Tensor | None = None,
                 classes: Sequence[str] | None = None, target_delay: int = 0,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if patterns is None:
            patterns = load_patterns(root)
            classes = PATTERN_NAMES if classes is None else classes
        elif not isinstance(patterns, torch.Tensor) or patterns.dim() != 3 or 0 in patterns.shape:
            raise ValueError(f"patterns must be a non-empty [P, T, N] tensor, got "
                             f"{list(patterns.shape) if isinstance(patterns, torch.Tensor) else type(patterns)}")
        elif not bool(((patterns == 0) | (patterns == 1)).all()):
            raise ValueError("patterns must hold only 0 and 1 (spike or none)")
        n_patterns, n_steps, n_neurons = patterns.shape
        classes = [str(k) for k in range(n_patterns)] if classes is None else list(classes)
        if len(classes) != n_patterns:
            raise ValueError(f"{len(classes)} class names for {n_patterns} patterns")
        if n_corrupted < 1:
            raise ValueError(f"n_corrupted must be >= 1, got {n_corrupted}")
        if not 0 <= target_delay < n_steps:
            raise ValueError(f"target_delay must lie in 0..{n_steps - 1}, got {target_delay}")
        self.corruption = Corruption() if corruption is None else corruption
        self.corruption.check_fits(n_steps, n_neurons)
        self.patterns = patterns.to(torch.float32)
        self.target_patterns = torch.zeros_like(self.patterns)
        self.target_patterns[:, target_delay:] = self.patterns[:, : n_steps - target_delay]
        self.classes = classes
        self.targets = torch.arange(n_patterns * n_corrupted) % n_patterns
        self.seed = seed
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        label = int(self.targets[index])
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(_sample_seed(self.seed, range(len(self))[index]))
        corrupted = corrupt(self.patterns[label], self.corruption, generator)
        if self.transform is not None:
            corrupted = self.transform(corrupted)
        return corrupted, self.target_patterns[label].clone(), label


def verify(root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the associative-memory files under ``root``: the pattern file and the ten
    drawings missing or not matching their sha256, or patterns that are not 0/1 ``[P, N, T]``;
    an empty list when all is well. Never raises for a bad file."""
    try:
        directory = dataset_dir(NAME, root)
    except MissingDataError as exc:
        return [str(exc)]
    problems = []
    if not (directory / TARGET_FILE).is_file():
        problems.append(f"missing {directory / TARGET_FILE}")
    else:
        try:
            load_patterns(directory)
        except (DataError, OSError) as exc:
            problems.append(str(exc))
    for name, sha in IMAGE_SHA256.items():
        path = directory / "images" / f"{name}.png"
        if not path.is_file():
            problems.append(f"missing {path}")
        elif sha256_file(path) != sha:
            problems.append(f"{path}: sha256 does not match the expected {sha}")
    return problems
