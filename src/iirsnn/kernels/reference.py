"""Reference backend: the plain step-by-step equations (eq. 5a-5e), differentiated by autograd.

It is the ground truth of the tests (run in float64) and deliberately naive: one Python step per
time step and autograd through all of it. Arguments are in the broadcast form the functional API
prepares (see ``iirsnn.functional.filter`` and ``iirsnn.functional.neuron``).
"""

from __future__ import annotations

import torch

from iirsnn.functional.surrogates import Surrogate


def synapse_filter(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                   f_hist: torch.Tensor, x_hist: torch.Tensor):
    """F[t] = sum_p alpha[p-1] F[t-p] + sum_q beta[q] x[t-q].

    x: [T, B, ...]; alpha: [P, *bshape]; beta: [Q+1, *bshape] (bshape broadcasts to [B, ...]);
    f_hist: [P, B, ...], x_hist: [Q, B, ...] (oldest first). Returns F [T, B, ...] and the last P
    outputs and last Q inputs (oldest first).
    """
    P, Q = alpha.shape[0], beta.shape[0] - 1
    fs = list(f_hist.unbind(0))
    xs = list(x_hist.unbind(0))
    out = []
    for t in range(x.shape[0]):
        xs.append(x[t])
        f = beta[0] * xs[-1]
        for q in range(1, Q + 1):
            f = f + beta[q] * xs[-1 - q]
        for p in range(1, P + 1):
            f = f + alpha[p - 1] * fs[-p]
        fs.append(f)
        out.append(f)
    F = torch.stack(out)
    f_last = torch.stack(fs[len(fs) - P:]) if P else f_hist
    x_last = torch.stack(xs[len(xs) - Q:]) if Q else x_hist
    return F, f_last, x_last


def neuron_scan(current: torch.Tensor, leak: torch.Tensor, reset_decay: torch.Tensor, threshold: float,
                surrogate: Surrogate, reset: str, detach_reset: bool, v0: torch.Tensor, s0: torch.Tensor):
    """LIF neuron with a reset filter (eq. 5a, 5c, 5e) or a hard reset.

    filter: S[t-1] = theta S[t-2] + O[t-1] (S is the paper's R shifted by one step),
            V[t] = lambda V[t-1] + I[t] - V_th S[t-1], O[t] = H(V[t] - V_th), S[t] = theta S[t-1] + O[t]
    hard:   V[t] = lambda V[t-1] (1 - O[t-1]) + I[t], O[t] = H(V[t] - V_th); the state s is O[t-1].
    current: [T, B, ...]; leak, reset_decay broadcast to [B, ...]; v0, s0: [B, ...].
    Returns spikes O and membrane V ([T, B, ...]) and the final (v, s).
    """
    v, s = v0, s0
    spikes, volts = [], []
    for t in range(current.shape[0]):
        if reset == "filter":
            v = leak * v + current[t] - threshold * s
            o = surrogate.spike(v - threshold)
            s = reset_decay * s + (o.detach() if detach_reset else o)
        else:
            keep = 1.0 - (s.detach() if detach_reset else s)
            v = leak * v * keep + current[t]
            o = surrogate.spike(v - threshold)
            s = o
        spikes.append(o)
        volts.append(v)
    return torch.stack(spikes), torch.stack(volts), v, s
