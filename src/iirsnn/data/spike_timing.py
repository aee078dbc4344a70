"""Generated spike-timing patterns: the embedded default task, which needs no data on disk.

Each of ``classes`` templates fires every input channel exactly once, at a random time; samples are
templates corrupted as in the paper's associative-memory task (Gaussian jitter of spike times, deleted
spikes, random background spikes). Every class has the same spike count on every channel, so only the
timing tells them apart: a rate code cannot beat chance, the synapse and neuron filters of a small IIR
spiking network can.
"""

from __future__ import annotations

import torch


def templates(classes: int, channels: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Each template's spike time on each channel, [classes, channels] long in 0..steps-6."""
    return torch.randint(0, steps - 5, (classes, channels), generator=generator)


def corrupted_samples(times: torch.Tensor, labels: torch.Tensor, steps: int, jitter: float, deletion: float,
                      background: float, generator: torch.Generator) -> torch.Tensor:
    """Corrupted copies of the templates ``times`` [classes, channels] for ``labels`` [n]: spikes
    [n, steps, channels] float32 0/1 (time-major per sample)."""
    n, channels = labels.shape[0], times.shape[1]
    t = times[labels].double() + torch.randn(n, channels, generator=generator, dtype=torch.float64) * jitter
    t = t.round().clamp(0, steps - 1).long()
    keep = torch.rand(n, channels, generator=generator) >= deletion
    x = torch.zeros(n, steps, channels)
    b_idx, c_idx = torch.nonzero(keep, as_tuple=True)
    x[b_idx, t[b_idx, c_idx], c_idx] = 1.0
    noise = torch.rand(n, steps, channels, generator=generator) < background
    return torch.maximum(x, noise.float())


def balanced_labels(classes: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """``per_class`` labels of each class in a random order, [classes * per_class] long."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    return labels[torch.randperm(labels.shape[0], generator=generator)]
