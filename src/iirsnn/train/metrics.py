"""Scores of a split (loss, accuracy or spike-train metrics, confusion matrix) and firing rates per layer."""

from __future__ import annotations

from collections.abc import Callable

import torch

from iirsnn.data.tasks import Batch, Task
from iirsnn.nn import SpikingLayer
from iirsnn.train import build
from iirsnn.train.config import ExperimentConfig
from iirsnn.train.distributed import SINGLE, Ranks


class Score:
    """Running sums over the batches of a split; ``result()`` gives the means. ``state``/``from_state``
    carry them through a checkpoint taken in the middle of an epoch."""

    def __init__(self, state: dict | None = None) -> None:
        self.sums: dict[str, float] = dict(state or {})

    def add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def result(self) -> dict[str, float]:
        n = self.sums.get("samples", 0.0)
        return {k: v / n for k, v in self.sums.items() if k != "samples"} if n else {}

    def state(self) -> dict[str, float]:
        return dict(self.sums)


def score_batch(score: Score, cfg: ExperimentConfig, model: torch.nn.Module, out: torch.Tensor, batch: Batch,
                loss: torch.Tensor, confusion: torch.Tensor | None = None) -> None:
    """Add one batch's loss and metrics to ``score`` (and its predictions to ``confusion`` [classes, classes],
    rows = true class)."""
    n = batch.y.shape[0]
    score.add("samples", n)
    score.add("loss", float(loss) * n)
    if batch.target is None:
        pred = build.predictions(model, out)
        score.add("accuracy", (pred == batch.y).sum())
        if confusion is not None:
            confusion.index_put_((batch.y.cpu(), pred.cpu()), torch.ones(n, dtype=confusion.dtype), accumulate=True)
    else:
        from iirsnn.functional.spike_metrics import filtered_mse, spike_timing_f1

        kernel = {k: cfg.loss.options[k] for k in ("tau_m", "tau_s") if k in cfg.loss.options}
        score.add("f1", spike_timing_f1(out.detach(), batch.target).sum())
        score.add("mse", filtered_mse(out.detach(), batch.target, **kernel).sum())


def evaluate(cfg: ExperimentConfig, model: torch.nn.Module, task: Task, split: str,
             encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device, epoch: int = 1,
             confusion: bool = False, ranks: Ranks = SINGLE) -> dict:
    """Loss and metrics of ``model`` over all of ``split`` (no gradients, eval mode); with ``confusion`` also
    the confusion matrix (a list of rows) of a classification task. With several ``ranks`` each process scores
    its share of every batch and the sums are summed over them: every process returns the whole split's."""
    was_training = model.training
    model.eval()
    score = Score()
    matrix = torch.zeros(task.n_outputs, task.n_outputs, dtype=torch.long) if confusion else None
    n = task.size(split)
    with torch.no_grad():
        for start in range(0, n, cfg.eval_batch):
            index = ranks.shard(torch.arange(start, min(n, start + cfg.eval_batch)))
            if not len(index):
                continue
            batch = task.batch(split, index, epoch).to(device)
            out = build.forward(model, encode(batch.x), batch)
            score_batch(score, cfg, model, out, batch, build.loss_of(cfg, model, out, batch), matrix)
    model.train(was_training)
    result = Score(ranks.sum(score.sums)).result()
    if matrix is not None and task.kind == "classification":
        result["confusion"] = ranks.sum(matrix).tolist()
    return result


class FiringRates:
    """Spikes per neuron and step of every :class:`SpikingLayer` of ``model`` while it trains (forward hooks)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, SpikingLayer)}
        self.sums: dict[str, tuple[float, int]] = {}  # layer -> (spikes, neuron-steps); state() carries it
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers.items()]

    def _hook(self, name: str):
        def record(module, inputs, output):
            if module.training:
                spikes, count = self.sums.get(name, (0.0, 0))
                self.sums[name] = (spikes + float(output.detach().sum()), count + output.numel())
        return record

    def rates(self) -> dict[str, float]:
        return {f"layer{name}": s / c for name, (s, c) in self.sums.items() if c}

    def silent(self) -> list[str]:
        """Names of the layers that fired no spike since the last reset."""
        return [f"layer{name}" for name, (s, c) in self.sums.items() if c and s == 0]

    def state(self) -> dict:
        return dict(self.sums)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
