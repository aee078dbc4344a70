"""Modules of iirsnn.nn: shapes, equality with the functional core, state carrying, learnable kernels."""

import math

import pytest
import torch

import iirsnn.functional as F
from iirsnn import nn as inn
from iirsnn.functional.parametrization import alpha_to_reflection, pole_radius, reflection_to_alpha


def spikes(*shape, rate=0.3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < rate).to(dtype)


def test_sequential_of_modules_maps_time_major_to_time_major():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        inn.SynapseFilter(), inn.Conv2d(2, 4, 3, padding=1), inn.LIFNeuron(),
        inn.MaxPool2d(2), inn.Flatten(), inn.Dropout(0.2),
        inn.SynapseFilter("alpha", tau=2.0), inn.Linear(4 * 4 * 4, 7), inn.LIFNeuron(), inn.Delay(2),
    )
    out = net(spikes(9, 3, 2, 8, 8, dtype=torch.float32))
    assert out.shape == (9, 3, 7)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(out[:2] == 0)  # the delay


def test_spiking_layer_equals_functional_composition():
    torch.manual_seed(0)
    layer = inn.SpikingLayer(inn.Linear(5, 4).double(), inn.SynapseFilter("dual_exp", tau_m=4.0, tau_s=1.5),
                             inn.LIFNeuron(tau_m=3.0, reset_tau=2.0)).double()
    x = spikes(20, 3, 5)
    coef = F.presets.dual_exp(4.0, 1.5, dtype=torch.float64)
    filtered = F.synapse_filter(x, coef.alpha, coef.beta)
    current = filtered @ layer.connection.weight.T + layer.connection.bias
    expected = F.neuron_scan(current, math.exp(-1 / 3), math.exp(-1 / 2), 1.0)
    assert torch.equal(layer(x), expected)


def test_conv_and_linear_equal_their_per_step_torch_versions():
    torch.manual_seed(0)
    conv, lin = inn.Conv2d(3, 5, 3, padding=1), inn.Linear(6, 2)
    x = torch.randn(4, 2, 3, 6, 6)
    expected = torch.stack([torch.nn.functional.conv2d(x[t], conv.weight, conv.bias, padding=1) for t in range(4)])
    torch.testing.assert_close(conv(x), expected)
    y = torch.randn(4, 2, 6)
    torch.testing.assert_close(lin(y), torch.stack([y[t] @ lin.weight.T + lin.bias for t in range(4)]))
    conv1 = inn.Conv1d(3, 2, 3)
    z = torch.randn(4, 2, 3, 9)
    torch.testing.assert_close(conv1(z), torch.stack([conv1.weight.new_tensor(0) + torch.nn.functional.conv1d(
        z[t], conv1.weight, conv1.bias) for t in range(4)]))


