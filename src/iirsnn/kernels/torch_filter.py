"""Portable torch backend of the synapse filter with the hand-written backward (docs/derivation.md sec. 4.4).

Forward: the feed-forward (beta) part is Q+1 whole-sequence multiply-adds; only the feedback
(alpha) recursion steps through time, and not at all when P = 0. Backward: the same filter run
backwards in time on the output gradient,

    G[t] = gF[t] + sum_p alpha_p G[t+p]
    g alpha_p = sum_t G[t] F[t-p],  g beta_q = sum_t G[t] x[t-q],  gx[t] = sum_q beta_q G[t+q],

with the gradients of the carried history (the state) included, so that chunked sequences get the
gradient of the whole one. Outputs and gradients are flushed (:mod:`iirsnn.subnormals`): the recursions
flush every row they finish, so no subnormal is carried or stored.
"""

from __future__ import annotations

import torch

from iirsnn.kernels._util import sum_to_shape
from iirsnn.subnormals import flush_


def _feedback_forward(fbuf: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    """In place: fbuf[i] += sum_p alpha[p-1] fbuf[i-p] for i = P..end (fbuf[P:] holds the FIR part), flushed."""
    for i in range(P, fbuf.shape[0]):
        row = fbuf[i]
        for p in range(1, P + 1):
            row.addcmul_(alpha[p - 1], fbuf[i - p])
        flush_(row)


def _feedback_backward(g: torch.Tensor, alpha: torch.Tensor, P: int) -> None:
    """In place: g[t] += sum_p alpha[p-1] g[t+p], from the end backwards (the transposed recursion), flushed."""
    T = g.shape[0]
    for t in range(T - 2, -1, -1):
        row = g[t]
        for p in range(1, min(P, T - 1 - t) + 1):
            row.addcmul_(alpha[p - 1], g[t + p])
        flush_(row)


def filter_function(feedback_forward, feedback_backward) -> type[torch.autograd.Function]:
    """The synapse-filter autograd function with the given recursions (this module's, or a GPU kernel's).

    feedback_forward(fbuf [P+T, ...], alpha [P, *bshape], P) and feedback_backward(G [T, ...], alpha, P)
    run, in place, the only two loops over time, flushing each row they finish; everything else is
    whole-sequence tensor algebra.
    """

    class SynapseFilterFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha, beta, f_hist, x_hist):
            P, Q, T = alpha.shape[0], beta.shape[0] - 1, x.shape[0]
            xbuf = torch.cat([x_hist, x]) if Q else x
            fbuf = torch.empty((P + T, *x.shape[1:]), dtype=x.dtype, device=x.device)
            fbuf[:P] = f_hist
            out = fbuf[P:]
            torch.mul(xbuf[Q:], beta[0], out=out)
            for q in range(1, Q + 1):
                out.addcmul_(beta[q], xbuf[Q - q:Q - q + T])
            flush_(out)  # the feed-forward part; the feedback flushes each row it adds to
            feedback_forward(fbuf, alpha, P)
            ctx.save_for_backward(
                alpha, beta,
                fbuf if ctx.needs_input_grad[1] else None,
                xbuf if ctx.needs_input_grad[2] else None,
            )
            ctx.shapes = (P, Q, T)
            return out, fbuf[T:].clone(), xbuf[T:].clone()

        @staticmethod
        def backward(ctx, gF, g_f_last, g_x_last):
            alpha, beta, fbuf, xbuf = ctx.saved_tensors
            P, Q, T = ctx.shapes
            gfull = torch.zeros((P + T, *gF.shape[1:]), dtype=gF.dtype, device=gF.device)
            gfull[P:] = gF
            if P:
                gfull[T:] += g_f_last
            G = flush_(gfull[P:])
            feedback_backward(G, alpha, P)
            g_x = g_alpha = g_beta = g_fh = g_xh = None
            if ctx.needs_input_grad[1]:
                g_alpha = flush_(torch.stack([sum_to_shape(G * fbuf[P - p:P - p + T], alpha.shape[1:])
                                              for p in range(1, P + 1)])) if P else torch.zeros_like(alpha)
            if ctx.needs_input_grad[2]:
                g_beta = flush_(torch.stack([sum_to_shape(G * xbuf[Q - q:Q - q + T], beta.shape[1:])
                                             for q in range(Q + 1)]))
            if ctx.needs_input_grad[3] and P:
                # history entry j is F[j - P]; it feeds outputs t = j - P + p for p = 1..P
                g_fh = gfull[:P].clone()
                for j in range(P):
                    for p in range(P - j, P + 1):
                        t = j - P + p
                        if t < T:
                            g_fh[j].addcmul_(alpha[p - 1], G[t])
                flush_(g_fh)
            elif ctx.needs_input_grad[3]:
                g_fh = torch.zeros_like(gfull[:0])
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[4]:
                # gxbuf[i] = sum_q beta_q G[i - Q + q], i over history (i < Q) and inputs
                Gp = torch.nn.functional.pad(G, [0, 0] * (G.dim() - 1) + [Q, Q]) if Q else G
                gxbuf = Gp[:Q + T] * beta[0]
                for q in range(1, Q + 1):
                    gxbuf.addcmul_(beta[q], Gp[q:q + Q + T])
                if Q:
                    gxbuf[T:] += g_x_last
                flush_(gxbuf)
                g_x, g_xh = gxbuf[Q:], gxbuf[:Q]
            return g_x, g_alpha, g_beta, g_fh, g_xh

    return SynapseFilterFunction


SynapseFilterFunction = filter_function(_feedback_forward, _feedback_backward)


def synapse_filter(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                   f_hist: torch.Tensor, x_hist: torch.Tensor):
    """Same contract as ``iirsnn.kernels.reference.synapse_filter``, with the manual backward."""
    return SynapseFilterFunction.apply(x, alpha, beta, f_hist, x_hist)
