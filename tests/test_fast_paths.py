"""The fused whole-layer paths of the compiled backend against the reference composition, in float64.

spiking_linear / spiking_conv on the cpu backend filter on the current side (W F(O) = F(W O)), use
spike-sparse or GEMM products and one fused filter+neuron pass; with backend="reference" they
compose the plain step-by-step scans. Spikes must be identical and all gradients equal to 1e-9.
"""

import pytest
import torch

from iirsnn import config
from iirsnn import nn as inn
from iirsnn.functional import presets
from iirsnn.functional.layer import spiking_conv, spiking_linear
from iirsnn.kernels import cpu as cpu_kernels
from iirsnn.kernels.cpu.layer import SpikeLinear

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
F64 = torch.float64


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def run_both(fn, inputs, **kwargs):
    """Outputs and gradients of fn on the cpu backend and on the reference backend (same loss)."""
    results = []
    for backend in ("cpu", "reference"):
        leaves = {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in inputs.items()}
        out = fn(**leaves, backend=backend, **kwargs)
        w = torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape)
        loss = (out * w).sum()
        wanted = {k: v for k, v in leaves.items() if v.requires_grad}
        found = torch.autograd.grad(loss, list(wanted.values()), allow_unused=True)
        grads = {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(wanted.items(), found, strict=True)}
        results.append((out, grads))
    return results


def check(results, reset="filter", min_rate=0.03):
    (out, grads), (ref_out, ref_grads) = results
    assert torch.equal(out, ref_out)
    assert min_rate < float(ref_out.detach().mean()) < 0.7, "the case must actually spike"
    for name, g in ref_grads.items():
        if g.numel() == 0:  # alpha of a filter without feedback
            continue
        if name == "reset_decay" and reset == "hard":  # unused by the hard reset
            assert torch.all(grads[name] == 0)
            continue
        assert g.abs().max() > 0, f"no gradient reaches {name}"
        assert rel_err(grads[name], g) < 1e-9, name


def dense_inputs(seed, n_in=12, n_out=7, rate=0.3, P_Q=(2, 1), learn_kernel=False, per_neuron=True, values=False):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(15, 3, n_in, generator=g) < rate).to(F64)
    if values:  # pooled spikes are fractions
        x = x * torch.randint(1, 5, x.shape, generator=g).to(F64) / 4
    coef = presets.dual_exp(4.0, 1.5, dtype=F64) if P_Q == (2, 1) else presets.Coefficients(
        torch.tensor([0.5, -0.1, 0.05][:P_Q[0]], dtype=F64), torch.linspace(1, 0.3, P_Q[1] + 1, dtype=F64))
    shape = (n_out,) if per_neuron else ()
    return dict(
        x=x.requires_grad_(True),
        weight=(torch.randn(n_out, n_in, generator=g, dtype=F64) * 0.9 + 0.25).requires_grad_(True),
        bias=(torch.randn(n_out, generator=g, dtype=F64) * 0.1).requires_grad_(True),
        alpha=coef.alpha.requires_grad_(learn_kernel), beta=coef.beta.requires_grad_(learn_kernel),
        leak=(torch.rand(shape, generator=g, dtype=F64) * 0.4 + 0.5).requires_grad_(True),
        reset_decay=(torch.rand(shape, generator=g, dtype=F64) * 0.5 + 0.3).requires_grad_(True),
    )


@pytest.mark.parametrize("density", [1.0, 0.0], ids=["sparse", "dense"])
@pytest.mark.parametrize("reset, detach", [("filter", False), ("filter", True), ("hard", False), ("hard", True)])
def test_spiking_linear_matches_reference(density, reset, detach, monkeypatch):
    monkeypatch.setattr(config, "sparse_max_density", density)
    check(run_both(spiking_linear, dense_inputs(1), reset=reset, detach_reset=detach), reset)


@pytest.mark.parametrize("P_Q", [(0, 0), (1, 2), (3, 3)])
@pytest.mark.parametrize("learn_kernel", [False, True])
def test_spiking_linear_kernels_and_learnable_coefficients(P_Q, learn_kernel):
    check(run_both(spiking_linear, dense_inputs(2, P_Q=P_Q, learn_kernel=learn_kernel)))


def test_spiking_linear_fractional_inputs_shared_decays_and_no_bias(monkeypatch):
    monkeypatch.setattr(config, "sparse_max_density", 1.0)
    inputs = dense_inputs(3, values=True, per_neuron=False)
    inputs["bias"] = None
    check(run_both(spiking_linear, {k: v for k, v in inputs.items() if v is not None}, bias=None))


