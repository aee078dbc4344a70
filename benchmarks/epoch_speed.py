"""Training-epoch time of the paper's MNIST networks here and in the code researchers would otherwise use.

  mnist-mlp   784-500-500-10, T 25, batch 64, analog pixels at every step, dropout 0.3, learned dual-exponential
              kernels, Adam 1e-4, cross-entropy of spike counts: the recipe ``mnist-mlp`` against the paper
              authors' own layers (``snn_lib`` of github Snow-Crash/snn-iir, their ``snn_mlp_1`` network)
  mnist-conv  64C3-32C3-32C3-256-10, T 25, batch 64, Bernoulli rate-coded pixels, dropout 0.3: the recipe
              ``mnist-conv`` against the same network in snnTorch (``Synaptic`` neurons: the same
              dual-exponential synapse, fixed)

Both sides get the same real MNIST batches (the ``--data`` root, default ``$IIRSNN_DATA``), the same thread
count, the same loss and optimizer, and run one after the other in this process. A training step is
forward, loss, backward and Adam; the epoch figure is the median step times the steps of one epoch of the
recipe (50,000 training images), without data loading, augmentation and evaluation, which cost the same
to both. Prints a table and, with ``--json``, writes every figure.

  python benchmarks/epoch_speed.py --snn-iir /path/to/snn-iir --workloads mnist-mlp,mnist-conv --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time

import torch
from process_settings import cpu_model  # benchmarks/: the CPU named as every figure names it

from iirsnn.data.mnist import MNIST
from iirsnn.experiments import recipe
from iirsnn.train import build

TRAIN_IMAGES = 50_000  # the recipes' training split: 60,000 less the 10,000 validation images


def _batches(root: str | None, batch: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of real MNIST training images [B, 1, 28, 28] in [0, 1] and labels [B]."""
    data = MNIST(root, train=True)
    order = torch.randperm(len(data.targets), generator=torch.Generator().manual_seed(0))
    out = []
    for i in range(count):
        index = order[i * batch:(i + 1) * batch]
        out.append((data.images[index].unsqueeze(1).float() / 255, data.targets[index]))
    return out


def ours(workload: str, precision: str = "fp32"):
    """The recipe's network and encoder: images [B, 1, 28, 28] -> output spikes [T, B, 10]."""
    cfg = recipe(workload).config()
    cfg.precision = precision
    encode = build.encoder_of(cfg, _StaticTask())
    probe = encode(torch.zeros(1, 1, 28, 28))
    model = build.build_model(cfg, _StaticTask(), tuple(probe.shape[2:]))
    return model, lambda images: model(encode(images)), cfg.batch, cfg.encoder.options["steps"]


class _StaticTask:
    """What ``build`` reads of a task, for MNIST."""

    static, kind, n_outputs, name = True, "classification", 10, "mnist"


def authors_mlp(path: str, steps: int, batch: int):
    """Their ``snn_mlp_1`` network from their layers: dual_exp_iir_layer + neuron_layer x 3, dropout 0.3
    after the hidden layers; input [B, 784, T] time-last, as their script feeds it."""
    sys.path.insert(0, path)
    from snn_lib.snn_layers import dual_exp_iir_layer, neuron_layer

    class AuthorsMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [784, 500, 500, 10]
            self.axons = torch.nn.ModuleList(dual_exp_iir_layer((n,), steps, batch, 4, 1, True) for n in sizes[:-1])
            self.neurons = torch.nn.ModuleList(neuron_layer(n, m, steps, batch, 4, True, False)
                                               for n, m in itertools.pairwise(sizes))
            self.dropout = torch.nn.Dropout(0.3)

        def forward(self, x):
            for i, (axon, neuron) in enumerate(zip(self.axons, self.neurons, strict=True)):
                x, _ = neuron(axon(x)[0])
                if i < len(self.neurons) - 1:
                    x = self.dropout(x)
            return x

    model = AuthorsMLP()

    def run(images):
        x = images.flatten(1).unsqueeze(0).repeat(steps, 1, 1).permute(1, 2, 0)  # their x.repeat(T).permute
        return model(x).permute(2, 0, 1)  # [T, B, 10] for the common loss

    return model, run


