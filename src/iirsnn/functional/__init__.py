"""Pure tensor functions of iirsnn; all sequences are time-major ``[T, B, ...]``.

Scans: :func:`synapse_filter` (eq. 5d), :func:`neuron_scan` (eq. 5a, 5c, 5e).
Surrogate gradients: :mod:`~iirsnn.functional.surrogates`. Synapse presets:
:mod:`~iirsnn.functional.presets`. Stable learnable kernels: :mod:`~iirsnn.functional.parametrization`.
Losses: :mod:`~iirsnn.functional.losses`. Encoders of images and analog series into spikes:
:mod:`~iirsnn.functional.encoders`.
Metrics of output spike trains against targets: :mod:`~iirsnn.functional.spike_metrics`.
"""

from iirsnn.functional import encoders, losses, parametrization, presets, surrogates
from iirsnn.functional.encoders import bernoulli_rate, copy_along_time, current_lif_encoder, latency, poisson
from iirsnn.functional.filter import FilterState, impulse_response, synapse_filter
from iirsnn.functional.losses import spike_count_cross_entropy, spike_count_mse, van_rossum_distance
from iirsnn.functional.neuron import NeuronState, neuron_scan
from iirsnn.functional.parametrization import alpha_to_reflection, pole_radius, reflection_to_alpha
from iirsnn.functional.presets import Coefficients
from iirsnn.functional.spike_metrics import filtered_mse, spike_timing_f1
from iirsnn.functional.surrogates import Surrogate, get_surrogate

__all__ = [
    "Coefficients",
    "FilterState",
    "NeuronState",
    "Surrogate",
    "alpha_to_reflection",
    "bernoulli_rate",
    "copy_along_time",
    "current_lif_encoder",
    "encoders",
    "filtered_mse",
    "get_surrogate",
    "impulse_response",
    "latency",
    "losses",
    "neuron_scan",
    "parametrization",
    "poisson",
    "pole_radius",
    "presets",
    "reflection_to_alpha",
    "spike_count_cross_entropy",
    "spike_count_mse",
    "spike_timing_f1",
    "surrogates",
    "synapse_filter",
    "van_rossum_distance",
]
