"""The ``cpu`` backend of the two scans: autograd functions over the compiled C kernels.

Same contracts as :mod:`iirsnn.kernels.reference`; float32 and float64 CPU tensors (other dtypes
fall back to the torch backend in :mod:`iirsnn.kernels`). Sequences are viewed as [T, L] with
L = B * prod(features) independent lanes.
"""

from __future__ import annotations

import ctypes

import torch

from iirsnn.functional.surrogates import SURROGATE_CODES
from iirsnn.kernels import buffers
from iirsnn.kernels._util import sum_to_shape
from iirsnn.kernels.cpu import library
from iirsnn.kernels.cpu.signatures import KERNELS, Kernel
from iirsnn.kernels.lanes import lane_params
from iirsnn.kernels.neuron_function import NeuronLaunchers, neuron_function

DTYPES = {torch.float32: "_f32", torch.float64: "_f64"}


def supports(t: torch.Tensor) -> bool:
    """Whether the compiled kernels take this tensor (CPU, float32 or float64)."""
    return t.device.type == "cpu" and t.dtype in DTYPES


_functions: dict[tuple[str, torch.dtype], tuple[ctypes._CFuncPtr, Kernel]] = {}


def _function(name: str, dtype: torch.dtype) -> tuple[ctypes._CFuncPtr, Kernel]:
    """The compiled kernel ``name`` for ``dtype`` and its entry in the table of arguments."""
    if dtype not in DTYPES:
        raise TypeError(f"the compiled kernels take float32 or float64, got {dtype} for kernel {name}")
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; the kernels are {sorted(KERNELS)}")
    entry = _functions[(name, dtype)] = (getattr(library(), name + DTYPES[dtype]), KERNELS[name])
    return entry


def run(name: str, dtype: torch.dtype, *args):
    """Call kernel ``name`` for ``dtype`` with ``args`` in its C order (tensors for pointers, None for NULL).

    The arguments are first checked against the kernel's table entry (:mod:`iirsnn.kernels.cpu.signatures`):
    a tensor of the wrong dtype, device, layout or number of elements, or an integer out of range, raises
    TypeError/ValueError naming it, before any memory is touched. Tensors stay referenced during the call.
    """
    fn, kernel = _functions.get((name, dtype)) or _function(name, dtype)
    kernel.check(dtype, args)
    return fn(*[a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args])


def threads() -> int:
    return torch.get_num_threads()


def _forward(cur, V, O, v0, s0, v_last, s_last, lam, lam_period, theta, theta_period, threshold, hard):
    T, L = cur.shape[0], cur[0].numel()
    run("neuron_forward", cur.dtype, cur, V, O, v0, s0, v_last, s_last, lam, lam_period, theta, theta_period,
        threshold, int(hard), T, L, threads())


def _reset_trace(V, s0, theta, theta_period, threshold, S_prev):
    run("reset_trace", V.dtype, V, 0, s0, theta, theta_period, threshold, S_prev, V.shape[0], V[0].numel(), threads())


def _backward(gO, gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period, threshold, hard, detach,
              surrogate, S_prev, gI, g_v0, g_s0, acc_leak, acc_theta):
    run("neuron_backward", V.dtype, gO, gVout, g_vlast, g_slast, V, v0, s0, lam, lam_period, theta, theta_period,
        threshold, int(hard), int(detach), SURROGATE_CODES[surrogate.kind], float(surrogate.param), S_prev, gI, g_v0,
        g_s0, acc_leak, acc_theta, V.shape[0], V[0].numel(), threads())


CpuNeuronScan = neuron_function(NeuronLaunchers(_forward, _reset_trace, _backward))


def neuron_scan(current, leak, reset_decay, threshold, surrogate, reset, detach_reset, v0, s0):
    """Same contract as ``iirsnn.kernels.reference.neuron_scan``, in compiled C."""
    return CpuNeuronScan.apply(current, leak, reset_decay, v0, s0, threshold, surrogate, reset, detach_reset)


class CpuSynapseFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, beta, f_hist, x_hist):
        ctx.set_materialize_grads(False)
        xc, fh, xh = x.contiguous(), f_hist.contiguous(), x_hist.contiguous()
        P, Q, T, lanes = alpha.shape[0], beta.shape[0] - 1, xc.shape[0], xc.shape[1:]
        L = lanes.numel()
        a, b, period = _coefficients(alpha, beta, lanes)
        F = buffers.empty_like(xc)
        run("filter_forward", xc.dtype, xc, xh, fh, a, b, period, F, P, Q, T, L, threads())
        ctx.save_for_backward(xc, xh, F, fh, a, b, alpha, beta)
        ctx.sizes = (P, Q, period)
        return F, _last(fh, F), _last(xh, xc)

    @staticmethod
    def backward(ctx, gF, g_f_last, g_x_last):
        x, xh, F, fh, a, b, alpha, beta = ctx.saved_tensors
        P, Q, period = ctx.sizes
        T, lanes = x.shape[0], x.shape[1:]
        L = lanes.numel()
        gF = torch.zeros_like(x) if gF is None else buffers.empty_like(x).copy_(gF)  # a copy: changed below
        g_fh_direct = torch.zeros_like(fh)
        if g_f_last is not None and P:  # f_last[k] is F[T - P + k], or a history entry when T < P
            for k in range(P):
                (gF[T - P + k] if T - P + k >= 0 else g_fh_direct[T + k]).add_(g_f_last[k])
        need_x, need_a, need_b, need_fh, need_xh = (ctx.needs_input_grad[i] for i in (0, 1, 2, 3, 4))
        G = buffers.empty_like(x)
        gx = buffers.empty_like(x) if need_x or (need_xh and g_x_last is not None) else None
        g_xh = torch.empty_like(xh) if need_xh or need_x else None
        g_fh = torch.empty_like(fh) if need_fh else None
        acc_a = x.new_empty((P, L)) if need_a and P else None
        acc_b = x.new_empty((Q + 1, L)) if need_b else None
        run("filter_backward", x.dtype, gF, x, xh, F, fh, a, b, period, G, gx, g_xh,
            g_fh, acc_a, acc_b, P, Q, T, L, threads())
        if g_x_last is not None and Q and (need_x or need_xh):  # x_last[k] is x[T - Q + k] or a history entry
            for k in range(Q):
                if T - Q + k >= 0:
                    gx[T - Q + k] += g_x_last[k]
                else:
                    g_xh[T + k] += g_x_last[k]
        g_alpha = g_beta = None
        if need_a:
            g_alpha = sum_to_shape(acc_a.view(P, *lanes), alpha.shape) if P else torch.zeros_like(alpha)
        if need_b:
            g_beta = sum_to_shape(acc_b.view(Q + 1, *lanes), beta.shape)
        if g_fh is not None:
            g_fh += g_fh_direct
        return gx if need_x else None, g_alpha, g_beta, g_fh, g_xh if need_xh else None


def _last(history: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """The last len(history) entries of history followed by seq (a copy), without copying all of seq."""
    k, T = history.shape[0], seq.shape[0]
    return seq[T - k:].clone() if k <= T else torch.cat([history[T:], seq])


def _coefficients(alpha: torch.Tensor, beta: torch.Tensor, lanes: torch.Size):
    """Per-lane alpha [P, period] and beta [Q+1, period] with one common period."""
    a, pa = lane_params(alpha, lanes)
    b, pb = lane_params(beta, lanes)
    period = max(pa, pb)  # periods are 1, N or L = B N, each dividing the next: tiling spreads the shorter
    return a.repeat(1, period // pa), b.repeat(1, period // pb), period


def synapse_filter(x, alpha, beta, f_hist, x_hist):
    """Same contract as ``iirsnn.kernels.reference.synapse_filter``, in compiled C."""
    return CpuSynapseFilter.apply(x, alpha, beta, f_hist, x_hist)
