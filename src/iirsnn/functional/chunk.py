"""One chunk of a spiking layer with explicit state, filtered on the current side (W F(O) = F(W O)).

The whole-sequence layer functions (:mod:`iirsnn.functional.layer`) start from zero state. For a
sequence cut into chunks (gradient checkpointing over time, :mod:`iirsnn.nn.chunked`) this runs
the same layer on one chunk from a given state and returns the state after it, with gradients
through both: the spike-sparse product (a plain matmul or convolution off the cpu backend), then the
synapse filter on the current W O (its state is the history of W O and of its filtered value,
[*, B, N_out]), bias, and the neuron scan. On the cpu backend with a fixed kernel the filter, bias
and neuron are the one fused pass of the whole-sequence layer (``FusedFilterNeuron``), started from
the carried state: a chunk then costs what the same steps cost in a whole sequence.
"""

from __future__ import annotations

import torch

from iirsnn import _checks
from iirsnn.functional.filter import FilterState, synapse_filter
from iirsnn.functional.layer import (
    _channels_last,
    check_connection,
    check_linear_input,
    connection_current,
    conv_current,
    fusable,
    fused_filter_neuron,
)
from iirsnn.functional.neuron import NeuronState, _decay, neuron_options, neuron_scan
from iirsnn.functional.surrogates import Surrogate


def spiking_chunk(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor,
                  beta: torch.Tensor, leak: float | torch.Tensor, reset_decay: float | torch.Tensor,
                  threshold: float, surrogate: str | Surrogate, reset: str, detach_reset: bool,
                  filter_state: FilterState | None, neuron_state: NeuronState | None, *, conv: dict | None = None,
                  backend: str | None = None, precision: str = "fp32") -> tuple[torch.Tensor, tuple]:
    """x [T_chunk, B, N_in] (or [T_chunk, B, C_in, *spatial] with ``conv`` options) -> (spikes, next state).

    Args as :func:`iirsnn.functional.layer.spiking_linear` / ``spiking_conv`` with a shared kernel
    (alpha [P], beta [Q+1]); ``filter_state``/``neuron_state``: the states returned for the previous
    chunk (None: zeros). Returns the spikes and ``(FilterState, NeuronState)`` after this chunk.
    """
    if conv is None:
        x = check_linear_input(x, weight, bias)
    else:
        weight = _checks.float_tensor(weight, "weight")
        x = _checks.time_major(x, "x", weight.dim() + 1, "[T, B, C, ...]")
        check_connection(x, weight, bias, weight.dim())
    threshold, surrogate = neuron_options(threshold, surrogate, reset, x.dtype)
    _checks.finite(x, "x")
    fused = fusable(x, alpha, beta, backend) and not (alpha.requires_grad or beta.requires_grad)
    if fused and conv is not None:  # bf16-mixed: the fused pass reads the bfloat16 convolution as it is
        X = conv_current(x, weight, conv, precision, compute_dtype=True)
    else:
        X = connection_current(x, weight, conv, precision, backend)
    scan = torch.empty((), dtype=x.dtype).expand(X.shape)  # the scan's shape in x's dtype (X may be bfloat16)
    lam, theta = _decay(leak, "leak", scan), _decay(reset_decay, "reset_decay", scan)
    channels_last = X.dim() == 5  # 2-D convolution: scan in its physical layout [T, B, H, W, C]
    if channels_last:
        features = X.shape[2:]
        X = X.permute(0, 1, 3, 4, 2)
        lam, theta = _channels_last(lam, features), _channels_last(theta, features)
    elif X.dim() == 4 and bias is not None:  # 1-D convolution [T, B, C, L]
        bias = bias.view(-1, 1)
    if fused:
        spikes, filter_state, neuron_state = _fused_chunk(X, bias, alpha, beta, lam, theta, threshold, surrogate,
                                                          reset, detach_reset, filter_state, neuron_state,
                                                          precision == "bf16-mixed", x.dtype)
    else:
        F, filter_state = synapse_filter(X, alpha, beta, filter_state, return_state=True, backend=backend)
        current = F if bias is None else F + bias
        spikes, neuron_state = neuron_scan(current, lam, theta, threshold, surrogate, reset, detach_reset,
                                           neuron_state, return_state=True, backend=backend)
    if channels_last:
        spikes = spikes.permute(0, 1, 4, 2, 3)
    return spikes, (filter_state, neuron_state)


def _fused_chunk(X: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor, beta: torch.Tensor,
                 lam: torch.Tensor, theta: torch.Tensor, threshold: float, surrogate: Surrogate, reset: str,
                 detach_reset: bool, filter_state: FilterState | None, neuron_state: NeuronState | None,
                 v_bf16: bool, dtype: torch.dtype) -> tuple[torch.Tensor, FilterState, NeuronState]:
    """The fused pass of filter, bias and neuron on X [T, B, *lanes] from the carried states (None: zeros), in
    ``dtype``: (spikes, the filter state after it, the neuron state after it)."""
    P, Q = alpha.shape[0], beta.shape[0] - 1
    lanes = tuple(X.shape[1:])
    f_hist = x_hist = v0 = s0 = None
    if filter_state is not None:
        f_hist, x_hist = (_state(t, (k, *lanes), name, dtype) for t, k, name in (
            (filter_state[0], P, "filter_state.outputs"), (filter_state[1], Q, "filter_state.inputs")))
    if neuron_state is not None:
        v0, s0 = (_state(t, lanes, name, dtype) for t, name in ((neuron_state[0], "neuron_state.v"),
                                                               (neuron_state[1], "neuron_state.s")))
    O, _, f_last, x_last, v_last, s_last = fused_filter_neuron(X, bias, alpha, beta, lam, theta, threshold, surrogate,
                                                               reset, detach_reset, v_bf16, (f_hist, x_hist, v0, s0))
    return O, FilterState(f_last, x_last), NeuronState(v_last, s_last)


def _state(t: object, shape: tuple[int, ...], name: str, dtype: torch.dtype) -> torch.Tensor:
    """A carried state tensor checked against its shape (finite floats), in the scan's dtype."""
    t = _checks.float_tensor(t, name)
    _checks.state_shape(t, shape, name)
    _checks.finite(t, name)
    return t.to(dtype)
