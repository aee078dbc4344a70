"""Dtypes, layouts, empty dimensions and devices through every public layer, against the reference backend.

Each case runs a public function or module (synapse_filter, neuron_scan, spiking_linear, spiking_conv 2-D and
1-D, spiking_chunk, the nn modules, from_spec networks), forward and backward, and either

- agrees with ``backend="reference"`` in float64 on the same values (the values the layer computes with: weights
  rounded to the input's dtype, then widened): spikes equal and gradients to round-off (1e-9 relative in float64,
  1e-4 in float32); float16 and bfloat16, which run on the portable torch backend, loosely (at most 5 % of the
  spikes differ, gradients point the same way: cosine similarity above 0.98); or
- raises the expected exception whose message names the offending tensor (mixed dtypes of input and weight or
  bias, integer and bool tensors, meta tensors, no time steps).

The cases run in one subprocess (``python tests/test_dtype_sweep.py --worker``), so that a crash of the compiled
kernels (an abort, a segfault) fails every case it did not finish, naming the one it died in, instead of taking
the test session with it. ``IIRSNN_SWEEP_INPROCESS=1`` runs them in the pytest process instead (for debugging).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import iirsnn
from iirsnn import nn as inn
from iirsnn.functional import FilterState, NeuronState, neuron_scan, presets, synapse_filter
from iirsnn.functional.chunk import spiking_chunk
from iirsnn.functional.layer import spiking_conv, spiking_linear
from iirsnn.models import from_spec
from iirsnn.nn.delay import DelayState

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
FLOATS = (F16, BF16, F32, F64)
HALVES = (F16, BF16)
T, B = 7, 3
CASES: dict[str, Callable[[], None]] = {}


def case(name: str, fn: Callable[[], None]) -> None:
    assert name not in CASES, name
    CASES[name] = fn


def short(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spikes(*shape: int, seed: int = 0, rate: float = 0.3) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen(seed)) < rate).double()


def normal(*shape: int, seed: int = 1, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=F64) * scale


DUAL = presets.dual_exp(4.0, 1.5, dtype=F64)


# ------------------------------------------------------------------------------- comparing with the reference

def _outputs_and_grads(forward: Callable[..., torch.Tensor], leaves: dict[str, torch.Tensor], backend: str | None):
    """forward(backend=..., **leaves) and the gradients of a fixed weighting of its output w.r.t. the grad leaves."""
    out = forward(backend=backend, **leaves)
    wanted = {k: v for k, v in leaves.items() if v.requires_grad}
    if not wanted:
        return out, {}
    weights = torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape).to(out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), list(wanted.values()), allow_unused=True)
    return out, {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(wanted.items(), grads, strict=True)}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) if b.numel() else 0.0


def coarsest(*dtypes: torch.dtype) -> torch.dtype:
    """The least precise of some floating dtypes (whose rounding bounds the agreement)."""
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def _close(name: str, got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, exact_spikes: bool) -> None:
    """got against the float64 reference, to the tolerance of ``dtype`` (the coarsest dtype it went through)."""
    got = got.detach().double()
    assert got.shape == ref.shape, f"{name}: shape {list(got.shape)}, reference {list(ref.shape)}"
    if got.numel() == 0:
        return
    if dtype in HALVES:
        if exact_spikes:
            mismatch = float((got != ref).double().mean())
            assert mismatch <= 0.05, f"{name}: {mismatch:.1%} of the spikes differ from the reference"
        else:
            cos = float(torch.nn.functional.cosine_similarity(got.flatten(), ref.flatten(), 0))
            assert cos > 0.98 or float(ref.abs().max()) == 0, f"{name}: cosine similarity {cos:.4f} to the reference"
        return
    if exact_spikes:
        assert torch.equal(got, ref), f"{name}: {int((got != ref).sum())} spikes differ from the reference"
        return
    tol = 1e-9 if dtype == F64 else 1e-4
    assert _rel(got, ref) < tol, f"{name}: relative error {_rel(got, ref):.2e} to the reference (tolerance {tol})"


def agrees(forward: Callable[..., torch.Tensor], leaves: dict[str, torch.Tensor], dtype: torch.dtype, *,
           spiking: bool = True, must_spike: bool = True) -> None:
    """forward on ``leaves`` (any dtypes; the layer computes in ``dtype``) with the default backend agrees with
    backend="reference" on float64 copies of the values it computes with (floats rounded to ``dtype``)."""
    got_out, got_grads = _outputs_and_grads(forward, leaves, None)
    assert got_out.dtype == dtype, f"output is {got_out.dtype}, expected {dtype}"
    ref_leaves = {k: (v.detach().to(dtype).double() if v.is_floating_point() else v).requires_grad_(v.requires_grad)
                  for k, v in leaves.items()}
    ref_out, ref_grads = _outputs_and_grads(forward, ref_leaves, "reference")
    if must_spike and spiking and ref_out.numel():
        rate = float(ref_out.detach().mean())
        assert 0.01 < rate < 0.9, f"the case must spike (rate {rate:.3f})"
    _close("output", got_out, ref_out.detach(), dtype, exact_spikes=spiking)
    for name, g in ref_grads.items():
        assert got_grads[name].dtype == leaves[name].dtype, f"gradient of {name} is {got_grads[name].dtype}"
        _close(f"gradient of {name}", got_grads[name], g, coarsest(dtype, leaves[name].dtype), exact_spikes=False)
    if "x" in ref_grads and ref_out.numel() and spiking and leaves["x"].numel():
        assert float(ref_grads["x"].abs().max()) > 0, "no gradient reaches x"


def module_agrees(make: Callable[[str | None], torch.nn.Module], x: torch.Tensor, dtype: torch.dtype, *,
                  spiking: bool = True, param_dtype: torch.dtype | None = None) -> None:
    """make(backend) (its parameters converted to ``param_dtype``, default ``dtype``) on x, against make("reference")
    with the same parameters widened to float64: outputs and the gradients of x and of every parameter."""
    module = make(None).to(param_dtype or dtype)
    reference = make("reference").double()
    reference.load_state_dict({k: v.to(dtype).double() for k, v in module.state_dict().items()})
    got_out, got_grads = _module_run(module, x.detach().clone().requires_grad_())
    ref_out, ref_grads = _module_run(reference, x.detach().to(dtype).double().requires_grad_())
    assert got_out.dtype == dtype, f"output is {got_out.dtype}, expected {dtype}"
    if spiking:
        rate = float(ref_out.detach().mean())
        assert 0.01 < rate < 0.9, f"the case must spike (rate {rate:.3f})"
    tolerance = coarsest(dtype, param_dtype or dtype)  # e.g. alpha computed from float32 parameters
    _close("output", got_out, ref_out.detach(), tolerance, exact_spikes=spiking)
    for name, g in ref_grads.items():
        _close(f"gradient of {name}", got_grads[name], g, tolerance, exact_spikes=False)


def _module_run(module: torch.nn.Module, x: torch.Tensor):
    out = module(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape).to(out.dtype)
    params = dict(module.named_parameters())
    grads = torch.autograd.grad((out * weights).sum(), [x, *params.values()], allow_unused=True)
    named = dict(zip(["x", *params], grads, strict=True))
    return out, {k: torch.zeros(1) if g is None else g for k, g in named.items()}


def raises(exc: type[Exception], names: str, fn: Callable[[], object]) -> Callable[[], None]:
    """A case that expects ``exc`` with a message matching ``names`` (a regex naming the offending tensor)."""
    def run() -> None:
        try:
            fn()
        except exc as e:
            assert re.search(names, str(e)), f"{type(e).__name__} does not name {names!r}: {e}"
            return
        except Exception as e:  # the wrong exception is the failure reported
            raise AssertionError(f"expected {exc.__name__} naming {names!r}, got {type(e).__name__}: {e}") from e
        raise AssertionError(f"expected {exc.__name__} naming {names!r}, nothing was raised")
    return run


# ------------------------------------------------------------------------------- the functions

def linear_leaves(dtype, w_dtype=None, b_dtype=None, n_in=20, n_out=9, batch=B, steps=T, grad=True):
    return dict(x=spikes(steps, batch, n_in).to(dtype).requires_grad_(grad),
                weight=normal(n_out, n_in, scale=0.5).to(w_dtype or dtype).requires_grad_(grad),
                bias=normal(n_out, seed=2, scale=0.1).to(b_dtype or w_dtype or dtype).requires_grad_(grad))


def linear(x, weight, bias, backend, alpha=DUAL.alpha, beta=DUAL.beta, leak=0.8, reset_decay=0.7):
    return spiking_linear(x, weight, bias, alpha, beta, leak, reset_decay, backend=backend)


def conv_leaves(dtype, w_dtype=None, dims=2, c_in=3, c_out=4, batch=2, grad=True):
    spatial = (6, 6) if dims == 2 else (9,)
    return dict(x=spikes(5, batch, c_in, *spatial).to(dtype).requires_grad_(grad),
                weight=normal(c_out, c_in, *(3,) * dims, scale=0.4).to(w_dtype or dtype).requires_grad_(grad),
                bias=normal(c_out, seed=2, scale=0.1).to(w_dtype or dtype).requires_grad_(grad))


def conv(x, weight, bias, backend, **opts):
    return spiking_conv(x, weight, bias, DUAL.alpha, DUAL.beta, 0.8, 0.7, padding=1, backend=backend, **opts)


def filter_leaves(dtype, param_dtype=None, state_dtype=None, grad=True, C=5):
    p, s = param_dtype or dtype, state_dtype or dtype
    return dict(x=normal(T, B, C, seed=3).abs().to(dtype).requires_grad_(grad),
                alpha=DUAL.alpha.to(p).requires_grad_(grad), beta=DUAL.beta.to(p).requires_grad_(grad),
                f_hist=normal(2, B, C, seed=4, scale=0.1).to(s).requires_grad_(grad),
                x_hist=normal(1, B, C, seed=5, scale=0.1).to(s).requires_grad_(grad))


def filtered(x, alpha, beta, f_hist, x_hist, backend):
    return synapse_filter(x, alpha, beta, FilterState(f_hist, x_hist), backend=backend)


def neuron_leaves(dtype, param_dtype=None, state_dtype=None, grad=True, C=6):
    p, s = param_dtype or dtype, state_dtype or dtype
    return dict(x=(normal(T, B, C, seed=6) * 0.8 + 0.5).to(dtype).requires_grad_(grad),
                leak=torch.linspace(0.6, 0.9, C, dtype=F64).to(p).requires_grad_(grad),
                reset_decay=torch.tensor(0.7, dtype=F64).to(p).requires_grad_(grad),
                v0=normal(B, C, seed=7, scale=0.3).to(s).requires_grad_(grad),
                s0=normal(B, C, seed=8, scale=0.3).abs().to(s).requires_grad_(grad))


def neuron(x, leak, reset_decay, v0, s0, backend):
    return neuron_scan(x, leak, reset_decay, 1.0, "gaussian", "filter", False, NeuronState(v0, s0), backend=backend)


def chunked(x, weight, bias, backend, conv_opts=None):
    """Two chunks of spiking_chunk with the state passed between them."""
    half = x.shape[0] // 2
    kw = dict(conv=conv_opts, backend=backend)
    first, state = spiking_chunk(x[:half], weight, bias, DUAL.alpha, DUAL.beta, 0.8, 0.7, 1.0, "gaussian", "filter",
                                 False, None, None, **kw)
    second, _ = spiking_chunk(x[half:], weight, bias, DUAL.alpha, DUAL.beta, 0.8, 0.7, 1.0, "gaussian", "filter",
                              False, *state, **kw)
    return torch.cat([first, second])


def conv_chunked(x, weight, bias, backend):
    return chunked(x, weight, bias, backend, dict(padding=1))


for dt in FLOATS:
    d = short(dt)
    case(f"synapse_filter-{d}", lambda dt=dt: agrees(filtered, filter_leaves(dt), dt, spiking=False))
    case(f"neuron_scan-{d}", lambda dt=dt: agrees(neuron, neuron_leaves(dt), dt))
    case(f"spiking_linear-{d}", lambda dt=dt: agrees(linear, linear_leaves(dt), dt))
    case(f"spiking_conv2d-{d}", lambda dt=dt: agrees(conv, conv_leaves(dt), dt))
    case(f"spiking_conv1d-{d}", lambda dt=dt: agrees(conv, conv_leaves(dt, dims=1), dt))
    case(f"spiking_chunk-{d}", lambda dt=dt: agrees(chunked, linear_leaves(dt, steps=8), dt))
case("spiking_chunk-conv2d-float64", lambda: agrees(conv_chunked, conv_leaves(F64), F64))
case("spiking_chunk-conv1d-float32", lambda: agrees(conv_chunked, conv_leaves(F32, dims=1), F32))

# the synapse kernel, decays and states are converted to the input's dtype (documented)
for dt, other in ((F64, F32), (F32, F64), (F32, F16), (BF16, F32)):
    tag = f"{short(dt)}-params-{short(other)}"
    case(f"synapse_filter-{tag}", lambda dt=dt, o=other: agrees(filtered, filter_leaves(dt, o, o), dt, spiking=False))
    case(f"neuron_scan-{tag}", lambda dt=dt, o=other: agrees(neuron, neuron_leaves(dt, o, o), dt))
    case(f"spiking_linear-{tag}", lambda dt=dt, o=other: agrees(
        lambda backend, **kw: linear(**kw, backend=backend, alpha=DUAL.alpha.to(o), beta=DUAL.beta.to(o),
                                     leak=torch.tensor(0.8, dtype=o)), linear_leaves(dt), dt))

# the weight and bias must have the input's dtype, as in torch.nn.Linear
MIXED = ((F32, F64), (F64, F32), (F16, F32), (BF16, F16), (F32, BF16))
for x_dt, w_dt in MIXED:
    tag = f"x-{short(x_dt)}-weight-{short(w_dt)}"
    message = rf"x is {short(x_dt)} but weight is {short(w_dt)}; convert weight \(weight\.\w+\(\)\) or the input"
    case(f"spiking_linear-{tag}", raises(TypeError, message, lambda a=x_dt, b=w_dt: linear(
        **linear_leaves(a, b), backend=None)))
    case(f"spiking_conv2d-{tag}", raises(TypeError, message, lambda a=x_dt, b=w_dt: conv(
        **conv_leaves(a, b), backend=None)))
    case(f"spiking_chunk-{tag}", raises(TypeError, message, lambda a=x_dt, b=w_dt: chunked(
        **linear_leaves(a, b), backend=None)))
case("spiking_conv1d-x-float64-weight-float32", raises(TypeError, r"x is float64 but weight is float32", lambda: conv(
    **conv_leaves(F64, F32, dims=1), backend=None)))
case("spiking_linear-bias-float64", raises(TypeError, r"x is float32 but bias is float64", lambda: linear(
    **linear_leaves(F32, F32, F64), backend=None)))
case("spiking_linear-bias-float32-x-float64", raises(TypeError, r"but bias is float32", lambda: linear(
    **linear_leaves(F64, F64, F32), backend=None)))

# integer and bool tensors
def replaced(forward: Callable[..., torch.Tensor], leaves: dict[str, torch.Tensor], **values) -> Callable[[], object]:
    """A call of forward on (detached) leaves with some of them replaced."""
    return lambda: forward(**{**{k: v.detach() for k, v in leaves.items()}, **values}, backend=None)


FLOATING = r"{} must have a floating-point dtype"
for dt in (torch.int64, torch.bool):
    d = short(dt)
    for name, fn, leaves, value in (
            ("x", filtered, filter_leaves(F32), torch.ones(T, B, 5, dtype=dt)),
            ("alpha", filtered, filter_leaves(F32), torch.ones(2, dtype=dt)),
            ("current", neuron, neuron_leaves(F32), torch.ones(T, B, 6, dtype=dt)),
            ("leak", neuron, neuron_leaves(F32), torch.ones(6, dtype=dt)),
            ("state.v", neuron, neuron_leaves(F32), torch.zeros(B, 6, dtype=dt)),
            ("x", linear, linear_leaves(F32), torch.ones(T, B, 20, dtype=dt)),
            ("weight", linear, linear_leaves(F32), torch.ones(9, 20, dtype=dt)),
            ("bias", linear, linear_leaves(F32), torch.ones(9, dtype=dt)),
            ("x", conv, conv_leaves(F32), torch.ones(5, 2, 3, 6, 6, dtype=dt)),
            ("weight", conv, conv_leaves(F32, dims=1), torch.ones(4, 3, 3, dtype=dt)),
            ("x", chunked, linear_leaves(F32), torch.ones(T, B, 20, dtype=dt))):
        argument = {"current": "x", "state.v": "v0"}.get(name, name)
        subject = {filtered: "synapse_filter", neuron: "neuron_scan", linear: "spiking_linear",
                   chunked: "spiking_chunk", conv: f"spiking_conv{leaves['x'].dim() - 3}d"}[fn]
        case(f"{subject}-{name}-{d}", raises(TypeError, FLOATING.format(name),
                                             replaced(fn, leaves, **{argument: value})))


# ------------------------------------------------------------------------------- layouts

def viewed(forward: Callable[..., torch.Tensor], **views: Callable[[torch.Tensor], torch.Tensor]):
    """forward with some arguments replaced by views of them (the leaves stay the base tensors)."""
    def run(backend, **leaves):
        return forward(backend=backend, **{k: views[k](v) if k in views else v for k, v in leaves.items()})
    return run


def transposed(t: torch.Tensor) -> torch.Tensor:
    """The same values with batch-major memory: x.transpose(0, 1).contiguous().transpose(0, 1)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


