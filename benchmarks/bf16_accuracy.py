"""Accuracy of the bf16-mixed precision option against fp32 on real data, through the trainer.

``--task mnist`` (default): the MNIST MLP 784-500-500-10 (dual-exponential synapses, tau_m 4, tau_s 1, T 25,
Bernoulli rate coding of the pixel intensities, no dropout) for a few epochs; the selected model is scored on
the 10,000 test images. ``--task auslan``: the temporal recipe ``auslan`` as it stands (300-300-95 behind the
current-based LIF encoder, 40 epochs unless ``--epochs``). Each task trains with the same seed in fp32 and in
bf16-mixed; each run is a run directory under ``--out`` (resumable, with its config and metrics).

    python benchmarks/bf16_accuracy.py --json benchmarks/results/bf16_accuracy.json
    python benchmarks/bf16_accuracy.py --task auslan --json benchmarks/results/bf16_accuracy_auslan.json
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from iirsnn.atomic import atomic_write_json
from iirsnn.experiments import recipe
from iirsnn.process import tune_process
from iirsnn.train import Trainer, apply_overrides


def task_config(precision: str, args: argparse.Namespace) -> dict:
    """The trainer config of ``args.task`` in ``precision``."""
    if args.task == "auslan":
        overrides = [f"precision={precision}", f"seed={args.seed}"]
        if args.epochs is not None:
            overrides.append(f"epochs={args.epochs}")
        return apply_overrides(recipe("auslan").config(), overrides)
    return apply_overrides(recipe("mnist-mlp").config(), [
        f"precision={precision}", f"epochs={args.epochs or 2}", f"seed={args.seed}", f"optimizer.lr={args.lr}",
        "encoder.name=bernoulli_rate", f"encoder.options.steps={args.T}", "model.options.dropout=0.0",
        "model.options.learnable_synapse=false", "test_every_epoch=false", "schedule.name=none"])


def run(precision: str, args: argparse.Namespace) -> dict:
    cfg = task_config(precision, args)
    run_dir = Path(args.out) / args.task / precision
    trainer = Trainer(cfg, run_dir, root=args.data_dir)
    results = trainer.run(resume=(run_dir / "checkpoint-last.pt").exists())
    return dict(precision=precision, test_accuracy=results["selected"]["test"]["accuracy"],
                train_seconds=results["train_seconds"], run_dir=str(run_dir))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="the data root (default $IIRSNN_DATA)")
    ap.add_argument("--out", default="runs/bf16_accuracy", help="directory of the two run directories")
    ap.add_argument("--task", choices=("mnist", "auslan"), default="mnist")
    ap.add_argument("--epochs", type=int, default=None, help="default: 2 for mnist, the recipe's for auslan")
    ap.add_argument("--T", type=int, default=25, help="mnist: time steps")
    ap.add_argument("--lr", type=float, default=5e-4, help="mnist: Adam's learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tune_process()  # the allocator mode of IIRSNN_MALLOC (default reuse), as the CLI's
    torch.set_num_threads(os.cpu_count() or 1)
    results = [run(p, args) for p in ("fp32", "bf16-mixed")]
    for r in results:
        print(f"{r['precision']:11s} test accuracy {100 * r['test_accuracy']:.2f} %  train {r['train_seconds']:.0f} s")
    gap = 100 * (results[0]["test_accuracy"] - results[1]["test_accuracy"])
    print(f"fp32 minus bf16-mixed: {gap:+.2f} points (condition: within 0.3)")
    if args.json:
        atomic_write_json(args.json, dict(vars(args), results=results, gap_points=gap))


if __name__ == "__main__":
    main()