def conv_inputs(seed, dims=2, per_channel=True, in_channels=3):
    g = torch.Generator().manual_seed(seed)
    spatial = (6, 5) if dims == 2 else (9,)
    x = (torch.rand(10, 2, in_channels, *spatial, generator=g) < 0.3).to(F64)
    k = (3, 3) if dims == 2 else (3,)
    coef = presets.dual_exp(4.0, 1.0, dtype=F64)
    shape = (4,) + (1,) * dims if per_channel else ()
    return dict(
        x=x.requires_grad_(True),
        weight=(torch.randn(4, in_channels, *k, generator=g, dtype=F64) * 0.7 + 0.15).requires_grad_(True),
        bias=(torch.randn(4, generator=g, dtype=F64) * 0.1).requires_grad_(True),
        alpha=coef.alpha, beta=coef.beta,
        leak=(torch.rand(shape, generator=g, dtype=F64) * 0.4 + 0.5).requires_grad_(True),
        reset_decay=(torch.rand(shape, generator=g, dtype=F64) * 0.5 + 0.3).requires_grad_(True),
    )


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("options", [dict(padding=1), dict(padding="same"), dict(stride=2, padding=0)])
@pytest.mark.parametrize("reset", ["filter", "hard"])
def test_spiking_conv_matches_reference(dims, options, reset):
    check(run_both(spiking_conv, conv_inputs(4, dims), reset=reset, **options), reset)


@pytest.mark.parametrize("dims", [1, 2])
def test_spiking_conv_one_input_channel(dims):
    """2-D: run as two channels, one of them zero (oneDNN's one-channel path is slow); same results."""
    check(run_both(spiking_conv, conv_inputs(6, dims, in_channels=1), padding=1))


def test_spiking_conv_shared_decays():
    check(run_both(spiking_conv, conv_inputs(5, 2, per_channel=False), padding=1))