def every_other(t: torch.Tensor) -> torch.Tensor:
    return t[..., ::2]


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """[T, B, C, H, W] whose folded [T B, C, H, W] is channels-last in memory."""
    return t.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, t.shape[:2])


def over_time(t: torch.Tensor) -> torch.Tensor:
    """The first step repeated over time: an expanded tensor (stride 0 along T)."""
    return t[:1].expand(t.shape)


for dt in (F32, F64):
    d = short(dt)
    case(f"spiking_linear-transposed-x-{d}", lambda dt=dt: agrees(viewed(linear, x=transposed), linear_leaves(dt), dt))
    case(f"spiking_linear-strided-x-{d}", lambda dt=dt: agrees(
        viewed(linear, x=every_other), {**linear_leaves(dt), "x": spikes(T, B, 40).to(dt).requires_grad_()}, dt))
    case(f"spiking_linear-expanded-x-{d}", lambda dt=dt: agrees(
        viewed(linear, x=over_time), {**linear_leaves(dt), "x": spikes(T, B, 20, rate=0.5).to(dt).requires_grad_()},
        dt))
    case(f"spiking_linear-transposed-weight-{d}", lambda dt=dt: agrees(
        viewed(linear, weight=lambda w: w.t()), {**linear_leaves(dt), "weight": normal(20, 9, scale=0.5).to(
            dt).requires_grad_()}, dt))
    case(f"spiking_linear-strided-weight-{d}", lambda dt=dt: agrees(
        viewed(linear, weight=every_other), {**linear_leaves(dt), "weight": normal(9, 40, scale=0.5).to(
            dt).requires_grad_()}, dt))
    case(f"spiking_linear-expanded-bias-{d}", lambda dt=dt: agrees(
        viewed(linear, bias=lambda b: b.expand(9)), {**linear_leaves(dt), "bias": torch.tensor(
            [0.05], dtype=dt).requires_grad_()}, dt))
    case(f"spiking_conv2d-channels-last-x-{d}", lambda dt=dt: agrees(viewed(conv, x=channels_last), conv_leaves(dt),
                                                                      dt))
    case(f"spiking_conv2d-strided-x-{d}", lambda dt=dt: agrees(
        viewed(conv, x=every_other), {**conv_leaves(dt), "x": spikes(5, 2, 3, 6, 12).to(dt).requires_grad_()}, dt))
    case(f"spiking_conv2d-transposed-x-{d}", lambda dt=dt: agrees(viewed(conv, x=transposed), conv_leaves(dt), dt))
    case(f"spiking_conv1d-strided-x-{d}", lambda dt=dt: agrees(
        viewed(conv, x=every_other), {**conv_leaves(dt, dims=1), "x": spikes(5, 2, 3, 18).to(dt).requires_grad_()},
        dt))
    case(f"spiking_conv2d-channels-last-weight-{d}", lambda dt=dt: agrees(
        viewed(conv, weight=lambda w: w.contiguous(memory_format=torch.channels_last)), conv_leaves(dt), dt))
    case(f"synapse_filter-transposed-x-{d}", lambda dt=dt: agrees(viewed(filtered, x=transposed), filter_leaves(dt),
                                                                   dt, spiking=False))
    case(f"synapse_filter-strided-x-{d}", lambda dt=dt: agrees(
        viewed(filtered, x=every_other, f_hist=every_other, x_hist=every_other),
        {**filter_leaves(dt, C=10)}, dt, spiking=False))
    case(f"neuron_scan-transposed-x-{d}", lambda dt=dt: agrees(viewed(neuron, x=transposed), neuron_leaves(dt), dt))
    case(f"neuron_scan-strided-x-{d}", lambda dt=dt: agrees(
        viewed(neuron, x=every_other, leak=every_other, v0=every_other, s0=every_other), neuron_leaves(dt, C=12), dt))
    case(f"neuron_scan-expanded-state-{d}", lambda dt=dt: agrees(
        viewed(neuron, v0=lambda v: v[:1].expand(B, 6)), neuron_leaves(dt), dt))
    case(f"spiking_chunk-transposed-x-{d}", lambda dt=dt: agrees(viewed(chunked, x=transposed),
                                                                  linear_leaves(dt, steps=8), dt))


