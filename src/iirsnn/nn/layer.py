"""SpikingLayer: the paper's layer, presynaptic synapse filter -> weighted connection -> neurons."""

from __future__ import annotations

import torch

from iirsnn.functional.chunk import spiking_chunk
from iirsnn.functional.layer import check_precision, connection_context, fusable, spiking_conv, spiking_linear
from iirsnn.nn.connections import Conv1d, Conv2d, Linear
from iirsnn.nn.neuron import LIFNeuron
from iirsnn.nn.synapse import SynapseFilter


class SpikingLayer(torch.nn.Module):
    """One spiking layer of eq. 5: ``O = neuron(connection(synapse(O_prev)))``, [T, B, ...] -> [T, B, ...].

    Args:
        connection: a weighted connection over whole sequences (``iirsnn.nn.Linear``, ``Conv1d``,
            ``Conv2d``) mapping filtered presynaptic spikes F to the input current I.
        synapse: the presynaptic :class:`SynapseFilter` (default: dual exponential, tau_m 4, tau_s 1).
        neuron: the :class:`LIFNeuron` (default: tau_m 4, threshold 1, filter reset).
        precision: ``"fp32"`` (default) or ``"bf16-mixed"``: the connection's matmul or convolution
            in bfloat16, the scans in float32 (see :mod:`iirsnn.functional.layer`).
    """

    def __init__(self, connection: torch.nn.Module, synapse: SynapseFilter | None = None,
                 neuron: LIFNeuron | None = None, precision: str = "fp32") -> None:
        super().__init__()
        self.synapse = synapse if synapse is not None else SynapseFilter()
        self.connection = connection
        self.neuron = neuron if neuron is not None else LIFNeuron()
        self.precision = check_precision(precision)

    def _unfused(self, spikes: torch.Tensor) -> torch.Tensor:
        filtered = self.synapse(spikes)
        with connection_context(self.precision, spikes):
            current = self.connection(filtered)
        return self.neuron(current.to(filtered.dtype))

    def _functional_options(self) -> dict:
        """The synapse, neuron and precision arguments of the whole-layer functions."""
        syn, neu = self.synapse, self.neuron
        return dict(alpha=syn.alpha, beta=syn.beta, leak=neu.leak, reset_decay=neu.reset_decay,
                    threshold=neu.threshold, surrogate=neu.surrogate, reset=neu.reset,
                    detach_reset=neu.detach_reset, backend=neu.backend or syn.backend, precision=self.precision)

    def _fusable(self, spikes: torch.Tensor) -> bool:
        """Whether the connection commutes with the synapse filter and the layer runs fused (see ``fusable``)."""
        conn, syn = self.connection, self.synapse
        return (isinstance(conn, (Linear, Conv1d, Conv2d)) and getattr(conn, "padding_mode", "zeros") == "zeros"
                and fusable(spikes, syn.alpha, syn.beta, self.neuron.backend or syn.backend))

    def forward_chunk(self, spikes: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple]:
        """One chunk of a longer sequence with an explicit state ``(FilterState, NeuronState)``, gradients
        flowing through it (see :mod:`iirsnn.nn.chunked`): spikes [T_chunk, B, ...] -> (spikes, next state).

        Where the whole-sequence call would take the fused path, the chunk also filters on the current
        side after a spike-sparse product (its filter state is then that of W O, not of O)."""
        filter_state, neuron_state = (None, None) if state is None else state
        conn = self.connection
        if self._fusable(spikes):
            conn.check_input(spikes)
            conv = None if isinstance(conn, Linear) else _conv_options(conn)
            return spiking_chunk(spikes, conn.weight, conn.bias, filter_state=filter_state, neuron_state=neuron_state,
                                 conv=conv, **self._functional_options())
        filtered, filter_state = self.synapse.forward_chunk(spikes, filter_state)
        with connection_context(self.precision, spikes):
            current = self.connection(filtered)
        out, neuron_state = self.neuron.forward_chunk(current.to(filtered.dtype), neuron_state)
        return out, (filter_state, neuron_state)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """spikes: [T, B, *in_shape] presynaptic spikes -> [T, B, *out_shape] output spikes.

        A whole-layer function (:mod:`iirsnn.functional.layer`, fused on the compiled backend) runs
        it unless state is carried between calls, the voltage is recorded or the connection is custom.
        """
        syn, conn, neu = self.synapse, self.connection, self.neuron
        if syn.stateful or neu.stateful or neu.record_voltage or not isinstance(conn, (Linear, Conv1d, Conv2d)):
            # carried state lives on the presynaptic side, which the whole-layer functions do not keep
            return self._unfused(spikes)
        if isinstance(conn, Linear):
            conn.check_input(spikes)
            return spiking_linear(spikes, conn.weight, conn.bias, **self._functional_options())
        if conn.padding_mode != "zeros":  # circular / reflect padding: the module's own forward pads
            return self._unfused(spikes)
        conn.check_input(spikes)
        return spiking_conv(spikes, conn.weight, conn.bias, **_conv_options(conn), **self._functional_options())


def _conv_options(conn: Conv1d | Conv2d) -> dict:
    """stride, padding, dilation and groups of a convolution module, as the functional layers take them."""
    return dict(stride=conn.stride, padding=conn.padding, dilation=conn.dilation, groups=conn.groups)


def set_precision(model: torch.nn.Module, precision: str) -> None:
    """Set the precision (``"fp32"`` or ``"bf16-mixed"``) of every SpikingLayer inside ``model``."""
    check_precision(precision)
    for m in model.modules():
        if isinstance(m, SpikingLayer):
            m.precision = precision
