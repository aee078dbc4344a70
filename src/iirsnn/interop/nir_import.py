"""Read a NIR graph into an iirsnn network: the ``exact`` profile of :mod:`iirsnn.interop.nir_export`
(bit for bit when its metadata is there) and the chains the peer libraries write.

Every LI / I node is read with forward Euler at step ``dt`` (pole p = 1 - dt / tau, input gain
r dt / tau), the same reading the export assumes. The peers' neurons map as follows, exactly unless said:

- ``LIF`` (v_leak 0, v_reset 0) -> no synapse filter, membrane leak 1 - dt / tau, reset ``"hard"``
  (a reset to 0 in the step of the spike is V[t] = lambda V[t-1] (1 - O[t-1]) + I[t]); its input
  gain folded into the weights. ``IF`` likewise with leak 1.
- ``CubaLIF`` -> a first-order synapse (pole 1 - dt / tau_syn, lag 0) and the LIF above. The peers
  filter the connection's output, iirsnn its input: the same for one shared pole, but the bias is
  then filtered too; a nonzero bias is read as its steady-state value (lossy: a warning says so).

Anything else (a recurrent connection, a threshold that differs between neurons, v_leak != 0) is
refused with a message naming the node.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from iirsnn import nn as inn
from iirsnn.functional.presets import Coefficients
from iirsnn.interop.nir_export import _nir
from iirsnn.interop.sections import Sections, from_sections

UNIT_GAIN = 1e-12  # an input gain r dt / tau this close to 1 is the unit gain the exact profile writes
CONSISTENT = 1e-9  # metadata coefficients are used where the nodes give them back to this relative error


def _read(graph_or_path):
    nir = _nir()
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    path = Path(graph_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable NIR file: {exc}") from None


def _chain(graph, where: str) -> list[str]:
    """The node names from the Input to the Output of a graph that is a single chain."""
    nir = _nir()
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"{where}: expected one Input node, found {len(inputs)}")
    successors: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        successors.setdefault(src, []).append(dst)
    order, name = [], inputs[0]
    while not isinstance(graph.nodes[name], nir.Output):
        following = successors.get(name, [])
        if len(following) != 1:
            raise ValueError(f"{where}: node {name!r} feeds {len(following)} nodes ({following}); iirsnn reads chains "
                             "of layers (a spiking layer of the exact profile is one subgraph node)")
        name = following[0]
        if name in order:
            raise ValueError(f"{where}: a cycle through {name!r} outside a layer subgraph (a recurrent connection) "
                             "has no iirsnn form")
        order.append(name)
    return order[:-1]


def _uniform(values: np.ndarray, what: str) -> float:
    flat = np.asarray(values, np.float64).ravel()
    if flat.size == 0 or not np.all(flat == flat[0]):
        raise ValueError(f"{what} differs between neurons; iirsnn has one per layer")
    return float(flat[0])


def _pole_and_gain(node, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(pole, input gain) arrays of an LI (v_leak 0) or I node read with forward Euler at step dt."""
    nir = _nir()
    if isinstance(node, (nir.I, nir.IF)):
        return np.ones_like(node.r, dtype=np.float64), np.asarray(node.r, np.float64) * dt
    if np.any(np.asarray(node.v_leak) != 0):
        raise ValueError(f"{type(node).__name__} with v_leak != 0 has no iirsnn form")
    tau = np.asarray(node.tau, np.float64)
    gain = np.asarray(node.r, np.float64) * dt / tau
    return 1.0 - dt / tau, np.where(np.abs(gain - 1.0) <= UNIT_GAIN, 1.0, gain)  # r = tau / dt up to rounding


def _decay(values: np.ndarray, neuron_shape: tuple[int, ...]) -> torch.Tensor | float:
    """One decay per layer, per channel [C, 1, 1] or per neuron, from an array of the output shape."""
    flat = values.reshape(values.shape[0], -1)
    if np.all(values == values.flat[0]):
        return float(values.flat[0])
    if values.ndim == 1 or np.all(flat == flat[:, :1]):
        return torch.from_numpy(np.ascontiguousarray(flat[:, 0]).reshape(neuron_shape))
    raise ValueError("a decay that varies within a channel has no iirsnn form (it is per channel or per neuron)")