# ------------------------------------------------------------------------------- empty dimensions

for dt in (F32, F64):
    d = short(dt)
    case(f"spiking_linear-B0-{d}", lambda dt=dt: agrees(linear, linear_leaves(dt, batch=0), dt))
    case(f"spiking_linear-Nin0-{d}", lambda dt=dt: agrees(linear, linear_leaves(dt, n_in=0), dt, must_spike=False))
    case(f"spiking_linear-Nout0-{d}", lambda dt=dt: agrees(linear, linear_leaves(dt, n_out=0), dt))
    case(f"spiking_conv2d-B0-{d}", lambda dt=dt: agrees(conv, conv_leaves(dt, batch=0), dt))
    case(f"spiking_conv2d-Cout0-{d}", raises(RuntimeError, r"expected weight to be at least 1 at dimension 0",
                                             lambda dt=dt: conv(**conv_leaves(dt, c_out=0), backend=None)))  # torch's
    case(f"spiking_conv1d-B0-{d}", lambda dt=dt: agrees(conv, conv_leaves(dt, dims=1, batch=0), dt))
    case(f"synapse_filter-C0-{d}", lambda dt=dt: agrees(filtered, filter_leaves(dt, C=0), dt, spiking=False))
    case(f"neuron_scan-C0-{d}", lambda dt=dt: agrees(neuron, neuron_leaves(dt, C=0), dt))
    case(f"spiking_chunk-B0-{d}", lambda dt=dt: agrees(chunked, linear_leaves(dt, steps=8, batch=0), dt))
