"""Finding where a NaN or an infinity came from: the first parameter whose gradient is not finite (checked
after every backward), and the first layer whose output is not finite (searched only once a loss or a
forward value was found non-finite)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from iirsnn._checks import NonFiniteError


def first_nonfinite_gradient(model: torch.nn.Module) -> str | None:
    """The name of the first parameter (in layer order) whose gradient holds a NaN or an infinity."""
    grads = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    if not grads or bool(torch.stack([g.isfinite().all() for _, g in grads]).all()):
        return None
    return next(name for name, g in grads if not bool(g.isfinite().all()))


def first_nonfinite_layer(model: torch.nn.Module, forward: Callable[[], object]) -> str | None:
    """The first top-level layer of ``model`` with a non-finite parameter, or whose output is not finite when
    ``forward()`` runs the model again (without gradients); None when every layer stays finite."""
    for name, layer in model.named_children():
        for pname, p in layer.named_parameters():
            if not bool(p.detach().isfinite().all()):
                return f"layer {name} ({type(layer).__name__}): its parameter {pname} is not finite"
    found: list[str] = []

    def hook(layer_name: str, layer: torch.nn.Module):
        def check(module, inputs, output):
            tensors = output if isinstance(output, tuple) else (output,)
            if not found and any(isinstance(t, torch.Tensor) and not bool(t.isfinite().all()) for t in tensors):
                found.append(f"layer {layer_name} ({type(layer).__name__}): its output is not finite")
        return check

    handles = [layer.register_forward_hook(hook(name, layer)) for name, layer in model.named_children()]
    try:
        with torch.no_grad():
            forward()
    except NonFiniteError:  # a later layer refused the non-finite output: the hook has named its maker
        pass
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None
