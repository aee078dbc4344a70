"""Every option of iirsnn.models.from_spec reaches the layers it builds.

For each key of DEFAULT_OPTIONS a probe builds the same small network ("4C3-P2-6-3": a convolution, a
pooling, two dense layers) once with a non-default value and once with the defaults, observes a property
of the built modules across all of its layers (or their behaviour, where cheap), and asserts that the
property has the expected value with the option and a different one without it. A guard test fails when
DEFAULT_OPTIONS gains a key without a probe here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from iirsnn import config
from iirsnn import nn as inn
from iirsnn.functional import impulse_response
from iirsnn.models import DEFAULT_OPTIONS, from_spec
from iirsnn.nn.state import StatefulModule

SPEC, SHAPE = "4C3-P2-6-3", (2, 6, 6)  # per-channel synapses: 2, 4 * 3 * 3 = 36 and 6 presynaptic channels
TAU_M = 4.0


def layers(model) -> list[inn.SpikingLayer]:
    found = [m for m in model if isinstance(m, inn.SpikingLayer)]
    assert len(found) == 3
    return found


def neurons(model) -> list[inn.LIFNeuron]:
    return [layer.neuron for layer in layers(model)]


def synapses(model) -> list[inn.SynapseFilter]:
    return [layer.synapse for layer in layers(model)]


def rounded(x) -> float:
    return round(float(x), 5)


def decays(model) -> set:
    return {(rounded(n.leak), rounded(n.reset_decay)) for n in neurons(model)}


def kernels(model, length: int = 40) -> list[torch.Tensor]:
    """The impulse response of every layer's (shared) synapse kernel."""
    return [impulse_response(s.alpha.detach(), s.beta.detach(), length) for s in synapses(model)]


def spread_of(neuron) -> tuple:
    """Smallest and largest membrane and reset time constants -1 / log(decay) of a layer's neurons."""
    tau_m, tau_r = (-1 / torch.log(d.detach().double()) for d in (neuron.leak, neuron.reset_decay))
    return tuple(rounded(x) for x in (tau_m.min(), tau_m.max(), tau_r.min(), tau_r.max()))


def first_spike_step(model) -> set:
    return {int(torch.nonzero(k)[0]) for k in kernels(model)}


def states_after_a_call(model) -> set:
    model(torch.ones(3, 1, *SHAPE))
    return {m.state is not None for m in model.modules() if isinstance(m, StatefulModule)}


class Probe(NamedTuple):
    options: dict  # the non-default value(s) under test
    observe: Callable  # model -> an observation over all of its layers
    expected: object  # the observation with the option
    base: dict | None = None  # from_spec arguments both builds share (a preset, an option the tested one needs)