NO_STEPS = r"x has no time steps"
case("spiking_linear-T0", raises(ValueError, NO_STEPS, lambda: linear(**linear_leaves(F32, steps=0), backend=None)))
case("spiking_conv2d-T0", raises(ValueError, NO_STEPS, lambda: conv(
    **{**conv_leaves(F32), "x": torch.zeros(0, 2, 3, 6, 6)}, backend=None)))
case("spiking_chunk-T0", raises(ValueError, NO_STEPS, lambda: spiking_chunk(
    torch.zeros(0, B, 20), normal(9, 20).float(), None, DUAL.alpha, DUAL.beta, 0.8, 0.7, 1.0, "gaussian", "filter",
    False, None, None)))
case("synapse_filter-T0", raises(ValueError, NO_STEPS, lambda: synapse_filter(torch.zeros(0, B, 5), DUAL.alpha,
                                                                                 DUAL.beta)))
case("neuron_scan-T0", raises(ValueError, r"current has no time steps", lambda: neuron_scan(torch.zeros(0, B), 0.8,
                                                                                           0.7)))


# ------------------------------------------------------------------------------- devices

META = r"{} is on the meta device"
for subject, fn, leaves, names in (
        ("spiking_linear", linear, linear_leaves(F32), dict(x="x", weight="weight", bias="bias")),
        ("spiking_conv2d", conv, conv_leaves(F32), dict(x="x", weight="weight", bias="bias")),
        ("spiking_conv1d", conv, conv_leaves(F32, dims=1), dict(x="x", weight="weight")),
        ("spiking_chunk", chunked, linear_leaves(F32), dict(x="x", weight="weight", bias="bias")),
        ("synapse_filter", filtered, filter_leaves(F32), dict(x="x", alpha="alpha", beta="beta",
                                                              f_hist="state.outputs", x_hist="state.inputs")),
        ("neuron_scan", neuron, neuron_leaves(F32), dict(x="current", leak="leak", reset_decay="reset_decay",
                                                         v0="state.v", s0="state.s"))):
    for argument, name in names.items():
        case(f"{subject}-meta-{argument}", raises(ValueError, META.format(name), replaced(
            fn, leaves, **{argument: leaves[argument].detach().to("meta")})))
