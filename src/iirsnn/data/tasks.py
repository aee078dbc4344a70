"""Tasks: a dataset in the form the trainer consumes, split into train / validation / test.

The trainer knows no dataset; it asks a :class:`Task` for the size of a split and for the batch of given
sample indices. A batch is time-major ``x [T, B, *input_shape]`` (or ``[B, *input_shape]`` for static
inputs such as images, which an encoder turns into steps), labels ``y [B]``, and for reconstruction tasks
the target spike trains ``target [T, B, n_outputs]``. :class:`TensorTask` holds each split as tensors in
memory (every task of the paper fits); :func:`carve_validation` takes the validation split from the
training data with a fixed seed when a task has none of its own. The builders of the named tasks are in
:mod:`iirsnn.data.task_builders`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SPLITS = ("train", "val", "test")
KINDS = ("classification", "reconstruction")


@dataclass
class Batch:
    """One batch: ``x`` [T, B, ...] (or [B, ...] static), ``y`` [B] long, ``target`` [T, B, n] or None,
    ``lengths`` [B] long valid frames or None (all T)."""

    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(None if t is None else t.to(device, non_blocking=True)
                       for t in (self.x, self.y, self.target, self.lengths)))


@dataclass
class SplitTensors:
    """The samples of one split: ``x`` [N, T, ...] time-major per sample, or [N, ...] static (``static``);
    ``y`` [N] long; optional ``target`` [N, T, n] and ``lengths`` [N]."""

    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for name in ("y", "target", "lengths"):
            t = getattr(self, name)
            if t is not None and t.shape[0] != n:
                raise ValueError(f"split tensors: {name} has {t.shape[0]} samples but x has {n}")

    def select(self, index: torch.Tensor) -> SplitTensors:
        return SplitTensors(*(None if t is None else t[index] for t in (self.x, self.y, self.target, self.lengths)))


class Task:
    """What the trainer needs of a dataset. Subclasses set the attributes and implement the two methods.

    Attributes:
        name: the task's name. kind: ``"classification"`` or ``"reconstruction"``.
        input_shape: one step of one sample before encoding (e.g. ``(22,)``, ``(1, 28, 28)``).
        static: whether samples have no time axis (an encoder adds it).
        n_outputs: classes (classification) or output neurons (reconstruction).
        classes: the class names. steps: T, the steps of a sample (None for static inputs).
        description: one line for listings and logs.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    static: bool = False
    n_outputs: int
    classes: list[str]
    steps: int | None
    description: str = ""

    def size(self, split: str) -> int:
        """The number of samples of ``split`` (0 when the task has no such split)."""
        raise NotImplementedError

    def batch(self, split: str, index: torch.Tensor, epoch: int) -> Batch:
        """The samples ``index`` [B] of ``split`` as one :class:`Batch`; ``epoch`` (1-based) lets a task draw
        fresh training samples every epoch (deterministically)."""
        raise NotImplementedError


class TensorTask(Task):
    """A task whose splits are in memory as :class:`SplitTensors` (``splits`` maps "train", "val", "test")."""

    def __init__(self, name: str, kind: str, splits: dict[str, SplitTensors], n_outputs: int,
                 classes: list[str] | None = None, static: bool = False, description: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
        unknown = set(splits) - set(SPLITS)
        if unknown or "train" not in splits:
            raise ValueError(f"splits must include 'train' and be among {list(SPLITS)}, got {sorted(splits)}")
        self.name, self.kind, self.splits, self.static = name, kind, splits, static
        train = splits["train"]
        self.input_shape = tuple(train.x.shape[1:] if static else train.x.shape[2:])
        self.steps = None if static else int(train.x.shape[1])
        self.n_outputs = n_outputs
        self.classes = classes if classes is not None else [str(k) for k in range(n_outputs)]
        self.description = description

    def size(self, split: str) -> int:
        _check_split(split)
        return self.splits[split].x.shape[0] if split in self.splits else 0

    def batch(self, split: str, index: torch.Tensor, epoch: int) -> Batch:
        s = self.splits[split].select(index)
        x = s.x if s.x.is_floating_point() else s.x.float()  # event frames are kept as bytes
        x = x if self.static else x.transpose(0, 1).contiguous()
        target = None if s.target is None else s.target.transpose(0, 1).contiguous()
        return Batch(x, s.y, target, s.lengths)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")


def carve_validation(train: SplitTensors, fraction: float, seed: int,
                     stratify: bool = True) -> tuple[SplitTensors, SplitTensors | None]:
    """(train, validation) from ``train``: ``fraction`` of the samples, drawn with ``seed`` (per class when
    ``stratify``, so every class keeps its share); (train, None) for fraction 0."""
    if fraction <= 0:
        return train, None
    generator = torch.Generator().manual_seed(seed)
    n = train.x.shape[0]
    if stratify:
        val_parts = []
        for label in torch.unique(train.y):
            members = torch.nonzero(train.y == label).flatten()
            members = members[torch.randperm(members.numel(), generator=generator)]
            val_parts.append(members[: round(fraction * members.numel())])
        val_index = torch.cat(val_parts).sort().values
    else:
        val_index = torch.randperm(n, generator=generator)[: round(fraction * n)].sort().values
    if val_index.numel() == 0 or val_index.numel() == n:
        raise ValueError(f"a validation fraction of {fraction} of {n} training samples leaves an empty split")
    keep = torch.ones(n, dtype=torch.bool)
    keep[val_index] = False
    return train.select(torch.nonzero(keep).flatten()), train.select(val_index)
