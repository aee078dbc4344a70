"""No subnormal floats: every backend flushes at the cut-off of iirsnn.subnormals, and a network driven far
below threshold over hundreds of steps writes none, forward or backward.

Checked per case: every layer's output and the gradient flowing into it, every tensor saved for the backward
(saved-tensor hooks see what the autograd functions and torch's own ops keep), every parameter and input
gradient, and every input and output of the dense products (matmuls and convolutions) handed to torch. The
same cases on the code without flushing hold thousands of subnormal entries (see test_the_probe_finds_them).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import iirsnn.functional as F
from iirsnn import subnormals
from iirsnn.functional.surrogates import get_surrogate
from iirsnn.kernels import cpu as cpu_kernels
from iirsnn.kernels import gpu
from iirsnn.models import from_spec

_needs_cpu = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
_needs_triton = pytest.mark.skipif(not gpu.available_for("cpu"), reason="Triton interpreter unavailable")
BACKENDS = ("torch", pytest.param("cpu", marks=_needs_cpu), pytest.param("gpu", marks=_needs_triton))
SURROGATES = ("gaussian", "fast_sigmoid", "sigmoid", "arctan", "triangle")
RESETS = ("filter", "hard")


# ------------------------------------------------------------------------------------------ the cut-offs


def test_cutoffs_keep_sums_exact_and_products_normal():
    """float32/bfloat16/float64: kept values are multiples of the smallest normal (so no sum of them is
    subnormal) and a margin of 2^-26 for products remains; float16 flushes exactly its subnormals."""
    for dtype, mantissa_bits in ((torch.float32, 23), (torch.bfloat16, 7), (torch.float64, 52)):
        tiny, c = torch.finfo(dtype).tiny, subnormals.cutoff(dtype)
        assert c >= tiny * 2.0**mantissa_bits, dtype  # its last mantissa bit is worth >= tiny
        assert c * 2.0**-26 >= tiny, dtype
        assert c <= 2.0**-100, dtype  # far below anything an optimiser acts on
    assert subnormals.cutoff(torch.float16) == torch.finfo(torch.float16).tiny
    assert subnormals.square_cutoff(torch.float32) ** 2 == subnormals.cutoff(torch.float32)
    with pytest.raises(TypeError, match=r"no subnormal cut-off for torch\.int64"):
        subnormals.cutoff(torch.int64)


def test_flush_keeps_nan_inf_and_values_at_the_cutoff():
    c = subnormals.cutoff(torch.float32)
    x = torch.tensor([c * 0.999, -c * 0.999, c, -c, 1e-35, math.nan, math.inf, 0.5])
    out = subnormals.flush_(x.clone())
    assert out[:2].eq(0).all() and out[4] == 0
    assert out[2] == c and out[3] == -c and out[7] == 0.5
    assert math.isnan(out[5]) and math.isinf(out[6])
    assert subnormals.count(torch.tensor([1e-40, 1e-30, 0.0, -1e-42])) == 2


def _at_cutoff(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Values just below and just above the cut-off, and what a flushing kernel must make of them."""
    c = subnormals.cutoff(dtype)
    values = torch.tensor([c * 0.75, c * 1.25, -c * 0.75, -c * 1.25, 0.25], dtype=dtype)
    expected = torch.tensor([0.0, c * 1.25, 0.0, -c * 1.25, 0.25], dtype=dtype)
    return values, expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("P", [0, 1])
