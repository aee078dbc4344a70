"""The Triton kernels of the gpu backend against the reference backend in float64.

Without a GPU they run in Triton's interpreter on CPU tensors (TRITON_INTERPRET=1, set in
conftest.py): this checks their logic; their speed needs a CUDA device (benchmarks/RESULTS.md).
"""

import itertools

import pytest
import torch

from iirsnn.functional import FilterState, NeuronState, neuron_scan, synapse_filter
from iirsnn.kernels import gpu
from iirsnn.models import from_spec

pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(not gpu.available_for("cuda" if torch.cuda.is_available() else "cpu"),
                                reason="Triton cannot run here (no CUDA and TRITON_INTERPRET unset)")
F64 = torch.float64
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def run(backend, P, Q, per_channel, reset, detach):
    """Filter -> mixing -> neuron with carried states; returns spikes and all gradients."""
    g = torch.Generator().manual_seed(P * 100 + Q * 10 + per_channel)
    T, B, C = 11, 2, 4

    def draw(*shape, scale=1.0, shift=0.0):
        return (torch.rand(*shape, generator=g, dtype=F64) * scale + shift).to(DEVICE).requires_grad_(True)

    x = (torch.rand(T, B, C, generator=g) < 0.4).to(F64).to(DEVICE).requires_grad_(True)
    shape = (C,) if per_channel else ()
    alpha, beta = draw(*shape, P, scale=0.4 / max(P, 1)), draw(*shape, Q + 1, scale=1.0, shift=0.2)
    leak, theta = draw(C, scale=0.5, shift=0.4), draw(C, scale=0.5, shift=0.3)
    mix = draw(C, C, scale=1.5, shift=-0.5)
    fstate = FilterState(draw(P, B, C), draw(Q, B, C))
    nstate = NeuronState(draw(B, C), (torch.rand(B, C, generator=g) < 0.5).to(F64).to(DEVICE).requires_grad_(True))
    F, fst = synapse_filter(x, alpha, beta, fstate, return_state=True, backend=backend)
    O, V, nst = neuron_scan(F @ mix * (2 / (Q + 1)), leak, theta, 1.0, "gaussian", reset, detach, nstate,
                            return_voltage=True, return_state=True, backend=backend)
    w = torch.linspace(-1, 1, O.numel(), dtype=F64, device=DEVICE).view(O.shape)
    loss = (O * w).sum() + (V * 0.1).sin().sum() + nst.v.sum() * 0.3 + nst.s.sum() * 0.2
    loss = loss + sum(s.sum() * 0.1 for s in fst if s.numel())
    leaves = [x, alpha, beta, leak, theta, mix, *fstate, *nstate]
    return O.detach(), torch.autograd.grad(loss, leaves, allow_unused=True)


@pytest.mark.parametrize("P, Q, per_channel, reset, detach", [
    c for c in itertools.product([0, 2, 3], [0, 3], [False, True], ["filter", "hard"], [False, True])
    if not (c[0] == 0 and c[1] == 0 and c[2])  # nothing per channel to test without coefficients to learn
])
def test_triton_scans_match_reference(P, Q, per_channel, reset, detach):
    O, grads = run("gpu", P, Q, per_channel, reset, detach)
    O_ref, ref = run("reference", P, Q, per_channel, reset, detach)
    assert torch.equal(O, O_ref) and 0.05 < float(O.mean()) < 0.95
    for got, want in zip(grads, ref, strict=True):
        if want is None or want.numel() == 0:
            continue
        got = torch.zeros_like(want) if got is None else got
        assert float((got - want).abs().max()) <= 1e-9 * max(float(want.abs().max()), 1e-300)


def test_network_on_the_gpu_backend_matches_the_cpu_backend():
    torch.manual_seed(0)
    model = from_spec("12-5", (6,), backend="gpu").double().to(DEVICE)
    x = (torch.rand(15, 3, 6) < 0.4).double().to(DEVICE)
    out_gpu = model(x)
    out_gpu.sum().backward()
    g_gpu = [p.grad.clone() for p in model.parameters()]
    for layer in model:
        layer.synapse.backend = layer.neuron.backend = "reference"
    model.zero_grad()
    out_ref = model(x)
    out_ref.sum().backward()
    assert torch.equal(out_gpu, out_ref) and out_ref.sum() > 0
    for a, b in zip(g_gpu, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
