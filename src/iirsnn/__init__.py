"""iirsnn: deep spiking neural networks as networks of IIR filters (Fang et al., IJCAI 2020)."""

from iirsnn import config, functional

__version__ = "0.1.0"

__all__ = ["__version__", "config", "functional"]
