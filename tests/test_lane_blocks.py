"""Per-lane parameters beyond the first block of lanes, against the model of tests/reference_model.py.

The compiled scans run lanes (L = B * features) in blocks of 256, and the float32 fused forward in groups
of 64; a lane's leak, reset decay, bias and synapse coefficients are read at ``(block start + i) % period``.
Here L is well above 256 and the period (600 neurons, 300 channels) divides neither 256 nor 64, so a
block reading its parameters at ``i % period`` gives other spikes or gradients. Covered: neuron_scan (cpu
and torch backends, both resets; the reset trace of the reset-decay gradient), synapse_filter with
per-channel coefficients, and the fused dense layer spiking_linear (filter + bias + neuron in one pass,
forward and backward) in float64 and in float32 (the AVX-512 register kernel where the CPU has it).
Spikes must be identical and every gradient equal to 1e-9 relative in float64.
"""

from __future__ import annotations

import functools

import pytest
import torch

import reference_model as rm
from iirsnn.functional import neuron_scan, presets, synapse_filter
from iirsnn.functional.layer import spiking_linear
from iirsnn.kernels import cpu as cpu_kernels

F64 = torch.float64
T, B = 30, 2
T_FILTER = 20  # the model filters each of the 300 channels in a Python loop
NEURONS = 600  # per-neuron parameters: L = 1200 lanes, five blocks of 256, period 600
CHANNELS = 300  # per-channel filter coefficients: L = 600 lanes, period 300
GRAD_RTOL = 1e-9
_needs_cpu = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
BACKENDS = [pytest.param("cpu", marks=_needs_cpu), "torch"]


def per_lane(values: torch.Tensor) -> None:
    """Guard: the parameter really differs from lane to lane (else a wrong index could not show)."""
    assert values.unique().numel() == values.numel()


def leaves(case: dict[str, torch.Tensor], dtype=F64) -> dict[str, torch.Tensor]:
    """Fresh copies of the case's tensors in ``dtype`` that require grad."""
    return {k: v.detach().to(dtype).clone().requires_grad_(True) for k, v in case.items()}


def gradients(out: torch.Tensor, params: dict[str, torch.Tensor], extra: torch.Tensor | None = None):
    """d/d params of a fixed random weighting of ``out`` (and of ``extra``, e.g. the potentials)."""
    g = torch.Generator().manual_seed(99)
    loss = (out * torch.randn(out.shape, generator=g, dtype=F64).to(out.dtype)).sum()
    if extra is not None:
        loss = loss + (extra * torch.randn(extra.shape, generator=g, dtype=F64).to(extra.dtype)).sum()
    return dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))


def assert_grads_close(got: dict, ref: dict, rtol: float = GRAD_RTOL) -> None:
    """Every gradient: max |got - ref| <= rtol * max |ref|, each reference gradient non-zero."""
    for name, r in ref.items():
        d, r = got[name].to(F64), r.to(F64)
        assert r.abs().max() > 0, f"reference grad of {name} is zero: the comparison would be vacuous"
        err, scale = (d - r).abs().max().item(), r.abs().max().item()
        assert err <= rtol * scale, f"grad of {name}: max abs error {err:.3e} > {rtol:g} * {scale:.3e}"


def spike_rate_ok(O: torch.Tensor) -> None:
    rate = O.mean().item()
    assert 0.05 <= rate <= 0.6, f"spike rate {rate} outside [5%, 60%]: the comparison would be vacuous"
    assert O[:, :, 256:].sum() > 0, "no spikes past the first block"


# ------------------------------------------------------------------------------------------ neuron scan