def snntorch_conv(steps: int):
    """The recipe's conv network in snnTorch: Conv2d/Linear + Synaptic (alpha = exp(-1/tau_s), beta =
    exp(-1/tau_m)), dropout 0.3 between layers, Bernoulli rate coding of the pixels."""
    import snntorch as snn

    alpha, beta = math.exp(-1 / 1.0), math.exp(-1 / 4.0)

    class SnnTorchConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([
                torch.nn.Conv2d(1, 64, 3, padding=1), torch.nn.Conv2d(64, 32, 3, padding=1),
                torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Linear(32 * 28 * 28, 256), torch.nn.Linear(256, 10)])
            self.neurons = torch.nn.ModuleList(snn.Synaptic(alpha=alpha, beta=beta, threshold=1.0)
                                               for _ in self.layers)
            self.dropout = torch.nn.Dropout(0.3)

        def forward(self, spikes):  # [T, B, 1, 28, 28]
            states = [neuron.init_synaptic() for neuron in self.neurons]
            out = []
            for t in range(spikes.shape[0]):
                x = spikes[t]
                for i, (layer, neuron) in enumerate(zip(self.layers, self.neurons, strict=True)):
                    if i == 3:
                        x = x.flatten(1)
                    if i:
                        x = self.dropout(x)
                    x, syn, mem = neuron(layer(x), *states[i])
                    states[i] = (syn, mem)
                out.append(x)
            return torch.stack(out)

    model = SnnTorchConv()
    return model, lambda images: model((torch.rand(steps, *images.shape) < images).float())


def time_steps(model, run, batches, warmup: int = 2) -> dict:
    """Median seconds of a training step (forward, spike-count cross-entropy, backward, Adam) over
    ``batches`` after ``warmup`` untimed ones; the output firing rate of the last."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    times, rate = [], 0.0
    for i, (images, labels) in enumerate(batches):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = run(images)
        loss = torch.nn.functional.cross_entropy(out.sum(0), labels)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        rate = float(out.detach().mean())
    return {"step_s": statistics.median(times), "steps_timed": len(times), "out_rate": rate}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="mnist-mlp,mnist-conv")
    ap.add_argument("--snn-iir", help="a checkout of github Snow-Crash/snn-iir (for mnist-mlp)")
    ap.add_argument("--data", default=None, help="the data root (default $IIRSNN_DATA)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also time iirsnn with precision bf16-mixed")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for workload in args.workloads.split(","):
        torch.manual_seed(0)
        model, run, batch, steps = ours(workload)
        batches = _batches(args.data, batch, args.steps + 2)
        sides = [("iirsnn", model, run)]
        if args.bf16:
            torch.manual_seed(0)
            bf16_model, bf16_run, _, _ = ours(workload, "bf16-mixed")
            sides.append(("iirsnn bf16-mixed", bf16_model, bf16_run))
        if workload == "mnist-mlp":
            if not args.snn_iir:
                ap.error("mnist-mlp compares with the authors' code: give --snn-iir PATH")
            sides.append(("snn-iir (authors)", *authors_mlp(args.snn_iir, steps, batch)))
        elif workload == "mnist-conv":
            sides.append(("snnTorch", *snntorch_conv(steps)))
        else:
            ap.error(f"unknown workload {workload!r}: mnist-mlp or mnist-conv")
        for name, side_model, side_run in sides:
            torch.manual_seed(0)
            figures = time_steps(side_model, side_run, batches)
            epoch_s = figures["step_s"] * math.ceil(TRAIN_IMAGES / batch)
            results.append({"workload": workload, "library": name, "batch": batch, "T": steps, **figures,
                            "epoch_s": epoch_s, "threads": args.threads,
                            "cpu": cpu_model(), "torch": torch.__version__})
            print(f"{workload:10s} {name:18s} {figures['step_s'] * 1e3:9.1f} ms/step  epoch {epoch_s:8.1f} s  "
                  f"output rate {figures['out_rate']:.3f}", flush=True)
        base = next(r for r in results if r["workload"] == workload and r["library"] == "iirsnn")
        for r in results:
            if r["workload"] == workload and r is not base:
                print(f"{workload:10s} {r['library']}: {r['step_s'] / base['step_s']:.2f}x the step time of iirsnn")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
