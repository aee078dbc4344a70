"""The figures of one run directory: training curves, and from its selected checkpoint the paper's
Figure 3 (reconstructions, from the run's ``probes.pt``), Figure 4 (hidden-layer rate map of 64 samples)
and Figure 5 (initial against learned synapse kernels, when the kernels were learned)."""

from __future__ import annotations

from pathlib import Path

import torch

from iirsnn.figures.curves import plot_curves
from iirsnn.figures.kernels import plot_kernels, synapse_coefficients
from iirsnn.figures.rasters import plot_reconstruction
from iirsnn.figures.rate_map import plot_rate_map

RATE_MAP_SAMPLES = 64


def draw_run(run_dir: str | Path, root: str | None = None) -> list[Path]:
    """Draw every figure the run supports into ``run_dir/figures/``; returns their paths."""
    from iirsnn.models import network_from_config
    from iirsnn.train import checkpoint

    run_dir = Path(run_dir)
    out = run_dir / "figures"
    paths = [out / "curves.png"]
    plot_curves(run_dir, paths[0])
    best = run_dir / checkpoint.BEST
    if not best.is_file():
        return paths
    state = checkpoint.load(best)
    build = state["model_build"]
    if build.get("kind") == "lstm":
        return paths
    model = checkpoint.rebuild_model(state)
    learnable = bool(build.get("options", {}).get("learnable_synapse"))
    if learnable:
        initial = network_from_config(build)
        for layer, (before, after) in enumerate(zip(synapse_coefficients(initial), synapse_coefficients(model),
                                                    strict=True)):
            paths.append(out / f"kernels-layer{layer}.png")
            plot_kernels(before, after, paths[-1])
    probes = run_dir / "probes.pt"
    if probes.is_file():
        probe = torch.load(probes, weights_only=True)
        epochs = sorted(probe["outputs"])
        shown = {f"epoch {e}": probe["outputs"][e].float() for e in ([epochs[0], epochs[-1]] if len(epochs) > 1
                                                                     else epochs)}
        paths.append(out / "reconstruction.png")
        plot_reconstruction(probe["target"].float(), probe["input"].float(), shown, paths[-1])
    else:
        path = _rate_map(state, model, out / "rate_map.png", root)
        if path is not None:
            paths.append(path)
    return paths


def _rate_map(state: dict, model: torch.nn.Module, path: Path, root: str | None) -> Path | None:
    """Figure 4 from the first hidden layer's rates on up to 64 test samples (None: a one-layer network)."""
    from iirsnn.nn import SpikingLayer
    from iirsnn.train import build
    from iirsnn.train.config import config_from_dict

    layers = [m for m in model.modules() if isinstance(m, SpikingLayer)]
    if len(layers) < 2:
        return None
    cfg = config_from_dict(state["config"])
    task = build.task_of(cfg, root)
    split = "test" if task.size("test") else "val"
    batch = task.batch(split, torch.arange(min(RATE_MAP_SAMPLES, task.size(split))), 1)
    encode = build.encoder_of(cfg, task)
    seen = {}
    handle = layers[0].register_forward_hook(lambda m, i, o: seen.setdefault("spikes", o.detach()))
    model.eval()
    with torch.no_grad():
        model(encode(batch.x))
    handle.remove()
    rates = seen["spikes"].flatten(2).mean(0)  # [S, N]
    plot_rate_map(rates, batch.y, path, class_names=task.classes)
    return path
