"""iirsnn.models.from_spec: the paper's networks from their notation."""

import pytest
import torch

from iirsnn import nn as inn
from iirsnn.init import calibrate_, fluctuation_init_
from iirsnn.models import DEFAULT_OPTIONS, from_spec


def _param_count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("spec, shape, n_out, weights", [
    ("64C3-32C3-32C3-256-10", (1, 28, 28), 10,
     [64 * 1 * 9, 32 * 64 * 9, 32 * 32 * 9, 256 * 32 * 28 * 28, 10 * 256]),
    ("64C3-P2-32C3-32C3-P2-256-10", (2, 34, 34), 10,
     [64 * 2 * 9, 32 * 64 * 9, 32 * 32 * 9, 256 * 32 * 8 * 8, 10 * 256]),
    ("32C7-32C3-32C3-256-10", (2, 32, 32), 10, [32 * 2 * 49, 32 * 32 * 9, 32 * 32 * 9, 256 * 32 * 32 * 32, 2560]),
    ("300-300-11", (20,), 11, [300 * 20, 300 * 300, 11 * 300]),
    ("500-200-500-300", (300,), 300, [500 * 300, 200 * 500, 500 * 200, 300 * 500]),
])
def test_paper_networks_have_the_paper_shapes(spec, shape, n_out, weights):
    torch.manual_seed(0)
    model = from_spec(spec, shape)
    layers = [m for m in model if isinstance(m, inn.SpikingLayer)]
    assert [m.connection.weight.numel() for m in layers] == weights
    n_bias = sum(m.connection.bias.numel() for m in layers)
    assert _param_count(model) == sum(weights) + n_bias  # fixed kernels and decays add no parameters
    out = model((torch.rand(6, 2, *shape) < 0.3).float())
    assert out.shape == (6, 2, n_out)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_network_is_a_stack_of_the_named_modules():
    model = from_spec("8C3-P2-16", (2, 8, 8), synapse="alpha", tau_m=5.0, tau_s=2.0, pool="sum",
                      reset="hard", surrogate="arctan", threshold=0.5)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["SpikingLayer", "SumPool2d", "Flatten", "SpikingLayer"]
    neuron = model[0].neuron
    assert neuron.reset == "hard" and neuron.surrogate.kind == "arctan" and neuron.threshold == 0.5
    assert model[0].synapse.preset == "alpha"
    torch.testing.assert_close(float(neuron.leak), float(torch.exp(torch.tensor(-1 / 5.0))))


def test_peer_benchmark_contract_trains():
    """The call of ../shared/bench/peers.py: dense spec, input_shape, synapse, tau_m, tau_s; weights named *weight."""
    torch.manual_seed(0)
    model = from_spec("50-20-5", input_shape=(30,), synapse="dual_exp", tau_m=8.0, tau_s=2.0)
    assert [n for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2] == [
        "0.connection.weight", "1.connection.weight", "2.connection.weight"]
    x = (torch.rand(40, 8, 30) < 0.2).float()
    labels = torch.arange(8) % 5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).sum(0), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert losses[-1] < 0.7 * losses[0]


def test_options_reach_the_layers():
    model = from_spec("6C3-4", (2, 5, 5), learnable_synapse=True, per_channel_synapse=True,
                      learnable_neuron=True, dropout=0.3, lag=0, bias=False)
    first, last = model[0], model[-1]
    assert first.synapse.alpha.shape == (2, 2) and last.synapse.alpha.shape == (6 * 25, 2)
    assert first.neuron.leak.shape == (6, 1, 1) and last.neuron.leak.shape == (4,)
    assert first.connection.bias is None
    assert any(isinstance(m, inn.Dropout) for m in model)
    assert first.synapse.beta[0, 0].item() != 0.0  # lag 0: beta applies to the current spike


def test_fluctuation_init_keeps_deep_networks_active():
    torch.manual_seed(0)
    model = from_spec("200-200-200-200-10", (100,))
    rates = []
    h = (torch.rand(60, 8, 100) < 0.1).float()
    for layer in model:
        h = layer(h)
        rates.append(float(h.mean()))
    assert all(0.02 < r < 0.3 for r in rates), rates
    torch_init = from_spec("200-200-200-200-10", (100,), init="torch")
    h = (torch.rand(60, 8, 100) < 0.1).float()
    assert float(torch_init(h).mean()) < 0.01  # what the default torch init does: activity dies out


def test_calibrate_brings_every_layer_into_range():
    torch.manual_seed(0)
    model = from_spec("100-50-20", (40,), tau_m=8.0, tau_s=2.0)
    fluctuation_init_(model, v_std=0.5)
    rates = calibrate_(model, (torch.rand(50, 4, 40) < 0.05).float(), low=0.05, high=0.15)
    assert len(rates) == 3 and all(0.05 <= r <= 0.15 for r in rates)


@pytest.mark.parametrize("spec, shape, match", [
    ("64X3-10", (1, 8, 8), "cannot parse"),
    ("10-4C3", (20,), "must come before dense"),
    ("P2-10", (20,), r"needs a \[C, H, W\]"),
    ("4C3-P16-10", (1, 8, 8), "larger than"),
    ("4C3", (1, 8, 8), "must end with a dense layer"),
    ("", (3,), "non-empty"),
    ("0-3", (3,), "no neurons"),
])
def test_bad_specs_are_named(spec, shape, match):
    with pytest.raises(ValueError, match=match):
        from_spec(spec, shape)


def test_bad_options_and_inputs_are_named():
    with pytest.raises(TypeError, match="unknown option"):
        from_spec("10", (3,), treshold=1.0)
    assert "threshold" in DEFAULT_OPTIONS
    with pytest.raises(ValueError, match="pool must be"):
        from_spec("2C3-P2-3", (1, 4, 4), pool="median")
    with pytest.raises(ValueError, match="tau_m != tau_s"):
        from_spec("10", (3,), tau_m=2.0, tau_s=2.0)
    model = from_spec("10", (784,))
    with pytest.raises(ValueError, match="time-last"):
        model(torch.zeros(4, 784, 25))
    with pytest.raises(ValueError, match=r"expects time-major spikes \[T, B, 784\]"):
        model(torch.zeros(4, 783))


def test_network_rebuilds_from_its_build_config():
    from iirsnn.models import network_from_config

    torch.manual_seed(0)
    net = from_spec("8C3-P2-12-5", (2, 8, 8), tau_m=6.0, tau_s=2.0, reset="hard", dropout=0.1)
    rebuilt = network_from_config(net.build_config)
    rebuilt.load_state_dict(net.state_dict())
    x = (torch.rand(20, 3, 2, 8, 8) < 0.3).float()
    net.eval(), rebuilt.eval()
    assert torch.equal(net(x), rebuilt(x))
    assert rebuilt.build_config == net.build_config
    assert rebuilt[-1].neuron.reset == "hard"


@pytest.mark.parametrize("bad, message", [({"spec": "10"}, "missing keys"),
                                          ({"spec": "10", "input_shape": [3], "depth": 2}, "unknown keys"),
                                          ({"spec": "10", "input_shape": [3], "options": {"leek": 0.5}}, "leek")])
def test_network_build_config_errors_name_the_key(bad, message):
    from iirsnn.models import network_from_config

    with pytest.raises((ValueError, TypeError), match=message):
        network_from_config(bad)
