"""Training memory of peers.py's temporal network at any lengths: peak RSS per T and bytes per neuron-step.

peers.py measures bytes per neuron-step as the slope of peak RSS from T 300 to T 1200; with iirsnn's default
``checkpoint_chunk="auto"`` the first trains whole and the second in chunks. This script runs the same network,
loss and steps (``peers.run_one``, each length in its own process, as peers.py does) at the lengths given, so
that the slope within one regime can be read too:

    python benchmarks/memory_slope.py --T 1200 2400 [--lib iirsnn] [--json out.json]
    python benchmarks/memory_slope.py --T 300 1200 --lib floor    # peers.py's own share: a model that keeps nothing

``--lib floor`` runs peers.py's step (input, targets, the filtered-trace loss and its backward, Adam) on a model
whose output is its input times one weight per channel: it keeps nothing per time step, so its slope is what the
benchmark itself makes grow with T (its tensors and the allocator's holes between them), the floor under every
library's figure.

Needs ../shared/bench/peers.py (or ``--peers DIR``). Environment variables such as IIRSNN_CHECKPOINT_CHUNK
reach the measured processes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import subprocess
import sys

from iirsnn.atomic import atomic_write_json

DEFAULT_PEERS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "bench"


FLOOR_MODEL = (
    "import torch; "
    "Floor = type('Floor', (torch.nn.Module,), {'__init__': lambda self, w: (torch.nn.Module.__init__(self), "
    "setattr(self, 'weight', torch.nn.Parameter(torch.ones(w['sizes'][0]))))[0], "
    "'forward': lambda self, x: x * self.weight}); "
    "peers.BUILDERS['floor'] = lambda w: (Floor(w), 'tbn'); "
    "calibrate, init = peers._calibrate, peers._init_active; "
    "peers._calibrate = lambda m, f: None if isinstance(m, Floor) else calibrate(m, f); "
    "peers._init_active = lambda m, w: None if isinstance(m, Floor) else init(m, w); "
)
"""Child-process code that adds the library ``floor`` to peers.py: the input times a weight per channel (the
temporal network's input and output widths are equal), with nothing to calibrate."""


def measure(peers_dir: pathlib.Path, lib: str, T: int) -> dict:
    """peers.run_one of the temporal-long workload at T steps, in a fresh process: its result dict."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import peers; "
            + (FLOOR_MODEL if lib == "floor" else "") +
            "w = dict(peers.WORKLOADS['temporal-long'], T=int(sys.argv[3])); peers.WORKLOADS['measured'] = w; "
            "print('RESULT', json.dumps(peers.run_one(sys.argv[2], 'measured')))")
    run = subprocess.run([sys.executable, "-c", code, str(peers_dir), lib, str(T)], capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"{lib} at T {T} failed:\n{run.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[1200, 2400], help="sequence lengths (at least two)")
    ap.add_argument("--lib", default="iirsnn", help="a library of peers.py's BUILDERS, or floor (see above)")
    ap.add_argument("--peers", type=pathlib.Path, default=DEFAULT_PEERS, help="the directory of peers.py")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if len(args.T) < 2 or any(t < 1 for t in args.T):
        ap.error("--T needs at least two positive lengths")
    if not (args.peers / "peers.py").is_file():
        ap.error(f"no peers.py in {args.peers} (give --peers DIR)")
    sys.path.insert(0, str(args.peers))
    import peers

    w = peers.WORKLOADS["temporal-long"]
    neurons = sum(w["sizes"][1:]) * w["B"]
    rows = [measure(args.peers, args.lib, T) for T in sorted(args.T)]
    for r in rows:
        print(f"T {r['T']:5d}  train {r['train_s']:.3f} s/step  peak RSS {r['peak_rss_mb']:.0f} MB")
    slopes = []
    for lo, hi in itertools.pairwise(rows):
        slope = (hi["peak_rss_mb"] - lo["peak_rss_mb"]) * 2**20 / ((hi["T"] - lo["T"]) * neurons)
        ratio = hi["train_s"] / lo["train_s"]
        slopes.append(dict(T=[lo["T"], hi["T"]], bytes_per_neuron_step=slope, time_ratio=ratio))
        print(f"T {lo['T']} -> {hi['T']}: {slope:.1f} bytes per neuron-step, step time x{ratio:.2f}")
    if args.json:
        atomic_write_json(args.json, dict(lib=args.lib, runs=rows, slopes=slopes))


if __name__ == "__main__":
    main()
