"""The ``gpu`` backend of the two scans: autograd functions over the Triton kernels.

Same contracts as :mod:`iirsnn.kernels.reference`. The synapse filter reuses the portable
function of :mod:`iirsnn.kernels.torch_filter` (whole-sequence algebra) with its two loops over
time replaced by Triton kernels; the neuron scan runs forward and backward as Triton kernels.
"""

from __future__ import annotations

import torch

from iirsnn.functional.surrogates import Surrogate
from iirsnn.kernels._util import sum_to_shape
from iirsnn.kernels.cpu.scans import SURROGATE_CODES, lane_params
from iirsnn.kernels.gpu import triton_kernels as tk
from iirsnn.kernels.torch_filter import filter_function

BLOCK = 128


def _feedback_forward(fbuf: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    if P == 0:
        return
    T, lanes = fbuf.shape[0] - P, fbuf.shape[1:]
    a, period = lane_params(alpha, lanes)
    tk.feedback_forward_kernel[tk.grid(lanes.numel(), BLOCK)](fbuf, a, period, T, lanes.numel(), P=P, BLOCK=BLOCK)


def _feedback_backward(G: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    if P == 0 or G.shape[0] < 2:
        return
    lanes = G.shape[1:]
    a, period = lane_params(alpha, lanes)
    tk.feedback_backward_kernel[tk.grid(lanes.numel(), BLOCK)](G, a, period, G.shape[0], lanes.numel(), P=P,
                                                               BLOCK=BLOCK)


TritonSynapseFilter = filter_function(_feedback_forward, _feedback_backward)


def synapse_filter(x, alpha, beta, f_hist, x_hist):
    """Same contract as ``iirsnn.kernels.reference.synapse_filter``, with the time loops in Triton."""
    return TritonSynapseFilter.apply(x.contiguous(), alpha, beta, f_hist.contiguous(), x_hist.contiguous())


class TritonNeuronScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, leak, reset_decay, v0, s0, threshold: float, surrogate: Surrogate, reset: str,
                detach_reset: bool):
        ctx.set_materialize_grads(False)
        cur = current.contiguous()
        T, lanes = cur.shape[0], cur.shape[1:]
        L = lanes.numel()
        lam, lam_period = lane_params(leak.unsqueeze(0), lanes)
        theta, theta_period = lane_params(reset_decay.unsqueeze(0), lanes)
        v0c, s0c = v0.contiguous(), s0.contiguous()
        V, O = torch.empty_like(cur), torch.empty_like(cur)
        v_last, s_last = torch.empty_like(v0c), torch.empty_like(s0c)
        tk.neuron_forward_kernel[tk.grid(L, BLOCK)](cur, V, O, v0c, s0c, v_last, s_last, lam, lam_period, theta,
                                                    theta_period, threshold, T, L, HARD=reset == "hard",
                                                    BLOCK=BLOCK)
        ctx.save_for_backward(V, leak, reset_decay, v0c, s0c, lam, theta)
        ctx.options = (threshold, surrogate, reset, detach_reset, lam_period, theta_period)
        return O, V, v_last, s_last

    @staticmethod
    def backward(ctx, gO, gVout, g_vlast, g_slast):
        V, leak, reset_decay, v0, s0, lam, theta = ctx.saved_tensors
        threshold, surrogate, reset, detach_reset, lam_period, theta_period = ctx.options
        T, lanes = V.shape[0], V.shape[1:]
        L = lanes.numel()
        hard = reset == "hard"
        gO = torch.zeros_like(V) if gO is None else gO.contiguous()
        gVout = None if gVout is None else gVout.contiguous()
        g_vlast = torch.zeros_like(v0) if g_vlast is None else g_vlast.contiguous()
        g_slast = torch.zeros_like(s0) if g_slast is None else g_slast.contiguous()
        need_theta = ctx.needs_input_grad[2] and not hard
        S_prev = torch.empty_like(V) if need_theta else V
        acc_theta = torch.empty_like(v0)
        if need_theta:
            tk.reset_trace_kernel[tk.grid(L, BLOCK)](V, s0, theta, theta_period, threshold, S_prev, T, L, BLOCK=BLOCK)
        gI, g_v0, g_s0, acc_leak = torch.empty_like(V), torch.empty_like(v0), torch.empty_like(s0), torch.empty_like(v0)
        tk.neuron_backward_kernel[tk.grid(L, BLOCK)](
            gO, gO if gVout is None else gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period,
            threshold, float(surrogate.param), S_prev, gI, g_v0, g_s0, acc_leak, acc_theta, T, L, HARD=hard,
            DETACH=detach_reset, KIND=SURROGATE_CODES[surrogate.kind], HAS_GVOUT=gVout is not None,
            NEED_THETA=need_theta, BLOCK=BLOCK)
        g_leak = sum_to_shape(acc_leak, leak.shape) if ctx.needs_input_grad[1] else None
        g_theta = None
        if ctx.needs_input_grad[2]:
            g_theta = sum_to_shape(acc_theta, reset_decay.shape) if need_theta else torch.zeros_like(reset_decay)
        return gI, g_leak, g_theta, g_v0, g_s0, None, None, None, None


def neuron_scan(current, leak, reset_decay, threshold, surrogate, reset, detach_reset, v0, s0):
    """Same contract as ``iirsnn.kernels.reference.neuron_scan``, as Triton kernels."""
    return TritonNeuronScan.apply(current, leak, reset_decay, v0, s0, threshold, surrogate, reset, detach_reset)
