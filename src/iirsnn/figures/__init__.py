"""The paper's figures (Fang et al., IJCAI 2020) drawn as PNG files with matplotlib.

matplotlib is an optional extra (``pip install iirsnn[figures]``). Every function builds its own
:class:`matplotlib.figure.Figure` (never ``matplotlib.pyplot``, no change to matplotlib's global
state), returns it, and saves it to ``path`` when one is given.

* :func:`read_metrics`: the per-epoch records of a training run (``metrics.jsonl``).
* :func:`plot_curves`: loss and the task's metric per epoch for every split of a run.
* :func:`plot_ablation`: one split's metric per epoch for several runs (paper Figure 6).
* :func:`plot_reconstruction`: spike rasters of target, noisy input and outputs (paper Figure 3).
* :func:`plot_rate_map`: hidden firing rates of samples sorted by class (paper Figure 4).
* :func:`plot_kernels`: initial vs learned synapse kernels (paper Figure 5), with
  :func:`impulse_response` and :func:`synapse_coefficients`.
"""

try:
    import matplotlib  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised with matplotlib blocked
    raise ImportError("iirsnn.figures needs matplotlib, an optional extra: pip install iirsnn[figures]") from error

from iirsnn.figures.ablation import plot_ablation
from iirsnn.figures.curves import plot_curves
from iirsnn.figures.kernels import impulse_response, plot_kernels, synapse_coefficients
from iirsnn.figures.rasters import plot_reconstruction
from iirsnn.figures.rate_map import plot_rate_map
from iirsnn.figures.runs import METRICS_FILE, metric_series, read_metrics

__all__ = [
    "METRICS_FILE",
    "impulse_response",
    "metric_series",
    "plot_ablation",
    "plot_curves",
    "plot_kernels",
    "plot_rate_map",
    "plot_reconstruction",
    "read_metrics",
    "synapse_coefficients",
]