def test_spike_linear_products_and_compression(monkeypatch):
    """CSR/CSC products, including empty rows and columns, an all-zero input, and non-binary values."""
    monkeypatch.setattr(config, "sparse_max_density", 1.0)
    g = torch.Generator().manual_seed(0)
    for X in ((torch.rand(40, 30, generator=g) < 0.1).to(F64), torch.zeros(5, 8, dtype=F64),
              torch.rand(20, 9, generator=g, dtype=F64) * (torch.rand(20, 9, generator=g) < 0.2)):
        X[:, 0] = 0
        X[3] = 0
        W = torch.randn(6, X.shape[1], generator=g, dtype=F64, requires_grad=True)
        Xg = X.clone().requires_grad_(True)
        Y = SpikeLinear.apply(Xg, W)
        G = torch.randn(Y.shape, generator=g, dtype=F64)
        gX, gW = torch.autograd.grad((Y * G).sum(), [Xg, W])
        torch.testing.assert_close(Y, X @ W.detach().T, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(gW, G.T @ X, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(gX, G @ W.detach(), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n_out", [1, 15, 16, 17, 255, 256, 257, 500, 530])
def test_spike_linear_float32_widths(n_out, monkeypatch):
    """The float32 products keep the output row in registers in chunks of 256 columns, the last vector masked:
    every width agrees with float64 to round-off. 1200 rows cross the weight gradient's row blocks."""
    monkeypatch.setattr(config, "sparse_max_density", 1.0)
    g = torch.Generator().manual_seed(n_out)
    X = (torch.rand(1200, 37, generator=g) < 0.15).float()
    W = torch.randn(n_out, 37, generator=g, requires_grad=True)
    Y = SpikeLinear.apply(X, W)
    G = torch.randn(Y.shape, generator=g)
    (gW,) = torch.autograd.grad((Y * G).sum(), [W])
    Xd, Wd, Gd = X.double(), W.detach().double(), G.double()
    torch.testing.assert_close(Y.double(), Xd @ Wd.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gW.double(), Gd.T @ Xd, rtol=1e-5, atol=1e-4)


def test_module_fast_path_equals_plain_modules():
    """A SpikingLayer takes the fused path; the same modules run one after the other give the same result."""
    torch.manual_seed(0)
    layer = inn.SpikingLayer(inn.Conv2d(2, 5, 3, padding="same"), inn.SynapseFilter("alpha", tau=2.0),
                             inn.LIFNeuron(tau_m=3.0, shape=(5, 1, 1), learnable=True)).double()
    x = (torch.rand(12, 3, 2, 7, 7) < 0.3).double()
    fused = layer(x)
    plain = layer.neuron(layer.connection(layer.synapse(x)))
    assert torch.equal(fused, plain) and fused.mean() > 0.01


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_fp32_fused_path_agrees_with_float64(kind):
    inputs = dense_inputs(6) if kind == "dense" else conv_inputs(6)
    fn = spiking_linear if kind == "dense" else spiking_conv
    extra = {} if kind == "dense" else dict(padding=1)
    ref = fn(**{k: v.detach() for k, v in inputs.items()}, backend="reference", **extra)
    f32 = fn(**{k: v.detach().float() for k, v in inputs.items()}, backend="cpu", **extra)
    assert f32.dtype == torch.float32
    assert float((f32.double() != ref).float().mean()) < 0.002  # flips only within round-off of the threshold


@pytest.mark.parametrize("density", [1.0, 0.0], ids=["sparse", "dense"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_bf16_mixed_stays_close_to_fp32(kind, density, monkeypatch):
    """bf16-mixed rounds weights and currents to 8 bits of mantissa: few spikes flip, gradients stay aligned."""
    monkeypatch.setattr(config, "sparse_max_density", density)
    inputs = dense_inputs(7, n_in=64, n_out=32) if kind == "dense" else conv_inputs(7)
    fn = spiking_linear if kind == "dense" else spiking_conv
    extra = {} if kind == "dense" else dict(padding=1)
    runs = {}
    for precision in ("fp32", "bf16-mixed"):
        leaves = {k: v.detach().float().requires_grad_(v.requires_grad) for k, v in inputs.items()}
        out = fn(**leaves, backend="cpu", precision=precision, **extra)
        assert out.dtype == torch.float32
        out.sum().backward()
        runs[precision] = (out, leaves["weight"].grad)
    (o32, g32), (o16, g16) = runs["fp32"], runs["bf16-mixed"]
    assert float((o32 != o16).float().mean()) < 0.05
    cosine = float((g32 * g16).sum() / (g32.norm() * g16.norm()))
    assert cosine > 0.9
    if kind == "dense" and density == 1.0:  # the sparse sums stay in fp32: identical to fp32
        assert torch.equal(o32, o16)


def test_precision_option_reaches_layers_and_is_checked():
    from iirsnn.models import from_spec

    model = from_spec("8C3-10", (1, 6, 6), precision="bf16-mixed")
    assert {m.precision for m in model if isinstance(m, inn.SpikingLayer)} == {"bf16-mixed"}
    inn.set_precision(model, "fp32")
    assert {m.precision for m in model if isinstance(m, inn.SpikingLayer)} == {"fp32"}
    with pytest.raises(ValueError, match="precision must be one of"):
        from_spec("10", (4,), precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        spiking_linear(torch.zeros(2, 1, 3), torch.zeros(4, 3), None, torch.zeros(0), torch.ones(1), 0.5, 0.5,
                       precision="half")


@pytest.mark.parametrize("density", [0.01, 0.1, 0.29])
@pytest.mark.parametrize("n", [7, 16, 77, 500])
def test_spike_index_equals_nonzero(density, n, monkeypatch):
    """The compressed rows list exactly the non-zeros, row by row, whatever the row length and density."""
    from iirsnn.kernels.cpu.layer import spike_matrix

    monkeypatch.setattr(config, "sparse_max_density", 1.0)
    g = torch.Generator().manual_seed(n)
    X = (torch.rand(300, n, generator=g) < density).float()
    X[5, -min(n, 20):] = 1.0  # a row ending in a run of spikes
    sparse, measured, binary = spike_matrix(X)
    assert binary
    assert measured == pytest.approx(float((X != 0).float().mean()))
    assert torch.equal(sparse.col, torch.nonzero(X)[:, 1].to(torch.int32))
    assert torch.equal(sparse.rowptr[1:], torch.cumsum((X != 0).sum(1), 0))
    colptr, row, _ = sparse.columns()
    assert torch.equal(colptr[1:], torch.cumsum((X != 0).sum(0), 0))
    assert torch.equal(row, torch.nonzero(X.t())[:, 1].to(torch.int32))


def test_linear_weight_layout_survives_conversion_loading_and_training():
    """The weight is kept as W^T (column-major) so the fused path neither copies W nor its gradient."""
    from iirsnn.models import from_spec

    lin = inn.Linear(7, 5)
    assert lin.weight.shape == (5, 7) and lin.weight.t().is_contiguous()
    reference = torch.nn.Linear(7, 5)
    lin.load_state_dict(reference.state_dict())
    assert torch.equal(lin.weight, reference.weight) and lin.weight.t().is_contiguous()
    assert lin.double().weight.t().is_contiguous()
    layer = from_spec("6-3", input_shape=(7,))
    x = (torch.rand(20, 4, 7) < 0.3).float()
    layer(x).sum().backward()
    for m in layer.modules():
        if isinstance(m, inn.Linear):
            assert m.weight.grad.stride() == m.weight.stride()


def _fused(X, v_bf16, reset, learn_theta=True, alpha=(1.2, -0.35)):
    from iirsnn.functional import get_surrogate
    from iirsnn.kernels.cpu.layer import FusedFilterNeuron

    X = X.detach().clone().requires_grad_()
    leak = torch.tensor(0.85, requires_grad=True)
    theta = torch.tensor(0.7, requires_grad=learn_theta)
    O, V = FusedFilterNeuron.apply(X, None, leak, theta, alpha, (0.4, 0.3), 1.0, get_surrogate("gaussian"),
                                   reset, False, v_bf16)[:2]
    w = torch.linspace(-1, 1, O.numel()).view(O.shape)
    grads = torch.autograd.grad((O * w).sum(), [X, leak] + ([theta] if learn_theta else []))
    return O, V, grads


@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("alpha", [(1.2, -0.35), (1.2, -0.35, 0.0)], ids=["registers", "generic"])
def test_bf16_potentials_keep_every_spike_and_approximate_the_gradients(reset, alpha):
    """precision bf16-mixed keeps V in bfloat16 for the backward, rounded so that V > threshold is each spike: the
    nearest bfloat16, moved one step back wherever that crossed the threshold, bit for bit, in the register pass
    (second-order kernels with AVX-512) and in the generic one (a third coefficient)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 4, 50, generator=g) * 0.8 + (0.35 if reset == "filter" else 0.1)
    X[10, 0, :5] = torch.tensor([0.9995, 1.0004, 1.0020, 0.9981, 1.0035]) * 2.5  # V lands near the threshold
    O32, V32, g32 = _fused(X, False, reset, learn_theta=reset == "filter", alpha=alpha)
    O16, V16, g16 = _fused(X, True, reset, learn_theta=reset == "filter", alpha=alpha)
    assert V32.dtype == torch.float32 and V16.dtype == torch.bfloat16
    assert torch.equal(O16, O32) and 0.05 < float(O32.mean()) < 0.6
    assert torch.equal(V16.float() > 1.0, O32.bool())  # directed rounding: no spike gained or lost
    nearest = V32.to(torch.bfloat16).float() > 1.0
    assert not torch.equal(nearest, O32.bool()), "the case must contain potentials that plain rounding moves"
    step = O32.bool().int() - nearest.int()  # +1: rounding lost the spike (V > 1 > 0: one step up), -1: gained one
    expected = (V32.to(torch.bfloat16).view(torch.int16).int() + step).to(torch.int16)
    assert torch.equal(V16.view(torch.int16), expected)
    assert (V16.float() - V32).abs().max() <= 2 ** -7 * V32.abs().max()
    for a, b in zip(g16, g32, strict=True):  # the documented tolerance of bf16 potentials: 5 % (measured 0.3-2.6 %)
        assert rel_err(a, b) < 5e-2


@pytest.mark.parametrize("v_bf16", [False, True])
@pytest.mark.parametrize("alpha", [(1.2, -0.35), (1.2, -0.35, 0.0)], ids=["registers", "generic"])
def test_a_bfloat16_current_is_read_and_its_gradient_written_in_bfloat16_exactly(v_bf16, alpha):
    """The fused scan on a bfloat16 X (a bf16 convolution's output) is the float32 scan of X.float(), bit for bit,
    and its gradient of X is that scan's gradient rounded to the nearest bfloat16."""
    g = torch.Generator().manual_seed(3)
    X16 = (torch.randn(40, 3, 70, generator=g) * 0.8 + 0.35).to(torch.bfloat16)
    O16, V16, g16 = _fused(X16, v_bf16, "filter", alpha=alpha)
    O32, V32, g32 = _fused(X16.float(), v_bf16, "filter", alpha=alpha)
    assert O16.dtype == torch.float32 and torch.equal(O16, O32) and 0.05 < float(O32.mean()) < 0.6
    assert torch.equal(V16, V32)
    assert g16[0].dtype == torch.bfloat16 and torch.equal(g16[0], g32[0].to(torch.bfloat16))
    for a, b in zip(g16[1:], g32[1:], strict=True):  # leak and reset decay: the same float32 sums
        assert torch.equal(a, b)


def test_bf16_mixed_conv_hands_its_bfloat16_output_to_the_scan_without_a_copy(monkeypatch):
    from iirsnn.kernels.cpu import layer as cpu_layer
    from iirsnn.models import from_spec

    torch.manual_seed(0)
    model = from_spec("8C3-10", (2, 6, 6), precision="bf16-mixed")
    x = (torch.rand(12, 2, 2, 6, 6) < 0.3).float()
    seen, apply = [], cpu_layer.FusedFilterNeuron.apply
    monkeypatch.setattr(cpu_layer.FusedFilterNeuron, "apply", lambda X, *a: seen.append(X.dtype) or apply(X, *a))
    out = model(x)
    out.sum().backward()
    assert seen[0] == torch.bfloat16 and out.dtype == torch.float32
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters() if p.requires_grad)


def test_bf16_mixed_layer_saves_bfloat16_potentials():
    saved = []
    inputs = dense_inputs(1)
    inputs = {k: v.detach().float().requires_grad_(v.requires_grad) for k, v in inputs.items()}
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        out = spiking_linear(**inputs, precision="bf16-mixed")
    assert out.dtype == torch.float32 and torch.bfloat16 in saved


@pytest.mark.parametrize("values", [False, True], ids=["spikes", "analog"])
def test_conv_keeps_binary_input_as_bytes(values):
    inputs = {k: v.detach().float().requires_grad_(v.requires_grad) for k, v in conv_inputs(8).items()}
    if values:
        inputs["x"] = (inputs["x"] * torch.rand_like(inputs["x"])).detach().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append((t.dtype, t.shape)) or t, lambda t: t):
        out = spiking_conv(**inputs, padding=1)
    x_shape = (20, *inputs["x"].shape[2:])
    kept = [dtype for dtype, shape in saved if tuple(shape) == x_shape]
    assert kept == [torch.float32 if values else torch.uint8]
    out.sum().backward()
    assert inputs["weight"].grad.abs().sum() > 0 and inputs["x"].grad.abs().sum() > 0


def test_bf16_mixed_conv_gradients_close_to_fp32():
    inputs = {k: v.detach().float() for k, v in conv_inputs(9).items()}
    grads = []
    for precision in ("fp32", "bf16-mixed"):
        leaves = {k: v.clone().requires_grad_(k in ("x", "weight", "bias")) for k, v in inputs.items()}
        out = spiking_conv(**leaves, padding=1, precision=precision)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append((out.detach(), leaves["weight"].grad, leaves["x"].grad))
    (o32, w32, x32), (o16, w16, x16) = grads
    assert (o32 != o16).float().mean() < 0.05  # bf16 weights move a few potentials across the threshold
    assert rel_err(w16, w32) < 0.05 and rel_err(x16, x32) < 0.05  # measured: no spike moved, 0.9 % and 0.9 %


def test_fused_pass_fp32_streamed_outputs_match_float64():
    """Rows of 16+ aligned lanes go out with streaming stores in float32; values equal float64's to round-off."""
    from iirsnn.functional import get_surrogate
    from iirsnn.kernels.cpu.layer import FusedFilterNeuron

    g = torch.Generator().manual_seed(3)
    X64 = torch.randn(40, 4, 70, generator=g, dtype=F64) * 0.7 + 0.3  # 280 lanes: a full block and a partial one
    results = []
    for X in (X64, X64.float()):
        X = X.clone().requires_grad_()
        leak, theta = torch.tensor(0.8, dtype=X.dtype), torch.tensor(0.6, dtype=X.dtype)
        O, V = FusedFilterNeuron.apply(X, None, leak, theta, (1.1, -0.3), (0.5, 0.2), 1.0,
                                       get_surrogate("gaussian"), "filter", False)[:2]
        (gX,) = torch.autograd.grad((O * torch.linspace(-1, 1, O.numel(), dtype=X.dtype).view(O.shape)).sum(), X)
        results.append((O, V, gX))
    (O64, V64, g64), (O32, V32, g32) = results
    assert torch.equal(O32.double(), O64) and 0.05 < float(O64.mean()) < 0.6
    assert rel_err(V32.double(), V64) < 1e-6 and rel_err(g32.double(), g64) < 1e-5


def test_conv_input_gradient_without_weight_gradient():
    """With a frozen weight the convolution's backward gets the input only as a shape; same input gradient."""
    inputs = {k: v.detach() for k, v in conv_inputs(10).items()}
    grads = []
    for learn_weight in (True, False):
        x = inputs["x"].clone().requires_grad_()
        weight = inputs["weight"].clone().requires_grad_(learn_weight)
        rest = {k: v for k, v in inputs.items() if k not in ("x", "weight")}
        out = spiking_conv(x, weight, **rest, padding=1)
        (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape)).sum().backward()
        grads.append(x.grad)
    assert grads[0].abs().sum() > 0 and rel_err(grads[1], grads[0]) < 1e-12, rel_err(grads[1], grads[0])


@pytest.mark.parametrize("preset", ["none", "first_order", "dual_exp", "alpha"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("lanes", [(2, 7), (3, 40), (2, 80)], ids=["7", "40", "80"])
def test_fused_forward_float32_registers_agree_with_float64(preset, reset, lanes):
    """The float32 fused forward keeps a group of 64 lanes in registers (filters with P <= 2, Q <= 1, the
    presets), lanes past the end masked: V agrees with the float64 pass to round-off, and a spike differs only
    where V lies within round-off of the threshold."""
    from iirsnn.functional.surrogates import get_surrogate
    from iirsnn.kernels.cpu.layer import FusedFilterNeuron

    g = torch.Generator().manual_seed(len(preset) + lanes[1])
    coef = presets.preset(preset, tau_m=4.0, tau_s=1.5, dtype=F64) if preset != "none" else presets.none(dtype=F64)
    X = torch.randn(40, *lanes, generator=g, dtype=F64) * 0.8 + 0.35
    bias = torch.randn(lanes[1], generator=g, dtype=F64) * 0.1
    leak = torch.rand(lanes[1], generator=g, dtype=F64) * 0.4 + 0.5
    reset_decay = torch.full((lanes[1],), 0.7, dtype=F64)
    args = (tuple(coef.alpha.tolist()), tuple(coef.beta.tolist()), 1.0, get_surrogate("gaussian"), reset, False)
    O64, V64 = FusedFilterNeuron.apply(X.requires_grad_(True), bias, leak, reset_decay, *args)[:2]
    O32, V32 = FusedFilterNeuron.apply(X.detach().float().requires_grad_(True), bias.float(), leak.float(),
                                       reset_decay.float(), *args)[:2]
    assert 0.05 < float(O64.detach().mean()) < 0.7, "the case must actually spike"
    first_flip = (O32.double() != O64).double().cumsum(0) > 0  # a flip changes the lane's later steps
    assert float(first_flip[-1].double().mean()) < 0.05
    flipped_at = (O32.double() != O64) & ((O32.double() != O64).double().cumsum(0) == 1)
    assert torch.all((V64[flipped_at] - 1.0).abs() < 1e-4), "a spike flipped away from the threshold"
    torch.testing.assert_close(V32.double()[~first_flip], V64[~first_flip], rtol=1e-5, atol=1e-5)


def _fused_backward(gO, V, coef, leak, theta, reset, detach, surrogate):
    """The fused backward kernel on [T, L] rows in V's dtype: (gX, acc_bias, acc_leak, acc_theta or None)."""
    from iirsnn.functional.surrogates import SURROGATE_CODES
    from iirsnn.kernels.cpu.scans import run

    T, L = V.shape
    alpha, beta = coef.alpha.double(), coef.beta.double()
    hard = reset == "hard"
    S_prev = acc_theta = None
    if not hard:
        S_prev, acc_theta = torch.empty_like(V), V.new_empty(L)
        run("reset_trace", V.dtype, V, 0, V.new_zeros(L), theta, L, 1.0, S_prev, T, L, 2)
    gX, acc_bias, acc_leak = torch.empty_like(V), V.new_empty(L), V.new_empty(L)
    run("filter_neuron_backward", V.dtype, gO, V, 0, alpha, alpha.numel(), beta, beta.numel() - 1, leak, L, theta,
        L, 1.0, int(hard), int(detach), SURROGATE_CODES[surrogate.kind], float(surrogate.param), S_prev,
        *[None] * 6, gX, 0, *[None] * 4, acc_bias, acc_leak, acc_theta, T, L, 2)
    return gX, acc_bias, acc_leak, acc_theta


@pytest.mark.parametrize("preset", ["none", "first_order", "dual_exp", "alpha"])
@pytest.mark.parametrize("reset", ["filter", "hard"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize(("surrogate", "lanes"), [("gaussian", 7), ("gaussian", 40), ("gaussian", 80),
                                                  ("fast_sigmoid", 40), ("sigmoid", 40), ("arctan", 40),
                                                  ("triangle", 40)])
def test_fused_backward_float32_agrees_with_float64(preset, reset, detach, surrogate, lanes):
    """From the same potentials, the float32 fused backward's gX and sums for bias, leak and reset decay agree
    with the float64 pass: every preset, surrogate, reset and detach_reset, per-lane decays, partial lane
    blocks. (A float32 backward with its state in registers, as the forward has, was tried: it matched these
    and was no faster, 1.5 ms either way on [300, 16, 500], bound by memory bandwidth.)"""
    from iirsnn.functional.surrogates import get_surrogate

    g = torch.Generator().manual_seed(len(preset) + lanes + len(surrogate))
    coef = presets.preset(preset, tau_m=4.0, tau_s=1.5, dtype=F64) if preset != "none" else presets.none(dtype=F64)
    V = torch.randn(30, lanes, generator=g, dtype=F64) * 0.9 + 0.6
    V = torch.where((V - 1.0).abs() < 1e-3, V + 3e-3, V)  # no potential at the threshold: spikes agree in float32
    gO = torch.randn(30, lanes, generator=g, dtype=F64)
    leak = torch.rand(lanes, generator=g, dtype=F64) * 0.4 + 0.5
    theta = torch.rand(lanes, generator=g, dtype=F64) * 0.5 + 0.3
    args = (coef, reset, detach, get_surrogate(surrogate))
    out64 = _fused_backward(gO, V, coef, leak, theta, *args[1:])
    out32 = _fused_backward(gO.float(), V.float(), coef, leak.float(), theta.float(), *args[1:])
    assert bool((V > 1.0).any()) and bool((V < 1.0).any())
    for name, a32, a64 in zip(("gX", "bias", "leak", "reset_decay"), out32, out64, strict=True):
        if a64 is None:
            assert a32 is None
            continue
        assert a32.dtype == torch.float32 and float(a64.abs().max()) > 0, name
        assert rel_err(a32.double(), a64) < 1e-4, (name, rel_err(a32.double(), a64))


def _bits_used(monkeypatch) -> list[str]:
    """Record which spike-index builder each dense layer's forward calls."""
    from iirsnn.kernels.cpu import layer as cpu_layer

    calls, run = [], cpu_layer.run

    def recording(name, *args):
        if name in ("bits_fill", "csr_fill"):
            calls.append(name)
        return run(name, *args)

    monkeypatch.setattr(cpu_layer, "run", recording)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_next_layer_builds_its_spike_index_from_the_bits(dtype, monkeypatch):
    """A dense layer after a fused one reads the bits its forward wrote (rows of 37 spikes straddle the 64-bit
    words): outputs and gradients are bitwise those of the same spikes without bits (a copy)."""
    monkeypatch.setattr(config, "sparse_max_density", 1.0)
    torch.manual_seed(0)
    first = inn.SpikingLayer(inn.Linear(20, 37), inn.SynapseFilter("dual_exp", tau_m=4.0, tau_s=1.5),
                             inn.LIFNeuron(tau_m=4.0)).to(dtype)
    second = inn.SpikingLayer(inn.Linear(37, 11), inn.SynapseFilter("dual_exp", tau_m=4.0, tau_s=1.5),
                              inn.LIFNeuron(tau_m=4.0)).to(dtype)
    for layer in (first, second):
        layer.connection.weight.data.mul_(3.0)
    x = (torch.rand(30, 3, 20) < 0.3).to(dtype)
    calls = _bits_used(monkeypatch)
    results = []
    for copy in (False, True):
        hidden = first(x)
        out = second(hidden.clone() if copy else hidden)
        out.sum().backward()
        results.append((hidden, out, second.connection.weight.grad.clone(), first.connection.weight.grad.clone()))
        for layer in (first, second):
            layer.zero_grad(set_to_none=True)
    assert calls == ["csr_fill", "bits_fill", "csr_fill", "csr_fill"]
    (hidden, out, g2, g1), (_, out_c, g2_c, g1_c) = results
    assert 0.05 < float(hidden.detach().mean()) < 0.6 and float(out.detach().mean()) > 0.01
    assert torch.equal(out, out_c) and torch.equal(g2, g2_c) and torch.equal(g1, g1_c)


def test_spike_bits_are_dropped_when_the_spikes_change():
    from iirsnn.kernels.cpu import spike_bits

    layer = inn.SpikingLayer(inn.Linear(8, 70), inn.SynapseFilter("first_order", tau=2.0), inn.LIFNeuron(tau_m=4.0))
    with torch.no_grad():
        out = layer((torch.rand(5, 2, 8) < 0.5).float())
        assert spike_bits.bits_of(out) is not None and spike_bits.bits_of(out.view(10, 70)) is not None
        assert spike_bits.bits_of(out[1:]) is None and spike_bits.bits_of(out.transpose(1, 2)) is None
        out[0, 0, 0] = 1.0  # an in-place change bumps the version counter the views share
        assert spike_bits.bits_of(out) is None


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("learn_weight", [True, False])
def test_conv_in_frame_chunks_equals_one_call(monkeypatch, dims, learn_weight):
    """Convolutions whose results exceed CHUNK_BYTES run over ranges of frames into one buffer (forward, and the
    input and weight gradients): the same spikes and gradients as one call, channels-last layout kept."""
    from iirsnn.kernels.cpu import layer

    inputs = {k: v.detach() for k, v in conv_inputs(11, dims=dims).items()}
    frame_bytes = 4 * (30 if dims == 2 else 9) * 8  # 4 output channels over the frame, float64
    chunkings, frame_chunks = [], layer.frame_chunks
    monkeypatch.setattr(layer, "frame_chunks", lambda *a: chunkings.append(frame_chunks(*a)) or chunkings[-1])
    results = []
    for chunk_bytes in (layer.CHUNK_BYTES, 3 * frame_bytes):  # all 20 frames at once, or 3 frames of output a chunk
        monkeypatch.setattr(layer, "CHUNK_BYTES", chunk_bytes)
        x = inputs["x"].clone().requires_grad_()
        weight = inputs["weight"].clone().requires_grad_(learn_weight)
        rest = {k: v for k, v in inputs.items() if k not in ("x", "weight")}
        out = spiking_conv(x, weight, **rest, padding=1)
        (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view(out.shape)).sum().backward()
        results.append((out, x.grad, weight.grad))
    (o1, gx1, gw1), (o2, gx2, gw2) = results
    assert [len(c) for c in chunkings] == [1, 1, 7, 7]  # forward and backward, unchunked then chunked
    assert torch.equal(o1, o2) and 0.05 < float(o1.mean()) < 0.7
    assert rel_err(gx2, gx1) < 1e-12
    assert gw1 is None if not learn_weight else rel_err(gw2, gw1) < 1e-12


@pytest.mark.parametrize("spec", ["40-30-5", "4C3-5"])
def test_inference_keeps_nothing_for_a_backward(spec, monkeypatch):
    """Under torch.no_grad() a network with learnable weights stores no V and builds no column index (autograd
    functions see needs_input_grad from requires_grad even then); the same spikes as with grad."""
    from iirsnn.kernels.cpu import layer as cpu_layer
    from iirsnn.models import from_spec

    torch.manual_seed(0)
    net = from_spec(spec, (12,) if "C" not in spec else (2, 6, 6))
    x = (torch.rand(20, 3, *((12,) if "C" not in spec else (2, 6, 6))) < 0.3).float()
    calls, run = [], cpu_layer.run
    monkeypatch.setattr(cpu_layer, "run", lambda name, *a: calls.append((name, a)) or run(name, *a))
    with torch.no_grad():
        out = net(x)
    fused = [a for name, a in calls if name == "filter_neuron_forward"]
    assert fused and all(a[13] is None for a in fused)  # the argument V (after the dtype): not stored
    assert "csr_to_csc" not in [name for name, _ in calls]
    calls.clear()
    with_grad = net(x)
    assert any(a[13] is not None for name, a in calls if name == "filter_neuron_forward")
    assert torch.equal(out, with_grad.detach())
