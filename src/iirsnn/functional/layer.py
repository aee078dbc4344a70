"""Whole spiking layers (synapse filter -> connection -> neuron) as single functions.

``spiking_linear`` and ``spiking_conv`` compute ``neuron(connection(filter(x)) + bias)``. With a
kernel shared by all presynaptic channels they use W F(O) = F(W O) and run on the compiled CPU
backend as a spike-sparse (or GEMM / convolution) product followed by one fused pass of filter,
bias and neuron (:mod:`iirsnn.kernels.cpu.layer`); otherwise they compose the separate scans.
Both ways give the same spikes and gradients (tested against the float64 reference).

Dtypes: the weight and bias must have x's dtype and device (a TypeError/ValueError otherwise, as in
torch.nn.Linear); the synapse kernel, decays and states are converted to x's dtype. float32 and float64 run
on the compiled kernels, float16 and bfloat16 on the portable torch backend.

``precision="bf16-mixed"`` runs the GEMMs and convolutions in bfloat16 (spikes are exact in it;
weights, currents and gradients are rounded), the scans in float32, and keeps V for the backward in
bfloat16 (rounded so that every spike is kept); the default ``"fp32"`` keeps everything in the
input's dtype.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as tnf

from iirsnn import _checks, kernels
from iirsnn.functional.filter import synapse_filter
from iirsnn.functional.neuron import _decay, neuron_options, neuron_scan
from iirsnn.functional.surrogates import Surrogate
from iirsnn.kernels.cpu import spike_bits

_CONV = {3: tnf.conv1d, 4: tnf.conv2d}
PRECISIONS = ("fp32", "bf16-mixed")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def connection_context(precision: str, x: torch.Tensor):
    """The context in which the connection runs: bfloat16 autocast for ``"bf16-mixed"``."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(x.device.type, dtype=torch.bfloat16)


def fusable(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, backend: str | None) -> bool:
    """Whether a layer with this synapse kernel runs fused (W F(O) = F(W O)): one kernel shared by all
    presynaptic channels, on the compiled CPU backend."""
    return alpha.dim() == 1 and beta.dim() == 1 and kernels.resolve(backend, x) == "cpu"


