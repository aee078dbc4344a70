"""Thin modules over :mod:`iirsnn.functional`; every module maps time-major [T, B, ...] to [T, B, ...].

A plain ``torch.nn.Sequential`` of them is a spiking network. Modules start every forward call
from zero state unless made ``stateful`` (see :func:`set_stateful`, :func:`reset_states`).
"""

from iirsnn.nn.chunked import chunked_forward
from iirsnn.nn.connections import Conv1d, Conv2d, Linear
from iirsnn.nn.delay import Delay, DelayState
from iirsnn.nn.dropout import Dropout
from iirsnn.nn.layer import SpikingLayer, set_precision
from iirsnn.nn.neuron import LIFNeuron
from iirsnn.nn.pooling import AvgPool2d, MaxPool2d, SumPool2d
from iirsnn.nn.reshape import Flatten
from iirsnn.nn.state import StatefulModule, reset_states, set_stateful
from iirsnn.nn.streaming import Stream
from iirsnn.nn.synapse import SynapseFilter

__all__ = [
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "Delay",
    "DelayState",
    "Dropout",
    "Flatten",
    "LIFNeuron",
    "Linear",
    "MaxPool2d",
    "SpikingLayer",
    "StatefulModule",
    "Stream",
    "SumPool2d",
    "SynapseFilter",
    "chunked_forward",
    "reset_states",
    "set_precision",
    "set_stateful",
]
