"""Gradient checkpointing over time chunks gives the outputs and gradients of one whole-sequence call."""

import pytest
import torch

from iirsnn import nn as inn
from iirsnn.models import from_spec
from iirsnn.nn import chunked_forward

F64 = torch.float64


def grads_of(model, run):
    model.zero_grad(set_to_none=True)
    out = run()
    (out * torch.linspace(0.5, 1.5, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(model, x, chunk, seed=0):
    torch.manual_seed(seed)
    whole, g_whole = grads_of(model, lambda: torch.nn.Sequential.forward(model, x))
    torch.manual_seed(seed)
    chunked, g_chunked = grads_of(model, lambda: chunked_forward(model, x, chunk))
    assert whole.sum() > 0, "the test network must spike"
    assert torch.equal(whole, chunked)
    assert g_whole.keys() == g_chunked.keys() and g_whole
    for name, g in g_whole.items():
        torch.testing.assert_close(g_chunked[name], g, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("chunk", [1, 7, 40, 100])
@pytest.mark.parametrize("options", [dict(), dict(learnable_synapse=True, learnable_neuron=True),
                                     dict(reset="hard", synapse="alpha"), dict(synapse="first_order", lag=1)])
def test_dense_network(chunk, options):
    torch.manual_seed(1)
    synapse = options.pop("synapse", "dual_exp")
    model = from_spec("24-12-5", input_shape=(10,), synapse=synapse, tau_m=4.0, tau_s=2.0, **options).double()
    x = (torch.rand(40, 3, 10) < 0.3).to(F64)
    assert_same(model, x, chunk)


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_dense_network_other_backends(backend):
    torch.manual_seed(6)
    model = from_spec("12-5", input_shape=(8,), learnable_synapse=True, backend=backend).double()
    assert_same(model, (torch.rand(20, 2, 8) < 0.3).to(F64), 6)


@pytest.mark.parametrize("spec, shape", [("3C3-P2-5C3-4", (1, 8, 8)), ("3C3-4", (2, 9))])
@pytest.mark.parametrize("learnable", [False, True])
def test_conv_network_fused_chunks(spec, shape, learnable):
    """Shared kernels on the compiled backend: each chunk filters on the current side (channels-last for 2-D)."""
    torch.manual_seed(7)
    model = from_spec(spec, input_shape=shape, learnable_synapse=learnable, learnable_neuron=learnable).double()
    assert model[0]._fusable(torch.zeros(1, dtype=F64))
    assert_same(model, (torch.rand(26, 2, *shape) < 0.3).to(F64), 6)


def test_fixed_kernel_chunks_run_the_fused_pass_from_the_carried_state(monkeypatch):
    """With a fixed shared kernel on the compiled backend every chunk after the first runs the fused pass started
    from the state the previous chunk returned (not the composed filter and neuron scans)."""
    from iirsnn.kernels.cpu import layer as cpu_layer
    from iirsnn.kernels.cpu import scans

    torch.manual_seed(4)
    model = from_spec("16-4", input_shape=(6,)).double()
    calls, run = [], scans.run
    for module in (cpu_layer, scans):
        monkeypatch.setattr(module, "run", lambda name, *a: calls.append((name, a)) or run(name, *a))
    assert_same(model, (torch.rand(30, 2, 6) < 0.4).to(F64), 10)
    started = [a[11] is not None for name, a in calls if name == "filter_neuron_forward"]  # v0, after the dtype
    assert sum(started) >= 2 * 2, "two layers, chunks 2 and 3, in the forward and the recomputation"
    assert not [name for name, _ in calls if name in ("filter_forward", "neuron_forward")]


def test_input_gradient_through_autograd_grad_and_a_second_backward_is_refused():
    """torch.autograd.grad (not only backward) reaches the input and the weights through checkpointed chunks, as
    through one call; backpropagating twice through the same chunks says why it cannot."""
    torch.manual_seed(8)
    model = from_spec("10-3", input_shape=(5,)).double()
    x = (torch.rand(24, 2, 5) < 0.4).to(F64) * torch.rand(24, 2, 5, dtype=F64) * 2
    grads = []
    for run in (lambda v: torch.nn.Sequential.forward(model, v), lambda v: chunked_forward(model, v, 5)):
        v = x.clone().requires_grad_()
        out = run(v)
        loss = (out * torch.linspace(0.5, 1.5, 3, dtype=F64)).sum()
        grads.append(torch.autograd.grad(loss, [v, model[0].connection.weight]))
    assert grads[0][0].abs().max() > 0
    for whole, chunked in zip(*grads, strict=True):
        torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-12)
    loss = chunked_forward(model, x, 5).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a second time"):
        loss.backward()


def test_conv_network_with_pooling_dropout_and_per_channel_synapses():
    torch.manual_seed(2)
    model = from_spec("4C3-P2-6-3", input_shape=(2, 8, 8), dropout=0.3, per_channel_synapse=True).double()
    model.train()
    x = (torch.rand(30, 2, 2, 8, 8) < 0.3).to(F64)
    assert_same(model, x, 8, seed=5)


def test_delay_and_separate_modules():
    torch.manual_seed(3)
    model = torch.nn.Sequential(inn.SynapseFilter("dual_exp", tau_m=4.0, tau_s=1.0), inn.Delay(3),
                                inn.Linear(6, 4), inn.LIFNeuron(tau_m=3.0)).double()
    torch.nn.init.normal_(model[2].weight, 1.0, 0.5)
    x = (torch.rand(25, 2, 6) < 0.4).to(F64)
    assert_same(model, x, 4)


def test_network_option_uses_chunks_only_for_training():
    torch.manual_seed(4)
    model = from_spec("16-4", input_shape=(6,), checkpoint_chunk=5).double()
    x = (torch.rand(23, 2, 6) < 0.3).to(F64)
    calls = []
    model[0].forward_chunk = lambda *a, f=model[0].forward_chunk: calls.append(1) or f(*a)
    out = model(x)
    assert len(calls) == 5  # ceil(23 / 5) chunks
    with torch.no_grad():  # no gradients: one whole-sequence call, no chunks
        assert torch.equal(model(x), out.detach())
    assert len(calls) == 5
    out.sum().backward()  # each chunk recomputed once
    assert len(calls) == 10


def test_auto_chunks_only_long_training_sequences_and_keeps_the_gradients(monkeypatch):
    from iirsnn.nn import chunked

    monkeypatch.setattr(chunked, "AUTO_CHUNK", 8)  # "auto" chunks sequences over 16 steps, in chunks of 8
    torch.manual_seed(5)
    model = from_spec("16-4", input_shape=(6,), checkpoint_chunk="auto").double()
    whole = from_spec("16-4", input_shape=(6,), checkpoint_chunk="whole").double()
    whole.load_state_dict(model.state_dict())
    calls = []
    model[0].forward_chunk = lambda *a, f=model[0].forward_chunk: calls.append(1) or f(*a)
    short = (torch.rand(16, 2, 6) < 0.3).to(F64)
    model(short).sum().backward()
    assert calls == []  # two chunks' worth or less: the whole sequence
    x = (torch.rand(20, 2, 6) < 0.3).to(F64)
    out, g = grads_of(model, lambda: model(x))
    assert len(calls) == 6  # ceil(20 / 8) chunks, each recomputed once
    ref, g_ref = grads_of(whole, lambda: whole(x))
    assert out.sum() > 0 and torch.equal(out, ref)
    for name, grad in g_ref.items():
        torch.testing.assert_close(g[name], grad, rtol=1e-10, atol=1e-12, msg=name)
    stateful = from_spec("16-4", input_shape=(6,), checkpoint_chunk="auto", stateful=True).double()
    assert not chunked.chunkable(stateful) and chunked.auto_chunk(stateful, 1000) is None  # falls back to whole
    assert chunked.auto_chunk(model, 17) == 8 and chunked.auto_chunk(model, 16) is None


def test_refusals_name_the_problem():
    lin = torch.nn.Sequential(inn.SynapseFilter(stateful=True))
    with pytest.raises(ValueError, match="stateful"):
        chunked_forward(lin, torch.zeros(4, 1, 3), 2)
    with pytest.raises(TypeError, match="GRU"):
        chunked_forward(torch.nn.Sequential(torch.nn.GRU(3, 3)), torch.zeros(4, 1, 3), 2)
    with pytest.raises(ValueError, match="record_voltage"):
        chunked_forward(torch.nn.Sequential(inn.LIFNeuron(record_voltage=True)), torch.zeros(4, 1, 3), 2)
    with pytest.raises(ValueError, match="positive number"):
        chunked_forward(torch.nn.Sequential(inn.LIFNeuron()), torch.zeros(4, 1, 3), 0)
    for bad in (-2, 0, True, "sometimes", 2.5):
        with pytest.raises(ValueError, match="checkpoint_chunk must be 'auto', 'whole', None or a positive"):
            from_spec("4", input_shape=(3,), checkpoint_chunk=bad)


def test_chunk_inputs_are_checked_before_the_compiled_products():
    from iirsnn.functional.chunk import spiking_chunk
    from iirsnn.functional.presets import dual_exp

    c = dual_exp(4.0, 1.0)
    with pytest.raises(ValueError, match=r"x must be \[T, B, 5\] for a weight of shape \[3, 5\], got \[4, 2, 7\]"):
        spiking_chunk(torch.zeros(4, 2, 7), torch.zeros(3, 5), None, c.alpha, c.beta, 0.8, 0.8, 1.0, "gaussian",
                      "filter", False, None, None)
    layer = from_spec("3", input_shape=(5,))[0]
    with pytest.raises(ValueError, match="in_features=5"):
        layer.forward_chunk(torch.zeros(4, 2, 7), None)


def test_checkpoint_chunk_from_the_environment_is_checked():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", "import iirsnn"], capture_output=True, text=True,
                         env={"IIRSNN_CHECKPOINT_CHUNK": "ten", "PATH": ""})
    message = "IIRSNN_CHECKPOINT_CHUNK must be 'auto', 'whole' or a positive number of time steps, got 'ten'"
    assert run.returncode != 0 and message in run.stderr
