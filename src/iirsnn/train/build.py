"""What a config builds: the task and its encoder, the network, its loss and predictions, the optimizer and the
learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from iirsnn.data.task_builders import build_task
from iirsnn.data.tasks import Batch, Task
from iirsnn.functional.losses import spike_count_cross_entropy, van_rossum_distance
from iirsnn.train.config import ConfigError, ExperimentConfig
from iirsnn.train.encoders import make_encoder


def task_of(cfg: ExperimentConfig, root: str | None = None) -> Task:
    """The task of ``cfg.data`` with its validation split; ``root`` (where the data lie) overrides ``data.root``."""
    d = cfg.data
    return build_task(d.name, root if root is not None else d.root, d.options, seed=cfg.seed,
                      val_fraction=d.val_fraction, split_seed=d.split_seed)


def encoder_of(cfg: ExperimentConfig, task: Task) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder of ``cfg.encoder`` for the task's input."""
    return make_encoder(cfg.encoder.name, cfg.encoder.options, task.static)


def build_model(cfg: ExperimentConfig, task: Task, input_shape: tuple[int, ...]) -> torch.nn.Module:
    """The network of ``cfg.model`` for ``input_shape`` (one encoded step), checked against the task's outputs."""
    m = cfg.model
    if m.kind == "lstm":
        from iirsnn.models import LSTMBaseline

        if task.kind != "classification":
            raise ConfigError(f"model.kind 'lstm' is a classifier; task {task.name!r} is a {task.kind} task")
        return LSTMBaseline(math.prod(input_shape), task.n_outputs, hidden=m.hidden, layers=m.layers)
    from iirsnn.models import from_spec

    spec = m.spec.replace("{outputs}", str(task.n_outputs))
    outputs = spec.strip().split("-")[-1]
    if not outputs.isdigit() or int(outputs) != task.n_outputs:
        raise ConfigError(f"model.spec {spec!r} ends with {outputs} outputs, but task {task.name!r} has "
                          f"{task.n_outputs} ({'classes' if task.kind == 'classification' else 'output neurons'})")
    options = {"precision": cfg.precision, **m.options}
    try:
        return from_spec(spec, input_shape, synapse=m.synapse, tau_m=m.tau_m, tau_s=m.tau_s, **options)
    except TypeError as exc:  # an unknown from_spec option
        raise ConfigError(f"model.options: {exc}") from None


def is_spiking(model: torch.nn.Module) -> bool:
    return getattr(model, "build_config", {}).get("kind", "snn") != "lstm"


def forward(model: torch.nn.Module, x: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Output spikes [T, B, n] of a spiking network, or logits [B, n] of the LSTM (read at ``batch.lengths``)."""
    if is_spiking(model):
        return model(x)
    return model(x.flatten(2), batch.lengths)


def loss_of(cfg: ExperimentConfig, model: torch.nn.Module, out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The mean loss of a batch."""
    if cfg.loss.name == "van_rossum":
        if batch.target is None:
            raise ConfigError("loss.name 'van_rossum' needs a reconstruction task (target spike trains)")
        return van_rossum_distance(out, batch.target, **cfg.loss.options)
    if not is_spiking(model):
        return torch.nn.functional.cross_entropy(out, batch.y)
    return spike_count_cross_entropy(out, batch.y, **cfg.loss.options)


def predictions(model: torch.nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Predicted classes [B] of output spikes [T, B, n] or logits [B, n]: the output neuron with most spikes,
    of equal counts the one that fired first, then the lowest index; or the top logit."""
    if not is_spiking(model):
        return out.argmax(1)
    return spike_count_winner(out)


def spike_count_winner(spikes: torch.Tensor) -> torch.Tensor:
    """The neuron [B] with most spikes in ``spikes`` [T, B, n]; of equal counts the earliest first spike wins,
    then the lowest index. (Counts alone would hand every tie to the lowest index, a bias towards class 0.)"""
    steps = spikes.shape[0]
    fired = spikes > 0
    counts = fired.sum(0)
    time = torch.arange(steps, device=spikes.device).view(steps, *([1] * (spikes.dim() - 1)))
    first = torch.where(fired, time, steps).amin(0)
    return (counts * (steps + 1) + (steps - first)).argmax(1)


def build_optimizer(cfg: ExperimentConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def lr_factor(cfg: ExperimentConfig, epoch: int) -> float:
    """The learning-rate factor during epoch ``epoch`` (1-based): linear warm-up, then the schedule."""
    s = cfg.schedule
    if epoch <= s.warmup_epochs:
        return epoch / (s.warmup_epochs + 1)
    if s.name == "multistep":
        return s.gamma ** sum(epoch > m for m in s.milestones)
    if s.name == "cosine":
        span = max(1, cfg.epochs - s.warmup_epochs)
        progress = (epoch - s.warmup_epochs - 1) / span
        return s.min_factor + (1 - s.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def set_lr(cfg: ExperimentConfig, optimizer: torch.optim.Optimizer, epoch: int) -> float:
    """Set every group's learning rate for ``epoch``; returns it. (A pure function of the epoch, so a
    resumed run needs no scheduler state.)"""
    lr = cfg.optimizer.lr * lr_factor(cfg, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
