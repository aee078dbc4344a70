"""Backends of the two scans (synapse filter, neuron), all with the same signatures.

==============  ====================================================================
``reference``   plain step-by-step equations differentiated by autograd (ground truth)
``torch``       portable torch code with the hand-written backward of DESIGN.md sec. 2
==============  ====================================================================

``"auto"`` (the default, see ``iirsnn.config.backend``) picks the fastest backend available for
the tensor's device; every backend is tested against ``reference`` in float64.
"""

from __future__ import annotations

import torch

from iirsnn import config
from iirsnn.kernels import reference, torch_filter, torch_neuron

_FILTERS = {"reference": reference.synapse_filter, "torch": torch_filter.synapse_filter}
_NEURONS = {"reference": reference.neuron_scan, "torch": torch_neuron.neuron_scan}
BACKENDS = ("auto", *_FILTERS)


def _resolve(backend: str | None, device: torch.device) -> str:
    name = backend or config.backend
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    return "torch" if name == "auto" else name


def synapse_filter_impl(backend: str | None, device: torch.device):
    """The synapse-filter function of ``backend`` (None: ``iirsnn.config.backend``)."""
    return _FILTERS[_resolve(backend, device)]


def neuron_scan_impl(backend: str | None, device: torch.device):
    """The neuron-scan function of ``backend`` (None: ``iirsnn.config.backend``)."""
    return _NEURONS[_resolve(backend, device)]


__all__ = ["BACKENDS", "neuron_scan_impl", "synapse_filter_impl"]
