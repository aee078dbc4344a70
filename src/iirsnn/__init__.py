"""iirsnn: deep spiking neural networks as networks of IIR filters (Fang et al., IJCAI 2020).

Subpackages: :mod:`iirsnn.functional` (pure tensor functions), :mod:`iirsnn.nn` (modules),
:mod:`iirsnn.models` (networks from the paper's notation), :mod:`iirsnn.kernels` (scan backends).
"""

from iirsnn import _malloc, config, functional, kernels, models, nn

_malloc.tune()

__version__ = "0.1.0"

__all__ = ["__version__", "config", "functional", "kernels", "models", "nn"]
