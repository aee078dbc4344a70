"""SpikingLayer: the paper's layer, presynaptic synapse filter -> weighted connection -> neurons."""

from __future__ import annotations

import torch

from iirsnn.nn.neuron import LIFNeuron
from iirsnn.nn.synapse import SynapseFilter


class SpikingLayer(torch.nn.Module):
    """One spiking layer of eq. 5: ``O = neuron(connection(synapse(O_prev)))``, [T, B, ...] -> [T, B, ...].

    Args:
        connection: a weighted connection over whole sequences (``iirsnn.nn.Linear``, ``Conv1d``,
            ``Conv2d``) mapping filtered presynaptic spikes F to the input current I.
        synapse: the presynaptic :class:`SynapseFilter` (default: dual exponential, tau_m 4, tau_s 1).
        neuron: the :class:`LIFNeuron` (default: tau_m 4, threshold 1, filter reset).
    """

    def __init__(self, connection: torch.nn.Module, synapse: SynapseFilter | None = None,
                 neuron: LIFNeuron | None = None) -> None:
        super().__init__()
        self.synapse = synapse if synapse is not None else SynapseFilter()
        self.connection = connection
        self.neuron = neuron if neuron is not None else LIFNeuron()

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """spikes: [T, B, *in_shape] presynaptic spikes -> [T, B, *out_shape] output spikes."""
        return self.neuron(self.connection(self.synapse(spikes)))
