"""The associative-memory task (paper sec. 5.1): reconstruct clean spike patterns from corrupted copies.

Every epoch trains on fresh corruptions (``per_epoch`` samples, the patterns taking turns), drawn from a
seed of (seed, epoch), so that a resumed run sees the same samples; the validation and test corruptions
come from seeds no training epoch uses. The patterns are the authors' ten when ``patterns="authors"``
(or ``"auto"`` and the file is present), else ten generated from a built-in font (``"generated"``).
"""

from __future__ import annotations

import os

import torch

from iirsnn.data.associative import AssociativeMemory, load_patterns
from iirsnn.data.corruption import Corruption
from iirsnn.data.errors import MissingDataError
from iirsnn.data.pattern_generator import PATTERN_NAMES, glyph_images, patterns_from_images
from iirsnn.data.tasks import Batch, Task, _check_split

_SPLIT_SEEDS = {"val": (1 << 20) - 2, "test": (1 << 20) - 1}  # above every training epoch's


class AssociativeTask(Task):
    """Corrupted patterns [T, N] as input, the clean pattern delayed by ``target_delay`` steps as target."""

    kind = "reconstruction"

    def __init__(self, patterns: torch.Tensor, classes: list[str], per_epoch: int = 1000, val_per_pattern: int = 10,
                 test_per_pattern: int = 20, target_delay: int = 4, corruption: Corruption | None = None,
                 seed: int = 0, description: str = "") -> None:
        n_patterns, steps, neurons = patterns.shape
        if per_epoch < n_patterns:
            raise ValueError(f"per_epoch must be at least the {n_patterns} patterns, got {per_epoch}")
        self.name, self.classes, self.steps = "assoc-memory", list(classes), steps
        self.input_shape, self.n_outputs = (neurons,), neurons
        self.patterns, self.seed = patterns, seed
        self.per_pattern = {"train": per_epoch // n_patterns, "val": val_per_pattern, "test": test_per_pattern}
        self.target_delay, self.corruption = target_delay, corruption
        self.description = description
        self._sets: dict[tuple[str, int], AssociativeMemory] = {}

    def _dataset(self, split: str, epoch: int) -> AssociativeMemory:
        key = (split, epoch if split == "train" else 0)
        if key not in self._sets:
            if split == "train" and not 1 <= epoch < _SPLIT_SEEDS["val"]:
                raise ValueError(f"epoch must lie in 1..{_SPLIT_SEEDS['val'] - 1}, got {epoch}")
            sample_seed = (self.seed << 20) + (epoch if split == "train" else _SPLIT_SEEDS[split])
            if split == "train":
                self._sets = {k: v for k, v in self._sets.items() if k[0] != "train"}  # one epoch at a time
            self._sets[key] = AssociativeMemory(n_corrupted=self.per_pattern[split], corruption=self.corruption,
                                                seed=sample_seed, patterns=self.patterns, classes=self.classes,
                                                target_delay=self.target_delay)
        return self._sets[key]

    def size(self, split: str) -> int:
        _check_split(split)
        return self.per_pattern[split] * self.patterns.shape[0]

    def batch(self, split: str, index: torch.Tensor, epoch: int) -> Batch:
        data = self._dataset(split, epoch)
        xs, targets, labels = zip(*(data[int(i)] for i in index), strict=True)
        return Batch(torch.stack(xs, 1), torch.tensor(labels, dtype=torch.long), torch.stack(targets, 1))


def associative_memory(root: str | os.PathLike | None, seed: int, patterns: str = "auto", per_epoch: int = 1000,
                       val_per_pattern: int = 10, test_per_pattern: int = 20, target_delay: int = 4,
                       steps: int = 300, neurons: int = 300) -> AssociativeTask:
    """The task with the authors' patterns (``"authors"``), generated ones (``"generated"``, of ``steps`` x
    ``neurons``) or the authors' when present (``"auto"``)."""
    if patterns not in ("auto", "authors", "generated"):
        raise ValueError(f"patterns must be 'auto', 'authors' or 'generated', got {patterns!r}")
    source = patterns
    if patterns in ("auto", "authors"):
        try:
            data, classes, source = load_patterns(root), list(PATTERN_NAMES), "authors"
        except MissingDataError:
            if patterns == "authors":
                raise
            source = "generated"
    if source == "generated":
        data = patterns_from_images(glyph_images("ABCDEFGHIJ"), n_steps=steps, n_neurons=neurons)
        data = torch.as_tensor(data, dtype=torch.float32)
        classes = list("ABCDEFGHIJ")
    return AssociativeTask(data, classes, per_epoch, val_per_pattern, test_per_pattern, target_delay, seed=seed,
                           description=f"associative memory, {source} patterns {list(data.shape)}")
