"""What every reader of a ``torch.save`` file checks before torch reads it: that it is the zip archive
``torch.save`` writes (since torch 1.6). torch.load also reads the older plain-pickle format, whose reader
allocates whatever length a damaged byte declares (4 GiB for a 7-byte file), so that format is refused."""

from __future__ import annotations

import os

ZIP_MAGIC = b"PK\x03\x04"


def zip_problem(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` is not a ``torch.save`` zip archive (None when it starts as one)."""
    with open(path, "rb") as f:
        start = f.read(len(ZIP_MAGIC))
    if start == ZIP_MAGIC:
        return None
    return f"it does not start as the zip archive that torch.save writes (starts with {start!r})"