def neuron_case(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    case = dict(
        current=torch.randn(T, B, NEURONS, generator=g, dtype=F64) * 0.8 + 0.45,
        leak=torch.rand(NEURONS, generator=g, dtype=F64) * 0.5 + 0.45,
        reset_decay=torch.rand(NEURONS, generator=g, dtype=F64) * 0.7 + 0.2,
    )
    per_lane(case["leak"])
    per_lane(case["reset_decay"])
    return case


@functools.cache
def model_neuron(reset: str):
    """The model's spikes, potentials and gradients (cached: the backends share them)."""
    ref = leaves(neuron_case())
    if reset == "hard":  # the reset decay is unused
        ref["reset_decay"] = ref["reset_decay"].detach()
    O, V = rm.neuron(ref["current"], ref["leak"], ref["reset_decay"], reset=reset)
    wanted = {k: v for k, v in ref.items() if v.requires_grad}
    return O.detach(), V.detach(), gradients(O, wanted, V)


@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_neuron_scan_per_neuron_decays_past_the_first_block(backend, reset):
    """neuron_forward / neuron_backward (and reset_trace: the reset decay requires grad) on 1200 lanes."""
    O_ref, V_ref, g_ref = model_neuron(reset)
    lib = leaves(neuron_case())
    O, V = neuron_scan(lib["current"], lib["leak"], lib["reset_decay"], reset=reset, return_voltage=True,
                       backend=backend)
    spike_rate_ok(O_ref)
    assert torch.equal(O, O_ref)
    torch.testing.assert_close(V, V_ref, rtol=1e-12, atol=1e-12)
    assert_grads_close(gradients(O, {k: lib[k] for k in g_ref}, V), g_ref)


# --------------------------------------------------------------------------------------- synapse filter


def filter_case() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(CHANNELS, generator=g, dtype=F64) * 0.5 + 0.3, torch.rand(CHANNELS, generator=g, dtype=F64) * 0.3
    case = dict(
        x=torch.randn(T_FILTER, B, CHANNELS, generator=g, dtype=F64),
        alpha=torch.stack([a + b, -a * b], 1),  # poles a and b: stable
        beta=torch.rand(CHANNELS, 2, generator=g, dtype=F64) + 0.3,
    )
    per_lane(case["alpha"][:, 0])
    per_lane(case["beta"][:, 1])
    return case


@functools.cache
def model_filter():
    """The model's filter output and gradients (cached: the backends share them)."""
    ref = leaves(filter_case())
    F = rm.synapse(ref["x"], ref["alpha"], ref["beta"])
    return F.detach(), gradients(F, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_synapse_filter_per_channel_coefficients_past_the_first_block(backend):
    """filter_forward / filter_backward with alpha [C, 2], beta [C, 2] for C = 300 channels (600 lanes)."""
    F_ref, g_ref = model_filter()
    lib = leaves(filter_case())
    F = synapse_filter(lib["x"], lib["alpha"], lib["beta"], backend=backend)
    torch.testing.assert_close(F, F_ref, rtol=1e-12, atol=1e-12)
    assert_grads_close(gradients(F, lib), g_ref)


# ------------------------------------------------------------------------------------ fused dense layer


N_IN = 10


def dense_case(seed: int = 10) -> dict[str, torch.Tensor]:
    """Input spikes [T, B, 10] into 600 neurons with their own leak, reset decay and bias."""
    g = torch.Generator().manual_seed(seed)
    case = dict(
        x=(torch.rand(T, B, N_IN, generator=g) < 0.3).to(F64),
        weight=torch.randn(NEURONS, N_IN, generator=g, dtype=F64) * 0.5 + 0.15,
        bias=torch.randn(NEURONS, generator=g, dtype=F64) * 0.2 + 0.1,
        leak=torch.rand(NEURONS, generator=g, dtype=F64) * 0.5 + 0.45,
        reset_decay=torch.rand(NEURONS, generator=g, dtype=F64) * 0.7 + 0.2,
    )
    for name in ("bias", "leak", "reset_decay"):
        per_lane(case[name])
    return case


KERNEL = presets.dual_exp(4.0, 1.5, dtype=F64)  # P = 2, Q = 1: the register kernel's range in float32


def model_dense(p: dict[str, torch.Tensor], reset: str):
    O, V, _, _ = rm.layer(p["x"], KERNEL.alpha, KERNEL.beta, p["weight"], p["bias"], p["leak"], p["reset_decay"],
                          reset=reset)
    return O, V


def library_dense(p: dict[str, torch.Tensor], reset: str) -> torch.Tensor:
    alpha, beta = KERNEL.alpha.to(p["x"].dtype), KERNEL.beta.to(p["x"].dtype)  # shared, fixed: the fused path
    return spiking_linear(p["x"], p["weight"], p["bias"], alpha, beta, p["leak"], p["reset_decay"], reset=reset,
                          backend="cpu")


@_needs_cpu
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_fused_dense_layer_float64_per_neuron_parameters(reset):
    """filter_neuron_forward / filter_neuron_backward (and reset_trace) on 1200 lanes, float64."""
    case = dense_case()
    ref, lib = leaves(case), leaves(case)
    O_ref, _ = model_dense(ref, reset)
    O = library_dense(lib, reset)
    spike_rate_ok(O_ref)
    assert torch.equal(O, O_ref)
    if reset == "hard":
        del ref["reset_decay"], lib["reset_decay"]
    assert_grads_close(gradients(O, lib), gradients(O_ref, ref))


@_needs_cpu
def test_fused_dense_layer_float32_per_neuron_parameters():
    """The float32 fused pass (lanes in groups of 64 held in registers with AVX-512) against float64's model:
    the same spikes (every potential of the case lies at least 2e-5 from the threshold) and gradients to 1e-4."""
    case = dense_case()
    ref, lib = leaves(case), leaves(case, torch.float32)
    O_ref, V_ref = model_dense(ref, "filter")
    O = library_dense(lib, "filter")
    spike_rate_ok(O_ref)
    margin = (V_ref.detach() - 1.0).abs().min().item()
    assert margin > 2e-5, f"a potential lies {margin:.1e} from the threshold: float32 may flip its spike"
    assert O.dtype == torch.float32 and torch.equal(O.double(), O_ref)
    assert_grads_close(gradients(O, lib), gradients(O_ref, ref), rtol=1e-4)