case("spiking_linear-meta-alpha", raises(ValueError, META.format("alpha"), lambda: linear(
    **{k: v.detach() for k, v in linear_leaves(F32).items()}, alpha=DUAL.alpha.to("meta"), backend=None)))


# ------------------------------------------------------------------------------- modules

def synapse_module(backend):
    return inn.SynapseFilter("dual_exp", learnable=True, backend=backend)


def lif_module(backend):
    return inn.LIFNeuron(4.0, shape=(6,), learnable=True, backend=backend)


def _spiking_layer(connection, backend):
    """A SpikingLayer around ``connection()`` (made after seeding), its weights scaled so that it spikes."""
    torch.manual_seed(0)
    layer = inn.SpikingLayer(connection(), inn.SynapseFilter(backend=backend), inn.LIFNeuron(backend=backend))
    with torch.no_grad():
        layer.connection.weight.mul_(4.0)
    return layer


def linear_layer(backend):
    return _spiking_layer(lambda: inn.Linear(20, 9), backend)


def conv_layer(backend):
    return _spiking_layer(lambda: inn.Conv2d(3, 4, 3, padding=1), backend)


def conv1d_layer(backend):
    return _spiking_layer(lambda: inn.Conv1d(3, 4, 3, padding=1), backend)


def plain(cls, *args):
    def make(backend):
        torch.manual_seed(0)
        return cls(*args)
    return make