def _for_autograd(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The tensors as they are when autograd records, else detached: an autograd function sees
    ``needs_input_grad`` from requires_grad even under ``torch.no_grad()``, and would keep for a backward that
    never comes what only the backward needs (the fused pass's V, the spike matrix's column index)."""
    if torch.is_grad_enabled():
        return tensors
    return tuple(None if t is None else t.detach() for t in tensors)


def fused_filter_neuron(X: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor, beta: torch.Tensor,
                        leak: torch.Tensor, reset_decay: torch.Tensor, threshold: float, surrogate: Surrogate,
                        reset: str, detach_reset: bool, v_bf16: bool, state: tuple | None = None) -> tuple:
    """The compiled fused pass (filter with a fixed shared kernel alpha [P], beta [Q+1], bias, neuron) on X [T, B, ...]
    as ``FusedFilterNeuron`` returns it (spikes, V, then the final state f, x, v, s when ``state`` is given).
    ``state``: (f_hist, x_hist, v0, s0) to start from, each None for zeros, in the scan's dtype; None: a whole
    sequence from zero state, no final state kept."""
    from iirsnn.kernels.cpu.layer import FusedFilterNeuron

    X, bias, leak, reset_decay = _for_autograd(X, bias, leak, reset_decay)
    carried = () if state is None else (*_for_autograd(*state), True)
    return FusedFilterNeuron.apply(X, bias, leak, reset_decay, tuple(alpha.tolist()), tuple(beta.tolist()),
                                   threshold, surrogate, reset, detach_reset, v_bf16, *carried)


def _current_side(X: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor, beta: torch.Tensor,
                  leak: torch.Tensor, reset_decay: torch.Tensor, threshold: float, surrogate: Surrogate, reset: str,
                  detach_reset: bool, v_bf16: bool = False) -> torch.Tensor:
    """Filter + bias + neuron on the unfiltered current X [T, B, ...]; bias, leak, reset_decay broadcast to X[0, 0].
    ``v_bf16``: the fused pass keeps V in bfloat16 for the backward (the bf16-mixed precision)."""
    if not (alpha.requires_grad or beta.requires_grad):  # fused: X may be bfloat16
        return fused_filter_neuron(X, bias, alpha, beta, leak, reset_decay, threshold, surrogate, reset,
                                   detach_reset, v_bf16)[0]
    F = synapse_filter(X.to(leak.dtype), alpha, beta, backend="cpu")
    return neuron_scan(F if bias is None else F + bias, leak, reset_decay, threshold, surrogate, reset, detach_reset,
                       backend="cpu")


def _channels_last(param: torch.Tensor, features: torch.Size) -> torch.Tensor:
    """A parameter broadcastable to [C, H, W] as the same values laid out [H, W, C] (scalars unchanged)."""
    if param.dim() == 0:
        return param
    if param.dim() > len(features):
        raise ValueError("per-sample neuron parameters are not supported by the fused convolution path")
    return torch.broadcast_to(param, features).permute(1, 2, 0)


def _two_channels(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-channel 2-D convolution as a two-channel one with a zero channel: the same result.

    With one input channel the channels-last layout is indistinguishable from NCHW and oneDNN takes a
    slow path (28x28 maps, 64 filters, T*B = 400: forward 67 ms and weight gradient 74 ms, against 34 ms
    and 7 ms with two channels on this machine), so the first layer of an image network pays it every step.
    x: [R, 1, H, W], weight [C_out, 1, kh, kw] -> [R, 2, H, W], [C_out, 2, kh, kw].
    """
    return torch.cat([x, torch.zeros_like(x)], 1), torch.cat([weight, torch.zeros_like(weight)], 1)


def check_connection(x: torch.Tensor, weight: object, bias: object, weight_dims: int) -> None:
    """Raise unless weight [N_out, ...] (``weight_dims`` dimensions) and bias [N_out] (or None) are floating
    tensors of x's dtype and device (TypeError / ValueError naming them)."""
    weight = _checks.float_tensor(weight, "weight")
    if weight.dim() != weight_dims:
        raise ValueError(f"weight must have {weight_dims} dimensions, got shape {list(weight.shape)}")
    _checks.matches_input(weight, "weight", x, "x")
    if bias is None:
        return
    bias = _checks.float_tensor(bias, "bias")
    if tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be [{weight.shape[0]}] (one per output of weight {list(weight.shape)}), "
                         f"got {list(bias.shape)}")
    _checks.matches_input(bias, "bias", x, "x")


