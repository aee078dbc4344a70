"""The neuron-scan autograd function shared by the compiled backends; only the kernel launches differ.

A backend gives three launchers working on [T, L] lanes (see ``iirsnn.kernels.lanes``):

    forward(cur, V, O, v0, s0, v_last, s_last, lam, lam_period, theta, theta_period, threshold, hard)
    reset_trace(V, s0, theta, theta_period, threshold, S_prev)
    backward(gO, gVout | None, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period, threshold,
             hard, detach, surrogate, S_prev | None, gI, g_v0, g_s0, acc_leak, acc_theta | None)

Only V is saved for the backward: spikes are O = H(V - V_th) and the reset trace S is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from iirsnn.kernels import buffers
from iirsnn.kernels._util import sum_to_shape
from iirsnn.kernels.lanes import lane_params


class NeuronLaunchers(NamedTuple):
    forward: Callable[..., None]
    reset_trace: Callable[..., None]
    backward: Callable[..., None]


def neuron_function(launch: NeuronLaunchers) -> type[torch.autograd.Function]:
    """An autograd function (current, leak, reset_decay, v0, s0, threshold, surrogate, reset, detach_reset)."""

    class NeuronScan(torch.autograd.Function):
        @staticmethod
        def forward(ctx, current, leak, reset_decay, v0, s0, threshold, surrogate, reset, detach_reset):
            ctx.set_materialize_grads(False)
            cur = buffers.contiguous(current)
            lanes = cur.shape[1:]
            lam, lam_period = lane_params(leak.unsqueeze(0), lanes)
            theta, theta_period = lane_params(reset_decay.unsqueeze(0), lanes)
            v0c, s0c = v0.contiguous(), s0.contiguous()
            V, O = buffers.empty_like(cur), buffers.empty_like(cur)
            v_last, s_last = torch.empty_like(v0c), torch.empty_like(s0c)
            launch.forward(cur, V, O, v0c, s0c, v_last, s_last, lam, lam_period, theta, theta_period, threshold,
                           reset == "hard")
            ctx.save_for_backward(V, leak, reset_decay, v0c, s0c, lam, theta)
            ctx.options = (threshold, surrogate, reset, detach_reset, lam_period, theta_period)
            return O, V, v_last, s_last

        @staticmethod
        def backward(ctx, gO, gVout, g_vlast, g_slast):
            V, leak, reset_decay, v0, s0, lam, theta = ctx.saved_tensors
            threshold, surrogate, reset, detach_reset, lam_period, theta_period = ctx.options
            hard = reset == "hard"
            gO = torch.zeros_like(V) if gO is None else buffers.contiguous(gO)
            gVout = None if gVout is None else buffers.contiguous(gVout)
            g_vlast = torch.zeros_like(v0) if g_vlast is None else g_vlast.contiguous()
            g_slast = torch.zeros_like(s0) if g_slast is None else g_slast.contiguous()
            need_theta = ctx.needs_input_grad[2] and not hard
            S_prev = acc_theta = None
            if need_theta:
                S_prev, acc_theta = buffers.empty_like(V), torch.empty_like(v0)
                launch.reset_trace(V, s0, theta, theta_period, threshold, S_prev)
            gI, g_v0, g_s0, acc_leak = (buffers.empty_like(V), torch.empty_like(v0), torch.empty_like(s0),
                                        torch.empty_like(v0))
            launch.backward(gO, gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period, threshold,
                            hard, detach_reset, surrogate, S_prev, gI, g_v0, g_s0, acc_leak, acc_theta)
            g_leak = sum_to_shape(acc_leak, leak.shape) if ctx.needs_input_grad[1] else None
            g_theta = None
            if ctx.needs_input_grad[2]:
                g_theta = sum_to_shape(acc_theta, reset_decay.shape) if need_theta else torch.zeros_like(reset_decay)
            return gI, g_leak, g_theta, g_v0, g_s0, None, None, None, None

    return NeuronScan