def current(*shape: int) -> torch.Tensor:
    return normal(*shape, seed=9) * 0.8 + 0.5


for dt in FLOATS:
    d = short(dt)
    # SynapseFilter and LIFNeuron keep their coefficients in float32 (converted to the input's dtype)
    case(f"SynapseFilter-{d}", lambda dt=dt: module_agrees(synapse_module, spikes(T, B, 5).to(dt), dt, spiking=False,
                                                           param_dtype=F32))
    case(f"LIFNeuron-{d}", lambda dt=dt: module_agrees(lif_module, current(T, B, 6).to(dt), dt, param_dtype=F32))
    case(f"Linear-{d}", lambda dt=dt: module_agrees(plain(inn.Linear, 20, 9), spikes(T, B, 20).to(dt), dt,
                                                    spiking=False))
    case(f"Conv2d-{d}", lambda dt=dt: module_agrees(plain(inn.Conv2d, 3, 4, 3, 1, 1), spikes(T, B, 3, 6, 6).to(dt), dt,
                                                    spiking=False))
    case(f"SpikingLayer-linear-{d}", lambda dt=dt: module_agrees(linear_layer, spikes(T, B, 20).to(dt), dt))
    case(f"SpikingLayer-conv2d-{d}", lambda dt=dt: module_agrees(conv_layer, spikes(5, 2, 3, 6, 6).to(dt), dt))
    case(f"SpikingLayer-conv1d-{d}", lambda dt=dt: module_agrees(conv1d_layer, spikes(5, 2, 3, 9).to(dt), dt))
    for pool in (inn.MaxPool2d, inn.AvgPool2d, inn.SumPool2d):
        case(f"{pool.__name__}-{d}", lambda dt=dt, pool=pool: module_agrees(
            plain(pool, 2), spikes(T, B, 3, 6, 6).to(dt), dt, spiking=pool is inn.MaxPool2d))
for dt in (F32, F64):
    d = short(dt)
    case(f"Conv2d-channels-last-{d}", lambda dt=dt: module_agrees(
        plain(inn.Conv2d, 3, 4, 3, 1, 1), channels_last(spikes(T, B, 3, 6, 6).to(dt)), dt, spiking=False))
    case(f"SpikingLayer-conv2d-channels-last-{d}", lambda dt=dt: module_agrees(
        conv_layer, channels_last(spikes(5, 2, 3, 6, 6).to(dt)), dt))
    case(f"SpikingLayer-linear-transposed-{d}", lambda dt=dt: module_agrees(
        linear_layer, transposed(spikes(T, B, 20).to(dt)), dt))