def test_linear_names_time_last_input():
    with pytest.raises(ValueError, match="time-last"):
        inn.Linear(784, 10)(torch.zeros(8, 784, 25))
    with pytest.raises(ValueError, match="in_features=10"):
        inn.Linear(10, 3)(torch.zeros(5, 2, 11))
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        inn.Conv2d(1, 2, 3)(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="in_channels=1"):
        inn.Conv2d(1, 2, 3)(torch.zeros(2, 3, 2, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        inn.Linear(3, 2)(torch.zeros(2, 2, 3, dtype=torch.int64))


def test_pooling_values():
    x = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    x = x.expand(2, 3, 1, 4, 4)
    assert inn.MaxPool2d(2)(x)[0, 0, 0].tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert inn.SumPool2d(2)(x)[0, 0, 0].tolist() == [[1.0, 0.0], [3.0, 1.0]]
    assert inn.AvgPool2d(2)(x)[1, 2, 0].tolist() == [[0.25, 0.0], [0.75, 0.25]]


def test_dropout_uses_one_mask_for_all_steps_and_rescales():
    torch.manual_seed(0)
    drop = inn.Dropout(0.5)
    y = drop(torch.ones(6, 4, 100))
    assert torch.equal(y, y[:1].expand_as(y))
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert 0.3 < (y[0] == 0).float().mean() < 0.7
    drop.eval()
    assert torch.equal(drop(torch.ones(3, 2, 5)), torch.ones(3, 2, 5))
    with pytest.raises(ValueError, match="p must lie"):
        inn.Dropout(1.0)


def _run_in_chunks(module, x, cuts):
    inn.set_stateful(module, True)
    parts = [module(chunk) for chunk in torch.tensor_split(x, cuts)]
    inn.set_stateful(module, False)
    return torch.cat(parts)


@pytest.mark.parametrize("make", [
    lambda: inn.SynapseFilter("dual_exp"),
    lambda: inn.SynapseFilter("delay", d=3),
    lambda: inn.LIFNeuron(tau_m=5.0),
    lambda: inn.LIFNeuron(reset="hard"),
    lambda: inn.Delay(3),
    lambda: torch.nn.Sequential(inn.SynapseFilter(), inn.Linear(4, 4), inn.LIFNeuron()),
])
def test_stateful_chunks_equal_whole_sequence(make):
    torch.manual_seed(0)
    module = make().double()
    x = spikes(30, 2, 4, rate=0.4) * 2.0
    whole = module(x)
    assert not torch.all(whole == 0)
    torch.testing.assert_close(_run_in_chunks(module, x, [7, 8, 20]), whole, rtol=1e-12, atol=1e-12)
    # stateless again: a second call starts from zero
    torch.testing.assert_close(module(x), whole)


def test_reset_states_restarts_from_zero():
    neuron = inn.LIFNeuron(stateful=True).double()
    x = torch.full((5, 1, 3), 0.6, dtype=torch.float64)
    first = neuron(x)
    assert not torch.equal(neuron(x), first)  # carried state changes the second chunk
    inn.reset_states(neuron)
    assert torch.equal(neuron(x), first)


def test_per_channel_synapse_has_own_kernels_and_gradients():
    syn = inn.SynapseFilter("dual_exp", channels=3, learnable=True).double()
    assert syn.alpha.shape == (3, 2) and syn.beta.shape == (3, 2)
    x = spikes(15, 2, 3, 4)
    (syn(x) * torch.linspace(-1, 1, 4, dtype=torch.float64)).sum().backward()
    assert syn.alpha_param.grad.shape == (3, 2)
    assert torch.all(syn.alpha_param.grad.abs().sum(1) > 0)
    assert not torch.allclose(syn.alpha_param.grad[0], syn.alpha_param.grad[1])


def test_learnable_kernel_starts_at_the_preset():
    fixed, learned = inn.SynapseFilter("alpha", tau=3.0), inn.SynapseFilter("alpha", tau=3.0, learnable=True)
    torch.testing.assert_close(learned.alpha, fixed.alpha, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(learned.beta, fixed.beta)
    assert [n for n, _ in learned.named_parameters()] == ["beta_param", "alpha_param"]
    assert list(fixed.parameters()) == []


def test_reflection_parametrization_round_trip_and_bijection():
    g = torch.Generator().manual_seed(0)
    k = torch.tanh(torch.randn(50, 4, generator=g, dtype=torch.float64) * 2)
    alpha = reflection_to_alpha(k)
    assert torch.all(pole_radius(alpha) < 1)
    torch.testing.assert_close(alpha_to_reflection(alpha), k, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="unstable"):
        alpha_to_reflection(torch.tensor([1.5, -0.2], dtype=torch.float64))  # a pole beyond 1


@pytest.mark.parametrize("synapse", ["dual_exp", "alpha", "first_order"])
def test_large_gradient_steps_keep_the_learned_filter_stable(synapse):
    """Gradient ascent on the output energy pushes poles outward; the reflection form never crosses 1."""
    x = spikes(40, 4, 3, rate=0.5, dtype=torch.float32)
    radii = {}
    for parametrization in ("reflection", "raw"):
        syn = inn.SynapseFilter(synapse, learnable=True, parametrization=parametrization, tau_m=4.0, tau_s=1.0)
        syn.beta_param.requires_grad_(False)  # the gain is not what is tested; keep the loss bounded
        opt = torch.optim.SGD([syn.alpha_param], lr=5.0)
        for _ in range(20):
            opt.zero_grad()
            loss = -syn(x).pow(2).mean()
            loss.backward()
            opt.step()
            with torch.no_grad():
                if parametrization == "raw" and pole_radius(syn.alpha).max() >= 1:
                    break
        radii[parametrization] = float(pole_radius(syn.alpha).max())
        if parametrization == "reflection":
            response = F.impulse_response(syn.alpha.detach().double(), syn.beta.detach().double(), 20000)
            assert torch.isfinite(response).all()
            assert response[-100:].abs().max() < response.abs().max()  # decays
    assert radii["reflection"] < 1.0
    assert radii["raw"] >= 1.0  # the same steps make raw coefficients unstable: the test has teeth


def test_learnable_neuron_decays_stay_in_unit_interval_and_learn():
    neuron = inn.LIFNeuron(shape=(3,), learnable=True).double()
    x = torch.rand(20, 2, 3, dtype=torch.float64) * 1.5
    neuron(x).sum().backward()
    assert neuron.leak_logit.grad.shape == (3,) and neuron.leak_logit.grad.abs().sum() > 0
    with torch.no_grad():
        neuron.leak_logit.add_(1e6)
    assert torch.all(neuron.leak <= 1) and torch.all(neuron.leak >= 0)


def test_record_voltage_and_module_errors():
    neuron = inn.LIFNeuron(record_voltage=True)
    neuron(torch.full((4, 2, 3), 0.5))
    assert neuron.voltage.shape == (4, 2, 3)
    with pytest.raises(ValueError, match="reset must be one of"):
        inn.LIFNeuron(reset="soft")
    with pytest.raises(ValueError, match="tau_m must be > 0"):
        inn.LIFNeuron(tau_m=0.0)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        inn.LIFNeuron(threshold=-1.0)
    with pytest.raises(ValueError, match="parametrization"):
        inn.SynapseFilter(learnable=True, parametrization="poles")
    with pytest.raises(ValueError, match="channel count"):
        inn.SynapseFilter(channels=3)(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="steps must be"):
        inn.Delay(-1)
