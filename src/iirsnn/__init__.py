"""iirsnn: deep spiking neural networks as networks of IIR filters (Fang et al., IJCAI 2020).

Subpackages: :mod:`iirsnn.functional` (pure tensor functions), :mod:`iirsnn.nn` (modules),
:mod:`iirsnn.models` (networks from the paper's notation), :mod:`iirsnn.kernels` (scan backends).

Importing iirsnn changes nothing for the rest of the process. The process-wide settings that speed up
training (glibc's allocator mode, flush-to-zero) are one call, :func:`iirsnn.tune_process`
(:mod:`iirsnn.process`), which the ``iirsnn`` command line makes at its start.
"""

from iirsnn import config, functional, kernels, models, nn
from iirsnn.interop import export_nir, import_nir
from iirsnn.process import ProcessSettings, process_settings, tune_process

__version__ = "0.1.0"

__all__ = ["ProcessSettings", "__version__", "config", "export_nir", "functional", "import_nir", "kernels", "models",
           "nn", "process_settings", "tune_process"]