MODULE_DTYPE = r"the input is {} but the layer's {} is {}; convert the model \(model\.\w+\(\)\) or the input"
for make, shape in ((plain(inn.Linear, 20, 9), (T, B, 20)), (plain(inn.Conv2d, 3, 4, 3), (T, B, 3, 6, 6)),
                    (plain(inn.Conv1d, 3, 4, 3), (T, B, 3, 9)), (linear_layer, (T, B, 20)),
                    (conv_layer, (T, B, 3, 6, 6)), (conv1d_layer, (T, B, 3, 9))):
    label = make(None).__class__.__name__ + ("" if make(None).__class__ is not inn.SpikingLayer else "-" + str(
        len(shape)))
    for x_dt, w_dt in ((F64, F32), (F32, F64), (F16, F32)):
        case(f"{label}-x-{short(x_dt)}-module-{short(w_dt)}", raises(
            TypeError, MODULE_DTYPE.format(short(x_dt), "weight", short(w_dt)),
            lambda make=make, shape=shape, x_dt=x_dt, w_dt=w_dt: make(None).to(w_dt)(spikes(*shape).to(x_dt))))
    case(f"{label}-meta-module", raises(ValueError, r"the input is on cpu but the layer's weight is on meta",
                                        lambda make=make, shape=shape: make(None).to("meta")(spikes(*shape).float())))
    case(f"{label}-meta-input", raises(ValueError, r"input is on the meta device",
                                       lambda make=make, shape=shape: make(None)(torch.zeros(shape, device="meta"))))
    case(f"{label}-int-input", raises(TypeError, r"input must have a floating-point dtype",
                                      lambda make=make, shape=shape: make(None)(torch.zeros(shape, dtype=torch.long))))


def mixed_bias_layer():
    layer = linear_layer(None)
    layer.connection.bias.data = layer.connection.bias.data.double()
    return layer(spikes(T, B, 20).float())


case("SpikingLayer-bias-float64", raises(TypeError, MODULE_DTYPE.format("float32", "bias", "float64"),
                                         mixed_bias_layer))
case("LIFNeuron-meta-state", raises(ValueError, r"state.v is on the meta device", lambda: inn.LIFNeuron().forward_chunk(
    current(T, B, 6).float(), NeuronState(torch.zeros(B, 6, device="meta"), torch.zeros(B, 6)))))
def delay_with_float64_state() -> None:
    """A carried Delay state of another dtype is converted: the output keeps the input's dtype and values."""
    x = spikes(T, B, 5).float()
    head = spikes(2, B, 5, seed=3)
    y, state = inn.Delay(2).forward_chunk(x, DelayState(head))
    assert y.dtype == F32 and state.inputs.dtype == F32, (y.dtype, state.inputs.dtype)
    assert torch.equal(y, torch.cat([head.float(), x])[:T])


case("Delay-state-float64", delay_with_float64_state)
case("Delay-meta-state", raises(ValueError, r"carried Delay state is on the meta device", lambda: inn.Delay(
    2).forward_chunk(spikes(T, B, 5).float(), DelayState(torch.zeros(2, B, 5, device="meta")))))
case("SynapseFilter-int-input", raises(TypeError, r"x must have a floating-point dtype", lambda: inn.SynapseFilter()(
    torch.ones(T, B, 5, dtype=torch.long))))
case("MaxPool2d-meta-input", raises(ValueError, r"input is on the meta device", lambda: inn.MaxPool2d(2)(
    torch.zeros(T, B, 3, 6, 6, device="meta"))))


# ------------------------------------------------------------------------------- networks

NETWORKS = {"dense": ("30-12-5", (20,)), "conv2d": ("4C3-P2-6", (2, 6, 6)), "conv1d": ("4C3-5", (2, 9))}


def network(spec: str, shape: tuple[int, ...]) -> Callable[[str | None], torch.nn.Module]:
    def make(backend):
        torch.manual_seed(0)
        return from_spec(spec, shape, backend=backend)
    return make


def empty_batch(spec: str, shape: tuple[int, ...]) -> None:
    """An empty batch gives an empty output of the right shape, and gradients of the parameters (zeros)."""
    model = network(spec, shape)(None)
    x = torch.zeros(8, 0, *shape, requires_grad=True)
    out = model(x)
    assert out.shape == (8, 0, model[-1].connection.out_features), list(out.shape)
    out.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


for kind, (spec, shape) in NETWORKS.items():
    for dt in FLOATS:
        case(f"from_spec-{kind}-{short(dt)}", lambda spec=spec, shape=shape, dt=dt: module_agrees(
            network(spec, shape), spikes(8, B, *shape, rate=0.4).to(dt), dt))
    case(f"from_spec-{kind}-B0", lambda spec=spec, shape=shape: empty_batch(spec, shape))
    case(f"from_spec-{kind}-T0", raises(ValueError, r"no time steps", lambda spec=spec, shape=shape: network(
        spec, shape)(None)(torch.zeros(0, B, *shape))))
    case(f"from_spec-{kind}-x-float64", raises(TypeError, MODULE_DTYPE.format("float64", "weight", "float32"),
                                               lambda spec=spec, shape=shape: network(spec, shape)(None)(
                                                   spikes(8, B, *shape))))
    case(f"from_spec-{kind}-int-input", raises(TypeError, r"input must have a floating-point dtype",
                                               lambda spec=spec, shape=shape: network(spec, shape)(None)(
                                                   spikes(8, B, *shape).long())))


