"""Fused layer pieces of the ``cpu`` backend.

With a synapse kernel shared by all presynaptic channels the filter commutes with the weights,
W F(O) = F(W O), so a layer can run as

    X = W O            spike-sparse: sums of weight columns over the spikes (SpikeLinear), or a GEMM
    O' = neuron(F(X) + b)   one fused pass that never stores F or I (FusedFilterNeuron)

and its backward as one fused adjoint pass (neuron, then the filter backwards in time) followed by
the weight gradient, again a sum over the spikes, and the input gradient, a GEMM. Only V
and the spike index are kept for the backward. Their large outputs and copies come from the cache of
:mod:`iirsnn.kernels.buffers`, so that the next step reuses their pages instead of faulting them in.
"""

from __future__ import annotations

import math

import torch

from iirsnn import config
from iirsnn.functional.surrogates import SURROGATE_CODES, Surrogate
from iirsnn.kernels import buffers
from iirsnn.kernels._util import sum_to_shape
from iirsnn.kernels.cpu import gemm, spike_bits
from iirsnn.kernels.cpu.scans import run, threads
from iirsnn.kernels.lanes import lane_params


class FusedFilterNeuron(torch.autograd.Function):
    """Current-side synapse filter (shared alpha, beta) + bias + neuron scan, from zero or a given state.

    X: [T, B, *features] unfiltered current (contiguous), float32, float64 or bfloat16 (the output of a bfloat16
    convolution, read as it is: the scan runs in float32, and the gradient of X is written in bfloat16 for the
    convolution's backward, with no conversion pass either way); bias: broadcastable to features or None.
    Returns spikes [T, B, *features], V (not differentiable: use the unfused path for losses on V;
    None when no input requires grad, as V is then needed by no backward) and, with ``return_state``, the
    state after the last step (else four Nones): the last filter outputs f_last [P, B, *features] and inputs
    x_last [Q, B, *features] (oldest first, in the scan's dtype), v_last and s_last [B, *features], all
    differentiable. ``f_hist``, ``x_hist``, ``v0``, ``s0``: the state to start from, in the same layout and the
    scan's dtype (None: zeros; v0 and s0 both or neither), so that chunks of a sequence give the spikes and
    gradients of the whole. ``v_bf16``: keep V for the backward in bfloat16 (half the memory; rounded so that
    ``V > threshold`` is still exactly each spike, so the reset paths of the backward are unchanged; the
    surrogate and the leak gradient see V rounded to 8 bits of mantissa).
    """

    @staticmethod
    def forward(ctx, X, bias, leak, reset_decay, alpha: tuple[float, ...], beta: tuple[float, ...],
                threshold: float, surrogate: Surrogate, reset: str, detach_reset: bool, v_bf16: bool = False,
                f_hist=None, x_hist=None, v0=None, s0=None, return_state: bool = False):
        ctx.set_materialize_grads(False)  # V is not differentiable: no zero gradient of its size is made
        X = buffers.contiguous(X)
        x_bf16 = X.dtype == torch.bfloat16
        dtype = torch.float32 if x_bf16 else X.dtype  # the scan's
        T, lanes = X.shape[0], X.shape[1:]
        L = lanes.numel()
        P, Q = len(alpha), len(beta) - 1
        lam, lam_period = lane_params(leak.unsqueeze(0), lanes)
        theta, theta_period = lane_params(reset_decay.unsqueeze(0), lanes)
        b, b_period = (None, 1) if bias is None else lane_params(bias.unsqueeze(0), lanes)
        if (v0 is None) != (s0 is None):
            raise ValueError("FusedFilterNeuron: give the starting potential v0 and reset trace s0 together")
        f_hist, x_hist, v0, s0 = (_state_tensor(t, shape, dtype, name) for t, shape, name in (
            (f_hist, (P, *lanes), "f_hist"), (x_hist, (Q, *lanes), "x_hist"), (v0, lanes, "v0"), (s0, lanes, "s0")))
        a_arr = torch.tensor(alpha, dtype=torch.float64)
        be_arr = torch.tensor(beta, dtype=torch.float64)
        O = buffers.empty_like(X, dtype)
        bits = torch.empty((T, (L + 63) // 64), dtype=torch.int64)
        v_bf16 = bool(v_bf16) and dtype == torch.float32
        V = None  # inference: V is never stored
        if any(ctx.needs_input_grad):
            V = buffers.empty_like(X, torch.bfloat16 if v_bf16 else dtype)
        last = [None] * 4
        if return_state:
            last = [torch.empty((k, *lanes), dtype=dtype) for k in (Q, P)] + [torch.empty(lanes, dtype=dtype)
                                                                              for _ in range(2)]
        x_last, f_last, v_last, s_last = last
        run("filter_neuron_forward", dtype, X, int(x_bf16), a_arr, P, be_arr, Q, b, b_period, _ptr(x_hist),
            _ptr(f_hist), v0, s0, V, int(v_bf16), O, lam, lam_period, theta, theta_period, threshold,
            int(reset == "hard"), T, L, bits, _ptr(x_last), _ptr(f_last), v_last, s_last, threads())
        spike_bits.remember(O, bits)
        ctx.save_for_backward(V, leak, reset_decay, lam, theta, a_arr, be_arr, v0, s0)
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.options = (threshold, surrogate, reset, detach_reset, lam_period, theta_period, v_bf16, x_bf16)
        if V is not None:
            ctx.mark_non_differentiable(V)
        return O, V, f_last, x_last, v_last, s_last

    @staticmethod
    def backward(ctx, gO, _gV, g_flast, g_xlast, g_vlast, g_slast):
        V, leak, reset_decay, lam, theta, a_arr, be_arr, v0, s0 = ctx.saved_tensors
        threshold, surrogate, reset, detach_reset, lam_period, theta_period, v_bf16, x_bf16 = ctx.options
        T, lanes = V.shape[0], V.shape[1:]
        L = lanes.numel()
        P, Q = a_arr.numel(), be_arr.numel() - 1
        hard = reset == "hard"
        dtype = lam.dtype  # the compute dtype (V may be stored in bfloat16)
        S_prev = acc_theta = None
        if ctx.needs_input_grad[3] and not hard:
            S_prev = buffers.empty(V.shape, dtype)
            start = lam.new_zeros(lanes) if s0 is None else s0
            run("reset_trace", dtype, V, int(v_bf16), start, theta, theta_period, threshold, S_prev, T, L, threads())
            acc_theta = lam.new_empty(lanes)
        gO = torch.zeros(V.shape, dtype=dtype) if gO is None else buffers.contiguous(gO)
        if (g_vlast is None) != (g_slast is None):  # the kernel takes both or neither
            g_vlast, g_slast = (torch.zeros(lanes, dtype=dtype) if g is None else g for g in (g_vlast, g_slast))
        g_flast, g_xlast, g_vlast, g_slast = (None if g is None else g.contiguous()
                                              for g in (g_flast, g_xlast, g_vlast, g_slast))
        gX = buffers.empty_like(gO, torch.bfloat16 if x_bf16 else None)
        need_state = ctx.needs_input_grad[11:15]  # empty when apply was given no starting state
        g_fh, g_xh, g_v0, g_s0 = (torch.empty(shape, dtype=dtype) if i < len(need_state) and need_state[i] else None
                                  for i, shape in enumerate(((P, *lanes), (Q, *lanes), lanes, lanes)))
        acc_bias, acc_leak = lam.new_empty(lanes), lam.new_empty(lanes)
        run("filter_neuron_backward", dtype, gO, V, int(v_bf16), a_arr, P, be_arr, Q, lam, lam_period, theta,
            theta_period, threshold, int(hard), int(detach_reset), SURROGATE_CODES[surrogate.kind],
            float(surrogate.param), S_prev, v0, s0, _ptr(g_xlast), _ptr(g_flast), g_vlast, g_slast, gX, int(x_bf16),
            _ptr(g_xh), _ptr(g_fh), g_v0, g_s0, acc_bias, acc_leak, acc_theta, T, L, threads())
        g_bias = sum_to_shape(acc_bias, ctx.bias_shape) if ctx.needs_input_grad[1] else None
        g_leak = sum_to_shape(acc_leak, leak.shape) if ctx.needs_input_grad[2] else None
        g_theta = None
        if ctx.needs_input_grad[3]:
            g_theta = sum_to_shape(acc_theta, reset_decay.shape) if acc_theta is not None else torch.zeros_like(
                reset_decay)
        return gX, g_bias, g_leak, g_theta, None, None, None, None, None, None, None, g_fh, g_xh, g_v0, g_s0, None


def _state_tensor(t: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, name: str) -> torch.Tensor | None:
    """A starting-state tensor of FusedFilterNeuron as the kernel reads it (contiguous, the scan's dtype), or None."""
    if t is None:
        return None
    if tuple(t.shape) != tuple(shape) or t.dtype != dtype:
        raise ValueError(f"FusedFilterNeuron: {name} must be {list(shape)} of {dtype}, "
                         f"got {list(t.shape)} of {t.dtype}")
    return t.contiguous()


def _ptr(t: torch.Tensor | None) -> torch.Tensor | None:
    """t for a kernel's pointer argument, None (NULL) when it has no elements (a filter of order 0)."""
    return None if t is None or t.numel() == 0 else t


class SpikeMatrix:
    """Compressed rows (CSR) of a spike matrix X [R, N] for X W^T, and optionally its columns (CSC) for X^T G.

    ``values`` is None when every non-zero is exactly 1 (spikes), so only indices are stored. The row pointer is
    the prefix sum of ``counts``, which a count kernel wrote for the same X (or its spike bits), and the column
    indices (< N) are written by the matching fill kernel: so it starts at 0, never decreases and ends at
    nnz = len(col), the invariants the sparse kernels index by and the argument table does not re-check.
    """

    def __init__(self, X: torch.Tensor, counts: torch.Tensor, nonbinary: bool,
                 bits: torch.Tensor | None = None) -> None:
        R, N = X.shape
        self.shape = (R, N)
        self.rowptr = torch.zeros(R + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=self.rowptr[1:])
        nnz = int(self.rowptr[-1])
        self.col = torch.empty(nnz, dtype=torch.int32)
        self.values = torch.empty(nnz, dtype=X.dtype) if nonbinary else None
        if bits is not None:
            T = bits.shape[0]
            run("bits_fill", X.dtype, bits, T, R // T, N, self.rowptr, self.col, threads())
        else:
            run("csr_fill", X.dtype, X, R, N, self.rowptr, self.col, self.values, threads())
        self.dtype = X.dtype

    def matmul_t(self, WT: torch.Tensor) -> torch.Tensor:
        """X W^T from WT = W^T [N, M] (contiguous, X's dtype): returns [R, M]."""
        if WT.dim() != 2 or WT.shape[0] != self.shape[1]:  # the kernel reads the rows of WT that X's columns index
            raise ValueError(f"W^T must be [N, M] with N = {self.shape[1]} columns of the spike matrix, "
                             f"got {list(WT.shape)}")
        out = buffers.empty((self.shape[0], WT.shape[1]), WT.dtype)
        run("spmm_csr", self.dtype, self.rowptr, self.col, self.values, WT, out, self.shape[0], WT.shape[1],
            threads())
        return out

    def columns(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(colptr [N+1], row [nnz], values or None): the CSC of X."""
        R, N = self.shape
        nt = threads()
        colptr = torch.empty(N + 1, dtype=torch.int64)
        row = torch.empty_like(self.col)
        cval = None if self.values is None else torch.empty_like(self.values)
        scratch = torch.empty(nt * N, dtype=torch.int64)
        run("csr_to_csc", self.dtype, self.rowptr, self.col, self.values, R, N, colptr, row, cval, scratch, nt)
        return colptr, row, cval


def spike_matrix(X: torch.Tensor) -> tuple[SpikeMatrix | None, float, bool]:
    """A [R, N] matrix's CSR when its density is at most ``config.sparse_max_density`` (else None), the
    density, and whether every value is 0 or 1: from the spike bits of the fused forward when X is its output
    (see :mod:`spike_bits`), else from one pass over X."""
    R, N = X.shape
    counts = torch.empty(R, dtype=torch.int64)
    bits = spike_bits.bits_of(X)
    if bits is not None and (X.numel() // bits.shape[0]) % N == 0:  # each row of X lies within one step
        T = bits.shape[0]
        run("bits_count", X.dtype, bits, T, R // T, N, counts, threads())
        nonbinary = False
    else:
        bits = None
        nonbinary = bool(run("csr_count", X.dtype, X, R, N, counts, threads()))
    density = float(counts.sum()) / max(1, R * N)
    if density > config.sparse_max_density:
        return None, density, not nonbinary
    return SpikeMatrix(X, counts, nonbinary, bits), density, not nonbinary


def _mm(a: torch.Tensor, b: torch.Tensor, bf16: bool) -> torch.Tensor:
    """a @ b, in bfloat16 with the result cast back to a's dtype when ``bf16``."""
    if not bf16:
        return gemm.matmul(a, b)
    return (a.to(torch.bfloat16) @ b.to(torch.bfloat16)).to(a.dtype)


class SpikeLinear(torch.autograd.Function):
    """Y = X W^T for a mostly-zero X [R, N_in] (spikes), W [N_out, N_in].

    Below ``config.sparse_max_density`` the forward and the weight gradient are sums over the
    non-zeros of X (X's column index is kept for the backward); above it, GEMMs with X kept as
    bytes when it is binary. The input gradient is always the GEMM G W. ``bf16``: the forward and
    weight-gradient GEMMs run in bfloat16 (spikes are exact in it, weights and gradients are rounded);
    the sparse sums and the input gradient (the error passed to the layer below) stay in full precision:
    with it in bfloat16 too, the MNIST MLP lost 0.6 points after two epochs (benchmarks/RESULTS.md).
    """

    @staticmethod
    def forward(ctx, X, weight, bf16: bool = False):
        if X.dtype != weight.dtype:  # the spike index keeps X's values, the products run in the weight's dtype
            raise TypeError(f"SpikeLinear: X is {X.dtype} but weight is {weight.dtype}; give both the same dtype")
        X = X.contiguous()
        sparse, _, binary = spike_matrix(X)
        ctx.sparse = sparse is not None
        need_w = ctx.needs_input_grad[1]
        if sparse is not None:
            Y = sparse.matmul_t(weight.t().contiguous())
            saved = sparse.columns() if need_w else (None, None, None)
            ctx.save_for_backward(weight, *[t for t in saved if t is not None])
            ctx.has_values = saved[2] is not None
        else:
            Y = _mm(X, weight.t(), bf16)
            keep = (buffers.converted(X, torch.uint8) if binary else X) if need_w else None
            ctx.save_for_backward(weight, *([keep] if keep is not None else []))
        ctx.bf16 = bf16
        return Y

    @staticmethod
    def backward(ctx, gY):
        weight, *saved = ctx.saved_tensors
        gX = gemm.matmul(gY, weight) if ctx.needs_input_grad[0] else None  # errors between layers in full precision
        gW = None
        if ctx.needs_input_grad[1]:
            if ctx.sparse:
                colptr, row = saved[0], saved[1]
                cval = saved[2] if ctx.has_values else None
                G = buffers.contiguous(gY)
                gWT = buffers.empty((weight.shape[1], weight.shape[0]), G.dtype)
                n_in, n_out = weight.shape[1], weight.shape[0]
                run("spmm_csc", G.dtype, colptr, row, cval, G, gWT, n_in, n_out, G.shape[0], threads())
                gW = gWT.t()
            else:
                gW = _mm(saved[0].t().to(gY.dtype), gY, ctx.bf16).t()  # as W^T: the layout of iirsnn.nn.Linear
        return gX, gW, None


def _is_binary(x: torch.Tensor) -> bool:
    """Whether every value of x is 0 or 1, in one pass (x contiguous in some dense memory format)."""
    flat = x.permute(0, *range(2, x.dim()), 1) if x.is_contiguous(memory_format=torch.channels_last) else x
    flat = flat.reshape(-1, x.shape[1])
    counts = torch.empty(flat.shape[0], dtype=torch.int64)
    return not run("csr_count", flat.dtype, flat, flat.shape[0], flat.shape[1], counts, threads())


CHUNK_BYTES = 16 << 20
"""A convolution over more frames than fit in this many bytes of output (or input gradient) runs chunk by chunk
into one cached buffer: torch allocates each chunk's result, and below glibc's 32 MiB mmap threshold it
reuses their pages from the heap instead of faulting in a fresh mapping of the whole result every step."""


def frame_chunks(frames: int, bytes_per_frame: int) -> list[tuple[int, int]]:
    """Ranges of frames whose tensors stay below :data:`CHUNK_BYTES` each (one range when all of them do)."""
    per_chunk = max(1, CHUNK_BYTES // max(1, bytes_per_frame))
    return [(f0, min(frames, f0 + per_chunk)) for f0 in range(0, frames, per_chunk)]


class SpikeConv(torch.autograd.Function):
    """A bias-free convolution whose input, when it is binary (spikes), is kept as bytes for the backward.

    x [R, C_in, *spatial] (contiguous, NCHW or channels-last), weight [C_out, C_in/groups, *kernel];
    stride, padding, dilation: int tuples. ``compute_dtype``: the dtype of the convolution itself
    (bfloat16 for bf16-mixed). The input gradient needs only the weight; the weight gradient converts
    the bytes back chunk by chunk for the convolution's backward. Results larger than
    :data:`CHUNK_BYTES` are computed over ranges of the R frames into cached buffers (see there).
    """

    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation, groups: int, compute_dtype: torch.dtype):
        wc = weight.to(compute_dtype)
        zeros = (0,) * len(stride)

        def conv(xs: torch.Tensor) -> torch.Tensor:
            return torch.convolution(buffers.converted(xs, compute_dtype), wc, None, stride, padding, dilation,
                                     False, zeros, groups)

        frame = torch.convolution(x[:1].to("meta", compute_dtype), wc.to("meta"), None, stride, padding, dilation,
                                  False, zeros, groups)  # the shape of one output frame, computing nothing
        chunks = frame_chunks(x.shape[0], frame.numel() * frame.element_size())
        if len(chunks) <= 1:
            y = conv(x)
        else:  # laid out as the convolution lays out its output: in the input's memory format
            shape = (x.shape[0], *frame.shape[1:])
            y = buffers.empty(shape, compute_dtype, _frame_strides(x, shape))
            for f0, f1 in chunks:
                y[f0:f1].copy_(conv(x[f0:f1]))
        keep = None
        if ctx.needs_input_grad[1]:
            keep = buffers.converted(x, torch.uint8) if x.dtype.is_floating_point and _is_binary(x) else x
        ctx.save_for_backward(keep, weight)
        ctx.conv = (stride, padding, dilation, groups, compute_dtype, x.dtype, x.shape)
        return y

    @staticmethod
    def backward(ctx, gy):
        keep, weight = ctx.saved_tensors
        stride, padding, dilation, groups, compute_dtype, x_dtype, x_shape = ctx.conv
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        wc = weight.to(compute_dtype)

        def conv_backward(f0: int, f1: int):
            # without a weight gradient the input only gives its shape (as in torch.nn.grad.conv2d_input)
            xc = (buffers.converted(keep[f0:f1], compute_dtype) if need_w
                  else gy.new_empty(1, dtype=compute_dtype).expand((f1 - f0, *x_shape[1:])))
            return torch.ops.aten.convolution_backward(buffers.converted(gy[f0:f1], compute_dtype), xc, wc, None,
                                                       list(stride), list(padding), list(dilation), False,
                                                       [0] * len(stride), groups, [need_x, need_w, False])[:2]

        bytes_per_frame = math.prod(x_shape[1:]) * x_dtype.itemsize
        chunks = frame_chunks(x_shape[0], max(bytes_per_frame, math.prod(gy.shape[1:]) * gy.element_size()))
        if len(chunks) <= 1:
            gx, gw = conv_backward(0, x_shape[0])
        else:
            gx = gw = None
            for f0, f1 in chunks:
                gx_part, gw_part = conv_backward(f0, f1)
                if need_x:
                    if gx is None:
                        gx = buffers.empty(x_shape, gx_part.dtype, _frame_strides(gx_part, x_shape))
                    gx[f0:f1].copy_(gx_part)
                if need_w:
                    gw = gw_part if gw is None else gw.add_(gw_part)
        return (gx.to(x_dtype) if need_x else None, gw.to(weight.dtype) if need_w else None,
                None, None, None, None, None)


def _frame_strides(like: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> tuple[int, ...]:
    """The strides of a dense tensor of ``shape`` in the memory format of ``like`` (NCHW or channels-last)."""
    return torch.empty(shape, device="meta").contiguous(memory_format=_memory_format(like)).stride()


def _memory_format(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
