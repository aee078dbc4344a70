"""The fused filter + bias + neuron pass started from a carried state, against the float64 step-by-step reference.

``FusedFilterNeuron`` with a starting state (filter histories, V, reset trace) and ``return_state`` is what a
checkpointed chunk of a long sequence runs: its spikes, its returned state and the gradients of everything,
the starting state included, must be those of the plain equations (iirsnn.kernels.reference) in autograd.
"""

import pytest
import torch

from iirsnn.functional.surrogates import get_surrogate
from iirsnn.kernels import cpu as cpu_kernels
from iirsnn.kernels import reference
from iirsnn.kernels.cpu.layer import FusedFilterNeuron

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
F64 = torch.float64
KERNELS = {  # (alpha, beta): none, first order, dual exponential, a second-order filter with an axonal delay of 3
    "none": ((), (1.0,)),
    "first_order": ((0.7,), (1.0,)),
    "dual_exp": ((1.1, -0.28), (0.5, 0.2)),
    "delayed": ((1.2, -0.35), (0.0, 0.0, 0.4, 0.3)),
}


def case(T, lanes, kernel, reset, dtype=F64, seed=0):
    """Inputs of one pass: X [T, 2, lanes], per-lane bias, leak and reset decay, and a starting state."""
    g = torch.Generator().manual_seed(seed)
    alpha, beta = KERNELS[kernel]
    P, Q = len(alpha), len(beta) - 1
    shape = (2, lanes)
    s0 = (torch.rand(shape, generator=g) < 0.3).to(F64) if reset == "hard" else torch.rand(shape, generator=g) * 1.5
    leaves = dict(X=torch.randn(T, *shape, generator=g) * 0.8 + 0.4, bias=torch.randn(lanes, generator=g) * 0.1,
                  leak=torch.rand(lanes, generator=g) * 0.4 + 0.55,
                  reset_decay=torch.rand(lanes, generator=g) * 0.5 + 0.3,
                  f_hist=torch.randn(P, *shape, generator=g), x_hist=torch.randn(Q, *shape, generator=g),
                  v0=torch.randn(shape, generator=g) * 0.5, s0=s0)
    return {k: v.to(dtype).requires_grad_(k != "s0" or reset != "hard") for k, v in leaves.items()}, alpha, beta


def weights(t, seed):
    """A fixed weighting of t for a loss that reaches every element."""
    return torch.randn(t.shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(t.dtype)


def loss_of(O, state):
    """Spikes and every part of the returned state in the loss, so that the gradients of the state enter."""
    return sum((t * weights(t, i)).sum() for i, t in enumerate([O, *state]))


def fused(p, alpha, beta, reset, detach):
    O, _, f_last, x_last, v_last, s_last = FusedFilterNeuron.apply(
        p["X"], p["bias"], p["leak"], p["reset_decay"], alpha, beta, 1.0, get_surrogate("gaussian"), reset, detach,
        False, p["f_hist"], p["x_hist"], p["v0"], p["s0"], True)
    return O, (f_last, x_last, v_last, s_last)


def plain(p, alpha, beta, reset, detach):
    a = torch.tensor(alpha, dtype=p["X"].dtype).view(-1)
    b = torch.tensor(beta, dtype=p["X"].dtype)
    F, f_last, x_last = reference.synapse_filter(p["X"], a, b, p["f_hist"], p["x_hist"])
    O, _, v_last, s_last = reference.neuron_scan(F + p["bias"], p["leak"], p["reset_decay"], 1.0,
                                                 get_surrogate("gaussian"), reset, detach, p["v0"], p["s0"])
    return O, (f_last, x_last, v_last, s_last)


def outputs_and_grads(run, p, alpha, beta, reset, detach):
    leaves = {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in p.items()}
    O, state = run(leaves, alpha, beta, reset, detach)
    wanted = [k for k, v in leaves.items() if v.requires_grad]
    grads = torch.autograd.grad(loss_of(O, state), [leaves[k] for k in wanted], allow_unused=True)
    return O, state, {k: torch.zeros_like(leaves[k]) if g is None else g for k, g in zip(wanted, grads, strict=True)}


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize(("T", "lanes"), [(1, 5), (2, 5), (9, 5), (9, 300)])
def test_fused_pass_from_a_state_matches_the_plain_equations(kernel, reset, detach, T, lanes):
    """Steps fewer than the filter's order (T 1, 2 with the delay of 3), several steps, and two lane blocks."""
    p, alpha, beta = case(T, lanes, kernel, reset)
    O, state, grads = outputs_and_grads(fused, p, alpha, beta, reset, detach)
    O_ref, state_ref, grads_ref = outputs_and_grads(plain, p, alpha, beta, reset, detach)
    assert torch.equal(O, O_ref)
    if T > 2:
        assert 0.05 < float(O_ref.detach().mean()) < 0.95, "the case must spike, and not on every step"
    for got, want in zip(state, state_ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert grads.keys() == grads_ref.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, grads_ref[name], rtol=1e-9, atol=1e-10, msg=name)
        if name in ("X", "v0", "f_hist", "x_hist") and g.numel():
            assert g.abs().max() > 0, f"the gradient of {name} must not vanish in this case"


@pytest.mark.parametrize("kernel", ["none", "first_order", "dual_exp"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_float32_chunks_carry_the_state_of_the_whole_sequence(kernel, reset):
    """float32 (the register pass with AVX-512 for these kernels): a sequence in two chunks, the second started
    from the state the first returned, gives bit for bit the spikes of the whole, and its gradients to 1e-5."""
    p, alpha, beta = case(30, 100, kernel, reset, torch.float32, seed=3)
    surrogate = get_surrogate("gaussian")

    def run(X, state=None):
        out = FusedFilterNeuron.apply(X, p["bias"], p["leak"], p["reset_decay"], alpha, beta, 1.0, surrogate, reset,
                                      False, False, *(state or (None,) * 4), True)
        return out[0], out[2:]

    X = p["X"].detach().clone().requires_grad_()
    whole, _ = run(X)
    (g_whole,) = torch.autograd.grad((whole * weights(whole, 0)).sum(), X)
    X = p["X"].detach().clone().requires_grad_()
    first, state = run(X[:13])
    second, _ = run(X[13:], state)
    chunked = torch.cat([first, second])
    (g_chunked,) = torch.autograd.grad((chunked * weights(chunked, 0)).sum(), X)
    assert 0.05 < float(whole.detach().mean()) < 0.95
    assert torch.equal(whole, chunked)
    torch.testing.assert_close(g_chunked, g_whole, rtol=1e-5, atol=1e-5)


def test_a_starting_state_of_the_wrong_shape_is_refused():
    p, alpha, beta = case(4, 5, "dual_exp", "filter")
    with pytest.raises(ValueError, match="f_hist must be"):
        FusedFilterNeuron.apply(p["X"], None, p["leak"], p["reset_decay"], alpha, beta, 1.0,
                                get_surrogate("gaussian"), "filter", False, False, p["f_hist"][:1], None, None, None,
                                True)
    with pytest.raises(ValueError, match="v0 and reset trace s0 together"):
        FusedFilterNeuron.apply(p["X"], None, p["leak"], p["reset_decay"], alpha, beta, 1.0,
                                get_surrogate("gaussian"), "filter", False, False, None, None, p["v0"], None, True)
