"""Pure tensor functions of iirsnn; all sequences are time-major ``[T, B, ...]``.

Scans: :func:`synapse_filter` (eq. 5d), :func:`neuron_scan` (eq. 5a, 5c, 5e).
Surrogate gradients: :mod:`iirsnn.functional.surrogates`. Presets of synapse coefficients:
:mod:`iirsnn.functional.presets`. Stable parameterisation of learnable kernels:
:mod:`iirsnn.functional.parametrization`.
"""

from iirsnn.functional import presets, surrogates
from iirsnn.functional.filter import FilterState, impulse_response, synapse_filter
from iirsnn.functional.neuron import NeuronState, neuron_scan
from iirsnn.functional.presets import Coefficients
from iirsnn.functional.surrogates import Surrogate, get_surrogate

__all__ = [
    "Coefficients",
    "FilterState",
    "NeuronState",
    "Surrogate",
    "get_surrogate",
    "impulse_response",
    "neuron_scan",
    "presets",
    "surrogates",
    "synapse_filter",
]
