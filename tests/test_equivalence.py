"""The library's scans against the independent model of tests/reference_model.py, in float64.

Covered: every backend against the model (spikes identical, all gradients to 1e-9 relative), for
P in {0..3}, Q in {0, 1, 3}, shared and per-channel coefficients, dense and convolutional layers,
filter and hard reset, with and without detach_reset; gradcheck of both scans including the carried
state; chunked sequences; fp32 against float64.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch.nn import functional as tnf

import reference_model as rm
from iirsnn.functional import NeuronState, Surrogate, neuron_scan, synapse_filter
from iirsnn.functional.surrogates import triangle
from iirsnn.kernels import cpu as cpu_kernels

F64 = torch.float64
T, B = 12, 2
GRAD_RTOL = 1e-9
_needs_cpu = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
#: backends with a hand-written backward (the reference backend is autograd through the plain loop)
MANUAL = ("torch", pytest.param("cpu", marks=_needs_cpu))
BACKENDS = (*MANUAL, "reference")
NAMES = ("x", "alpha", "beta", "weight", "bias", "leak", "reset_decay")


# ---------------------------------------------------------------------------------------------- helpers


def stable_alpha(P: int, g: torch.Generator) -> torch.Tensor:
    """Feedback coefficients of prod_i (1 - r_i z^-1) with real poles r_i in (0.1, 0.7)."""
    c = [1.0]
    for r in (torch.rand(P, generator=g, dtype=F64) * 0.6 + 0.1).tolist():
        c = [*c, 0.0]
        c = [c[0]] + [c[k] - r * c[k - 1] for k in range(1, len(c))]
    return -torch.tensor(c[1:], dtype=F64)


def draw_layer(kind: str, P: int, Q: int, per_channel: bool, seed: int) -> dict[str, torch.Tensor]:
    """Random input spikes and parameters of one layer; the weight is scaled so that std(I) ~ 1."""
    g = torch.Generator().manual_seed(seed)
    if kind == "dense":
        c_in, x_shape, weight, n_shape = 3, (T, B, 3), torch.randn(4, 3, generator=g, dtype=F64), (4,)
    else:
        c_in, x_shape, n_shape = 2, (T, B, 2, 5, 5), (2, 1, 1)
        weight = torch.randn(2, 2, 3, 3, generator=g, dtype=F64)
    x = (torch.rand(x_shape, generator=g, dtype=F64) < 0.4).to(F64)
    if per_channel:
        alpha = torch.stack([stable_alpha(P, g) for _ in range(c_in)])
        beta = torch.rand(c_in, Q + 1, generator=g, dtype=F64) + 0.3
    else:
        alpha, beta = stable_alpha(P, g), torch.rand(Q + 1, generator=g, dtype=F64) + 0.3
    with torch.no_grad():
        F = rm.synapse(x, alpha, beta)
        I0 = rm.dense_current(F, weight, None) if kind == "dense" else rm.conv_current(F, weight, None)
    weight = weight / I0.std()
    bias = torch.randn(weight.shape[0], generator=g, dtype=F64) * 0.2 + 0.3
    decay_shape = n_shape if per_channel else ()
    leak = torch.rand(decay_shape, generator=g, dtype=F64) * 0.4 + 0.5
    reset_decay = torch.rand(decay_shape, generator=g, dtype=F64) * 0.6 + 0.2
    return dict(x=x, alpha=alpha, beta=beta, weight=weight, bias=bias, leak=leak, reset_decay=reset_decay)


def leaves(case: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fresh copies of the case's tensors that require grad."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in case.items()}


def model_layer(p, kind, reset, detach_reset, threshold=1.0, surrogate="gaussian"):
    O, V, _, _ = rm.layer(p["x"], p["alpha"], p["beta"], p["weight"], p["bias"], p["leak"], p["reset_decay"],
                          threshold, surrogate, reset, detach_reset, kind)
    return O, V


def library_layer(p, kind, reset, detach_reset, backend, threshold=1.0, surrogate="gaussian"):
    """synapse_filter -> linear / conv2d over the folded [T*B, ...] batch -> neuron_scan."""
    F = synapse_filter(p["x"], p["alpha"], p["beta"], backend=backend)
    flat = F.reshape(F.shape[0] * F.shape[1], *F.shape[2:])
    if kind == "dense":
        I = tnf.linear(flat, p["weight"], p["bias"])
    else:
        I = tnf.conv2d(flat, p["weight"], p["bias"], padding=1)
    I = I.reshape(F.shape[0], F.shape[1], *I.shape[1:])
    return neuron_scan(I, p["leak"], p["reset_decay"], threshold, surrogate, reset, detach_reset,
                       return_voltage=True, backend=backend)


@functools.cache
def find_case(kind, P, Q, per_channel, reset, margin=1e-6, threshold=1.0, surrogate="gaussian"):
    """The first seed whose layer spikes at a rate in [0.1, 0.5] with every V at least ``margin`` from V_th.

    Cached (both backends use the same case): callers must not modify the returned tensors.
    """
    for seed in range(100):
        case = draw_layer(kind, P, Q, per_channel, seed)
        with torch.no_grad():
            O, V = model_layer(case, kind, reset, False, threshold, surrogate)  # detach_reset: same forward
        if 0.1 <= O.mean().item() <= 0.5 and (V - threshold).abs().min().item() > margin:
            return case
    raise AssertionError("no seed gives a usable case")


def assert_nonvacuous(O, V, threshold=1.0, margin=1e-6):
    rate = O.mean().item()
    assert 0.05 <= rate <= 0.6, f"spike rate {rate} outside [5%, 60%]: the comparison would be vacuous"
    assert (V - threshold).abs().min().item() > margin


def loss_weights(O: torch.Tensor, seed: int = 1234):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(O.shape, generator=g, dtype=F64), torch.randn(O.shape, generator=g, dtype=F64)


def grads(loss: torch.Tensor, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
    names = list(params)
    got = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    return dict(zip(names, got, strict=True))


def assert_grad_close(got: torch.Tensor | None, ref: torch.Tensor | None, name: str, rtol: float = GRAD_RTOL):
    """|got - ref| <= rtol * max|ref| elementwise; an unused (None) gradient counts as zeros."""
    if ref is None and got is None:
        return
    shape = (ref if ref is not None else got).shape
    ref = torch.zeros(shape, dtype=F64) if ref is None else ref.to(F64)
    got = torch.zeros(shape, dtype=F64) if got is None else got.to(F64)
    assert got.shape == ref.shape, f"grad of {name}: shape {list(got.shape)} != {list(ref.shape)}"
    scale = ref.abs().max().item() if ref.numel() else 0.0
    err = (got - ref).abs().max().item() if ref.numel() else 0.0
    if scale == 0.0:
        assert err == 0.0, f"grad of {name} should be zero, max abs {err}"
    else:
        assert err <= rtol * scale, f"grad of {name}: max abs error {err:.3e} > {rtol:g} * {scale:.3e}"


# ------------------------------------------------------------------------------- layer against the model


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset_grad", "detach_reset"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["shared", "per_channel"])
@pytest.mark.parametrize("Q", [0, 1, 3])
@pytest.mark.parametrize("P", [0, 1, 2, 3])
def test_layer_matches_model(P, Q, per_channel, kind, reset, detach_reset, backend):
    case = find_case(kind, P, Q, per_channel, reset)
    ref_p, lib_p = leaves(case), leaves(case)
    O_ref, V_ref = model_layer(ref_p, kind, reset, detach_reset)
    O, V = library_layer(lib_p, kind, reset, detach_reset, backend)
    assert_nonvacuous(O_ref, V_ref)
    assert O.dtype == F64 and O.shape == O_ref.shape
    assert torch.equal(O, O_ref)
    torch.testing.assert_close(V, V_ref, rtol=1e-12, atol=1e-12)

    wO, wV = loss_weights(O_ref)
    g_ref = grads((O_ref * wO).sum() + (V_ref * wV).sum(), ref_p)
    g_lib = grads((O * wO).sum() + (V * wV).sum(), lib_p)
    for name in NAMES:
        if name == "alpha" and P == 0:
            assert g_lib[name] is None or g_lib[name].numel() == 0
            continue
        if not (name == "reset_decay" and reset == "hard"):
            assert g_ref[name] is not None and g_ref[name].abs().max() > 0, f"reference grad of {name} is zero"
        assert_grad_close(g_lib[name], g_ref[name], name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("surrogate", "threshold"),
    [("fast_sigmoid", 1.0), ("sigmoid", 1.0), ("arctan", 0.7), ("triangle", 1.3), (Surrogate("gaussian", 0.8), 0.5)],
    ids=["fast_sigmoid", "sigmoid", "arctan", "triangle", "gaussian0.8"],
)
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_layer_surrogates_and_thresholds(surrogate, threshold, reset, backend):
    case = find_case("dense", 2, 1, True, reset, threshold=threshold, surrogate=surrogate)
    ref_p, lib_p = leaves(case), leaves(case)
    O_ref, V_ref = model_layer(ref_p, "dense", reset, False, threshold, surrogate)
    O, V = library_layer(lib_p, "dense", reset, False, backend, threshold, surrogate)
    assert_nonvacuous(O_ref, V_ref, threshold)
    assert torch.equal(O, O_ref)
    wO, wV = loss_weights(O_ref)
    g_ref = grads((O_ref * wO).sum() + (V_ref * wV).sum(), ref_p)
    g_lib = grads((O * wO).sum() + (V * wV).sum(), lib_p)
    for name in NAMES:
        assert_grad_close(g_lib[name], g_ref[name], name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset_grad", "detach_reset"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_two_layers_match_model(reset, detach_reset, backend):
    """Spikes of a first layer feed the synapse of a second: the gradient crosses a spike train."""
    found = None
    for seed in range(200):
        c1 = draw_layer("dense", 2, 1, True, seed)  # 3 -> 4 neurons
        g = torch.Generator().manual_seed(1000 + seed)
        c2 = dict(  # 4 -> 3 neurons, first-order synapse with two taps per channel
            alpha=torch.stack([stable_alpha(1, g) for _ in range(4)]),
            beta=torch.rand(4, 3, generator=g, dtype=F64) + 0.3,
            weight=torch.randn(3, 4, generator=g, dtype=F64),
            bias=torch.randn(3, generator=g, dtype=F64) * 0.2 + 0.3,
            leak=torch.rand(3, generator=g, dtype=F64) * 0.4 + 0.5,
            reset_decay=torch.rand(3, generator=g, dtype=F64) * 0.6 + 0.2,
        )
        with torch.no_grad():
            O1, V1 = model_layer(c1, "dense", reset, detach_reset)
            F2 = rm.synapse(O1, c2["alpha"], c2["beta"])
            c2["weight"] = c2["weight"] / rm.dense_current(F2, c2["weight"], None).std().clamp(min=1e-3)
            O2, V2 = model_layer(dict(c2, x=O1), "dense", reset, detach_reset)
        if all(0.1 <= o.mean().item() <= 0.5 and (v - 1).abs().min().item() > 1e-6 for o, v in ((O1, V1), (O2, V2))):
            found = c1, c2
            break
    assert found is not None
    c1, c2 = found
    ref1, ref2, lib1, lib2 = leaves(c1), leaves(c2), leaves(c1), leaves(c2)
    O1r, V1r = model_layer(ref1, "dense", reset, detach_reset)
    O2r, V2r = model_layer(dict(ref2, x=O1r), "dense", reset, detach_reset)
    O1, _ = library_layer(lib1, "dense", reset, detach_reset, backend)
    O2, V2 = library_layer(dict(lib2, x=O1), "dense", reset, detach_reset, backend)
    assert_nonvacuous(O1r, V1r)
    assert_nonvacuous(O2r, V2r)
    assert torch.equal(O1, O1r) and torch.equal(O2, O2r)
    wO, wV = loss_weights(O2r)
    params_ref = {**{f"1.{k}": v for k, v in ref1.items()}, **{f"2.{k}": v for k, v in ref2.items()}}
    params_lib = {**{f"1.{k}": v for k, v in lib1.items()}, **{f"2.{k}": v for k, v in lib2.items()}}
    g_ref = grads((O2r * wO).sum() + (V2r * wV).sum(), params_ref)
    g_lib = grads((O2 * wO).sum() + (V2 * wV).sum(), params_lib)
    assert g_ref["1.weight"].abs().max() > 0, "no gradient reaches the first layer"
    for name in params_ref:
        assert_grad_close(g_lib[name], g_ref[name], name)


# ------------------------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("steps", [5, 2], ids=["T5", "T2"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["shared", "per_channel"])
@pytest.mark.parametrize("Q", [0, 1, 3])
@pytest.mark.parametrize("P", [0, 1, 2, 3])
def test_gradcheck_synapse_filter(P, Q, per_channel, steps, backend):
    """Gradients of x, alpha, beta and the carried history, through F and the returned state."""
    g = torch.Generator().manual_seed(10 * P + Q)
    C = 3
    x = torch.randn(steps, 2, C, 2, generator=g, dtype=F64)
    if per_channel:
        alpha = torch.stack([stable_alpha(P, g) for _ in range(C)])
        beta = torch.randn(C, Q + 1, generator=g, dtype=F64)
    else:
        alpha, beta = stable_alpha(P, g), torch.randn(Q + 1, generator=g, dtype=F64)
    f_hist = torch.randn(P, 2, C, 2, generator=g, dtype=F64)
    x_hist = torch.randn(Q, 2, C, 2, generator=g, dtype=F64)
    inputs = [t.requires_grad_(True) for t in (x, alpha, beta, f_hist, x_hist) if t.numel()]

    def fn(*args):
        it = iter(args)
        a = [next(it) if t.numel() else t for t in (x, alpha, beta, f_hist, x_hist)]
        F, st = synapse_filter(a[0], a[1], a[2], (a[3], a[4]), return_state=True, backend=backend)
        return tuple(o for o in (F, st.outputs, st.inputs) if o.numel())

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-7)


def _neuron_inputs(reset: str, seed: int, margin: float):
    """Current, per-neuron leak/reset_decay and a carried state with every V at least ``margin`` from V_th."""
    for s in range(seed, seed + 200):
        g = torch.Generator().manual_seed(s)
        current = torch.randn(6, 2, 3, generator=g, dtype=F64) * 0.8 + 0.5
        leak = torch.rand(3, generator=g, dtype=F64) * 0.5 + 0.4
        theta = torch.rand(3, generator=g, dtype=F64) * 0.6 + 0.2
        v0 = torch.randn(2, 3, generator=g, dtype=F64) * 0.5
        s0 = (torch.rand(2, 3, generator=g, dtype=F64) < 0.5).to(F64)
        if reset == "filter":
            s0 = s0 + torch.rand(2, 3, generator=g, dtype=F64) * 0.5  # a decayed reset trace
        O, V = neuron_scan(current, leak, theta, reset=reset, state=NeuronState(v0, s0), return_voltage=True)
        if 0.15 <= O.mean().item() <= 0.6 and (V - 1.0).abs().min().item() > margin:
            return current, leak, theta, v0, s0
    raise AssertionError("no usable neuron case")


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_gradcheck_neuron_scan_detached(reset, backend):
    """With detach_reset the spikes feed V only through cut paths, so V and the state are smooth in every input."""
    current, leak, theta, v0, s0 = _neuron_inputs(reset, 0, margin=1e-3)
    # hard reset with detach_reset: s0 enters only through the detached factor (1 - O[t-1]), no gradient
    use_s0 = reset == "filter"

    def fn(current, leak, theta, v0, *s0_arg):
        state = NeuronState(v0, s0_arg[0] if use_s0 else s0)
        _, V, st = neuron_scan(current, leak, theta, reset=reset, detach_reset=True, state=state,
                               return_voltage=True, return_state=True, backend=backend)
        # hard reset: st.s is the last spike O[T-1], whose (surrogate) gradient is not a true derivative
        return (V, st.v, st.s) if reset == "filter" else (V, st.v)

    inputs = [t.clone().requires_grad_(True) for t in (current, leak, theta, v0, *([s0] if use_s0 else []))]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset_grad", "detach_reset"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_gradcheck_neuron_scan_all_outputs(reset, detach_reset, backend):
    """A narrow triangle surrogate that is zero at every V makes the surrogate gradient the true derivative."""
    width = 1e-3
    current, leak, theta, v0, s0 = _neuron_inputs(reset, 500, margin=2 * width)
    sur = triangle(width)

    def fn(current, leak, theta, v0, s0):
        O, V, st = neuron_scan(current, leak, theta, 1.0, sur, reset, detach_reset, NeuronState(v0, s0),
                               return_voltage=True, return_state=True, backend=backend)
        return O, V, st.v, st.s

    inputs = [t.clone().requires_grad_(True) for t in (current, leak, theta, v0, s0)]
    if reset == "hard" and detach_reset:
        inputs[4].requires_grad_(False)  # the detached hard reset deliberately cuts the gradient of s0
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset_grad", "detach_reset"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_neuron_state_gradients_match_reference_backend(reset, detach_reset, backend):
    """The surrogate gradients of the carried state (v0, s0) and of the returned state agree between backends."""
    current, leak, theta, v0, s0 = _neuron_inputs(reset, 900, margin=1e-6)
    g = torch.Generator().manual_seed(7)
    w = [torch.randn(current.shape, generator=g, dtype=F64) for _ in range(2)]
    w += [torch.randn(v0.shape, generator=g, dtype=F64) for _ in range(2)]
    out = {}
    for name in (backend, "reference"):
        p = [t.clone().requires_grad_(True) for t in (current, leak, theta, v0, s0)]
        O, V, st = neuron_scan(p[0], p[1], p[2], reset=reset, detach_reset=detach_reset, state=NeuronState(p[3], p[4]),
                               return_voltage=True, return_state=True, backend=name)
        loss = (O * w[0]).sum() + (V * w[1]).sum() + (st.v * w[2]).sum() + (st.s * w[3]).sum()
        out[name] = torch.autograd.grad(loss, p, allow_unused=True)
    assert out["reference"][3].abs().max() > 0 and out["reference"][0].abs().max() > 0
    for name, got, ref in zip(("current", "leak", "reset_decay", "v0", "s0"), out[backend], out["reference"],
                              strict=True):
        assert_grad_close(got, ref, name)


# -------------------------------------------------------------------------------------------- chunking

CHUNKS = (5, 4, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("per_channel", [False, True], ids=["shared", "per_channel"])
@pytest.mark.parametrize("Q", [0, 1, 3])
@pytest.mark.parametrize("P", [0, 1, 3])
def test_filter_chunks_equal_whole_sequence(P, Q, per_channel, backend):
    g = torch.Generator().manual_seed(P * 7 + Q)
    C = 3
    x = torch.randn(sum(CHUNKS), B, C, generator=g, dtype=F64)
    if per_channel:
        alpha = torch.stack([stable_alpha(P, g) for _ in range(C)])
        beta = torch.randn(C, Q + 1, generator=g, dtype=F64)
    else:
        alpha, beta = stable_alpha(P, g), torch.randn(Q + 1, generator=g, dtype=F64)
    w = torch.randn(x.shape, generator=g, dtype=F64)
    results = []
    for chunked in (False, True):
        p = [t.clone().requires_grad_(True) for t in (x, alpha, beta)]
        if chunked:
            outs, state = [], None
            for piece in p[0].split(CHUNKS):
                F_i, state = synapse_filter(piece, p[1], p[2], state, return_state=True, backend=backend)
                outs.append(F_i)
            F = torch.cat(outs)
        else:
            F, state = synapse_filter(p[0], p[1], p[2], return_state=True, backend=backend)
        g_all = torch.autograd.grad((F * w).sum(), p, allow_unused=True)
        results.append((F.detach(), state, g_all))
    (F_whole, st_whole, g_whole), (F_chunk, st_chunk, g_chunk) = results
    torch.testing.assert_close(F_chunk, F_whole, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(st_chunk.outputs, st_whole.outputs, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(st_chunk.inputs, st_whole.inputs, rtol=1e-13, atol=1e-13)
    assert st_whole.outputs.shape == (P, B, C) and st_whole.inputs.shape == (Q, B, C)
    for name, got, ref in zip(("x", "alpha", "beta"), g_chunk, g_whole, strict=True):
        assert_grad_close(got, ref, name, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset_grad", "detach_reset"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_neuron_chunks_equal_whole_sequence(reset, detach_reset, backend):
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        current = torch.randn(sum(CHUNKS), B, 4, generator=g, dtype=F64) * 0.7 + 0.45
        leak = torch.rand(4, generator=g, dtype=F64) * 0.4 + 0.5
        theta = torch.rand(4, generator=g, dtype=F64) * 0.6 + 0.2
        O, V = rm.neuron(current, leak, theta, reset=reset)
        if 0.1 <= O.mean().item() <= 0.5 and (V - 1).abs().min().item() > 1e-6:
            break
    assert_nonvacuous(O, V)
    wO, wV = loss_weights(O)
    results = []
    for chunked in (False, True):
        p = [t.clone().requires_grad_(True) for t in (current, leak, theta)]
        if chunked:
            outs, state = [], None
            for piece in p[0].split(CHUNKS):
                O_i, V_i, state = neuron_scan(piece, p[1], p[2], reset=reset, detach_reset=detach_reset, state=state,
                                              return_voltage=True, return_state=True, backend=backend)
                outs.append((O_i, V_i))
                assert state.v.requires_grad and state.s.requires_grad  # the graph is carried across chunks
            O_c, V_c = torch.cat([o for o, _ in outs]), torch.cat([v for _, v in outs])
        else:
            O_c, V_c, state = neuron_scan(p[0], p[1], p[2], reset=reset, detach_reset=detach_reset,
                                          return_voltage=True, return_state=True, backend=backend)
        g_all = torch.autograd.grad((O_c * wO).sum() + (V_c * wV).sum(), p, allow_unused=True)
        results.append((O_c.detach(), V_c.detach(), state, g_all))
    (O_w, V_w, st_w, g_w), (O_ch, V_ch, st_ch, g_ch) = results
    assert torch.equal(O_ch, O_w)
    torch.testing.assert_close(V_ch, V_w, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(st_ch.v, st_w.v, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(st_ch.s, st_w.s, rtol=1e-13, atol=1e-13)
    for name, got, ref in zip(("current", "leak", "reset_decay"), g_ch, g_w, strict=True):
        assert_grad_close(got, ref, name, rtol=1e-12)


# --------------------------------------------------------------------------------------- fp32 vs float64


def assert_spike_flips_explained(O32, O64, V64, threshold=1.0, tol=1e-4) -> int:
    """Per neuron, the first step where fp32 and float64 spikes differ must have |V64 - V_th| < tol.

    (After a flip the trajectories legitimately part ways.) Returns the number of neurons with a flip.
    """
    diff = (O32.to(F64) != O64).reshape(O64.shape[0], -1)
    dist = (V64 - threshold).abs().reshape(O64.shape[0], -1)
    flipped = diff.any(0)
    for n in flipped.nonzero().flatten().tolist():
        t = int(diff[:, n].nonzero()[0])
        assert dist[t, n] < tol, f"neuron {n}: fp32 spike differs at t={t} where float64 V is {dist[t, n]:.2e} away"
    return int(flipped.sum())


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize(("P", "Q"), [(0, 0), (2, 1), (3, 3)])
def test_fp32_agrees_with_float64(P, Q, kind, reset, backend):
    """fp32 within 1e-4 of float64. The cases hold no gradient near float32's subnormal cut-off (2^-100,
    asserted below), so the cut-off plays no part in these tolerances: tests/test_subnormals.py checks fp32
    against float64 across it."""
    case = find_case(kind, P, Q, True, reset, margin=1e-4)
    p64 = leaves(case)
    p32 = {k: v.detach().float().requires_grad_(True) for k, v in case.items()}
    O64, V64 = library_layer(p64, kind, reset, False, "reference")
    O32, V32 = library_layer(p32, kind, reset, False, backend)
    assert O32.dtype == torch.float32 and V32.dtype == torch.float32
    assert_nonvacuous(O64, V64, margin=1e-4)
    assert assert_spike_flips_explained(O32, O64, V64) == 0  # no V within 1e-4 here: no flip allowed
    torch.testing.assert_close(V32.double(), V64, rtol=1e-5, atol=1e-5)
    wO, wV = loss_weights(O64)
    g64 = grads((O64 * wO).sum() + (V64 * wV).sum(), p64)
    g32 = grads((O32 * wO.float()).sum() + (V32 * wV.float()).sum(), p32)
    for name in NAMES:
        if name == "alpha" and P == 0:
            continue
        if g64[name] is not None:
            nonzero = g64[name][g64[name] != 0].abs()
            assert nonzero.numel() == 0 or nonzero.min() > 2.0**-80, name
        assert g32[name] is None or g32[name].dtype == torch.float32
        assert_grad_close(g32[name], g64[name], name, rtol=1e-4)


@pytest.mark.parametrize("backend", MANUAL)
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_fp32_spike_flips_only_near_threshold(reset, backend):
    """Over long random runs fp32 and float64 spikes part only where float64 V is within 1e-4 of V_th.

    One neuron is driven to V = 1 + 1e-9, which rounds to 1.0 in fp32 (no spike, as the spike needs
    V > V_th strictly) but spikes in float64: a flip that must be, and is, explained.
    """
    g = torch.Generator().manual_seed(3)
    current = torch.rand(200, 4, 8, generator=g, dtype=F64) * 0.8
    current[0, 0, 0] = 1.0 + 1e-9
    O64, V64 = neuron_scan(current, 0.8, 0.6, reset=reset, return_voltage=True, backend="reference")
    O32, _ = neuron_scan(current.float(), 0.8, 0.6, reset=reset, return_voltage=True, backend=backend)
    assert O64[0, 0, 0] == 1 and O32[0, 0, 0] == 0
    assert 0.05 <= O64.mean().item() <= 0.6
    assert assert_spike_flips_explained(O32, O64, V64) >= 1


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_spike_needs_v_strictly_above_threshold(reset, backend, dtype):
    """V == V_th exactly is no spike; the next representable value above is one (eq. 5e with H(0) = 0)."""
    above = torch.nextafter(torch.tensor(0.75, dtype=dtype), torch.tensor(2.0, dtype=dtype))
    current = torch.zeros(2, 1, 3, dtype=dtype)
    current[0, 0] = torch.stack([torch.tensor(0.75, dtype=dtype), above, torch.tensor(0.5, dtype=dtype)])
    O, V = neuron_scan(current, 0.9, 0.5, threshold=0.75, reset=reset, return_voltage=True, backend=backend)
    assert V[0, 0, 0] == 0.75
    assert O[0, 0].tolist() == [0.0, 1.0, 0.0]
