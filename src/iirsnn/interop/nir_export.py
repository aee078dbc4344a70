"""Write an iirsnn network as a NIR graph (``nir`` package, the ``nir`` extra).

Two profiles (``docs/interchange.md``; the mapping of ``../shared/research/nir.md`` sec. 4):

``"exact"``: every spiking layer is a NIR subgraph whose nodes, read with forward Euler at step dt
(x[t] = x[t-1] + dt/tau (v_leak - x[t-1] + r u[t]), the input of the same step, one step of delay
on a cycle, as nirtorch reads them), compute the layer exactly:

    input -> synapse sections LI(p_i) [-> Scale(c_i)] (+ direct / Delay paths) -> Affine | Conv
          -> membrane LI(lambda) -> Threshold(V_th) -> output
                       ^--- Scale(-V_th) <- reset LI(theta) <--'   (the reset filter: a cycle)

with tau = dt / (1 - p) and r = 1 / (1 - p) for every pole p (an integrator I for p = 1), so that
each LI is x[t] = p x[t-1] + u[t]. A hard reset is a LIF(v_reset = 0). Max pooling of spikes is a
SumPool2d and a Threshold(0.5) (the OR of binary inputs). The original coefficients, decays, dt and
the discretisation are in the metadata, so that :func:`iirsnn.import_nir` reads the network back
bit for bit. Filters with complex or repeated poles have no such form and are refused.

``"peer"``: the nearest graph the peer libraries import (snnTorch, Norse, SpikingJelly, Lava): a
CubaLIF per layer (a LIF without a synapse filter), its synaptic pole the slowest pole of the filter
and its input gain matching the filter's DC gain, zero reset in the step of the spike, r = tau / dt.
It is lossy (marked so in the metadata): the second pole, the lag and the reset filter are lost.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from iirsnn import nn as inn
from iirsnn.interop.sections import NoSectionsError, to_sections

PROFILES = ("exact", "peer")
DISCRETISATION = ("forward Euler at step dt: x[t] = x[t-1] + dt/tau (v_leak - x[t-1] + r u[t]) with the input u "
                  "of the same step; each edge closing a cycle carries one step of delay (nirtorch's reading)")


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("NIR export and import need the nir package: pip install 'iirsnn[nir]'") from None
    return nir


def _array(value, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` from a scalar or a broadcastable tensor."""
    data = value.detach().double().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)
    return np.ascontiguousarray(np.broadcast_to(data, shape), dtype=np.float64)


def _leaky(nir, pole: np.ndarray, dt: float):
    """x[t] = pole x[t-1] + u[t] under Euler: LI(dt / (1 - p), 1 / (1 - p)), or I(1 / dt) where p = 1."""
    if np.all(pole == 1.0):
        return nir.I(r=np.full(pole.shape, 1.0 / dt))
    if np.any(pole == 1.0):
        raise ValueError("a layer mixes decays of exactly 1 with smaller ones: NIR has no node for that mix")
    return nir.LI(tau=dt / (1.0 - pole), r=1.0 / (1.0 - pole), v_leak=np.zeros(pole.shape))


