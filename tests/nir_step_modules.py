"""A nirtorch node map written from NIR's node equations (nir 1.0.8 docstrings), for the tests: an executor of
NIR graphs independent of iirsnn's importer. Every neuron node is forward Euler at step dt with the input of
the same step, x[t] = x[t-1] + dt/tau (v_leak - x[t-1] + r u[t]); nirtorch sums fan-in and gives every edge
that closes a cycle one step of delay.

``run(graph, x, dt)`` steps the graph through x [T, B, ...] and returns the outputs [T, B, ...].
"""

from __future__ import annotations

import nir
import nirtorch
import numpy as np
import torch


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


class LeakyIntegrator(torch.nn.Module):
    """LI: tau dv/dt = (v_leak - v) + r I; I: dv/dt = r I (tau = None)."""

    def __init__(self, tau, r, v_leak, dt: float) -> None:
        super().__init__()
        self.tau, self.r, self.v_leak, self.dt = (None if tau is None else _t(tau)), _t(r), _t(v_leak), dt

    def forward(self, x, state=None):
        v = torch.zeros_like(x) if state is None else state
        v = v + self.dt * self.r * x if self.tau is None else v + self.dt / self.tau * (self.v_leak - v + self.r * x)
        return v, v


class Spiking(LeakyIntegrator):
    """LIF / IF: the integrator, then z = [v > v_thr] and v <- v_reset where z."""

    def __init__(self, tau, r, v_leak, v_threshold, v_reset, dt: float) -> None:
        super().__init__(tau, r, v_leak, dt)
        self.v_threshold, self.v_reset = _t(v_threshold), _t(v_reset)

    def forward(self, x, state=None):
        v, _ = super().forward(x, state)
        z = (v > self.v_threshold).to(v.dtype)
        return z, torch.where(z > 0, self.v_reset.expand_as(v), v)


class Threshold(torch.nn.Module):
    def __init__(self, threshold) -> None:
        super().__init__()
        self.threshold = _t(threshold)

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class Scale(torch.nn.Module):
    def __init__(self, scale) -> None:
        super().__init__()
        self.scale = _t(scale)

    def forward(self, x):
        return x * self.scale


class Delay(torch.nn.Module):
    """y[t] = x[t - d] with d = delay / dt steps (one delay for every element)."""

    def __init__(self, delay, dt: float) -> None:
        super().__init__()
        self.steps = round(float(np.ravel(delay)[0]) / dt)

    def forward(self, x, state=None):
        history = [torch.zeros_like(x)] * self.steps if state is None else state
        history = [*history, x]
        return history[0], history[1:]


class Affine(torch.nn.Module):
    def __init__(self, weight, bias) -> None:
        super().__init__()
        self.weight, self.bias = _t(weight), None if bias is None else _t(bias)

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


def node_map(dt: float) -> dict:
    def conv(node, cls):
        padding = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in np.ravel(node.padding))
        module = cls(node.weight.shape[1] * int(node.groups), node.weight.shape[0], node.weight.shape[2:],
                     stride=tuple(int(s) for s in np.ravel(node.stride)), padding=padding,
                     dilation=tuple(int(d) for d in np.ravel(node.dilation)), groups=int(node.groups),
                     dtype=torch.float64)
        module.weight.data, module.bias.data = _t(node.weight), _t(node.bias)
        return module

    return {
        nir.LI: lambda n: LeakyIntegrator(n.tau, n.r, n.v_leak, dt),
        nir.I: lambda n: LeakyIntegrator(None, n.r, np.zeros_like(n.r), dt),
        nir.LIF: lambda n: Spiking(n.tau, n.r, n.v_leak, n.v_threshold, n.v_reset, dt),
        nir.IF: lambda n: Spiking(None, n.r, np.zeros_like(n.r), n.v_threshold, n.v_reset, dt),
        nir.Threshold: lambda n: Threshold(n.threshold),
        nir.Scale: lambda n: Scale(n.scale),
        nir.Delay: lambda n: Delay(n.delay, dt),
        nir.Affine: lambda n: Affine(n.weight, n.bias),
        nir.Linear: lambda n: Affine(n.weight, None),
        nir.Conv2d: lambda n: conv(n, torch.nn.Conv2d),
        nir.Conv1d: lambda n: conv(n, torch.nn.Conv1d),
        nir.Flatten: lambda n: torch.nn.Flatten(start_dim=n.start_dim + 1, end_dim=n.end_dim),  # + the batch dim
        nir.SumPool2d: lambda n: torch.nn.LPPool2d(1, tuple(int(k) for k in n.kernel_size),
                                                   tuple(int(s) for s in n.stride)),
    }


def in_chain_order(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph with its top-level nodes in the order of the chain from its Input. nirtorch 2.6 defers a node
    whose input is not built yet and, for a subgraph node, then builds the subgraph a second time, which fails;
    nir.read returns the nodes sorted by name, so a layer subgraph can come before its input."""
    successor = {src: dst for src, dst in graph.edges}
    name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    order = [name]
    while name in successor:
        name = successor[name]
        order.append(name)
    return nir.NIRGraph(nodes={n: graph.nodes[n] for n in order}, edges=list(graph.edges), metadata=graph.metadata)


def run(graph, x: torch.Tensor, dt: float) -> torch.Tensor:
    """Step ``graph`` (a nir.NIRGraph or a path) through x [T, B, ...]: outputs [T, B, ...] (float64)."""
    graph = nir.read(graph) if not isinstance(graph, nir.NIRGraph) else graph
    module = nirtorch.nir_to_torch(in_chain_order(graph), node_map(dt), dtype=torch.float64)
    state, outputs = None, []
    for step in x.double():
        out, state = module(step, state)
        outputs.append(out)
    return torch.stack(outputs)
