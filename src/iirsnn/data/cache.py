"""On-disk cache of preprocessed tensors (frames, MFCC), keyed by the preprocessing parameters.

``cached(dataset, params, build)`` returns ``build()``'s dict of tensors, computing it only when no
entry exists for exactly these parameters; a change of any parameter (or of ``CACHE_VERSION``,
raised when a preprocessing step changes meaning) gives a new key. Entries are written atomically.
The cache directory is ``cache_dir``, else ``$IIRSNN_CACHE/data``, else ``~/.cache/iirsnn/data`` (the
compiled kernels live beside it, in ``kernels/``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from iirsnn.atomic import atomic_write_bytes
from iirsnn.data.errors import CorruptFileError
from iirsnn.data.files import sha256_bytes
from iirsnn.torch_files import zip_problem

CACHE_VERSION = 1
ENV_CACHE = "IIRSNN_CACHE"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``path``, else ``$IIRSNN_CACHE/data``, else ``~/.cache/iirsnn/data``."""
    if path is None:
        path = Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "iirsnn") / "data"
    return Path(path).expanduser()


def cache_key(dataset: str, params: Mapping[str, object]) -> str:
    """A stable key of ``dataset`` and JSON-serialisable ``params`` (order of keys does not matter)."""
    text = json.dumps({"dataset": dataset, "version": CACHE_VERSION, "params": params}, sort_keys=True, default=str)
    return f"{dataset}-{sha256_bytes(text.encode())[:20]}"


def cached(dataset: str, params: Mapping[str, object], build: Callable[[], dict[str, torch.Tensor]],
           directory: str | os.PathLike | None = None, enabled: bool = True) -> dict[str, torch.Tensor]:
    """``build()`` (a dict of tensors), loaded from the cache when an entry for ``params`` exists.

    A cache file that cannot be read is reported and rebuilt, never silently used.
    """
    if not enabled:
        return build()
    path = cache_dir(directory) / f"{cache_key(dataset, params)}.pt"
    if path.is_file():
        problem = zip_problem(path)  # torch's older plain-pickle reader allocates what a damaged byte declares
        if problem is None:
            try:
                entry = torch.load(path, weights_only=True)  # tensors and plain containers only: no code runs
                if _is_tensor_dict(entry):
                    return entry
                problem = "it does not hold a dict of tensors"
            except Exception as exc:  # a truncated or foreign file: rebuild it
                problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        import warnings

        warnings.warn(f"cache entry {path} is unreadable ({problem}); rebuilding it", stacklevel=2)
    tensors = build()
    if not _is_tensor_dict(tensors):
        raise CorruptFileError(f"cache builder of {dataset!r} must return a dict of tensors")
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return tensors


def _is_tensor_dict(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values())
