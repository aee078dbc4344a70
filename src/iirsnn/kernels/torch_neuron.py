"""Portable torch backend of the neuron scan with the hand-written backward (docs/derivation.md sec. 4.1-4.2).

Only V is saved for the backward: spikes are recomputed as O = H(V - V_th) and the reset trace S
(needed only for the gradient of its decay) by re-running its cheap recursion. With the shifted
reset trace S[t] = theta S[t-1] + O[t] (S[t-1] is the paper's R[t]) the adjoint recursions are

    filter reset:  gS[t] = theta gS[t+1] - V_th gV[t+1]
                   gV[t] = (gO[t] + gS[t]) eps[t] + lambda gV[t+1]       (gS dropped when detach_reset)
    hard reset:    gV[t] = (gO[t] - lambda V[t] gV[t+1]) eps[t] + lambda (1 - O[t]) gV[t+1]

and gI = gV, g lambda = sum_t gV[t] V'[t-1] (V' the decayed part), g theta = sum_t gS[t] S[t-1].
Every state, output and gradient is flushed (:mod:`iirsnn.subnormals`): no subnormal is carried or stored.
"""

from __future__ import annotations

import torch

from iirsnn.functional.surrogates import Surrogate
from iirsnn.kernels._util import sum_to_shape
from iirsnn.subnormals import flush_


def _spikes(v: torch.Tensor, threshold: float) -> torch.Tensor:
    return (v > threshold).to(v.dtype)


class NeuronScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, leak, reset_decay, v0, s0, threshold: float, surrogate: Surrogate,
                reset: str, detach_reset: bool):
        T = current.shape[0]
        V = torch.empty_like(current)
        v, s = v0, s0
        if reset == "filter":
            for t in range(T):
                v = torch.addcmul(current[t], leak, v)
                flush_(v.add_(s, alpha=-threshold))
                V[t] = v
                s = flush_(torch.addcmul(_spikes(v, threshold), reset_decay, s))
        else:
            for t in range(T):
                v = flush_(torch.addcmul(current[t], leak, v * (1.0 - s)))
                V[t] = v
                s = _spikes(v, threshold)
        ctx.save_for_backward(V, leak, reset_decay, v0, s0)
        ctx.options = (threshold, surrogate, reset, detach_reset)
        return _spikes(V, threshold), V, V[T - 1].clone(), s

    @staticmethod
    def backward(ctx, gO, gVout, g_vlast, g_slast):
        V, leak, reset_decay, v0, s0 = ctx.saved_tensors
        threshold, surrogate, reset, detach_reset = ctx.options
        T = V.shape[0]
        eps = flush_(surrogate.derivative(V - threshold))
        gV = eps * gO  # eps[t] gO[t], then the recursion on top
        gV.add_(gVout)
        gV[T - 1] += g_vlast
        O = _spikes(V, threshold)
        need_theta = ctx.needs_input_grad[2]
        if reset == "filter":
            gS_all = torch.empty_like(V) if need_theta else None
            gS = g_slast.clone()
            for t in range(T - 1, -1, -1):
                if t < T - 1:
                    gS = flush_(gS * reset_decay - threshold * gV[t + 1])
                    gV[t].addcmul_(leak, gV[t + 1])
                if not detach_reset:
                    gV[t].addcmul_(gS, eps[t])
                flush_(gV[t])
                if need_theta:
                    gS_all[t] = gS
            g_s0 = gS * reset_decay - threshold * gV[0]
            g_v0 = leak * gV[0]
            v_prev = torch.cat([v0.unsqueeze(0), V[:-1]])
        else:
            keep = 1.0 - O
            gV[T - 1].addcmul_(eps[T - 1], g_slast)  # the carried state is the last spike
            flush_(gV[T - 1])
            for t in range(T - 2, -1, -1):
                nxt = leak * gV[t + 1]
                if not detach_reset:
                    gV[t].addcmul_(eps[t], nxt * V[t], value=-1.0)
                flush_(gV[t].addcmul_(keep[t], nxt))
            g_v0 = leak * (1.0 - s0) * gV[0]
            g_s0 = torch.zeros_like(s0) if detach_reset else -leak * v0 * gV[0]
            v_prev = torch.cat([(v0 * (1.0 - s0)).unsqueeze(0), V[:-1] * keep[:-1]])
        g_v0, g_s0 = flush_(g_v0), flush_(g_s0)
        g_leak = flush_(sum_to_shape(gV * v_prev, leak.shape)) if ctx.needs_input_grad[1] else None
        g_theta = None
        if need_theta and reset == "filter":
            S = torch.empty_like(V)
            s = s0
            for t in range(T):
                S[t] = s
                s = flush_(torch.addcmul(O[t], reset_decay, s))
            g_theta = flush_(sum_to_shape(gS_all * S, reset_decay.shape))  # S here holds S[t-1]
        elif need_theta:
            g_theta = torch.zeros_like(reset_decay)
        return gV, g_leak, g_theta, g_v0, g_s0, None, None, None, None


def neuron_scan(current: torch.Tensor, leak: torch.Tensor, reset_decay: torch.Tensor, threshold: float,
                surrogate: Surrogate, reset: str, detach_reset: bool, v0: torch.Tensor, s0: torch.Tensor):
    """Same contract as ``iirsnn.kernels.reference.neuron_scan``, with the manual backward."""
    return NeuronScanFunction.apply(current, leak, reset_decay, v0, s0, threshold, surrogate, reset,
                                    detach_reset)