def check_linear_input(x: object, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x if it is time-major [T, B, N_in] floats matching weight [N_out, N_in] and bias [N_out] (shapes, dtype,
    device), else an error naming the mismatch."""
    x = _checks.time_major(x, "x", 3, "[T, B, N_in]")
    check_connection(x, weight, bias, 2)
    if x.dim() != 3 or x.shape[2] != weight.shape[1]:
        raise ValueError(f"x must be [T, B, {weight.shape[1]}] for a weight of shape {list(weight.shape)}, "
                         f"got {list(x.shape)}")
    return x


def _per_dim(value, dims: int) -> tuple[int, ...]:
    """A convolution option (an int or one int per spatial dimension) as a tuple of ``dims`` ints."""
    return (value,) * dims if isinstance(value, int) else tuple(value)


def linear_current(x: torch.Tensor, weight: torch.Tensor, precision: str) -> torch.Tensor:
    """x [T, B, N_in] spikes -> W x [T, B, N_out] (no bias) with the spike-sparse product of the cpu backend."""
    from iirsnn.kernels.cpu.layer import SpikeLinear

    T, B, n_in = x.shape
    x, weight = _for_autograd(x, weight)
    return SpikeLinear.apply(x.reshape(T * B, n_in), weight, precision == "bf16-mixed").view(T, B, weight.shape[0])


def _explicit_padding(padding, weight: torch.Tensor, dilation) -> tuple[int, ...] | None:
    """Padding as one int per spatial dim ("valid", "same" with odd extents, ints), or None when
    "same" needs uneven padding (the convolution then pads itself)."""
    dims = weight.dim() - 2
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(_per_dim(dilation, dims), weight.shape[2:], strict=True)]
        return None if any(t % 2 for t in totals) else tuple(t // 2 for t in totals)
    return _per_dim(padding, dims)


def conv_current(x: torch.Tensor, weight: torch.Tensor, opts: dict, precision: str,
                 compute_dtype: bool = False) -> torch.Tensor:
    """x [T, B, C_in, *spatial] -> the convolution without bias [T, B, C_out, *spatial'] in x's dtype, or with
    ``compute_dtype`` in the convolution's own (bfloat16 for bf16-mixed: the fused scan reads it as it is)
    (2-D: channels-last in memory). Binary input is kept as bytes for the weight gradient (SpikeConv)."""
    from iirsnn.kernels.cpu.layer import SpikeConv

    T, B = x.shape[:2]
    folded = x.flatten(0, 1)
    if x.dim() == 5:
        if x.shape[2] == 1 and opts.get("groups", 1) == 1:
            folded, weight = _two_channels(folded, weight)
        folded = folded.contiguous(memory_format=torch.channels_last)
    else:
        folded = folded.contiguous()
    dims = weight.dim() - 2
    padding = _explicit_padding(opts.get("padding", 0), weight, opts.get("dilation", 1))
    if padding is None:
        with connection_context(precision, x):
            return _CONV[weight.dim()](folded, weight, None, **opts).unflatten(0, (T, B)).to(x.dtype)
    stride, dilation = (_per_dim(opts.get(k, 1), dims) for k in ("stride", "dilation"))
    compute = torch.bfloat16 if check_precision(precision) == "bf16-mixed" else x.dtype
    folded, weight = _for_autograd(folded, weight)
    X = SpikeConv.apply(folded, weight, stride, padding, dilation, opts.get("groups", 1), compute)
    X = X.unflatten(0, (T, B))
    return X if compute_dtype else X.to(x.dtype)


def connection_current(x: torch.Tensor, weight: torch.Tensor, conv: dict | None, precision: str,
                       backend: str | None) -> torch.Tensor:
    """The connection without bias: x [T, B, N_in] -> W x [T, B, N_out] (``conv`` None), or x [T, B, C_in, *spatial]
    -> the convolution with the ``conv`` options, in x's dtype. The spike-sparse product or SpikeConv on the cpu
    backend (float32/float64 CPU tensors), plain torch otherwise (float16, bfloat16, the torch and reference
    backends)."""
    if kernels.resolve(backend, x) == "cpu":
        return linear_current(x, weight, precision) if conv is None else conv_current(x, weight, conv, precision)
    T, B = x.shape[:2]
    with connection_context(precision, x):
        if conv is None:
            return tnf.linear(x, weight).to(x.dtype)
        return _CONV[weight.dim()](x.flatten(0, 1), weight, None, **conv).unflatten(0, (T, B)).to(x.dtype)


def spiking_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor,
                   beta: torch.Tensor, leak: float | torch.Tensor, reset_decay: float | torch.Tensor,
                   threshold: float = 1.0, surrogate: str | Surrogate = "gaussian", reset: str = "filter",
                   detach_reset: bool = False, backend: str | None = None, precision: str = "fp32") -> torch.Tensor:
    """A dense spiking layer: x [T, B, N_in] presynaptic spikes -> [T, B, N_out] output spikes.

    weight [N_out, N_in], bias [N_out] or None; alpha/beta the synapse kernel ([P], [Q+1] shared, or
    [N_in, P], [N_in, Q+1] per presynaptic channel); leak, reset_decay, threshold, surrogate, reset,
    detach_reset as in :func:`iirsnn.functional.neuron_scan`; precision ``"fp32"`` or ``"bf16-mixed"``.
    """
    x = check_linear_input(x, weight, bias)
    threshold, surrogate = neuron_options(threshold, surrogate, reset, x.dtype)
    mixed = connection_context(precision, x)
    if not fusable(x, alpha, beta, backend):
        F = synapse_filter(x, alpha, beta, backend=backend)
        with mixed:
            current = tnf.linear(F, weight, bias)
        return neuron_scan(current.to(x.dtype), leak, reset_decay, threshold, surrogate, reset, detach_reset,
                           backend=backend)
    if spike_bits.bits_of(x) is None:  # else x holds the spikes of a fused layer: finite by construction
        _checks.finite(x, "x")
    X = linear_current(x, weight, precision)
    lam, theta = _decay(leak, "leak", X), _decay(reset_decay, "reset_decay", X)
    return _current_side(X, bias, alpha, beta, lam, theta, threshold, surrogate, reset, detach_reset,
                         precision == "bf16-mixed")


def spiking_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, alpha: torch.Tensor,
                 beta: torch.Tensor, leak: float | torch.Tensor, reset_decay: float | torch.Tensor,
                 threshold: float = 1.0, surrogate: str | Surrogate = "gaussian", reset: str = "filter",
                 detach_reset: bool = False, stride=1, padding=0, dilation=1, groups: int = 1,
                 backend: str | None = None, precision: str = "fp32") -> torch.Tensor:
    """A convolutional spiking layer: x [T, B, C_in, *spatial] -> [T, B, C_out, *spatial'] spikes.

    weight [C_out, C_in/groups, *kernel] (1-D or 2-D), bias [C_out] or None, the conv options as in
    torch.nn.functional.conv2d; the rest as :func:`spiking_linear` (per-channel kernels [C_in, P]).
    """
    weight = _checks.float_tensor(weight, "weight")
    conv = _CONV.get(weight.dim())
    if conv is None:
        raise ValueError(f"weight must be [C_out, C_in, k] or [C_out, C_in, kh, kw], got {list(weight.shape)}")
    x = _checks.time_major(x, "x", weight.dim() + 1, "[T, B, C, ...]")
    check_connection(x, weight, bias, weight.dim())
    threshold, surrogate = neuron_options(threshold, surrogate, reset, x.dtype)
    T, B = x.shape[:2]
    opts = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    mixed = connection_context(precision, x)
    if not fusable(x, alpha, beta, backend):
        F = synapse_filter(x, alpha, beta, backend=backend)
        with mixed:
            current = conv(F.flatten(0, 1), weight, bias, **opts).unflatten(0, (T, B))
        return neuron_scan(current.to(x.dtype), leak, reset_decay, threshold, surrogate, reset, detach_reset,
                           backend=backend)
    _checks.finite(x, "x")
    X = conv_current(x, weight, opts, precision, compute_dtype=True)  # bf16-mixed: bfloat16 into the fused scan
    scan = torch.empty((), dtype=x.dtype).expand(X.shape)  # the scan's shape in x's dtype (X may be bfloat16)
    lam, theta = _decay(leak, "leak", scan), _decay(reset_decay, "reset_decay", scan)
    if x.dim() == 4:  # 1-D: [T, B, C, L]
        b = None if bias is None else bias.view(-1, 1)
        return _current_side(X, b, alpha, beta, lam, theta, threshold, surrogate, reset, detach_reset,
                             precision == "bf16-mixed")
    # 2-D: the convolution works channels-last; run the scans in that physical layout [T, B, H, W, C]
    features = X.shape[2:]
    spikes = _current_side(X.permute(0, 1, 3, 4, 2), bias, alpha, beta, _channels_last(lam, features),
                           _channels_last(theta, features), threshold, surrogate, reset, detach_reset,
                           precision == "bf16-mixed")
    return spikes.permute(0, 1, 4, 2, 3)
