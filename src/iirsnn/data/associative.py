"""The associative-memory experiment (paper sec. 5.1): the authors' pattern file and the dataset.

A pattern is time-major ``[T, N]`` (T time steps, N neurons), float32 0/1. The network is shown
a corrupted copy and trained to reproduce the clean pattern at its output.

Patterns. The authors' ten patterns (``associative_target.npy``, stored ``[P, N, T]`` = pattern,
neuron, step, 300 x 300 each) are read by :func:`load_patterns` and transposed to ``[P, T, N]``.
They were made from the drawings in ``images/`` (see :mod:`~iirsnn.data.pattern_generator`, which
also generates patterns where the file is absent or other patterns are wanted). Label k of the file
is the drawing ``PATTERN_NAMES[k]`` (the authors' directory-listing order; found by regenerating
each pattern, SOURCE.md does not state it).

:class:`AssociativeMemory` pairs corrupted copies (drawn per sample by
:mod:`~iirsnn.data.corruption`) with their targets; :func:`verify` checks the files.
"""

from __future__ import annotations

import os
import tokenize
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from iirsnn.data.corruption import Corruption, corrupt
from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import check_sha256, dataset_dir, file_problem, require_files, shape_problem
from iirsnn.data.pattern_generator import NAME, PATTERN_NAMES  # defined there, so imports run one way only

TARGET_FILE = "associative_target.npy"
TARGET_SHA256 = "703bd971b920c5d67ec025c2e036d9440449d7eef1b012bbb9c619c7715b0abc"
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
         "patterns=patterns_from_images(glyph_images('ABCDEFGHIJ')) (iirsnn.data.pattern_generator) to use "
         "generated patterns instead")


# --- the authors' file ---------------------------------------------------------------------------

#: What numpy's .npy header parser (tokenize, ast.literal_eval, np.dtype) raises for a garbled header:
#: besides ValueError, TypeError for keys of mixed types, RecursionError for deep nesting, TokenError.
_NPY_HEADER_ERRORS = (ValueError, OSError, SyntaxError, TypeError, RecursionError, tokenize.TokenError)


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of a NumPy ``.npy`` file, without pickles, its size checked against the header first.

    Raises :class:`CorruptFileError` naming the file for a bad magic or header, an object, empty or
    subarray dtype, a shape no numpy array can have, or a data size other than the header's
    ``prod(shape) * itemsize`` (truncated or trailing bytes).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        shape, fortran_order, dtype = _npy_header(f, size, path)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise CorruptFileError(f"{path}: the header declares an impossible shape {list(shape)}")
        if dtype.hasobject or dtype.itemsize == 0 or dtype.shape:
            raise CorruptFileError(f"{path}: unsupported dtype {dtype} (Python objects, empty items or a subarray)")
        problem = shape_problem(shape, dtype.itemsize)
        if problem:
            raise CorruptFileError(f"{path}: the header declares {problem}")
        count = int(np.prod(shape, dtype=object))
        expected = count * dtype.itemsize
        actual = size - f.tell()
        if actual != expected:
            problem = "truncated" if actual < expected else "has trailing bytes"
            raise CorruptFileError(f"{path}: {problem}: shape {list(shape)} of {dtype} needs {expected} data "
                                   f"bytes, the file has {actual}")
        data = np.fromfile(f, dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran_order else "C")


def _npy_header(f: BinaryIO, size: int, path: Path) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the header at the start of the ``.npy`` file ``f`` of ``size``
    bytes, ``f`` left at the data. The header length (2 bytes after the magic in version 1, else 4) is
    checked against the file first: numpy allocates that many bytes before it reads them."""
    try:
        version = np.lib.format.read_magic(f)
        field = f.read(2 if version == (1, 0) else 4)
        declared, left = int.from_bytes(field, "little"), size - f.tell()
        f.seek(-len(field), os.SEEK_CUR)
        if declared <= left:
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            return read_header(f)
    except _NPY_HEADER_ERRORS as exc:
        raise CorruptFileError(f"{path}: not a valid .npy file ({exc})") from exc
    raise CorruptFileError(f"{path}: not a valid .npy file (truncated: its header length field says {declared} "
                           f"bytes, {left} follow)")


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
        problem = file_problem(directory / "images" / f"{name}.png", sha, f"the expected {sha}")
        if problem:
            problems.append(problem)
    return problems
