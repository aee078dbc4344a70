"""Backends of the two scans (synapse filter, neuron), all with the same signatures.

==============  ====================================================================
``reference``   plain step-by-step equations differentiated by autograd (ground truth)
``torch``       portable torch code with the hand-written backward of docs/derivation.md sec. 4
``cpu``         the same backward as fused scans in compiled C (float32/float64 CPU tensors)
``gpu``         the time loops as Triton kernels (CUDA tensors; CPU under TRITON_INTERPRET=1)
==============  ====================================================================

``"auto"`` (the default, see ``iirsnn.config.backend``) picks the fastest backend available for
the tensor: ``gpu`` for CUDA tensors when Triton is installed, ``cpu`` for float32/float64 CPU
tensors when its kernels compile, else ``torch``. Every backend is tested against ``reference``
in float64.
"""

from __future__ import annotations

import warnings

import torch

from iirsnn import config
from iirsnn.kernels import cpu, gpu, reference, torch_filter, torch_neuron
from iirsnn.kernels.cpu import scans as cpu_scans

_FILTERS = {"reference": reference.synapse_filter, "torch": torch_filter.synapse_filter,
            "cpu": cpu_scans.synapse_filter}
_NEURONS = {"reference": reference.neuron_scan, "torch": torch_neuron.neuron_scan, "cpu": cpu_scans.neuron_scan}
BACKENDS = ("auto", *_FILTERS, "gpu")
_warned: set[str] = set()


def _gpu(kind: str):
    """The Triton implementation (imported on first use: Triton is optional and slow to import)."""
    from iirsnn.kernels.gpu import scans as gpu_scans

    return gpu_scans.synapse_filter if kind == "filter" else gpu_scans.neuron_scan


def resolve(backend: str | None, tensor: torch.Tensor) -> str:
    """The concrete backend that runs ``tensor`` when ``backend`` (None: ``config.backend``) is asked for."""
    name = backend or config.backend
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    if name == "cpu" and not cpu.available():
        raise RuntimeError(f"the compiled cpu backend is unavailable: {cpu.unavailable_reason()}")
    if name == "gpu" and not gpu.available_for(tensor.device.type):
        raise RuntimeError("the gpu backend needs Triton (pip install iirsnn[gpu]) and a CUDA tensor "
                           "(or TRITON_INTERPRET=1 for CPU tensors)")
    if name == "auto" and tensor.device.type == "cuda" and gpu.available_for("cuda"):
        return "gpu"
    if name in ("auto", "cpu"):
        if cpu_scans.supports(tensor) and cpu.available():
            return "cpu"
        if name == "auto" and tensor.device.type == "cpu" and "cpu" not in _warned and not cpu.available():
            _warned.add("cpu")
            warnings.warn(f"iirsnn: compiled CPU kernels unavailable, using the slower torch backend "
                          f"({cpu.unavailable_reason()})", RuntimeWarning, stacklevel=3)
        return "torch"
    return name


def synapse_filter_impl(backend: str | None, tensor: torch.Tensor):
    """The synapse-filter function of ``backend`` for ``tensor`` (None: ``iirsnn.config.backend``)."""
    name = resolve(backend, tensor)
    return _gpu("filter") if name == "gpu" else _FILTERS[name]


def neuron_scan_impl(backend: str | None, tensor: torch.Tensor):
    """The neuron-scan function of ``backend`` for ``tensor`` (None: ``iirsnn.config.backend``)."""
    name = resolve(backend, tensor)
    return _gpu("neuron") if name == "gpu" else _NEURONS[name]


__all__ = ["BACKENDS", "neuron_scan_impl", "resolve", "synapse_filter_impl"]
