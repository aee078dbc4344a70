"""Networks from the paper's notation, e.g. ``"64C3-P2-32C3-32C3-P2-256-10"``.

Tokens, separated by ``-``: ``nCk`` a convolution with n output channels and a k x k kernel
(k for 1-D inputs), stride 1, same padding; ``Pk`` a k x k pooling (window and stride k);
``n`` a dense layer of n neurons. Every convolution and dense token is a
:class:`~iirsnn.nn.SpikingLayer` (presynaptic synapse filter -> connection -> LIF neurons); the
last token is the output layer. A flatten is inserted before the first dense layer after
convolutions. The paper's networks:

==============================  =====================================================
``"64C3-32C3-32C3-256-10"``     MNIST (input 1x28x28)
``"64C3-P2-32C3-32C3-P2-256-10"``  N-MNIST (2x34x34)
``"32C7-32C3-32C3-256-10"``     DVS128 Gesture (downsampled 2x32x32; 11 classes in the paper's version)
``"300-300-11"``                spoken digits (MFCC frames as input current or spikes)
``"500-200-500-300"``           associative memory (300 input channels, 300 outputs)
==============================  =====================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch

from iirsnn import config
from iirsnn import nn as inn
from iirsnn.init import fluctuation_init_
from iirsnn.nn.chunked import auto_chunk, check_chunk_setting, chunked_forward

_CONV = re.compile(r"^(\d+)[cC](\d+)$")
_POOL = re.compile(r"^[pP](\d+)$")
_DENSE = re.compile(r"^(\d+)$")
_POOLS = {"max": inn.MaxPool2d, "avg": inn.AvgPool2d, "sum": inn.SumPool2d}

#: options of :func:`from_spec` beyond its named arguments, with their defaults
DEFAULT_OPTIONS: dict[str, object] = {
    "threshold": 1.0,  # V_th
    "surrogate": "gaussian",  # the paper's erfc-derived Gaussian, sigma 0.4
    "reset": "filter",  # "filter" (the paper) or "hard"
    "reset_tau": None,  # reset-filter time constant; None: reset_decay = leak (authors' code)
    "leak": None,  # membrane decay per step; None: exp(-1/tau_m); 0: no membrane filter
    "detach_reset": False,
    "learnable_synapse": False,  # learn alpha and beta of every synapse filter
    "per_channel_synapse": False,  # one kernel per presynaptic channel instead of one per layer
    "parametrization": "reflection",  # learnable feedback: "reflection" (stable) or "raw"
    "learnable_neuron": False,  # learn leak and reset decay (per neuron, per channel for conv)
    # > 1: membrane time constants spread geometrically over the neurons (channels of a conv layer) of every
    # hidden layer, from tau_m / spread to tau_m * spread, so that a layer sees several time scales from the
    # start (the output neurons keep tau_m: one time scale for every class)
    "tau_m_spread": 1.0,
    "lag": None,  # step at which a spike first reaches the filter; None: the preset's default
    "normalize": False,  # scale the synapse kernel to peak at 1
    "tau": None,  # time constant of the first_order and alpha presets (default tau_s)
    "pool": "max",  # "max", "avg" or "sum"
    "bias": True,
    "dropout": 0.0,  # one mask per sequence, before every hidden SpikingLayer but the first
    "stateful": False,
    "backend": None,
    "init": "fluctuation",  # "fluctuation" (iirsnn.init.fluctuation_init_, keeps deep nets active) or "torch"
    "precision": None,  # "fp32" or "bf16-mixed" (matmuls and convolutions in bfloat16); None: config.precision
    # training on chunks of this many steps, recomputed in the backward (iirsnn.nn.chunked): memory of one
    # chunk instead of the whole sequence, one more forward per step; "auto": chunks of 256 steps for sequences
    # over 512 (iirsnn.nn.chunked.auto_chunk); "whole": never; None: config.checkpoint_chunk (default "auto")
    "checkpoint_chunk": None,
}


class Network(torch.nn.Sequential):
    """A spiking network built by :func:`from_spec`: spikes [T, B, *input_shape] -> [T, B, n_out].

    ``build_config`` holds the arguments of :func:`from_spec` that built it (plain values: strings, numbers,
    lists, None), so that ``network_from_config(net.build_config)`` builds the same network again.
    """

    build_config: dict[str, object]

    def __init__(self, layers: Sequence[torch.nn.Module], spec: str, input_shape: tuple[int, ...],
                 checkpoint_chunk: int | str | None = None) -> None:
        super().__init__(*layers)
        self.spec = spec
        self.input_shape = input_shape
        self.checkpoint_chunk = check_chunk_setting(checkpoint_chunk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.input_shape
        if not isinstance(x, torch.Tensor) or x.dim() != 2 + len(expected) or tuple(x.shape[2:]) != expected:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            hint = ""
            if isinstance(x, torch.Tensor) and x.dim() == 2 + len(expected) and tuple(x.shape[1:-1]) == expected:
                hint = "; it looks time-last [B, ..., T]: iirsnn is time-major, move time first"
            raise ValueError(f"network {self.spec!r} expects time-major spikes [T, B, "
                             f"{', '.join(map(str, expected))}], got {shape}{hint}")
        chunk = self.checkpoint_chunk
        if chunk == "auto":
            chunk = auto_chunk(self, x.shape[0]) if torch.is_grad_enabled() else None
        if isinstance(chunk, int) and torch.is_grad_enabled() and x.shape[0] > chunk:
            return chunked_forward(self, x, chunk)
        return super().forward(x)


def _layer_kwargs(synapse: str, tau_m: float, tau_s: float, opts: dict[str, object]):
    syn = dict(tau_m=tau_m, tau_s=tau_s, lag=opts["lag"], normalize=opts["normalize"],
               learnable=opts["learnable_synapse"], parametrization=opts["parametrization"],
               stateful=opts["stateful"], backend=opts["backend"])
    if opts["tau"] is not None:
        syn["tau"] = opts["tau"]
    neu = dict(tau_m=tau_m, leak=opts["leak"], reset_tau=opts["reset_tau"], threshold=opts["threshold"],
               surrogate=opts["surrogate"], reset=opts["reset"], detach_reset=opts["detach_reset"],
               learnable=opts["learnable_neuron"], stateful=opts["stateful"], backend=opts["backend"])
    return syn, neu


def _spread_time_constants(tau_m: float, spread: float, shape: tuple[int, ...]) -> torch.Tensor:
    """Membrane time constants [shape] geometrically spaced from tau_m / spread to tau_m * spread over the
    first dimension (neurons, or channels of a conv layer)."""
    n = shape[0]
    exponents = torch.linspace(-1.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    return (tau_m * spread ** exponents).view(shape)


def from_spec(spec: str, input_shape: int | Sequence[int], synapse: str = "dual_exp", tau_m: float = 4.0,
              tau_s: float = 1.0, **options) -> Network:
    """Build the spiking network described by ``spec`` for inputs of ``input_shape``.

    Args:
        spec: the paper's notation (module docstring), e.g. ``"64C3-P2-32C3-32C3-P2-256-10"``.
        input_shape: shape of one input step without time and batch: ``(N,)`` for dense,
            ``(C, H, W)`` for 2-D and ``(C, L)`` for 1-D convolutions.
        synapse: synapse preset of every layer (``"dual_exp"``, ``"alpha"``, ``"first_order"``,
            ``"none"``, ``"delay"``).
        tau_m, tau_s: membrane and synaptic time constants in steps.
        **options: see :data:`DEFAULT_OPTIONS`.

    Returns:
        A :class:`Network` mapping spikes [T, B, *input_shape] to output spikes [T, B, n_out].
    """
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; valid options: {sorted(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    if opts["precision"] is None:
        opts["precision"] = config.precision
    if opts["checkpoint_chunk"] is None:
        opts["checkpoint_chunk"] = config.checkpoint_chunk
    if opts["init"] not in ("fluctuation", "torch"):
        raise ValueError(f"init must be 'fluctuation' or 'torch', got {opts['init']!r}")
    if opts["pool"] not in _POOLS:
        raise ValueError(f"pool must be one of {list(_POOLS)}, got {opts['pool']!r}")
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(int(n) for n in input_shape)
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"input_shape must be positive sizes, e.g. (784,) or (1, 28, 28), got {input_shape!r}")
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a non-empty string like '64C3-P2-32C3-256-10', got {spec!r}")
    spread = opts["tau_m_spread"]
    if isinstance(spread, bool) or not isinstance(spread, (int, float)) or not spread >= 1 or math.isinf(spread):
        raise ValueError(f"tau_m_spread must be a finite number >= 1 (1: one tau_m for all neurons), got {spread!r}")
    syn_kw, neu_kw = _layer_kwargs(synapse, tau_m, tau_s, opts)
    layers: list[torch.nn.Module] = []
    cur = shape
    n_spiking = 0
    tokens = spec.strip().split("-")
    for index, token in enumerate(tokens):
        conv, pool, dense = _CONV.match(token), _POOL.match(token), _DENSE.match(token)
        per_channel = cur[0] if opts["per_channel_synapse"] else None
        if (conv or dense) and int((conv or dense).group(1)) < 1:
            raise ValueError(f"layer {token!r} in spec {spec!r} has no neurons")
        if n_spiking and opts["dropout"] and (conv or dense):
            layers.append(inn.Dropout(opts["dropout"]))
        if conv:
            channels, k = int(conv.group(1)), int(conv.group(2))
            if len(cur) not in (2, 3):
                raise ValueError(f"convolution {token!r} needs a [C, L] or [C, H, W] input, got {list(cur)}; "
                                 "convolutions must come before dense layers")
            conv_cls = inn.Conv2d if len(cur) == 3 else inn.Conv1d
            connection = conv_cls(cur[0], channels, k, padding="same", bias=opts["bias"])
            cur = (channels, *cur[1:])
            neuron_shape = (channels,) + (1,) * (len(cur) - 1)
        elif pool:
            k = int(pool.group(1))
            if len(cur) != 3:
                raise ValueError(f"pooling {token!r} needs a [C, H, W] input, got {list(cur)}")
            if cur[1] < k or cur[2] < k:
                raise ValueError(f"pooling {token!r} is larger than its {cur[1]}x{cur[2]} input")
            layers.append(_POOLS[opts["pool"]](k))
            cur = (cur[0], cur[1] // k, cur[2] // k)
            continue
        elif dense:
            n = int(dense.group(1))
            if len(cur) > 1:
                layers.append(inn.Flatten())
                cur = (int(torch.tensor(cur).prod()),)
                per_channel = cur[0] if opts["per_channel_synapse"] else None
            connection = inn.Linear(cur[0], n, bias=opts["bias"])
            cur = (n,)
            neuron_shape = (n,)
        else:
            raise ValueError(f"cannot parse {token!r} in spec {spec!r}: expected nCk (convolution), "
                             "Pk (pooling) or n (dense layer)")
        spread_here = spread > 1 and index < len(tokens) - 1  # output neurons keep one time constant
        neuron_kw = neu_kw
        if spread_here:
            neuron_kw = {**neu_kw, "tau_m": _spread_time_constants(tau_m, spread, neuron_shape)}
        layers.append(inn.SpikingLayer(
            connection,
            inn.SynapseFilter(synapse, channels=per_channel, **syn_kw),
            inn.LIFNeuron(shape=neuron_shape if opts["learnable_neuron"] or spread_here else None, **neuron_kw),
            precision=opts["precision"],
        ))
        n_spiking += 1
    if not n_spiking:
        raise ValueError(f"spec {spec!r} has no spiking layer")
    if len(cur) != 1:
        raise ValueError(f"spec {spec!r} must end with a dense layer (the output neurons), ends with shape {list(cur)}")
    network = Network(layers, spec, shape, opts["checkpoint_chunk"])
    if opts["init"] == "fluctuation":
        fluctuation_init_(network)
    network.build_config = dict(spec=spec, input_shape=list(shape), synapse=synapse, tau_m=float(tau_m),
                                tau_s=float(tau_s), options=dict(options))
    return network


def network_from_config(build_config: dict[str, object]) -> Network:
    """The network :func:`from_spec` builds from ``build_config`` (a :attr:`Network.build_config`).

    Raises ValueError naming a missing or unknown key (the options are checked by :func:`from_spec`).
    """
    if not isinstance(build_config, dict):
        raise ValueError(f"a network's build config must be a mapping, got {type(build_config).__name__}")
    required, optional = {"spec", "input_shape"}, {"synapse", "tau_m", "tau_s", "options"}
    missing, unknown = required - set(build_config), set(build_config) - required - optional
    if missing or unknown:
        raise ValueError(f"network build config: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}; "
                         f"expected {sorted(required)} and optionally {sorted(optional)}")
    cfg = dict(build_config)
    options = cfg.pop("options", None) or {}
    if not isinstance(options, dict):
        raise ValueError(f"network build config: options must be a mapping, got {type(options).__name__}")
    return from_spec(cfg.pop("spec"), tuple(cfg.pop("input_shape")), **cfg, **options)
