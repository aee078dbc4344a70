"""Scoring a saved model from its checkpoint alone: the network, the task and the encoder are rebuilt from it."""

from __future__ import annotations

import os
from pathlib import Path

from iirsnn.train import build, checkpoint
from iirsnn.train.config import config_from_dict
from iirsnn.train.loop import resolve_device
from iirsnn.train.metrics import evaluate


def evaluate_checkpoint(path: str | os.PathLike, split: str = "test", root: str | None = None,
                        device: str = "auto") -> dict:
    """Loss, metrics and (classification) confusion matrix of the checkpoint at ``path`` on ``split``.

    ``path`` is a checkpoint file or a run directory (its validation-selected ``checkpoint-best.pt``).
    ``root`` overrides the data root recorded in the config.
    """
    path = Path(path)
    if path.is_dir():
        path = path / checkpoint.BEST
    state = checkpoint.load(path)
    cfg = config_from_dict(state["config"])
    task = build.task_of(cfg, root)
    if not task.size(split):
        raise ValueError(f"task {task.name!r} has no {split!r} split")
    target = resolve_device(device)
    model = checkpoint.rebuild_model(state).to(target)
    encode = build.encoder_of(cfg, task)
    result = evaluate(cfg, model, task, split, encode, target, confusion=True)
    return {"checkpoint": str(path), "epoch": state["epochs_done"], "split": split, "samples": task.size(split),
            "classes": task.classes, **result}
