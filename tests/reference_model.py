"""An independent step-by-step model of one IIR-SNN layer (docs/derivation.md sec. 1; paper eq. 5a-5f), for the tests.

Written from the equations in the paper's notation, not from the library: it imports nothing from
``iirsnn.kernels`` and only the surrogate *formula* from ``iirsnn.functional.surrogates``. Every
recursion runs with a Python loop over time (and, for the synapse filter, over presynaptic
channels with scalar coefficients); autograd differentiates it. Meant for float64.

    F_j[t] = sum_p alpha_{j,p} F_j[t-p] + sum_q beta_{j,q} O_j[t-q]          (5d), zero history
    I[t]   = F[t] W^T + b   or   conv2d(F[t], W, b)                           (5b)
    R[t]   = theta R[t-1] + O[t-1]                                            (5c), R[0] = 0
    V[t]   = lambda V[t-1] + I[t] - V_th R[t]                                 (5a), V[-1] = 0
    O[t]   = H(V[t] - V_th), dH/dV := surrogate derivative                   (5e, 5f)
    hard reset: V[t] = lambda V[t-1] (1 - O[t-1]) + I[t]
    detach_reset: O[t-1] enters R[t] (or the factor 1 - O[t-1]) without gradient.
"""

from __future__ import annotations

import torch

from iirsnn.functional.surrogates import Surrogate, get_surrogate


class Heaviside(torch.autograd.Function):
    """H(x) = 1 where x > 0 else 0; the backward multiplies by ``surrogate.derivative(x)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def per_channel(coef: torch.Tensor, channels: int) -> torch.Tensor:
    """[K] (shared) -> [C, K] (autograd sums the gradient back); [C, K] is returned as it is."""
    return coef.unsqueeze(0).expand(channels, -1) if coef.dim() == 1 else coef


def synapse(O: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Eq. 5d for every presynaptic channel j = O.shape[2].

    O [T, B, C, ...]; alpha [P] or [C, P]; beta [Q+1] or [C, Q+1]. Returns F [T, B, C, ...].
    """
    T, C = O.shape[0], O.shape[2]
    alpha, beta = per_channel(alpha, C), per_channel(beta, C)
    P, Q = alpha.shape[1], beta.shape[1] - 1
    channels = []
    for j in range(C):
        F_j: list[torch.Tensor] = []
        for t in range(T):
            f = torch.zeros_like(O[0, :, j])
            for p in range(1, P + 1):
                if t - p >= 0:
                    f = f + alpha[j, p - 1] * F_j[t - p]
            for q in range(Q + 1):
                if t - q >= 0:
                    f = f + beta[j, q] * O[t - q, :, j]
            F_j.append(f)
        channels.append(torch.stack(F_j))  # [T, B, ...]
    return torch.stack(channels, dim=2)


def neuron(I: torch.Tensor, leak: torch.Tensor | float, reset_decay: torch.Tensor | float, threshold: float = 1.0,
           surrogate: str | Surrogate = "gaussian", reset: str = "filter", detach_reset: bool = False):
    """Eq. 5a, 5c, 5e from zero state; I [T, B, ...]. Returns spikes O and membrane V, both [T, B, ...]."""
    surrogate = get_surrogate(surrogate)
    v = torch.zeros_like(I[0])
    r = torch.zeros_like(I[0])
    o = torch.zeros_like(I[0])
    spikes, volts = [], []
    for t in range(I.shape[0]):
        o_prev = o.detach() if detach_reset else o
        if reset == "filter":
            r = reset_decay * r + o_prev
            v = leak * v + I[t] - threshold * r
        elif reset == "hard":
            v = leak * v * (1.0 - o_prev) + I[t]
        else:
            raise ValueError(reset)
        o = Heaviside.apply(v - threshold, surrogate)
        spikes.append(o)
        volts.append(v)
    return torch.stack(spikes), torch.stack(volts)


def dense_current(F: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """I[t] = F[t] W^T + b for every step; F [T, B, C_in], weight [N, C_in], bias [N]."""
    out = []
    for t in range(F.shape[0]):
        i_t = F[t] @ weight.t()
        out.append(i_t + bias if bias is not None else i_t)
    return torch.stack(out)


def conv_current(F: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 1) -> torch.Tensor:
    """I[t] = conv2d(F[t]) for every step; F [T, B, C_in, H, W], weight [C_out, C_in, k, k]."""
    return torch.stack([torch.nn.functional.conv2d(F[t], weight, bias, padding=padding) for t in range(F.shape[0])])


def layer(O_in: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor,
          bias: torch.Tensor | None, leak, reset_decay, threshold: float = 1.0, surrogate="gaussian",
          reset: str = "filter", detach_reset: bool = False, kind: str = "dense"):
    """Synapse filter -> dense or conv current -> neuron. Returns (O, V, F, I)."""
    F = synapse(O_in, alpha, beta)
    I = dense_current(F, weight, bias) if kind == "dense" else conv_current(F, weight, bias)
    O, V = neuron(I, leak, reset_decay, threshold, surrogate, reset, detach_reset)
    return O, V, F, I