def issue_14() -> None:
    """The report: float64 spikes into a float32 network aborted the process (malloc(): invalid size); float32
    spikes into its float64 copy gave different spikes on every run. Now both raise; float64 into float64 agrees."""
    torch.manual_seed(0)
    model = from_spec("100-10", (50,))
    x = (torch.rand(40, 32, 50, generator=gen(14)) < 0.1).double()
    raises(TypeError, MODULE_DTYPE.format("float64", "weight", "float32"), lambda: model(x))()
    raises(TypeError, MODULE_DTYPE.format("float32", "weight", "float64"), lambda: model.double()(x.float()))()
    reference = from_spec("100-10", (50,), backend="reference").double()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(x), reference(x)), "float64 network differs from the reference"


case("issue-14", issue_14)


# ------------------------------------------------------------------------------- running the sweep

def run_cases(ids: list[str], out) -> None:
    """Run the cases, writing one JSON line per case (its id, whether it passed, the failure) to ``out``."""
    for case_id in ids:
        print(f"sweep case {case_id}", file=sys.stderr, flush=True)
        try:
            CASES[case_id]()
            result = {"id": case_id, "ok": True}
        except Exception:  # every failure is reported with its case
            result = {"id": case_id, "ok": False, "error": traceback.format_exc(limit=6)}
        print(json.dumps(result), file=out, flush=True)


def _selected(request: pytest.FixtureRequest) -> list[str]:
    """The ids of this module's sweep cases that pytest selected (all of them without -k)."""
    ids = [item.callspec.params["case_id"] for item in request.session.items
           if item.module is sys.modules[__name__] and hasattr(item, "callspec") and "case_id" in item.callspec.params]
    return ids or list(CASES)


def run_in_subprocess(ids: list[str], env: dict[str, str] | None = None) -> dict[str, dict]:
    """Results of the cases ``ids`` run by a worker process; a crash fails the cases it did not finish, naming the
    one it died in and the end of its stderr (where faulthandler or AddressSanitizer put their report)."""
    src = str(Path(iirsnn.__file__).resolve().parents[1])
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--worker", *ids], capture_output=True,
                          text=True, env=env, timeout=600)
    results = {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}
    if proc.returncode != 0:
        started = re.findall(r"^sweep case (\S+)$", proc.stderr, flags=re.M)
        died_in = started[-1] if started else "(before the first case)"
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        error = f"the sweep process died with exit status {proc.returncode} in case {died_in}; its stderr ends:\n{tail}"
        for case_id in ids:
            results.setdefault(case_id, {"id": case_id, "ok": False, "error": error})
    return results


@pytest.fixture(scope="module")
def sweep(request: pytest.FixtureRequest) -> dict[str, dict]:
    """Results of the selected cases, run in one subprocess (or here with IIRSNN_SWEEP_INPROCESS=1)."""
    ids = _selected(request)
    if os.environ.get("IIRSNN_SWEEP_INPROCESS") != "1":
        return run_in_subprocess(ids)
    buffer = io.StringIO()
    run_cases(ids, buffer)
    return {r["id"]: r for r in map(json.loads, buffer.getvalue().splitlines())}


@pytest.mark.parametrize("case_id", list(CASES))
def test_sweep(case_id: str, sweep: dict[str, dict]) -> None:
    result = sweep.get(case_id)
    assert result is not None, f"{case_id} was not run"
    if not result["ok"]:
        pytest.fail(result["error"], pytrace=False)


def test_the_sweep_covers_the_public_layers():
    """Every public layer and function has cases of each kind: float dtypes, mixed dtypes or errors, views,
    empty dimensions and meta tensors."""
    names = " ".join(CASES)
    for subject in ("synapse_filter", "neuron_scan", "spiking_linear", "spiking_conv2d", "spiking_conv1d",
                    "spiking_chunk", "SynapseFilter", "LIFNeuron", "Linear", "Conv2d", "SpikingLayer", "MaxPool2d",
                    "from_spec"):
        assert f"{subject}-" in names, subject
    for kind in ("float16", "bfloat16", "int64", "bool", "transposed", "strided", "expanded", "channels-last", "B0",
                 "T0", "meta"):
        assert kind in names, kind


def test_a_crash_fails_the_cases_it_did_not_finish():
    """A case that aborts the worker: the cases before it keep their results, it and the later ones fail, naming it."""
    results = run_in_subprocess(["neuron_scan-float32", "abort", "synapse_filter-float32"],
                                env={"IIRSNN_SWEEP_SELFTEST": "1"})
    assert results["neuron_scan-float32"]["ok"]
    for case_id in ("abort", "synapse_filter-float32"):
        assert not results[case_id]["ok"]
        assert "died with exit status -6 in case abort" in results[case_id]["error"], results[case_id]["error"]


if os.environ.get("IIRSNN_SWEEP_SELFTEST") == "1":
    case("abort", os.abort)

if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    run_cases(sys.argv[2:] or list(CASES), sys.stdout)