def _connection(node, in_shape: tuple[int, ...], gain: np.ndarray | float) -> torch.nn.Module:
    """The iirsnn connection of an Affine, Linear, Conv1d or Conv2d node, its output scaled by ``gain``
    (a scalar or one per output channel / neuron)."""
    nir = _nir()
    weight = torch.from_numpy(np.array(node.weight))
    bias = torch.from_numpy(np.array(node.bias)) if getattr(node, "bias", None) is not None else None
    if isinstance(node, (nir.Affine, nir.Linear)):
        conn = inn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
        cls = inn.Conv2d if isinstance(node, nir.Conv2d) else inn.Conv1d
        padding = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in np.ravel(node.padding))
        conn = cls(weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]),
                   stride=tuple(int(s) for s in np.ravel(node.stride)), padding=padding,
                   dilation=tuple(int(d) for d in np.ravel(node.dilation)), groups=int(node.groups),
                   dtype=weight.dtype)
    else:
        raise ValueError(f"{type(node).__name__} is not a connection")
    scale = torch.as_tensor(np.array(gain, np.float64))
    per_output = scale.reshape(-1)[: weight.shape[0]] if scale.numel() > 1 else scale
    with torch.no_grad():
        view = (-1,) + (1,) * (weight.dim() - 1) if per_output.numel() > 1 else ()
        conn.weight.copy_(weight * (per_output.view(view) if view else per_output).to(weight.dtype))
        if conn.bias is not None:
            conn.bias.copy_(bias * per_output.to(bias.dtype))
    return conn


