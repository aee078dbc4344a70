"""``iirsnn data list|verify|download``: what is on disk, whether it is intact, and explicit downloads."""

from __future__ import annotations

import os
from collections.abc import Sequence

from iirsnn.data import registry
from iirsnn.data.errors import DataError
from iirsnn.data.files import ENV_ROOT, data_root


def list_datasets(root: str | os.PathLike | None = None) -> int:
    """Print every known dataset, whether it is present under the root, and whether it can be downloaded."""
    try:
        base = data_root(root)
        print(f"data root: {base} (argument --root or ${ENV_ROOT})")
    except DataError as exc:
        print(f"data root: none usable: {exc} (argument --root or ${ENV_ROOT}); the known datasets:")
        base = None
    for name, e in registry.DATASETS.items():
        here = "present" if base and registry.present(name, base) else "absent "
        get = "download" if e.remote_files() else "manual  "
        print(f"  {name:31s} {here}  {get}  {e.description}")
    return 0


def verify(names: Sequence[str], root: str | os.PathLike | None = None) -> int:
    """Check the named datasets (all present ones when none are named); print what is missing or wrong.

    Returns 0 when every checked dataset is intact, 1 otherwise (a named dataset that is absent counts);
    an unknown name raises KeyError naming the known ones.
    """
    for name in names:
        registry.entry(name)
    base = data_root(root)
    chosen = list(names) or [n for n in registry.DATASETS if registry.present(n, base)]
    if not chosen:
        print(f"no known dataset under {base}; `iirsnn data list` shows the names")
        return 1
    failed = 0
    for name in chosen:
        if not registry.present(name, base):
            print(f"{name}: MISSING, expected {base / name}")
            failed += 1
            continue
        problems = registry.verify(name, base)
        if problems:
            failed += 1
            shown = problems[:20]
            print(f"{name}: {len(problems)} problem(s)")
            for p in shown:
                print(f"  - {p}")
            if len(problems) > len(shown):
                print(f"  ... and {len(problems) - len(shown)} more")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


def download(names: Sequence[str], root: str | os.PathLike | None = None, progress: bool = True) -> int:
    """Download the named datasets' public files (checksummed); 1 if one of them cannot be downloaded.

    Every name is checked (KeyError naming the known ones) before anything is downloaded."""
    for name in names:
        registry.entry(name)
    failed = 0
    for name in names:
        try:
            paths = registry.download(name, root, progress)
            print(f"{name}: {len(paths)} file(s) in place, checksums match")
        except DataError as exc:
            print(f"{name}: {exc}")
            failed += 1
    return 1 if failed else 0
