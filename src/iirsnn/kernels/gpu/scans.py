"""The ``gpu`` backend of the two scans: autograd functions over the Triton kernels.

Same contracts as :mod:`iirsnn.kernels.reference`. The synapse filter reuses the portable
function of :mod:`iirsnn.kernels.torch_filter` (whole-sequence algebra) with its two loops over
time replaced by Triton kernels; the neuron scan runs forward and backward as Triton kernels.
"""

from __future__ import annotations

import torch

from iirsnn.functional.surrogates import SURROGATE_CODES
from iirsnn.kernels.gpu import triton_kernels as tk
from iirsnn.kernels.lanes import lane_params
from iirsnn.kernels.neuron_function import NeuronLaunchers, neuron_function
from iirsnn.kernels.torch_filter import filter_function
from iirsnn.subnormals import cutoff

BLOCK = 128


def _cut(like: torch.Tensor) -> torch.Tensor:
    """The subnormal cut-off of like's dtype as a one-element tensor on its device (read by the kernels as CUT)."""
    return torch.tensor([cutoff(like.dtype)], dtype=like.dtype, device=like.device)


def _feedback_forward(fbuf: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    if P == 0:
        return
    T, lanes = fbuf.shape[0] - P, fbuf.shape[1:]
    a, period = lane_params(alpha, lanes)
    tk.feedback_forward_kernel[tk.grid(lanes.numel(), BLOCK)](fbuf, a, period, _cut(fbuf), T, lanes.numel(), P=P,
                                                              BLOCK=BLOCK)


def _feedback_backward(G: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    if P == 0 or G.shape[0] < 2:
        return
    lanes = G.shape[1:]
    a, period = lane_params(alpha, lanes)
    tk.feedback_backward_kernel[tk.grid(lanes.numel(), BLOCK)](G, a, period, _cut(G), G.shape[0], lanes.numel(), P=P,
                                                               BLOCK=BLOCK)


TritonSynapseFilter = filter_function(_feedback_forward, _feedback_backward)


def synapse_filter(x, alpha, beta, f_hist, x_hist):
    """Same contract as ``iirsnn.kernels.reference.synapse_filter``, with the time loops in Triton."""
    return TritonSynapseFilter.apply(x.contiguous(), alpha, beta, f_hist.contiguous(), x_hist.contiguous())


def _launch_forward(cur, V, O, v0, s0, v_last, s_last, lam, lam_period, theta, theta_period, threshold, hard):
    T, L = cur.shape[0], cur[0].numel()
    tk.neuron_forward_kernel[tk.grid(L, BLOCK)](cur, V, O, v0, s0, v_last, s_last, lam, lam_period, theta,
                                                theta_period, threshold, _cut(cur), T, L, HARD=hard, BLOCK=BLOCK)


def _launch_reset_trace(V, s0, theta, theta_period, threshold, S_prev):
    T, L = V.shape[0], V[0].numel()
    tk.reset_trace_kernel[tk.grid(L, BLOCK)](V, s0, theta, theta_period, threshold, S_prev, _cut(V), T, L,
                                             BLOCK=BLOCK)


def _launch_backward(gO, gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period, threshold, hard,
                     detach, surrogate, S_prev, gI, g_v0, g_s0, acc_leak, acc_theta):
    T, L = V.shape[0], V[0].numel()
    need_theta = S_prev is not None  # otherwise unused pointers stand in for the missing tensors
    tk.neuron_backward_kernel[tk.grid(L, BLOCK)](
        gO, gO if gVout is None else gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period,
        threshold, float(surrogate.param), S_prev if need_theta else V, gI, g_v0, g_s0, acc_leak,
        acc_theta if need_theta else acc_leak, _cut(V), T, L, HARD=hard, DETACH=detach,
        KIND=SURROGATE_CODES[surrogate.kind], HAS_GVOUT=gVout is not None, NEED_THETA=need_theta, BLOCK=BLOCK)


TritonNeuronScan = neuron_function(NeuronLaunchers(_launch_forward, _launch_reset_trace, _launch_backward))


def neuron_scan(current, leak, reset_decay, threshold, surrogate, reset, detach_reset, v0, s0):
    """Same contract as ``iirsnn.kernels.reference.neuron_scan``, as Triton kernels."""
    return TritonNeuronScan.apply(current, leak, reset_decay, v0, s0, threshold, surrogate, reset, detach_reset)
