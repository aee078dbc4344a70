"""Agreement of a trained network with its NIR transfers, measured as the NIR paper does (Pedersen et al. 2024):
test accuracy, and the cosine similarity of time-averaged per-neuron spike counts, layer by layer.

For a run directory (its validation-selected checkpoint) and the run's test split:

  exact   the exact profile written to a .nir file, read back by ``iirsnn.import_nir``
  peer    the lossy peer profile read back by ``iirsnn.import_nir`` (CubaLIF: one synaptic pole, zero reset)
  snntorch  the same peer file imported by snnTorch (``snntorch.import_nir.import_from_nir``, dt 1e-4 as it
          assumes) and stepped through time one sample at a time; its output layer is compared

Writes the figures as JSON (``--json``) and a figure (``--figure``): per output neuron and test sample, the
spike counts of the original against each transfer.

  python benchmarks/nir_agreement.py RUN_DIR --samples 1000 --json out.json --figure docs/figures/nir-agreement.png
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import nir
import torch
from process_settings import cpu_model

from iirsnn import export_nir, import_nir
from iirsnn import nn as inn
from iirsnn.train import build, checkpoint
from iirsnn.train.config import config_from_dict


def _layer_counts(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output spikes [T, B, n] and every spiking layer's spike counts over time [B, ...]."""
    counts, hooks = [], []
    for layer in model:
        if isinstance(layer, inn.SpikingLayer):
            hooks.append(layer.register_forward_hook(lambda _m, _i, out: counts.append(out.sum(0))))
    with torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    return out, counts


def _snntorch_run(snn: torch.nn.Module, snn_utils, x: torch.Tensor) -> torch.Tensor:
    """One sample x [T, ...] through snnTorch's module, unbatched: its import maps NIR's Flatten(start_dim=0),
    which counts without the batch dimension, to torch's Flatten(0), which would flatten the batch too."""
    snn_utils.reset(snn)
    with torch.no_grad():
        return torch.stack([snn(step)[0] for step in x])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory (its checkpoint-best.pt is read)")
    parser.add_argument("--samples", type=int, default=1000, help="test samples (the first N)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--data-dir", default=None, help="the data root (default $IIRSNN_DATA)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    state = checkpoint.load(Path(args.run) / checkpoint.BEST)
    cfg = config_from_dict(state["config"])
    model = checkpoint.rebuild_model(state).eval()
    task = build.task_of(cfg, args.data_dir)
    encode = build.encoder_of(cfg, task)
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    with tempfile.TemporaryDirectory() as folder:
        files = {p: Path(folder) / f"{p}.nir" for p in ("exact", "peer")}
        for profile, path in files.items():
            nir.write(path, export_nir(model, profile=profile))
        exact, peer = import_nir(files["exact"]).eval(), import_nir(files["peer"]).eval()
        with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints its threshold rescaling
            snn = import_from_nir(nir.read(files["peer"]))
    n = min(args.samples, task.size("test"))
    names = ("original", "exact", "peer", "snntorch")
    correct = dict.fromkeys(names, 0)
    layers: dict[str, list[list[torch.Tensor]]] = {k: [] for k in names[:3]}
    outputs: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    for start in range(0, n, args.batch):
        batch = task.batch("test", torch.arange(start, min(n, start + args.batch)), 1)
        x = encode(batch.x)
        for name, net in (("original", model), ("exact", exact), ("peer", peer)):
            out, counts = _layer_counts(net, x)
            layers[name].append(counts)
            outputs[name].append(out.sum(0))
            correct[name] += int((build.predictions(model, out) == batch.y).sum())
        out = torch.stack([_snntorch_run(snn, snn_utils, x[:, i]) for i in range(x.shape[1])], dim=1)
        outputs["snntorch"].append(out.sum(0))
        correct["snntorch"] += int((build.predictions(model, out) == batch.y).sum())
    counts = {k: torch.cat(v) for k, v in outputs.items()}
    per_layer = {k: [torch.cat([b[i] for b in v]) for i in range(len(v[0]))] for k, v in layers.items()}
    result = {"run": str(args.run), "experiment": cfg.experiment, "samples": n, "cpu": cpu_model(),
              "accuracy": {k: correct[k] / n for k in names},
              "output_cosine_to_original": {k: _cosine(counts[k], counts["original"]) for k in names[1:]},
              "layer_cosine_to_original": {k: [_cosine(a, b) for a, b in zip(per_layer[k], per_layer["original"],
                                                                               strict=True)]
                                           for k in ("exact", "peer")},
              "snntorch_vs_peer": {"cosine": _cosine(counts["snntorch"], counts["peer"]),
                                   "identical_spike_counts": bool(torch.equal(counts["snntorch"], counts["peer"]))},
              "mean_spikes_per_output_neuron": {k: float(counts[k].mean()) for k in names}}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.figure:
        _figure(counts, result, args.figure)
    return 0


def _figure(counts: dict[str, torch.Tensor], result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
    top = float(max(c.max() for c in counts.values())) + 1
    for ax, name in zip(axes, ("exact", "peer", "snntorch"), strict=True):
        ax.scatter(counts["original"].flatten(), counts[name].flatten(), s=4, alpha=0.2)
        ax.plot([0, top], [0, top], color="grey", lw=0.8)
        ax.set_title(f"{name}: accuracy {100 * result['accuracy'][name]:.2f} %, "
                     f"cosine {result['output_cosine_to_original'][name]:.3f}", fontsize=9)
        ax.set_xlabel("output spike count, iirsnn (original)")
    axes[0].set_ylabel("output spike count after the NIR transfer")
    fig.suptitle(f"{result['experiment']}: {result['samples']} test samples, original accuracy "
                 f"{100 * result['accuracy']['original']:.2f} %", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