def _output_gain(gain: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray | float:
    """A gain array of the output shape as a scalar or one per output channel (what folds into the weights)."""
    flat = gain.reshape(out_shape[0], -1)
    if np.all(gain == gain.flat[0]):
        return float(gain.flat[0])
    if np.all(flat == flat[:, :1]):
        return flat[:, 0]
    raise ValueError("an input gain that varies within a channel cannot be folded into the weights")


def _exact_layer(sub, in_shape: tuple[int, ...], dt: float, where: str) -> inn.SpikingLayer:
    nir = _nir()
    nodes, edges = sub.nodes, sub.edges
    into: dict[str, list[str]] = {}
    for src, dst in edges:
        into.setdefault(dst, []).append(src)
    connections = [n for n, node in nodes.items() if isinstance(node, (nir.Affine, nir.Linear, nir.Conv1d,
                                                                        nir.Conv2d))]
    if len(connections) != 1:
        raise ValueError(f"{where}: a layer subgraph needs one connection node, found {len(connections)}")
    weights = connections[0]
    sections, direct = [], {}
    for branch in into.get(weights, []):
        gain, node = 1.0, nodes[branch]
        if isinstance(node, nir.Scale):
            gain, source = np.asarray(node.scale, np.float64), into[branch][0]
            node = nodes[source]
        else:
            source = branch
        if isinstance(node, nir.Input):
            direct[0] = direct.get(0, 0.0) + gain
        elif isinstance(node, nir.Delay):
            steps = _uniform(node.delay, f"{where}: delay {source!r}") / dt
            if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
                raise ValueError(f"{where}: delay {source!r} is not a whole number of steps of dt={dt}")
            direct[round(steps)] = direct.get(round(steps), 0.0) + gain
        elif isinstance(node, (nir.LI, nir.I)):
            pole, unit = _pole_and_gain(node, dt)
            sections.append((pole, gain * unit))
        else:
            raise ValueError(f"{where}: {type(node).__name__} {source!r} feeding the weights has no iirsnn form")
    membrane_name = next(iter(d for s, d in edges if s == weights))
    membrane = nodes[membrane_name]
    out_shape = tuple(int(n) for n in np.shape(membrane.r))
    leak, membrane_gain = _pole_and_gain(membrane, dt)
    if isinstance(membrane, (nir.LIF, nir.IF)):
        if np.any(np.asarray(membrane.v_reset) != 0):
            raise ValueError(f"{where}: a reset to v_reset != 0 has no iirsnn form")
        reset, threshold, theta = "hard", _uniform(membrane.v_threshold, f"{where}: v_threshold"), leak
    else:
        spike = next(d for s, d in edges if s == membrane_name)
        threshold = _uniform(nodes[spike].threshold, f"{where}: threshold")
        reset_name = next(d for s, d in edges if s == spike and isinstance(nodes[d], (nir.LI, nir.I)))
        theta, reset_gain = _pole_and_gain(nodes[reset_name], dt)
        amplitude = np.asarray(nodes[next(d for s, d in edges if s == reset_name)].scale, np.float64)
        if not np.allclose(amplitude * reset_gain * membrane_gain, -threshold * membrane_gain, rtol=1e-9, atol=0):
            raise ValueError(f"{where}: the reset amplitude differs from the threshold; iirsnn subtracts V_th R")
        reset = "filter"
    channel_index = (slice(None),) + (0,) * (len(in_shape) - 1)
    poles = [np.asarray(p, np.float64)[channel_index] for p, _ in sections]
    gains = [np.broadcast_to(np.asarray(g, np.float64), in_shape)[channel_index] for _, g in sections]
    depth = max(direct, default=-1) + 1
    fir = [np.broadcast_to(np.asarray(direct.get(q, 0.0), np.float64), in_shape)[channel_index] for q in range(depth)]
    coefficients = [from_sections(Sections(np.array([p[c] for p in poles]), np.array([g[c] for g in gains]),
                                           np.array([d[c] for d in fir]))) for c in range(in_shape[0])]
    shared = all(np.array_equal(coefficients[0][0], a) and np.array_equal(coefficients[0][1], b)
                 for a, b in coefficients)
    alpha = np.stack([a for a, _ in coefficients]) if not shared else coefficients[0][0]
    beta = np.stack([b for _, b in coefficients]) if not shared else coefficients[0][1]
    meta = sub.metadata or {}
    if "alpha" in meta and _matches(meta["alpha"], meta["beta"], alpha, beta):
        alpha, beta = np.asarray(meta["alpha"], np.float64), np.asarray(meta["beta"], np.float64)
        shared = alpha.ndim == 1
    neuron_shape = (out_shape[0],) + (1,) * (len(out_shape) - 1) if len(out_shape) > 1 else out_shape
    leak_value, theta_value = _decay(leak, neuron_shape), _decay(theta, neuron_shape)
    if meta.get("leak") is not None and np.allclose(np.broadcast_to(meta["leak"], out_shape), leak, rtol=CONSISTENT):
        leak_value = _as_decay(meta["leak"])
        theta_value = _as_decay(meta["reset_decay"])
    synapse = inn.SynapseFilter(Coefficients(torch.from_numpy(np.array(alpha)), torch.from_numpy(np.array(beta))),
                                channels=None if shared else in_shape[0])
    per_neuron = isinstance(leak_value, torch.Tensor) or isinstance(theta_value, torch.Tensor)
    surrogate = str(meta.get("surrogate", "gaussian"))
    neuron = inn.LIFNeuron(leak=leak_value, reset_decay=theta_value, threshold=threshold, reset=reset,
                           surrogate=_surrogate(surrogate, meta), shape=neuron_shape if per_neuron else None)
    connection = _connection(nodes[weights], in_shape, _output_gain(np.broadcast_to(membrane_gain, out_shape),
                                                                    out_shape))
    layer = inn.SpikingLayer(connection, synapse, neuron)
    # the modules round what they are given to float32; a float64 graph's values are set after the cast
    layer.nir_exact = {"alpha_fixed": alpha, "beta_fixed": beta, "leak_fixed": leak_value, "reset_fixed": theta_value}
    return layer


def _set_exact(layer: inn.SpikingLayer) -> None:
    """Give the layer's kernel and decays the graph's values in the layer's dtype (bitwise those exported)."""
    values = layer.__dict__.pop("nir_exact")
    with torch.no_grad():
        for owner in (layer.synapse, layer.neuron):
            for name, buffer in owner.named_buffers(recurse=False):
                value = torch.as_tensor(np.array(values[name]) if not isinstance(values[name], torch.Tensor)
                                        else values[name], dtype=torch.float64)
                buffer.copy_(value.to(buffer.dtype).expand_as(buffer))


def _as_decay(value) -> torch.Tensor | float:
    array = np.asarray(value, np.float64)
    return float(array.ravel()[0]) if array.size == 1 else torch.from_numpy(array.copy())


def _surrogate(kind: str, meta: dict):
    from iirsnn.functional.surrogates import Surrogate

    if "surrogate_param" in meta:
        return Surrogate(kind, float(meta["surrogate_param"]))
    return kind


def _matches(alpha, beta, read_alpha: np.ndarray, read_beta: np.ndarray) -> bool:
    """Whether the metadata's coefficients are those the nodes give (then they are taken as they are)."""
    alpha, beta = np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
    if alpha.shape[-1:] != read_alpha.shape[-1:]:
        return False
    width = max(beta.shape[-1], read_beta.shape[-1])
    pad = lambda b: np.concatenate([b, np.zeros((*b.shape[:-1], width - b.shape[-1]))], axis=-1)  # noqa: E731
    scale = max(1.0, float(np.abs(beta).max(initial=0.0)))
    return bool(np.allclose(np.broadcast_to(alpha, np.broadcast_shapes(alpha.shape, read_alpha.shape)), read_alpha,
                            rtol=0, atol=CONSISTENT * 10)
                and np.allclose(pad(beta), pad(read_beta), rtol=0, atol=CONSISTENT * 10 * scale))


def _peer_layer(conn_node, neuron_node, in_shape: tuple[int, ...], dt: float, where: str) -> inn.SpikingLayer:
    nir = _nir()
    out_shape = tuple(int(n) for n in np.shape(neuron_node.v_threshold))
    if np.any(np.asarray(neuron_node.v_reset) != 0):
        raise ValueError(f"{where}: a reset to v_reset != 0 has no iirsnn form")
    threshold = _uniform(neuron_node.v_threshold, f"{where}: v_threshold")
    if isinstance(neuron_node, nir.CubaLIF):
        if np.any(np.asarray(neuron_node.v_leak) != 0):
            raise ValueError(f"{where}: CubaLIF with v_leak != 0 has no iirsnn form")
        tau_syn = _uniform(neuron_node.tau_syn, f"{where}: tau_syn")
        pole = 1.0 - dt / tau_syn
        tau_mem = np.asarray(neuron_node.tau_mem, np.float64)
        leak, gain = 1.0 - dt / tau_mem, np.asarray(neuron_node.r) * dt / tau_mem
        gain = gain * np.asarray(neuron_node.w_in, np.float64) * dt / tau_syn
        synapse = inn.SynapseFilter(Coefficients(torch.tensor([pole], dtype=torch.float64),
                                                 torch.tensor([1.0], dtype=torch.float64)))
        bias = getattr(conn_node, "bias", None)
        if bias is not None and np.any(bias != 0):
            warnings.warn(f"{where}: the CubaLIF filters the bias, iirsnn does not: read as its steady state "
                          "(the first steps differ)", RuntimeWarning, stacklevel=3)
            conn_node = type(conn_node)(**{**_fields(conn_node), "bias": np.asarray(bias) / (1.0 - pole)})
    else:
        leak, gain = _pole_and_gain(neuron_node, dt)
        synapse = inn.SynapseFilter("none")
    neuron_shape = (out_shape[0],) + (1,) * (len(out_shape) - 1) if len(out_shape) > 1 else out_shape
    leak_value = _decay(np.broadcast_to(leak, out_shape), neuron_shape)
    neuron = inn.LIFNeuron(leak=leak_value, reset_decay=0.0, threshold=threshold, reset="hard",
                           shape=neuron_shape if isinstance(leak_value, torch.Tensor) else None)
    connection = _connection(conn_node, in_shape, _output_gain(np.broadcast_to(gain, out_shape), out_shape))
    return inn.SpikingLayer(connection, synapse, neuron)


def _fields(node) -> dict:
    keys = {"Affine": ("weight", "bias"), "Conv2d": ("input_shape", "weight", "stride", "padding", "dilation",
                                                      "groups", "bias"),
            "Conv1d": ("input_shape", "weight", "stride", "padding", "dilation", "groups", "bias")}
    return {k: getattr(node, k) for k in keys[type(node).__name__]}


def _pool_size(node) -> int:
    sizes = {int(v) for v in np.ravel(node.kernel_size)} | {int(v) for v in np.ravel(node.stride)}
    if len(sizes) != 1 or np.any(np.asarray(node.padding) != 0):
        raise ValueError(f"pooling with kernel {node.kernel_size}, stride {node.stride}, padding {node.padding}: "
                         "iirsnn pools square windows with stride = window and no padding")
    return sizes.pop()


def import_nir(graph_or_path, dt: float | None = None):
    """A NIR graph (or the path of a ``.nir`` file) as an :class:`iirsnn.models.Network`.

    ``dt``: the step in seconds; default the graph's own (``metadata["dt"]``, which iirsnn writes), else
    1e-4 (the peers' default). The network's kernels are fixed (``SynapseFilter`` buffers); its
    parameters have the dtype of the graph's weights.
    """
    from iirsnn.models.spec import Network

    nir = _nir()
    graph = _read(graph_or_path)
    meta = graph.metadata or {}
    if dt is None:
        dt = float(meta.get("dt", 1e-4))
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    names = _chain(graph, "graph")
    input_node = next(n for n in graph.nodes.values() if isinstance(n, nir.Input))
    shape = tuple(int(n) for n in input_node.input_type["input"])
    input_shape, layers, tokens, i = shape, [], [], 0
    dtype = torch.float32
    while i < len(names):
        name, node = names[i], graph.nodes[names[i]]
        where = f"node {name!r}"
        if isinstance(node, nir.NIRGraph):
            layer = _exact_layer(node, shape, dt, where)
        elif isinstance(node, (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)):
            following = graph.nodes[names[i + 1]] if i + 1 < len(names) else None
            if not isinstance(following, (nir.LIF, nir.IF, nir.CubaLIF)):
                raise ValueError(f"{where}: a connection must be followed by LIF, IF or CubaLIF neurons (or be part "
                                 f"of an iirsnn layer subgraph), found {type(following).__name__}")
            layer = _peer_layer(node, following, shape, dt, where)
            i += 1
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k = _pool_size(node)
            following = graph.nodes[names[i + 1]] if i + 1 < len(names) else None
            if isinstance(node, nir.SumPool2d) and isinstance(following, nir.Threshold) and \
                    np.all(np.asarray(following.threshold) == 0.5):
                layers.append(inn.MaxPool2d(k))
                i += 1
            else:
                layers.append((inn.SumPool2d if isinstance(node, nir.SumPool2d) else inn.AvgPool2d)(k))
            tokens.append(f"P{k}")
            shape = (shape[0], shape[1] // k, shape[2] // k)
            i += 1
            continue
        elif isinstance(node, nir.Flatten):
            layers.append(inn.Flatten())
            shape = (int(np.prod(shape)),)
            i += 1
            continue
        elif isinstance(node, nir.Delay):
            steps = _uniform(node.delay, f"{where}: delay") / dt
            if abs(steps - round(steps)) > 1e-6:
                raise ValueError(f"{where}: a delay of {steps} steps of dt={dt} is not a whole number of steps")
            layers.append(inn.Delay(round(steps)))
            i += 1
            continue
        else:
            raise ValueError(f"{where}: {type(node).__name__} has no iirsnn form here")
        conn = layer.connection
        dtype = conn.weight.dtype
        with torch.no_grad():
            shape = tuple(conn(torch.zeros((1, 1, *shape), dtype=dtype)).shape[2:])
        tokens.append(f"{shape[0]}C{conn.kernel_size[0]}" if len(shape) > 1 else str(shape[0]))
        layers.append(layer)
        i += 1
    if not any(isinstance(m, inn.SpikingLayer) for m in layers):
        raise ValueError("the graph has no spiking layer")
    network = Network(layers, "-".join(tokens), input_shape).to(dtype)
    for layer in layers:
        if "nir_exact" in layer.__dict__:
            _set_exact(layer)
    if "build_config" in meta:
        network.nir_build_config = json.loads(meta["build_config"])
    return network
