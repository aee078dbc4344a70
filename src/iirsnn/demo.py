"""The embedded default job: learn to classify spike patterns that differ only in spike timing.

Each of ``classes`` templates fires every input channel exactly once, at a random time; samples
are templates corrupted as in the paper's associative-memory task (Gaussian jitter of spike
times, deleted spikes, random background spikes). Every class has the same spike count on every
channel, so only the timing tells them apart: a rate code cannot beat chance, the synapse and
neuron filters of a small IIR spiking network can. Needs no data on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from iirsnn.functional.losses import spike_count_cross_entropy
from iirsnn.models import from_spec


@dataclass
class DemoConfig:
    classes: int = 5
    channels: int = 40
    steps: int = 60
    train_per_class: int = 80
    test_per_class: int = 40
    jitter: float = 1.5  # std of spike-time jitter, in steps
    deletion: float = 0.1  # probability that a spike is deleted
    background: float = 0.01  # probability of a random extra spike per channel and step
    spec: str = "64-5"
    epochs: int = 25
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0


def make_patterns(cfg: DemoConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Templates' spike times [classes, channels] (one spike per channel) and a data-generating seed."""
    times = torch.randint(0, cfg.steps - 5, (cfg.classes, cfg.channels), generator=generator)
    return times, torch.arange(cfg.classes)


def sample(times: torch.Tensor, labels: torch.Tensor, cfg: DemoConfig, generator: torch.Generator):
    """Corrupted copies of the templates: spikes [T, n, channels] (time-major) and labels [n]."""
    n = labels.shape[0]
    t = times[labels].double() + torch.randn(n, cfg.channels, generator=generator, dtype=torch.float64) * cfg.jitter
    t = t.round().clamp(0, cfg.steps - 1).long()
    keep = torch.rand(n, cfg.channels, generator=generator) >= cfg.deletion
    x = torch.zeros(cfg.steps, n, cfg.channels)
    b_idx, c_idx = torch.nonzero(keep, as_tuple=True)
    x[t[b_idx, c_idx], b_idx, c_idx] = 1.0
    noise = torch.rand(cfg.steps, n, cfg.channels, generator=generator) < cfg.background
    return torch.maximum(x, noise.float()), labels


def _split(times, cfg, per_class, generator):
    labels = torch.arange(cfg.classes).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.shape[0], generator=generator)]
    return sample(times, labels, cfg, generator)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose most active output neuron is the label (x: [T, B, C], y: [B])."""
    with torch.no_grad():
        return float((model(x).sum(0).argmax(1) == y).float().mean())


def run(cfg: DemoConfig, out_dir: str | None = None, progress: bool = True) -> dict:
    """Train the demo network; returns metrics (and writes them and the weights to ``out_dir``)."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    times, _ = make_patterns(cfg, g)
    x_train, y_train = _split(times, cfg, cfg.train_per_class, g)
    x_test, y_test = _split(times, cfg, cfg.test_per_class, g)
    model = from_spec(cfg.spec, (cfg.channels,))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="demo", disable=not progress)
    for epoch in bar:
        order = torch.randperm(y_train.shape[0], generator=g)
        total = 0.0
        for i in range(0, order.shape[0], cfg.batch):
            idx = order[i:i + cfg.batch]
            opt.zero_grad()
            loss = spike_count_cross_entropy(model(x_train[:, idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        record = dict(epoch=epoch + 1, loss=total / order.shape[0], test_accuracy=accuracy(model, x_test, y_test))
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", test_acc=f"{record['test_accuracy']:.3f}")
    metrics = dict(config=asdict(cfg), history=history, final_test_accuracy=history[-1]["test_accuracy"],
                   train_accuracy=accuracy(model, x_train, y_train), chance=1.0 / cfg.classes,
                   seconds=time.perf_counter() - start)
    if out_dir:
        _save(out_dir, model, metrics)
    return metrics


def _save(out_dir: str, model: torch.nn.Module, metrics: dict) -> None:
    """Write weights and metrics atomically (temporary file, then rename)."""
    os.makedirs(out_dir, exist_ok=True)
    for name, write in (("model.pt", lambda f: torch.save(model.state_dict(), f)),
                        ("metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, os.path.join(out_dir, name))
