"""Where datasets live on disk, how their presence and integrity are checked, and atomic writes.

The root directory of all datasets is the ``root`` argument of a loader, else the environment
variable ``IIRSNN_DATA``; each dataset lives in ``<root>/<name>/`` in its upstream layout.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from iirsnn.data.errors import CorruptFileError, MissingDataError

ENV_ROOT = "IIRSNN_DATA"
INT64_DIGITS = 19  # 2**63 - 1 = 9223372036854775807
MAX_DIMS = 32  # dimensions of a numpy array: 32 in numpy 1.x (numpy 2 allows 64)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The directory holding all datasets: ``root`` if given, else ``$IIRSNN_DATA``.

    Raises :class:`MissingDataError` when neither is set or the directory does not exist.
    """
    if root is None:
        root = os.environ.get(ENV_ROOT)
        if not root:
            raise MissingDataError(f"no data root: pass root=... or set the environment variable {ENV_ROOT} "
                                   "to the directory that holds the datasets (one sub-directory per dataset)")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MissingDataError(f"data root {str(path)!r} is not a directory")
    return path


def dataset_dir(name: str, root: str | os.PathLike | None = None, *, direct: bool = False) -> Path:
    """``<root>/<name>``; with ``direct=True`` ``root`` is the dataset's own directory.

    A directory passed as ``root`` that already is the dataset's own (its name is ``name``) is
    taken as it is, so both ``root=".../data"`` and ``root=".../data/mnist"`` work.
    """
    base = data_root(root)
    if direct or base.name == name:
        return base
    path = base / name
    if not path.is_dir():
        raise MissingDataError(f"dataset {name!r} not found: expected the directory {str(path)!r} "
                               f"(set root=... or {ENV_ROOT} to the directory that contains {name}/)")
    return path


def require_files(directory: Path, names: Iterable[str], dataset: str, hint: str = "") -> list[Path]:
    """The paths ``directory/name`` for each name; raises :class:`MissingDataError` listing every
    missing one (not just the first) and ``hint`` (where to get them)."""
    paths = [directory / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        listed = "\n  ".join(missing)
        raise MissingDataError(f"{dataset}: {len(missing)} expected file(s) missing:\n  {listed}"
                               + (f"\n{hint}" if hint else ""))
    return paths


def is_int64_field(text: str) -> bool:
    """Whether ``text`` is a plain non-negative decimal integer that fits an int64 (index files, label rows).

    At most 19 digits: a longer field cannot fit, and Python refuses to convert more than 4300 digits.
    """
    return text.isascii() and text.isdigit() and len(text) <= INT64_DIGITS and int(text) < 2**63


def shape_problem(shape: Sequence[int], itemsize: int) -> str | None:
    """Why numpy cannot make an array of ``shape`` with ``itemsize``-byte items even when the file holds
    the ``prod(shape) * itemsize`` bytes, or None: more than :data:`MAX_DIMS` dimensions, or sizes whose
    product (zero sizes left out, as numpy counts) exceeds the address space (possible when a size is 0)."""
    if len(shape) > MAX_DIMS:
        return f"{len(shape)} dimensions (numpy arrays have at most {MAX_DIMS})"
    if math.prod(n for n in shape if n) * itemsize > np.iinfo(np.intp).max:
        return f"the sizes {list(shape)}, whose product exceeds the address space"
    return None


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str, actual: str | None = None) -> None:
    """Raise :class:`CorruptFileError` naming ``path`` when its sha256 (or ``actual``) is not ``expected``."""
    actual = sha256_file(path) if actual is None else actual
    if actual != expected.lower():
        raise CorruptFileError(f"{path}: sha256 {actual} does not match the expected {expected} "
                               "(the file is corrupt, truncated or a different version)")


def file_problem(path: Path, expected: str, reference: str) -> str | None:
    """What is wrong with one expected file for a ``verify()`` report, or None: it is missing, or its sha256
    is not ``expected`` (``reference`` names where that checksum comes from, e.g. the manifest)."""
    if not path.is_file():
        return f"{path}: missing"
    if sha256_file(path) != expected:
        return f"{path}: sha256 does not match {reference}"
    return None


def read_manifest(path: Path) -> dict[str, str]:
    """A ``sha256sum``-style manifest (``<hex>  <relative path>`` per line) as {relative path: hex}."""
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise CorruptFileError(f"{path}, line {number}: expected '<sha256>  <path>', got {line!r}")
        entries[parts[1].lstrip("*").strip()] = parts[0].lower()
    return entries


