"""Input checks shared by the functional core and the modules.

Every check raises with a message that names the argument and what was expected, so that bad
input never turns into silently wrong numbers. The NaN/Inf check is on by default and costs one
reduction over the tensor (a sum, then an exact ``isfinite`` only when the sum is not finite);
``iirsnn.config.check_finite = False`` turns it off for the last few percent of speed.

Dtypes and devices: a layer's weight and bias must have its input's dtype and device (as in torch.nn.Linear;
:func:`matches_input` says how to convert), while the small parameters of the synapse filter and the neuron
(alpha, beta, leak, reset_decay) and carried states are converted to the input's dtype and device. Tensors on
the meta device hold no values to check or scan and are refused (:func:`has_values`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch

from iirsnn import config


def float_tensor(x: object, name: str) -> torch.Tensor:
    """Return ``x`` if it is a floating-point tensor holding values (not on meta), else raise naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must have a floating-point dtype, got {x.dtype}; convert it first, e.g. {name}.float()"
        )
    return has_values(x, name)


def has_values(x: torch.Tensor, name: str) -> torch.Tensor:
    """Return ``x`` unless it is on the meta device (shapes without values), else raise ValueError naming ``name``."""
    if x.is_meta:
        raise ValueError(f"{name} is on the meta device, which holds no values; iirsnn checks and scans values: "
                         "use a cpu or cuda tensor")
    return x


_CONVERSIONS = {torch.float64: "double()", torch.float32: "float()", torch.float16: "half()",
                torch.bfloat16: "bfloat16()"}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _conversion(dtype: torch.dtype) -> str:
    return _CONVERSIONS.get(dtype, f"to({dtype})")


def matches_input(t: torch.Tensor, t_name: str, x: torch.Tensor, x_name: str, module: bool = False) -> None:
    """Raise unless ``t`` (a weight or bias) has the dtype (TypeError) and device (ValueError) of the input ``x``.

    The message says how to convert either side: the model (``module``: t is a module's parameter) or t itself,
    e.g. "x is float64 but the layer's weight is float32; convert the model (model.double()) or the input
    (x.float())".
    """
    whole, var = ("the model", "model") if module else (t_name, t_name)
    x_var = "x" if module else x_name
    if t.dtype != x.dtype:
        raise TypeError(f"{x_name} is {_dtype_name(x.dtype)} but {t_name} is {_dtype_name(t.dtype)}; convert {whole} "
                        f"({var}.{_conversion(x.dtype)}) or the input ({x_var}.{_conversion(t.dtype)})")
    if not (t.is_cpu and x.is_cpu) and t.device != x.device:  # is_cpu first: comparing devices costs a microsecond
        raise ValueError(f"{x_name} is on {x.device} but {t_name} is on {t.device}; move {whole} "
                         f"({var}.to('{x.device}')) or the input ({x_var}.to('{t.device}'))")


def time_major(x: object, name: str, min_dim: int = 3, layout: str = "[T, B, ...]") -> torch.Tensor:
    """Check a time-major floating tensor of at least ``min_dim`` dimensions."""
    x = float_tensor(x, name)
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must be time-major {layout} with at least {min_dim} dimensions, got shape "
            f"{list(x.shape)}; a single step [B, ...] needs a leading time axis: {name}.unsqueeze(0)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no time steps (shape {list(x.shape)})")
    return x


class NonFiniteError(ValueError):
    """A tensor holds NaN or Inf where a finite value is needed."""


def finite(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or Inf (skipped when ``iirsnn.config.check_finite`` is False)."""
    if not config.check_finite or x.numel() == 0:
        return
    if torch.isfinite(x.sum()) or bool(torch.isfinite(x).all()):
        return
    n_nan = int(torch.isnan(x).sum())
    n_inf = int(torch.isinf(x).sum())
    raise NonFiniteError(f"{name} contains {n_nan} NaN and {n_inf} Inf values (shape {list(x.shape)})")


def positive(value: float | torch.Tensor, name: str) -> None:
    """Raise unless every element of ``value`` is > 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
        return
    v = torch.as_tensor(value)
    if not bool((v > 0).all()):
        raise ValueError(f"{name} must be > 0, got {value if v.numel() == 1 else v.min().item()}")


def in_unit_interval(value: float | torch.Tensor, name: str) -> None:
    """Raise unless every element of ``value`` lies in [0, 1] (NaN and Inf are outside)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v_min = v_max = float(value)
    else:
        v = torch.as_tensor(value).detach()
        if v.numel() == 0:
            return
        v_min, v_max = (float(m) for m in torch.aminmax(v.double()))  # NaN propagates into both
    if v_min >= 0.0 and v_max <= 1.0:
        return
    if math.isnan(v_min) or math.isnan(v_max) or math.isinf(v_min) or math.isinf(v_max):
        raise ValueError(f"{name} contains NaN or Inf")
    raise ValueError(f"{name} must lie in [0, 1] (a decay per time step), got {v_min if v_min < 0 else v_max}")


def _broadcast_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """numpy's broadcast of two shapes, or None when they do not broadcast (cheaper than torch's for a check)."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def broadcastable_to(value: torch.Tensor, shape: Sequence[int], name: str, target: str) -> None:
    """Raise unless ``value`` broadcasts to ``shape`` without growing it."""
    if _broadcast_shape(tuple(value.shape), tuple(shape)) != tuple(shape):
        raise ValueError(
            f"{name} of shape {list(value.shape)} does not broadcast to {target} {list(shape)}; "
            f"use a scalar or a tensor shaped like (a broadcastable prefix-padded part of) {list(shape)}"
        )


def state_shape(state: torch.Tensor, expected: Sequence[int], name: str) -> None:
    """Raise if a carried state does not have the expected shape (often a batch-first mix-up)."""
    if tuple(state.shape) != tuple(expected):
        raise ValueError(
            f"{name} has shape {list(state.shape)}, expected {list(expected)}; states are [B, ...] "
            "(or [P, B, ...] for filter histories) and inputs time-major [T, B, ...]"
        )


def positive_int(value: object, name: str) -> int:
    """``value`` as a positive int (not bool), else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive int, got {number}")
    return number
