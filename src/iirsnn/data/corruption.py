"""The corruption model of the associative-memory experiment (paper sec. 5.1, the authors' script).

A pattern is time-major ``[T, N]`` (T time steps, N neurons), float32 0/1; the network is shown a
corrupted copy, drawn anew per sample. :class:`Corruption` describes the draw and :func:`corrupt`
makes it, from :func:`delete_neurons`, :func:`delete_steps`, :func:`delete_block`, :func:`jitter`
and :func:`add_background`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
