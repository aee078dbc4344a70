"""Gradient checkpointing over time chunks: exact BPTT through a long sequence in the memory of one chunk.

``chunked_forward(model, x, chunk)`` runs ``model`` (a ``torch.nn.Sequential`` of iirsnn modules, e.g.
a :class:`iirsnn.models.Network`) chunk by chunk along time, carrying every module's state (synapse
filter history, V and reset trace, delay line, dropout mask) from one chunk to the next as ordinary
tensors, so gradients flow through the chunk boundaries: outputs and gradients are those of one
whole-sequence call (tested against it in float64). With ``checkpoint=True`` (the default when
gradients are enabled) each chunk runs under :func:`torch.utils.checkpoint.checkpoint`: its
intermediate tensors are dropped after the forward and recomputed during the backward, so the
training memory that grows with T is the chunks' outputs and boundary states instead of every
layer's V and currents. The price is one more forward per step; chunks take the composed
(filter, connection, neuron) path, which carries state, rather than the fused one. Before each
checkpointed chunk the cached buffers that the previous chunk did not use are unmapped
(:mod:`iirsnn.kernels.buffers`) and malloc's free heap pages go back to the system
(:mod:`iirsnn.kernels.heap`), so that resident memory follows the live tensors of one chunk.

:func:`auto_chunk` is the policy of ``checkpoint_chunk="auto"`` (the default of ``from_spec`` networks):
sequences longer than ``2 * AUTO_CHUNK`` steps train in chunks of :data:`AUTO_CHUNK`, shorter ones whole.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from iirsnn.kernels import buffers
from iirsnn.kernels.heap import release_free_pages
from iirsnn.nn.connections import Conv1d, Conv2d, Linear
from iirsnn.nn.pooling import AvgPool2d, MaxPool2d, SumPool2d
from iirsnn.nn.reshape import Flatten
from iirsnn.nn.state import StatefulModule

#: Time steps per chunk of ``checkpoint_chunk="auto"``, which chunks sequences longer than twice this.
AUTO_CHUNK = 256

#: Modules that act on every time step separately: no state crosses a chunk boundary.
PER_STEP = (Flatten, MaxPool2d, AvgPool2d, SumPool2d, Linear, Conv1d, Conv2d, torch.nn.Identity)


def _check_module(module: torch.nn.Module) -> None:
    stateful = [m for m in module.modules() if isinstance(m, StatefulModule) and m.stateful]
    if stateful:
        raise ValueError(f"{type(stateful[0]).__name__} is stateful (it carries detached state between calls); "
                         "chunked_forward carries state itself: turn stateful off (iirsnn.nn.set_stateful)")
    if getattr(module, "record_voltage", False):
        raise ValueError("record_voltage is not supported by chunked_forward: run without chunks to record V")
    if not (hasattr(module, "forward_chunk") or isinstance(module, PER_STEP)):
        raise TypeError(f"chunked_forward cannot carry the state of {type(module).__name__} across chunks: "
                        f"it needs a forward_chunk(x, state) method or must act per step ({PER_STEP})")


def check_chunk_setting(value: object, name: str = "checkpoint_chunk") -> int | str | None:
    """``value`` if it is a checkpoint_chunk setting (None or "whole": whole sequences; "auto": :func:`auto_chunk`;
    a positive int: chunks of that many steps), else a ValueError naming ``name``."""
    if value is None or value in ("auto", "whole") or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"{name} must be 'auto', 'whole', None or a positive number of steps, got {value!r}")


def chunkable(model: torch.nn.Sequential) -> bool:
    """Whether :func:`chunked_forward` can run ``model`` (every module carries its state or acts per step)."""
    try:
        for module in model:
            _check_module(module)
    except (TypeError, ValueError):
        return False
    return True


def auto_chunk(model: torch.nn.Sequential, steps: int) -> int | None:
    """The chunk of ``checkpoint_chunk="auto"`` for a training call on ``steps`` time steps: :data:`AUTO_CHUNK`
    when the sequence is longer than two of them and ``model`` can be chunked, else None (the whole sequence)."""
    return AUTO_CHUNK if steps > 2 * AUTO_CHUNK and chunkable(model) else None


class _ChunkRunner:
    """:func:`_run_chunk` for torch's checkpoint (called by the forward and by the recomputation), which first
    unmaps the cached buffers that the previous chunk did not use and hands the heap's free pages back."""

    def __init__(self) -> None:
        self.mark = buffers.requests()

    def __call__(self, modules: list[torch.nn.Module], x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        buffers.release_unused_since(self.mark)
        self.mark = buffers.requests()
        release_free_pages()
        return _run_chunk(modules, x, states)


def _run_chunk(modules: list[torch.nn.Module], x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
    """The modules in order on one chunk: (output, the states after it)."""
    new_states = []
    for module, state in zip(modules, states, strict=True):
        if hasattr(module, "forward_chunk"):
            x, state = module.forward_chunk(x, state)
        else:
            x = module(x)
        new_states.append(state)
    return x, new_states


def chunked_forward(model: torch.nn.Sequential, x: torch.Tensor, chunk: int,
                    checkpoint: bool | None = None) -> torch.Tensor:
    """``model(x)`` computed ``chunk`` time steps at a time, with the same outputs and gradients.

    Args:
        model: a ``torch.nn.Sequential`` of iirsnn modules (SpikingLayer, SynapseFilter, LIFNeuron,
            Delay, Dropout, pooling, Flatten, connections).
        x: time-major input [T, B, ...].
        chunk: time steps per chunk (the last one may be shorter).
        checkpoint: recompute each chunk in the backward instead of keeping its intermediates;
            default: whenever gradients are enabled.

    Returns:
        the output [T, B, ...], as ``model(x)``.
    """
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of time steps, got {chunk!r}")
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"chunked_forward runs a torch.nn.Sequential, got {type(model).__name__}")
    modules = list(model)
    for module in modules:
        _check_module(module)
    if checkpoint is None:
        checkpoint = torch.is_grad_enabled()
    states: list = [None] * len(modules)
    run_chunk = _ChunkRunner()
    outputs = []
    for start in range(0, x.shape[0], chunk):
        piece = x[start:start + chunk]
        if checkpoint:
            y, states = torch_checkpoint(run_chunk, modules, piece, states, use_reentrant=False)
        else:
            y, states = _run_chunk(modules, piece, states)
        outputs.append(y)
    return torch.cat(outputs)
