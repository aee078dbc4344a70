"""Accuracy of the bf16-mixed precision option against fp32 on real data (issue 9's condition).

The MNIST MLP 784-500-500-10 (dual-exponential synapses, tau_m 4, tau_s 1, T 25, Bernoulli rate
coding of the pixel intensities) is trained for two epochs with the same seed in fp32 and in
bf16-mixed; both are tested on the 10,000 test images. Reads the IDX files directly (the dataset
loaders are a later issue).

    python benchmarks/bf16_accuracy.py --data ../shared/data/mnist --json benchmarks/results/bf16_accuracy.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from iirsnn.functional import bernoulli_rate, spike_count_cross_entropy
from iirsnn.models import from_spec
from iirsnn.process import tune_process


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or raw) as a numpy array, checking the header against the file size."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (bad magic)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {len(body)} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, 784] in [0, 1] and labels [N] of the MNIST split ``train`` or ``t10k``."""
    images = read_idx(root / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{split}-labels-idx1-ubyte.gz")
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255), torch.from_numpy(
        labels.astype(np.int64))


def train_and_test(precision: str, data, epochs: int, T: int, batch: int, lr: float, seed: int) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = from_spec("500-500-10", (784,), precision=precision)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(y_train), generator=g)
        for i in tqdm(range(0, len(order), batch), desc=f"{precision} epoch {epoch + 1}", leave=False):
            idx = order[i:i + batch]
            spikes = bernoulli_rate(x_train[idx], T, generator=g)
            opt.zero_grad()
            spike_count_cross_entropy(model(spikes), y_train[idx]).backward()
            opt.step()
    train_s = time.perf_counter() - start
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y_test), 500):
            spikes = bernoulli_rate(x_test[i:i + 500], T, generator=g)
            correct += int((model(spikes).sum(0).argmax(1) == y_test[i:i + 500]).sum())
    return dict(precision=precision, test_accuracy=correct / len(y_test), train_seconds=train_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.environ.get("IIRSNN_DATA", "../shared/data"), "mnist"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--T", type=int, default=25)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tune_process()  # the allocator mode of IIRSNN_MALLOC (default reuse), as the CLI's
    torch.set_num_threads(os.cpu_count() or 1)
    root = Path(args.data)
    data = (load(root, "train"), load(root, "t10k"))
    results = [train_and_test(p, data, args.epochs, args.T, args.batch, args.lr, args.seed)
               for p in ("fp32", "bf16-mixed")]
    for r in results:
        print(f"{r['precision']:11s} test accuracy {100 * r['test_accuracy']:.2f} %  train {r['train_seconds']:.0f} s")
    gap = 100 * (results[0]["test_accuracy"] - results[1]["test_accuracy"])
    print(f"fp32 minus bf16-mixed: {gap:+.2f} points (condition: within 0.3)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json + ".tmp"
        Path(tmp).write_text(json.dumps(dict(vars(args), results=results, gap_points=gap), indent=1))
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
