"""Explicit, checksummed downloads (``iirsnn data download NAME``); nothing here runs at import.

A :class:`Remote` is one upstream file: its URL, the relative path it takes under the dataset's
directory, and its sha256. A file is written atomically and only after its checksum matched.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.errors import CorruptFileError, DataError
from iirsnn.data.files import sha256_file


@dataclass(frozen=True)
class Remote:
    """One upstream file: ``url``, its ``path`` relative to the dataset directory, its ``sha256``."""

    url: str
    path: str
    sha256: str


def fetch(remote: Remote, directory: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``remote`` into ``directory`` unless a file with the right checksum is there already.

    Raises :class:`DataError` when the download fails and :class:`CorruptFileError` when the bytes
    do not have the expected sha256 (nothing is written then).
    """
    target = directory / remote.path
    if target.is_file() and sha256_file(target) == remote.sha256:
        return target
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            digest, chunks = hashlib.sha256(), []
            with tqdm(total=total, unit="B", unit_scale=True, desc=remote.path, disable=not progress) as bar:
                while block := response.read(1 << 20):
                    digest.update(block)
                    chunks.append(block)
                    bar.update(len(block))
    except OSError as exc:
        raise DataError(f"download of {remote.url} failed: {exc}") from exc
    if digest.hexdigest() != remote.sha256:
        raise CorruptFileError(f"{remote.url}: sha256 {digest.hexdigest()} does not match the expected "
                               f"{remote.sha256}; nothing was written")
    atomic_write_bytes(target, b"".join(chunks))
    return target


def fetch_all(remotes: Sequence[Remote], directory: Path, progress: bool = True) -> list[Path]:
    """:func:`fetch` each of ``remotes`` into ``directory``."""
    return [fetch(r, directory, progress) for r in remotes]
