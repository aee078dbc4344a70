"""Dense float32 products of the cpu backend (every layer's input gradient, the dense path of spike products):
through oneDNN where MKL is slow, else through torch's matmul (MKL).

MKL chooses its float32 kernels by CPU vendor. On the AMD EPYC (Zen 4) of the build machines its sgemm ran the
temporal network's input-gradient shapes ([4800, 300] x [300, 500] and the like) at 80-130 GFLOP/s and oneDNN's
(torch's mkldnn linear, the same AVX-512 FMAs) at 150-180: 9.5 against 15.7 ms for the largest, and the temporal
training step 97 -> 87 ms (benchmarks/RESULTS.md, session 11). On Intel cores MKL ran a 2048^2 product at 163
GFLOP/s, at the machine's floor, and stays.

``iirsnn.config.dense_gemm`` chooses: ``"auto"`` (oneDNN on x86 CPUs whose vendor is not GenuineIntel, when torch
was built with it; elsewhere, unmeasured, torch's matmul), ``"mkl"`` (torch's matmul everywhere) or ``"onednn"``.
The result lands in a
buffer of :mod:`iirsnn.kernels.buffers` either way (oneDNN's linear has no ``out=``: its result is copied, ~10 % of
the product, so that a step's large gradients stay on cached mappings instead of being faulted in page by page).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

from iirsnn import config
from iirsnn.kernels import buffers

CHOICES = ("auto", "mkl", "onednn")


@functools.cache
def _onednn_linear():
    """torch's oneDNN linear (``mkldnn::_linear_pointwise``), or None when this build of torch lacks it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


@functools.cache
def _cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def uses_onednn() -> bool:
    """Whether float32 products go through oneDNN under the current ``config.dense_gemm``."""
    choice = config.dense_gemm
    if choice not in CHOICES:
        raise ValueError(f"iirsnn.config.dense_gemm must be one of {CHOICES}, got {choice!r}")
    if choice == "mkl":
        return False
    if _onednn_linear() is None:
        if choice == "onednn":
            raise RuntimeError("iirsnn.config.dense_gemm = 'onednn', but this build of torch has no oneDNN linear "
                               "(torch.backends.mkldnn is unavailable)")
        return False
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return choice == "onednn" or (x86 and _cpu_vendor() not in ("", "GenuineIntel"))


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for a [M, K] and b [K, N] on the CPU: [M, N] in a cached buffer, or an autograd-recorded product
    when autograd records (create_graph: neither ``out=`` nor oneDNN's linear is differentiable). oneDNN has no
    primitive for an empty dimension: those go through torch's matmul."""
    if torch.is_grad_enabled():
        return a @ b
    out = buffers.empty((a.shape[0], b.shape[1]), a.dtype)
    if a.dtype == torch.float32 and b.dtype == torch.float32 and min(a.shape + b.shape) > 0 and uses_onednn():
        out.copy_(_onednn_linear()(a, b.t(), None, "none", [], ""))  # linear(a, w) = a w^T with w = b^T
        return out
    return torch.matmul(a, b, out=out)
