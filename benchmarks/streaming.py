"""Throughput of streaming inference (``iirsnn.nn.Stream``, chunks of t steps) beside the whole-sequence call.

    python benchmarks/streaming.py [--spec 500-500-10] [--steps 400] [--batch 1,16] [--chunks 1,10,100]

Prints steps per second (time steps of the whole batch) for each batch size and chunk length, with the
whole sequence in one call as the reference; the input is Bernoulli(0.2) spikes over 784 channels.
"""

from __future__ import annotations

import argparse
import functools
import time

import torch

from iirsnn import nn as inn
from iirsnn.models import from_spec


def steps_per_second(run, steps: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return steps / best


def stream_all(net: torch.nn.Module, chunks: tuple[torch.Tensor, ...]) -> None:
    with inn.Stream(net) as stream:
        for chunk in chunks:
            stream(chunk)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="500-500-10")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--chunks", default="1,10,100")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = from_spec(args.spec, (784,)).eval()
    for batch in (int(b) for b in args.batch.split(",")):
        x = (torch.rand(args.steps, batch, 784) < 0.2).float()
        with torch.no_grad():
            whole = steps_per_second(functools.partial(net, x), args.steps)
        print(f"batch {batch:3d}  whole sequence      {whole:10.0f} steps/s")
        for t in (int(c) for c in args.chunks.split(",")):
            rate = steps_per_second(functools.partial(stream_all, net, torch.split(x, t)), args.steps)
            print(f"batch {batch:3d}  chunks of {t:4d} steps {rate:10.0f} steps/s  ({rate / whole:.2f} of whole)")


if __name__ == "__main__":
    main()
