"""Triton kernels of the scans: one program per block of lanes runs the whole time loop.

Sequences are [T, L] (L = B * prod(features) independent lanes); per-lane parameters are arrays
of ``period`` values read at ``lane % period`` (see ``iirsnn.kernels.cpu.scans.lane_params``).
The same code runs on CUDA tensors and, for the tests, on CPU tensors under TRITON_INTERPRET=1.
Every kernel flushes what it stores and carries (magnitudes below the cut-off of :mod:`iirsnn.subnormals`,
read from the one-element tensor CUT of the data's dtype, become 0), as the CPU kernels do.
"""

from __future__ import annotations

import triton
import triton.language as tl

GAUSSIAN, FAST_SIGMOID, SIGMOID, ARCTAN, TRIANGLE = 0, 1, 2, 3, 4


@triton.jit
def _flush(x, cut):
    """x with magnitudes below cut as exactly 0 (NaN kept)."""
    return tl.where(tl.abs(x) < cut, 0.0, x).to(x.dtype)


@triton.jit
def _surrogate(x, p, KIND: tl.constexpr):
    """Pseudo-derivative eps(x) of the spike function (iirsnn.functional.surrogates)."""
    if KIND == 0:
        y = tl.exp(-(x * x) / (2.0 * p * p)) / (2.5066282746310002 * p)
    elif KIND == 1:
        d = p * tl.abs(x) + 1.0
        y = 1.0 / (d * d)
    elif KIND == 2:
        s = 1.0 / (1.0 + tl.exp(-p * x))
        y = p * s * (1.0 - s)
    elif KIND == 3:
        z = 1.5707963267948966 * p * x
        y = (p / 2.0) / (1.0 + z * z)
    else:
        y = tl.maximum(1.0 - tl.abs(x) / p, 0.0) / p
    return y.to(x.dtype)


@triton.jit
def neuron_forward_kernel(I, V, O, V0, S0, VLAST, SLAST, LEAK, leak_period, THETA, theta_period, threshold, CUT, T,
                          L, HARD: tl.constexpr, BLOCK: tl.constexpr):
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = lanes < L
    cut = tl.load(CUT)
    lam = tl.load(LEAK + lanes % leak_period, mask=m, other=0.0)
    dec = tl.load(THETA + lanes % theta_period, mask=m, other=0.0)
    v = tl.load(V0 + lanes, mask=m, other=0.0)
    s = tl.load(S0 + lanes, mask=m, other=0.0)
    for t in range(0, T):
        cur = tl.load(I + t * L + lanes, mask=m, other=0.0)
        if HARD:  # noqa: SIM108 (Triton branches on the constexpr at compile time)
            v = lam * v * (1.0 - s) + cur
        else:
            v = lam * v + cur - threshold * s
        v = _flush(v, cut)
        o = tl.where(v > threshold, 1.0, 0.0).to(v.dtype)
        if HARD:  # noqa: SIM108
            s = o
        else:
            s = _flush(dec * s + o, cut)
        tl.store(V + t * L + lanes, v, mask=m)
        tl.store(O + t * L + lanes, o, mask=m)
    tl.store(VLAST + lanes, v, mask=m)
    tl.store(SLAST + lanes, s, mask=m)