def _weights(nir, conn: torch.nn.Module, in_shape: tuple[int, ...]):
    weight = conn.weight.detach().cpu().numpy()
    bias = None if conn.bias is None else conn.bias.detach().cpu().numpy()
    if isinstance(conn, inn.Linear):
        return nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    if isinstance(conn, (inn.Conv1d, inn.Conv2d)):
        if getattr(conn, "padding_mode", "zeros") != "zeros":
            raise ValueError(f"{conn.padding_mode!r} padding has no NIR form (NIR convolutions pad with zeros)")
        padding = conn.padding
        if padding == "same" and all(k % 2 for k in conn.kernel_size):
            padding = tuple(d * (k - 1) // 2 for d, k in zip(conn.dilation, conn.kernel_size, strict=True))
        bias = np.zeros(weight.shape[0], weight.dtype) if bias is None else bias
        cls, spatial = (nir.Conv2d, tuple(in_shape[1:])) if isinstance(conn, inn.Conv2d) else (nir.Conv1d, in_shape[1])
        return cls(input_shape=spatial, weight=weight, stride=conn.stride, padding=padding, dilation=conn.dilation,
                   groups=conn.groups, bias=bias)
    raise ValueError(f"connection {type(conn).__name__} has no NIR form (iirsnn.nn.Linear, Conv1d, Conv2d do)")


def _out_shape(module: torch.nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[int, ...]:
    with torch.no_grad():
        probe = torch.zeros((1, 1, *shape), dtype=dtype)
        return tuple(module(probe).shape[2:])


def _sections(syn: inn.SynapseFilter, layer: str) -> list:
    """Sections of every channel's filter: [(poles [P], gains [P], direct [K])] per channel (one when shared)."""
    alpha, beta = syn.alpha.detach().double().cpu(), syn.beta.detach().double().cpu()
    rows = [(alpha, beta)] if alpha.dim() == 1 else list(zip(alpha, beta, strict=True))
    try:
        return [to_sections(a.numpy(), b.numpy()) for a, b in rows]
    except NoSectionsError as exc:
        raise NoSectionsError(f"{layer}: {exc}; export with profile='peer' for the nearest lossy form") from None


def _exact_layer(nir, layer: inn.SpikingLayer, name: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 dt: float):
    syn, neu = layer.synapse, layer.neuron
    per_channel = _sections(syn, name)
    channel_axis = (slice(None),) + (None,) * (len(in_shape) - 1)

    def along_channels(values: list[float]) -> np.ndarray:
        data = np.asarray(values, np.float64)
        return _array(data[channel_axis] if data.shape[0] > 1 else data[0], in_shape)

    nodes = {"input": nir.Input(input_type=np.array(in_shape))}
    edges = []
    for i in range(per_channel[0].poles.shape[0]):
        section = f"synapse_{i}"
        nodes[section] = _leaky(nir, along_channels([s.poles[i] for s in per_channel]), dt)
        edges.append(("input", section))
        gains = along_channels([s.gains[i] for s in per_channel])
        if np.all(gains == 1.0):
            edges.append((section, "weights"))
        else:
            nodes[f"{section}_gain"] = nir.Scale(scale=gains)
            edges += [(section, f"{section}_gain"), (f"{section}_gain", "weights")]
    for q in range(max(s.direct.shape[0] for s in per_channel)):
        gains = along_channels([s.direct[q] if q < s.direct.shape[0] else 0.0 for s in per_channel])
        if np.all(gains == 0.0):
            continue
        source = "input"
        if q:
            nodes[f"direct_{q}_delay"] = nir.Delay(delay=np.full(in_shape, q * dt))
            edges.append(("input", f"direct_{q}_delay"))
            source = f"direct_{q}_delay"
        nodes[f"direct_{q}"] = nir.Scale(scale=gains)
        edges += [(source, f"direct_{q}"), (f"direct_{q}", "weights")]
    nodes["weights"] = _weights(nir, layer.connection, in_shape)
    leak, theta = _array(neu.leak, out_shape), _array(neu.reset_decay, out_shape)
    threshold = np.full(out_shape, neu.threshold)
    if neu.reset == "hard":
        membrane = _leaky(nir, leak, dt)
        if isinstance(membrane, nir.I):
            nodes["membrane"] = nir.IF(r=membrane.r, v_threshold=threshold, v_reset=np.zeros(out_shape))
        else:
            nodes["membrane"] = nir.LIF(tau=membrane.tau, r=membrane.r, v_leak=membrane.v_leak,
                                        v_threshold=threshold, v_reset=np.zeros(out_shape))
        edges += [("weights", "membrane"), ("membrane", "output")]
    else:
        nodes["membrane"] = _leaky(nir, leak, dt)
        nodes["spike"] = nir.Threshold(threshold=threshold)
        nodes["reset"] = _leaky(nir, theta, dt)
        nodes["reset_gain"] = nir.Scale(scale=np.full(out_shape, -neu.threshold))
        edges += [("weights", "membrane"), ("membrane", "spike"), ("spike", "reset"), ("reset", "reset_gain"),
                  ("reset_gain", "membrane"), ("spike", "output")]
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    metadata = {"iirsnn_layer": "SpikingLayer", "alpha": syn.alpha.detach().double().cpu().numpy(),
                "beta": syn.beta.detach().double().cpu().numpy(), "shared_kernel": int(syn.shared),
                "leak": np.atleast_1d(neu.leak.detach().double().cpu().numpy()),  # 0-d arrays: no HDF5 chunks
                "reset_decay": np.atleast_1d(neu.reset_decay.detach().double().cpu().numpy()),
                "threshold": neu.threshold,
                "reset": neu.reset, "surrogate": neu.surrogate.kind, "surrogate_param": float(neu.surrogate.param)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _slowest_pole(syn: inn.SynapseFilter) -> tuple[float, float]:
    """(pole, DC gain) of the one-pole stand-in of a shared filter: its largest real pole (0 without feedback)
    and the filter's sum of impulse response B(1) / A(1)."""
    if not syn.shared:
        raise ValueError("profile 'peer' writes one synaptic pole per layer; per-channel kernels have none")
    alpha, beta = syn.alpha.detach().double().cpu().numpy(), syn.beta.detach().double().cpu().numpy()
    roots = np.roots(np.concatenate([[1.0], -alpha])) if alpha.shape[0] else np.zeros(0)
    real = roots[np.abs(roots.imag) <= 1e-9].real
    pole = float(real.max()) if real.shape[0] else 0.0
    return pole, float(beta.sum() / (1.0 - alpha.sum()))


def _peer_layer(nir, layer: inn.SpikingLayer, out_shape: tuple[int, ...], in_shape: tuple[int, ...], dt: float):
    """(weights node, neuron node) of the lossy peer profile."""
    syn, neu = layer.synapse, layer.neuron
    pole, dc = _slowest_pole(syn)
    weights = _weights(nir, layer.connection, in_shape)
    gain = dc * (1.0 - pole)  # CubaLIF current kernel gain * pole^s has the filter's DC gain
    if getattr(weights, "bias", None) is not None:  # the CubaLIF filters the bias: divide by its DC gain
        weights.bias = (weights.bias.astype(np.float64) / dc).astype(weights.bias.dtype)
    leak = _array(neu.leak, out_shape)
    if np.any(leak >= 1.0) or pole >= 1.0:
        raise ValueError("profile 'peer': a decay of 1 (a pure integrator) has no CubaLIF form")
    tau_mem, tau_syn = dt / (1.0 - leak), np.full(out_shape, dt / (1.0 - pole))
    neuron = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(out_shape),
                         v_threshold=np.full(out_shape, neu.threshold), v_reset=np.zeros(out_shape),
                         w_in=gain * tau_syn / dt)
    return weights, neuron


def _pool(nir, module: torch.nn.Module, name: str, spikes_in: bool, out_shape: tuple[int, ...]):
    """NIR nodes [(name, node)] of a pooling module; max pooling only on spikes (an OR: sum, then > 0.5)."""
    k, s, p = (np.array([v, v]) for v in (module.kernel_size, module.stride, module.padding))
    if isinstance(module, inn.AvgPool2d):
        return [(name, nir.AvgPool2d(kernel_size=k, stride=s, padding=p))]
    node = nir.SumPool2d(kernel_size=k, stride=s, padding=p)
    if isinstance(module, inn.SumPool2d):
        return [(name, node)]
    if not spikes_in:
        raise ValueError(f"{name}: max pooling of non-binary values has no NIR form (of spikes it is an OR)")
    return [(name, node), (f"{name}_or", nir.Threshold(threshold=np.full(out_shape, 0.5)))]


def export_nir(model: torch.nn.Module, dt: float = 1e-4, profile: str = "exact",
               input_shape: tuple[int, ...] | None = None):
    """``model`` (an :class:`iirsnn.models.Network` or a ``torch.nn.Sequential`` of iirsnn modules) as a
    ``nir.NIRGraph``; ``dt`` the step in seconds (the NIR peers' default 1e-4), ``profile`` "exact" or
    "peer" (module docstring), ``input_shape`` one step of the input without batch (default
    ``model.input_shape``). Dropout is left out (the graph is for inference)."""
    nir = _nir()
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError("give input_shape (one step of the input without batch, e.g. (784,) or (2, 34, 34))")
    shape = tuple(int(n) for n in shape)
    modules = list(model.children()) if isinstance(model, torch.nn.Sequential) else [model]
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    nodes: dict = {"input": nir.Input(input_type=np.array(shape))}
    edges, previous, spikes = [], "input", False
    for index, module in enumerate(modules):
        if isinstance(module, inn.Dropout):
            continue
        out_shape = _out_shape(module.connection if isinstance(module, inn.SpikingLayer) else module, shape, dtype)
        if isinstance(module, inn.SpikingLayer):
            name = f"layer{index}"
            if profile == "exact":
                chain = [(name, _exact_layer(nir, module, name, shape, out_shape, dt))]
            else:
                weights, neuron = _peer_layer(nir, module, out_shape, shape, dt)
                chain = [(f"{name}_weights", weights), (f"{name}_neuron", neuron)]
            spikes = True
        elif isinstance(module, (inn.MaxPool2d, inn.AvgPool2d, inn.SumPool2d)):
            chain = _pool(nir, module, f"pool{index}", spikes, out_shape)
            spikes = spikes and isinstance(module, inn.MaxPool2d)
        elif isinstance(module, inn.Flatten):
            chain = [(f"flatten{index}", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))]
        elif isinstance(module, inn.Delay):
            if module.steps and profile == "peer":
                raise ValueError(f"module {index}: an axonal delay of {module.steps} steps; the peer importers read no "
                                 "NIR Delay node (the exact profile writes one)")
            chain = [(f"delay{index}", nir.Delay(delay=np.full(shape, module.steps * dt)))] if module.steps else []
        else:
            raise ValueError(f"module {index} ({type(module).__name__}) has no NIR form; the exportable modules are "
                             "SpikingLayer, Flatten, AvgPool2d, SumPool2d, MaxPool2d (of spikes), Delay, Dropout")
        for name, node in chain:
            nodes[name] = node
            edges.append((previous, name))
            previous = name
        shape = out_shape
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((previous, "output"))
    metadata = {"producer": "iirsnn", "profile": profile, "dt": float(dt), "discretisation": DISCRETISATION,
                "spike_rule": "a spike where v > threshold (strict)"}
    if profile == "peer":
        metadata["lossy"] = ("one synaptic pole per layer (the slowest, the DC gain kept, the lag lost), the filtered "
                             "subtractive reset replaced by a reset to 0 in the step of the spike")
    build_config = getattr(model, "build_config", None)
    if build_config is not None:
        metadata["build_config"] = json.dumps(build_config)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