PROBES: dict[str, Probe] = {
    "threshold": Probe({"threshold": 0.5}, lambda m: {n.threshold for n in neurons(m)}, {0.5}),
    "surrogate": Probe({"surrogate": "arctan"}, lambda m: {n.surrogate.kind for n in neurons(m)}, {"arctan"}),
    "reset": Probe({"reset": "hard"}, lambda m: {n.reset for n in neurons(m)}, {"hard"}),
    "reset_tau": Probe({"reset_tau": 2.0}, decays, {(rounded(math.exp(-1 / TAU_M)), rounded(math.exp(-1 / 2)))}),
    "leak": Probe({"leak": 0.3}, decays, {(0.3, 0.3)}),  # the reset decay follows the leak by default
    "detach_reset": Probe({"detach_reset": True}, lambda m: {n.detach_reset for n in neurons(m)}, {True}),
    "learnable_synapse": Probe({"learnable_synapse": True},
                               lambda m: {(s.alpha.requires_grad, s.beta.requires_grad) for s in synapses(m)},
                               {(True, True)}),
    "per_channel_synapse": Probe({"per_channel_synapse": True},
                                 lambda m: [(s.channels, tuple(s.alpha.shape)) for s in synapses(m)],
                                 [(2, (2, 2)), (36, (36, 2)), (6, (6, 2))]),
    "parametrization": Probe({"parametrization": "raw"}, lambda m: {s.parametrization for s in synapses(m)},
                             {"raw"}, base={"learnable_synapse": True}),
    "learnable_neuron": Probe({"learnable_neuron": True},
                              lambda m: [(tuple(n.leak.shape), n.leak.requires_grad, n.reset_decay.requires_grad)
                                         for n in neurons(m)],
                              [((4, 1, 1), True, True), ((6,), True, True), ((3,), True, True)]),
    "tau_m_spread": Probe({"tau_m_spread": 2.0}, lambda m: [spread_of(n) for n in neurons(m)],
                          [(2.0, 8.0, 2.0, 8.0), (2.0, 8.0, 2.0, 8.0), (4.0, 4.0, 4.0, 4.0)]),
    "lag": Probe({"lag": 3}, first_spike_step, {3}),
    "normalize": Probe({"normalize": True}, lambda m: {rounded(k.max()) for k in kernels(m)}, {1.0}),
    "tau": Probe({"tau": 3.0}, lambda m: {rounded(s.alpha[0]) for s in synapses(m)}, {rounded(math.exp(-1 / 3))},
                 base={"synapse": "first_order"}),
    "pool": Probe({"pool": "avg"}, lambda m: [type(x).__name__ for x in m if "Pool" in type(x).__name__],
                  ["AvgPool2d"]),
    "bias": Probe({"bias": False}, lambda m: {layer.connection.bias is None for layer in layers(m)}, {True}),
    "dropout": Probe({"dropout": 0.25}, lambda m: [x.p for x in m if isinstance(x, inn.Dropout)], [0.25, 0.25]),
    "stateful": Probe({"stateful": True}, states_after_a_call, {True}),
    "backend": Probe({"backend": "torch"},
                     lambda m: {x.backend for layer in layers(m) for x in (layer.synapse, layer.neuron)}, {"torch"}),
    # the fluctuation init sets every bias to zero; torch's init draws them
    "init": Probe({"init": "torch"}, lambda m: {bool(layer.connection.bias.any()) for layer in layers(m)}, {True}),
    "precision": Probe({"precision": "bf16-mixed"}, lambda m: {layer.precision for layer in layers(m)},
                       {"bf16-mixed"}),
    "checkpoint_chunk": Probe({"checkpoint_chunk": 5}, lambda m: m.checkpoint_chunk, 5),
}


def test_every_option_has_a_probe():
    """A new key of DEFAULT_OPTIONS needs a probe in PROBES (and a stale probe is removed with its option)."""
    missing, stale = set(DEFAULT_OPTIONS) - set(PROBES), set(PROBES) - set(DEFAULT_OPTIONS)
    assert not missing, f"options without a probe in PROBES: {sorted(missing)}"
    assert not stale, f"probes of options from_spec no longer has: {sorted(stale)}"
    for name, probe in PROBES.items():
        assert name in probe.options and probe.options[name] != DEFAULT_OPTIONS[name], name


@pytest.mark.parametrize("name", sorted(PROBES))
def test_option_reaches_the_built_layers(name, monkeypatch):
    monkeypatch.setattr(config, "precision", "fp32")  # the defaults of precision and checkpoint_chunk
    monkeypatch.setattr(config, "checkpoint_chunk", None)
    probe = PROBES[name]
    base = probe.base or {}
    torch.manual_seed(0)
    default = probe.observe(from_spec(SPEC, SHAPE, tau_m=TAU_M, **base))
    torch.manual_seed(0)
    built = probe.observe(from_spec(SPEC, SHAPE, tau_m=TAU_M, **base, **probe.options))
    assert default != probe.expected, f"the probe of {name} does not tell its value from the default"
    assert built == probe.expected, f"{name}={probe.options[name]!r} did not reach the layers: {built}"


@pytest.mark.parametrize("spread", [0.5, float("inf"), True, "3"])
def test_an_impossible_tau_m_spread_is_refused(spread):
    with pytest.raises(ValueError, match="tau_m_spread"):
        from_spec(SPEC, SHAPE, tau_m_spread=spread)


def test_spread_time_constants_are_geometric_and_a_mismatched_tensor_is_refused():
    taus = -1 / torch.log(from_spec("5-3", (4,), tau_m=6.0, tau_m_spread=3.0)[0].neuron.leak.double())
    assert torch.allclose(taus, torch.tensor([2.0, 2 * 3 ** 0.5, 6.0, 6 * 3 ** 0.5, 18.0], dtype=torch.float64),
                          rtol=1e-5)
    with pytest.raises(ValueError, match="does not broadcast to the neuron shape"):
        inn.LIFNeuron(tau_m=torch.full((4,), 3.0), shape=(5,))
