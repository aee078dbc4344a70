"""Checkpoints of a training run: everything a resumed run needs to continue bit for bit.

A checkpoint is one file written atomically (:mod:`iirsnn.atomic`) by ``torch.save`` and read by
``torch.load(weights_only=True)``, which unpickles only tensors and plain containers: a file that
carries code is refused without running it. It holds the model, the optimizer, the position in training
(epochs done, steps done in the epoch in progress, its running sums), torch's random number generator
states, the metrics of every finished epoch, the config, the network's build config (so that the
network is rebuilt from the checkpoint alone) and the versions of iirsnn and torch.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
from pathlib import Path

import torch

from iirsnn.torch_files import zip_problem

FORMAT = "iirsnn-checkpoint"
FORMAT_VERSION = 2  # 2: the state as checksummed bytes; 1 (still read): the state itself
_HEADER = ("format", "format_version", "versions")
LAST, BEST = "checkpoint-last.pt", "checkpoint-best.pt"
#: What torch.load's weights-only unpickler and zip reader raise for damaged bytes besides UnpicklingError.
_LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError,
                struct.error)


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, of another format or version, or that carries code."""


def save(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` (plain values and tensors) to ``path`` atomically: the format header, and the state
    as the bytes of its own ``torch.save`` with their SHA-256, which :func:`load` checks before reading them."""
    from iirsnn import __version__
    from iirsnn.atomic import atomic_path

    buffer = io.BytesIO()
    torch.save({k: v for k, v in state.items() if k not in _HEADER}, buffer)
    content = buffer.getvalue()
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "versions": {"iirsnn": __version__, "torch": str(torch.__version__)},
               "sha256": hashlib.sha256(content).hexdigest(),
               "content": torch.frombuffer(bytearray(content), dtype=torch.uint8)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | os.PathLike) -> dict:
    """The content of the checkpoint at ``path`` (a file, or a run directory: its last checkpoint).

    Raises :class:`CheckpointError` naming the file when it is missing, not a checkpoint, damaged,
    of another format version, or holds anything but tensors and plain values.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    problem = zip_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path}: not a readable checkpoint: {problem}: empty, damaged, or torch's "
                              "pre-1.6 format")
    state = _torch_load(path, path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an iirsnn checkpoint")
    version = state.get("format_version")
    if version == 1:  # before checksums: the state itself
        return state
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r}, this iirsnn reads versions 1 and "
                              f"{FORMAT_VERSION}")
    content = state.get("content")
    if not isinstance(content, torch.Tensor) or content.dtype != torch.uint8 or content.dim() != 1:
        raise CheckpointError(f"{path}: damaged: its content is not a byte string")
    data = content.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != state.get("sha256"):
        raise CheckpointError(f"{path}: damaged: the SHA-256 of its content does not match the one it records")
    inner = _torch_load(io.BytesIO(data), path)
    if not isinstance(inner, dict):
        raise CheckpointError(f"{path}: not an iirsnn checkpoint")
    return {**inner, **{k: state.get(k) for k in _HEADER}}


def _torch_load(source: Path | io.BytesIO, path: Path) -> object:
    """``torch.load(weights_only=True)`` of ``source``, its errors as :class:`CheckpointError` naming ``path``."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused to load: it holds more than tensors and plain values, or its "
                              f"pickle is damaged (nothing of it was run): {str(exc).splitlines()[0]}") from None
    except _LOAD_ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or damaged?): "
                              f"{type(exc).__name__}: {exc}") from None


def rng_state() -> dict:
    """torch's generator states (CPU, and every CUDA device when present)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rebuild_model(state: dict) -> torch.nn.Module:
    """The network of a checkpoint, built from its build config and loaded with its weights."""
    from iirsnn.models import lstm_from_config, network_from_config

    build = state["model_build"]
    model = lstm_from_config(build) if build.get("kind") == "lstm" else network_from_config(build)
    model.load_state_dict(state["model"])
    return model
