"""Time and new page faults of each training step in a fresh process, iirsnn on a peers.py workload.

    /tmp/peers-venv/bin/python benchmarks/fault_steps.py temporal [--steps 10]

Prints "<ms>ms/<minor faults>" per step: in the default allocator mode the heap keeps growing for
the first few steps, which peers.py's three-step median still sees. Needs ../shared/bench/peers.py.
"""
import argparse
import math
import pathlib
import resource
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "bench"))
import peers

import iirsnn

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("workload", choices=list(peers.WORKLOADS))
ap.add_argument("--steps", type=int, default=10)
args = ap.parse_args()
iirsnn.tune_process()  # the allocator mode of IIRSNN_MALLOC (default reuse), as the CLI's
torch.set_num_threads(2)
w = peers.WORKLOADS[args.workload]
torch.manual_seed(0)
model, _ = peers.BUILDERS["iirsnn"](w)
peers._init_active(model, w)
T, B = w["T"], w["B"]
in_shape = (T, B, 1, 28, 28) if w["sizes"] is None else (T, B, w["sizes"][0])
x = (torch.rand(in_shape) < w["rate"]).float()
n_out = 10 if w["sizes"] is None else w["sizes"][-1]
labels = torch.randint(0, n_out, (B,))
a, b = math.exp(-1 / w["tau_m"]), math.exp(-1 / w["tau_s"])
target_trace = peers._trace((torch.rand(T, B, n_out) < 0.02).float(), a, b)
peers._calibrate(model, lambda: model(x))
opt = torch.optim.Adam(model.parameters(), lr=1e-4)


def step():
    opt.zero_grad(set_to_none=True)
    out = model(x)
    if w["loss"] == "count":
        loss = torch.nn.functional.cross_entropy(out.sum(0), labels)
    else:
        loss = ((peers._trace(out, a, b) - target_trace) ** 2).sum() / (2 * T)
    loss.backward()
    opt.step()


report = []
for _ in range(args.steps):
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    step()
    ms = (time.perf_counter() - t0) * 1000
    report.append(f"{ms:.1f}ms/{resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults}")
print(args.workload, " ".join(report))
