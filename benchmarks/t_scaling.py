"""The temporal network's training step at T 300 and T 1200, with a simple loss and with peers.py's trace loss.

    /tmp/peers-venv/bin/python benchmarks/t_scaling.py [--steps 5]

Separates the network's own growth in T from that of the benchmark's loss (median of --steps steps
after two warm-up steps, in one process). Needs ../shared/bench/peers.py.
"""
import argparse
import math
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "bench"))
import peers

import iirsnn

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--steps", type=int, default=5)
args = ap.parse_args()
iirsnn.tune_process()  # the allocator mode of IIRSNN_MALLOC (default reuse), as the CLI's
torch.set_num_threads(2)
median = {}
for wname in ("temporal", "temporal-long"):
    w = peers.WORKLOADS[wname]
    torch.manual_seed(0)
    model, _ = peers.build_iirsnn(w)
    peers._init_active(model, w)
    T, B = w["T"], w["B"]
    x = (torch.rand(T, B, 300) < w["rate"]).float()
    peers._calibrate(model, lambda model=model, x=x: model(x))
    a, b = math.exp(-1 / w["tau_m"]), math.exp(-1 / w["tau_s"])
    target_trace = peers._trace((torch.rand(T, B, 300) < 0.02).float(), a, b)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for kind in ("simple", "trace"):
        def step(model=model, x=x, opt=opt, T=T, a=a, b=b, target_trace=target_trace, kind=kind):
            opt.zero_grad(set_to_none=True)
            out = model(x)
            if kind == "simple":
                loss = out.square().sum()
            else:
                loss = ((peers._trace(out, a, b) - target_trace) ** 2).sum() / (2 * T)
            loss.backward()
            opt.step()

        step()
        step()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        median[wname, kind] = statistics.median(times)
        print(f"{wname:13s} {kind:6s} loss: {median[wname, kind] * 1000:.1f} ms", flush=True)
for kind in ("simple", "trace"):
    print(f"T 1200 / T 300, {kind} loss: {median['temporal-long', kind] / median['temporal', kind]:.2f}x")
