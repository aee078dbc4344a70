"""Gradient checkpointing over time chunks: exact BPTT through a long sequence in the memory of one chunk.

``chunked_forward(model, x, chunk)`` runs ``model`` (a ``torch.nn.Sequential`` of iirsnn modules, e.g.
a :class:`iirsnn.models.Network`) chunk by chunk along time, carrying every module's state (synapse
filter history, V and reset trace, delay line, dropout mask) from one chunk to the next as ordinary
tensors, so gradients flow through the chunk boundaries: outputs and gradients are those of one
whole-sequence call (tested against it in float64). With ``checkpoint=True`` (the default when
gradients are enabled) the chunks are checkpointed: the forward runs them as inference (no
potentials or spike indices kept for a backward), keeping only each chunk's starting state and
random-number state, and the backward recomputes one chunk at a time, last first, with gradients,
and backpropagates through it; so the training memory that grows with T is the chunks' outputs
and boundary states instead of every layer's V and currents. The price is one more inference
forward per step. A layer with a fixed shared kernel runs each chunk as the fused pass of the whole
sequence, started from the carried state (:func:`iirsnn.functional.chunk.spiking_chunk`). Before
each chunk the cached buffers that the previous chunk did not use are unmapped
(:mod:`iirsnn.kernels.buffers`) and malloc's free heap pages go back to the system
(:mod:`iirsnn.kernels.heap`), so that resident memory follows the live tensors of one chunk.

:func:`auto_chunk` is the policy of ``checkpoint_chunk="auto"`` (the default of ``from_spec`` networks):
sequences longer than ``2 * AUTO_CHUNK`` steps train in chunks of :data:`AUTO_CHUNK`, shorter ones whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

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
    """:func:`_run_chunk` for :class:`_CheckpointedChunks` (called by its forward and by the recomputation), which
    first unmaps the cached buffers that the previous chunk did not use and hands the heap's free pages back. The
    first chunk releases no buffer: those of the step before (its last chunks' recomputation and backward)
    are the ones it is about to ask for, and unmapping them faulted 23 MB in again every step of the temporal
    benchmark in chunks of 100."""

    def __init__(self) -> None:
        self.mark: int | None = None

    def __call__(self, modules: list[torch.nn.Module], x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        if self.mark is not None:
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
    bounds = [(start, min(start + chunk, x.shape[0])) for start in range(0, x.shape[0], chunk)]
    if checkpoint and torch.is_grad_enabled():
        params = [p for p in model.parameters() if p.requires_grad]
        return _CheckpointedChunks.apply((modules, bounds), x, *params)
    states: list = [None] * len(modules)
    outputs = []
    for start, stop in bounds:
        y, states = _run_chunk(modules, x[start:stop], states)
        outputs.append(y)
    return torch.cat(outputs)


class _CheckpointedChunks(torch.autograd.Function):
    """The chunks of :func:`chunked_forward` run as inference in the forward (which autograd runs without
    gradients) and recomputed with gradients in the backward, one at a time from the last: each from its saved
    starting state and random-number state, under the autocast settings of the forward. The gradient of the
    state a chunk returned (from the chunk after it) enters its backward with the gradient of its output; the
    gradient of the state it started from goes on to the chunk before. Parameters' gradients are summed over the
    chunks and returned, so an outer ``backward`` or ``torch.autograd.grad`` sees them as of one call."""

    @staticmethod
    def forward(ctx, plan, x, *params):
        modules, bounds = plan
        device = x.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        runner, states = _ChunkRunner(), [None] * len(modules)
        starts, rng, out = [], [], None
        for start, stop in bounds:
            starts.append(states)
            rng.append(_rng_state(x.device))
            y, states = runner(modules, x[start:stop], states)
            if out is None:  # each chunk's output goes straight in, so that its buffer serves the next chunk
                out = y.new_empty((x.shape[0], *y.shape[1:]))
            out[start:stop] = y
            del y
        ctx.plan, ctx.starts, ctx.rng, ctx.runner = plan, starts, rng, runner
        ctx.save_for_backward(x, *params)
        return out

    @staticmethod
    def backward(ctx, g_out):
        if ctx.starts is None:
            raise RuntimeError("backward through checkpointed chunks a second time (retain_graph): the chunks' "
                               "states are freed by the first; run with checkpoint_chunk='whole' to keep the graph")
        x, *params = ctx.saved_tensors
        modules, bounds = ctx.plan
        device, autocast, autocast_dtype = ctx.autocast
        need_x = ctx.needs_input_grad[1]
        g_x = torch.zeros_like(x) if need_x else None
        g_params: list[torch.Tensor | None] = [None] * len(params)
        g_state: list[torch.Tensor | None] | None = None  # the gradients of the state after the chunk
        for k in reversed(range(len(bounds))):
            start, stop = bounds[k]
            starting = [t.detach().requires_grad_(t.is_floating_point()) for t in _leaves(ctx.starts[k])]
            with torch.enable_grad(), torch.random.fork_rng(_devices(x.device)), \
                    torch.autocast(device, autocast_dtype, enabled=autocast):
                _set_rng_state(x.device, ctx.rng[k])
                piece = x[start:stop].detach().requires_grad_(need_x)
                y, ending = ctx.runner(modules, piece, _rebuild(ctx.starts[k], iter(starting)))
            outs, grads = [y], [g_out[start:stop]]
            if g_state is not None:
                for t, g in zip(_leaves(ending), g_state, strict=True):
                    if g is not None and t.requires_grad:
                        outs.append(t)
                        grads.append(g)
            wrt = ([piece] if need_x else []) + [t for t in starting if t.requires_grad] + params
            found = list(torch.autograd.grad(outs, wrt, grads, allow_unused=True)) if wrt and y.requires_grad else \
                [None] * len(wrt)
            if need_x:
                g_piece = found.pop(0)
                if g_piece is not None:
                    g_x[start:stop] = g_piece
            g_state = [found.pop(0) if t.requires_grad else None for t in starting]
            for i, g in enumerate(found):
                if g is not None:
                    g_params[i] = g if g_params[i] is None else g_params[i] + g
            del y, ending, outs, grads, found
        ctx.starts = ctx.rng = None
        return None, g_x, *g_params


def _leaves(tree: object) -> list[torch.Tensor]:
    """The tensors of a state (nested tuples, lists and NamedTuples of tensors and None), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _leaves(item)]
    return []


def _rebuild(tree: object, leaves: Iterator[torch.Tensor]) -> object:
    """``tree`` with its tensors replaced, in order, by those of ``leaves``."""
    if isinstance(tree, torch.Tensor):
        return next(leaves)
    if isinstance(tree, list):
        return [_rebuild(item, leaves) for item in tree]
    if isinstance(tree, tuple):
        items = [_rebuild(item, leaves) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return tree


def _devices(device: torch.device) -> list:
    """The accelerator devices whose random-number state a chunk on ``device`` uses (none on the CPU)."""
    return [device] if device.type == "cuda" else []


def _rng_state(device: torch.device) -> tuple:
    """The random-number states a chunk on ``device`` draws from (dropout masks), to draw the same again."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)