@triton.jit
def neuron_backward_kernel(GO, GVOUT, GVLAST, GSLAST, V, V0, S0, LEAK, leak_period, THETA, theta_period, threshold,
                           surr_param, SPREV, GI, GV0, GS0, ACC_LEAK, ACC_THETA, CUT, T, L, HARD: tl.constexpr,
                           DETACH: tl.constexpr, KIND: tl.constexpr, HAS_GVOUT: tl.constexpr,
                           NEED_THETA: tl.constexpr, BLOCK: tl.constexpr):
    """The adjoint recursions of docs/derivation.md sec. 4.1-4.2 (see kernels/cpu/scans_impl.h, neuron_backward)."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = lanes < L
    cut = tl.load(CUT)
    lam = tl.load(LEAK + lanes % leak_period, mask=m, other=0.0)
    dec = tl.load(THETA + lanes % theta_period, mask=m, other=0.0)
    v0 = tl.load(V0 + lanes, mask=m, other=0.0)
    s0 = tl.load(S0 + lanes, mask=m, other=0.0)
    g_slast = tl.load(GSLAST + lanes, mask=m, other=0.0)
    gvn = v0 * 0.0
    gs = g_slast
    al = v0 * 0.0
    at = v0 * 0.0
    for k in range(0, T):
        t = T - 1 - k
        v = tl.load(V + t * L + lanes, mask=m, other=0.0)
        eps = _flush(_surrogate(v - threshold, surr_param, KIND), cut)
        gv = eps * tl.load(GO + t * L + lanes, mask=m, other=0.0)
        if HAS_GVOUT:
            gv += tl.load(GVOUT + t * L + lanes, mask=m, other=0.0)
        if t > 0:
            vp = tl.load(V + (t - 1) * L + lanes, mask=m, other=0.0)
            if HARD:
                vp = tl.where(vp > threshold, 0.0, vp).to(v.dtype)
        else:
            vp = v0
            if HARD:
                vp = v0 * (1.0 - s0)
        if HARD:
            if t == T - 1:
                gv += tl.load(GVLAST + lanes, mask=m, other=0.0) + eps * g_slast
            else:
                nxt = lam * gvn
                if not DETACH:
                    gv -= eps * nxt * v
                gv += tl.where(v > threshold, 0.0, nxt).to(v.dtype)
        else:
            if t < T - 1:
                gs = _flush(dec * gs - threshold * gvn, cut)
            else:
                gv += tl.load(GVLAST + lanes, mask=m, other=0.0)
            if not DETACH:
                gv += eps * gs
            gv += lam * gvn
            if NEED_THETA:
                at += gs * tl.load(SPREV + t * L + lanes, mask=m, other=0.0)
        gv = _flush(gv, cut)
        al += gv * vp
        tl.store(GI + t * L + lanes, gv, mask=m)
        gvn = gv
    if HARD:
        tl.store(GV0 + lanes, _flush(lam * (1.0 - s0) * gvn, cut), mask=m)
        if DETACH:
            tl.store(GS0 + lanes, v0 * 0.0, mask=m)
        else:
            tl.store(GS0 + lanes, _flush(-lam * v0 * gvn, cut), mask=m)
    else:
        tl.store(GV0 + lanes, _flush(lam * gvn, cut), mask=m)
        tl.store(GS0 + lanes, _flush(dec * gs - threshold * gvn, cut), mask=m)
    tl.store(ACC_LEAK + lanes, _flush(al, cut), mask=m)
    if NEED_THETA:
        tl.store(ACC_THETA + lanes, _flush(at, cut), mask=m)


@triton.jit
def reset_trace_kernel(V, S0, THETA, theta_period, threshold, SPREV, CUT, T, L, BLOCK: tl.constexpr):
    """SPREV[t] = S[t-1], the reset trace recomputed from the spikes O = V > threshold."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = lanes < L
    cut = tl.load(CUT)
    dec = tl.load(THETA + lanes % theta_period, mask=m, other=0.0)
    s = tl.load(S0 + lanes, mask=m, other=0.0)
    for t in range(0, T):
        tl.store(SPREV + t * L + lanes, s, mask=m)
        v = tl.load(V + t * L + lanes, mask=m, other=0.0)
        s = _flush(dec * s + tl.where(v > threshold, 1.0, 0.0).to(v.dtype), cut)


@triton.jit
def feedback_forward_kernel(FBUF, A, period, CUT, T, L, P: tl.constexpr, BLOCK: tl.constexpr):
    """In place over FBUF [P+T, L]: FBUF[i] += sum_p A[p-1] FBUF[i-p] for i = P .. P+T-1 (flushed)."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = lanes < L
    cut = tl.load(CUT)
    for t in range(0, T):
        i = P + t
        f = tl.load(FBUF + i * L + lanes, mask=m, other=0.0)
        for p in tl.static_range(1, P + 1):
            a = tl.load(A + (p - 1) * period + lanes % period, mask=m, other=0.0)
            f += a * tl.load(FBUF + (i - p) * L + lanes, mask=m, other=0.0)
        tl.store(FBUF + i * L + lanes, _flush(f, cut), mask=m)


@triton.jit
def feedback_backward_kernel(G, A, period, CUT, T, L, P: tl.constexpr, BLOCK: tl.constexpr):
    """In place over G [T, L], backwards in time: G[t] += sum_p A[p-1] G[t+p] (t + p < T), flushed."""
    lanes = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = lanes < L
    cut = tl.load(CUT)
    for k in range(1, T):
        t = T - 1 - k
        g = tl.load(G + t * L + lanes, mask=m, other=0.0)
        for p in tl.static_range(1, P + 1):
            a = tl.load(A + (p - 1) * period + lanes % period, mask=m, other=0.0)
            later = tl.minimum(t + p, T - 1)  # stays in bounds; the term counts only while t + p < T
            g += tl.where(t + p < T, a * tl.load(G + later * L + lanes, mask=m, other=0.0), 0.0)
        tl.store(G + t * L + lanes, _flush(g, cut), mask=m)


def grid(L: int, block: int) -> tuple[int]:
    return (triton.cdiv(L, block),)