def test_filter_flushes_at_the_cutoff(backend, dtype, P):
    """An identity filter (beta 1, and a zero feedback tap) passes what is above the cut-off, exactly."""
    values, expected = _at_cutoff(dtype)
    x = values.view(1, 1, -1).repeat(3, 1, 1)
    out = F.synapse_filter(x, torch.zeros(P, dtype=dtype), torch.tensor([1.0], dtype=dtype), backend=backend)
    torch.testing.assert_close(out, expected.view(1, 1, -1).expand(3, 1, -1), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", RESETS)
def test_neuron_flushes_at_the_cutoff(backend, dtype, reset):
    """A neuron without leak far below its threshold: V is its current, flushed at the cut-off."""
    values, expected = _at_cutoff(dtype)
    current = values.view(1, 1, -1).repeat(2, 1, 1)
    _, V = F.neuron_scan(current, 0.0, 0.0, threshold=1.0, reset=reset, return_voltage=True, backend=backend)
    torch.testing.assert_close(V, expected.view(1, 1, -1).expand(2, 1, -1), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_surrogate_gradient_is_float64s_cut_at_the_cutoff(backend):
    """What the cut-off does to a float32 gradient, against float64 (which keeps every value): with no leak and
    no reset path, dL/dI = eps(V - V_th) dL/dO; potentials 3.6 to 5.6 below threshold put the Gaussian's eps
    from 1e-18 down to 1e-43. float32 gives exactly 0 where float64's value is below the cut-off, float64's
    value to 1e-4 where it is above, and no subnormal anywhere."""
    x = torch.linspace(3.6, 5.6, 400, dtype=torch.float64)
    current = (1.0 - x).view(1, 1, -1).repeat(2, 1, 1)
    g64, g32 = (_current_gradient(current.to(dtype), backend="reference" if dtype == torch.float64 else backend)
                for dtype in (torch.float64, torch.float32))
    c = subnormals.cutoff(torch.float32)
    below, above = g64 < c * (1 - 1e-4), g64 > c * (1 + 1e-3)
    assert below.sum() > 50 and above.sum() > 50  # both sides of the cut-off are populated
    assert (g32[below] == 0).all()
    torch.testing.assert_close(g32[above].double(), g64[above], rtol=1e-4, atol=0)
    assert subnormals.count(g32) == 0


def _current_gradient(current: torch.Tensor, backend: str) -> torch.Tensor:
    current = current.clone().requires_grad_(True)
    spikes = F.neuron_scan(current, 0.0, 0.0, detach_reset=True, backend=backend)
    spikes.sum().backward()
    return current.grad


# ------------------------------------------------------------------------- a network far below threshold


class _DenseProducts(TorchDispatchMode):
    """Records the subnormal entries of every input and output of the matmuls and convolutions run inside."""

    def __init__(self, found: dict[str, int]) -> None:
        super().__init__()
        self.found = found

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__
        if "mm" in name or "conv" in name:
            for t in _tensors((args, kwargs, out)):
                _record(self.found, f"{name} operand", t)
        return out


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _record(found: dict[str, int], what: str, t: torch.Tensor) -> None:
    n = subnormals.count(t)
    if n:
        found[what] = found.get(what, 0) + n


def _far_below_threshold(kind: str, surrogate: str, reset: str, backend: str, learnable: bool):
    """A network with large weights and negative biases (potentials spread far below threshold), fast synapse
    and reset decays and a slow membrane, fed spikes in the first 40 of 320 steps only, so that states and
    adjoints decay through the subnormal range during the silence."""
    torch.manual_seed(3)
    spec, shape = ("24-16-4", (20,)) if kind == "dense" else ("4C3-6C3-4", (2, 5, 5))
    net = from_spec(spec, shape, synapse="dual_exp", tau_m=3.0, tau_s=1.0, leak=0.97, reset_tau=1.0,
                    surrogate=get_surrogate(surrogate), reset=reset, backend=backend, learnable_synapse=learnable,
                    learnable_neuron=learnable, init="torch")
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                p.normal_(0.0, 6.0 / math.sqrt(p[0].numel()))
            elif name.endswith("bias"):
                p.uniform_(-3.0, -0.5)
    x = torch.zeros(320, 2, *shape)
    x[:40] = (torch.rand(40, 2, *shape) < 0.3).float()
    return net, x.requires_grad_(True)


def _probe(net: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Subnormal entries found, by where, in one forward and backward of ``net`` on ``x`` with both losses."""
    found: dict[str, int] = {}

    def keep_output(module, _inputs, out):
        _record(found, f"{type(module).__name__} output", out)
        if out.requires_grad:
            out.register_hook(lambda g: _record(found, f"gradient into {type(module).__name__}", g))

    hooks = [m.register_forward_hook(keep_output) for m in net]
    try:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: (_record(found, "saved tensor", t), t)[1],
                                                      lambda t: t), _DenseProducts(found):
            out = net(x)
            labels = torch.arange(x.shape[1]) % out.shape[2]
            target = torch.zeros_like(out)
            loss = F.spike_count_cross_entropy(out, labels) + F.van_rossum_distance(out, target)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    for name, p in [("input", x), *net.named_parameters()]:
        _record(found, f"gradient of {name}", p.grad)
    return found


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize(("backend", "learnable"), [("torch", False), pytest.param("cpu", False, marks=_needs_cpu),
                                                    pytest.param("cpu", True, marks=_needs_cpu)])
def test_network_far_below_threshold_writes_no_subnormal(backend, learnable, kind, surrogate, reset):
    """cpu without learnable kernels runs the fused passes (the register forward in float32 where the CPU has
    AVX-512), with learnable ones the separate filter and neuron scans; torch is the portable backend."""
    net, x = _far_below_threshold(kind, surrogate, reset, backend, learnable)
    assert _probe(net, x) == {}


@_needs_triton
@pytest.mark.parametrize("reset", RESETS)
def test_gpu_kernels_far_below_threshold_write_no_subnormal(reset):
    """The Triton kernels (in the interpreter here) on the dense network with the paper's surrogate."""
    net, x = _far_below_threshold("dense", "gaussian", reset, "gpu", learnable=True)
    assert _probe(net, x) == {}


def test_the_probe_finds_them():
    """The probe is not blind: the same network on the reference backend (the plain equations, which do not
    flush) holds subnormal potentials, gradients and products."""
    net, x = _far_below_threshold("dense", "gaussian", "filter", "reference", learnable=True)
    found = _probe(net, x)
    assert sum(found.values()) > 100, found
    assert any(k.startswith("gradient") for k in found) and any("operand" in k for k in found), found
