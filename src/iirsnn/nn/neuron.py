"""LIFNeuron: the paper's spiking neuron (membrane filter + reset filter) as a module."""

from __future__ import annotations

import math

import torch

from iirsnn import _checks
from iirsnn.functional.neuron import RESETS, NeuronState, neuron_scan
from iirsnn.functional.surrogates import Surrogate, get_surrogate
from iirsnn.nn.state import StatefulModule


def _decay_of(tau: float | torch.Tensor, name: str) -> float | torch.Tensor:
    _checks.positive(tau, name)
    if isinstance(tau, torch.Tensor):
        return torch.exp(-1.0 / tau.double()).float()
    return math.exp(-1.0 / tau)


def _describe(decay: torch.Tensor) -> str:
    return f"{decay.item():.4g}" if decay.numel() == 1 else f"per-neuron {list(decay.shape)}"


class LIFNeuron(StatefulModule):
    """Spiking neurons over a whole sequence: current [T, B, ...] -> spikes [T, B, ...].

    ``V[t] = leak V[t-1] + I[t] - threshold R[t]``, ``R[t] = reset_decay R[t-1] + O[t-1]``,
    ``O[t] = H(V[t] - threshold)`` (see :func:`iirsnn.functional.neuron_scan`).

    Args:
        tau_m: membrane time constant; leak = exp(-1/tau_m) unless ``leak`` is given. A tensor gives one
            per neuron (it must broadcast to ``shape``).
        leak: lambda in [0, 1] directly (0: the authors' ``membrane_filter: False``).
        reset_tau: time constant of the reset filter; by default reset_decay = leak, as in the
            authors' code (theta = lambda = exp(-1/tau_m)).
        reset_decay: theta in [0, 1] directly (0: subtractive reset).
        threshold: V_th > 0.
        surrogate: name or :class:`~iirsnn.functional.Surrogate` (default: Gaussian, sigma 0.4).
        reset: ``"filter"`` (the paper) or ``"hard"`` (reset to zero).
        detach_reset: no gradient through the reset path.
        shape: neuron shape after the batch dim (e.g. ``(500,)`` or ``(64, 1, 1)`` for per-channel
            decays of a conv layer) when decays are per neuron; ``None`` for one decay per layer.
        learnable: learn leak and reset_decay, through a sigmoid of a logit so they stay in (0, 1).
        stateful: carry V and the reset trace from one call to the next.
        record_voltage: keep the last call's membrane potential in ``self.voltage`` [T, B, ...].
        backend: scan backend (default ``iirsnn.config.backend``).
    """

    def __init__(self, tau_m: float = 4.0, *, leak: float | None = None, reset_tau: float | None = None,
                 reset_decay: float | None = None, threshold: float = 1.0, surrogate: str | Surrogate = "gaussian",
                 reset: str = "filter", detach_reset: bool = False, shape: int | tuple[int, ...] | None = None,
                 learnable: bool = False, stateful: bool = False, record_voltage: bool = False,
                 backend: str | None = None) -> None:
        super().__init__(stateful)
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {list(RESETS)}, got {reset!r}")
        _checks.positive(threshold, "threshold")
        lam = _decay_of(tau_m, "tau_m") if leak is None else leak
        if reset_decay is None:
            reset_decay = lam if reset_tau is None else _decay_of(reset_tau, "reset_tau")
        _checks.in_unit_interval(lam, "leak")
        _checks.in_unit_interval(reset_decay, "reset_decay")
        self.threshold = float(threshold)
        self.surrogate = get_surrogate(surrogate)
        self.reset = reset
        self.detach_reset = detach_reset
        self.record_voltage = record_voltage
        self.voltage: torch.Tensor | None = None
        self.backend = backend
        self.learnable = learnable
        shape = (shape,) if isinstance(shape, int) else tuple(shape or ())
        try:
            leak_t = torch.as_tensor(lam, dtype=torch.float32).expand(shape).clone()
            reset_t = torch.as_tensor(reset_decay, dtype=torch.float32).expand(shape).clone()
        except RuntimeError:
            raise ValueError(f"per-neuron tau_m, leak or reset_decay of shape {list(torch.as_tensor(lam).shape)} "
                             f"does not broadcast to the neuron shape {list(shape)}") from None
        if learnable:
            eps = 1e-6  # keep the logits finite at decays of exactly 0 or 1
            self.leak_logit = torch.nn.Parameter(torch.logit(leak_t.clamp(eps, 1 - eps)))
            self.reset_logit = torch.nn.Parameter(torch.logit(reset_t.clamp(eps, 1 - eps)))
        else:
            self.register_buffer("leak_fixed", leak_t)
            self.register_buffer("reset_fixed", reset_t)

    @property
    def leak(self) -> torch.Tensor:
        """Membrane decay lambda per step, [] or ``shape``."""
        return torch.sigmoid(self.leak_logit) if self.learnable else self.leak_fixed

    @property
    def reset_decay(self) -> torch.Tensor:
        """Reset-filter decay theta per step, [] or ``shape``."""
        return torch.sigmoid(self.reset_logit) if self.learnable else self.reset_fixed

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """current: [T, B, ...] -> spikes [T, B, ...] (0/1 floats)."""
        spikes, V, state = neuron_scan(current, self.leak, self.reset_decay, self.threshold, self.surrogate,
                                       self.reset, self.detach_reset, self._initial_state(), return_voltage=True,
                                       return_state=True, backend=self.backend)
        self._keep_state(state)
        if self.record_voltage:
            self.voltage = V
        return spikes

    def forward_chunk(self, current: torch.Tensor, state: NeuronState | None) -> tuple[torch.Tensor, NeuronState]:
        """One chunk of a longer sequence with an explicit state (gradients flow through it):
        current [T_chunk, B, ...], the state after the previous chunk (None: zeros) -> (spikes, the next state)."""
        return neuron_scan(current, self.leak, self.reset_decay, self.threshold, self.surrogate, self.reset,
                           self.detach_reset, state, return_state=True, backend=self.backend)

    def extra_repr(self) -> str:
        lam, theta = self.leak.detach(), self.reset_decay.detach()
        return (f"leak={_describe(lam)}, reset_decay={_describe(theta)}, threshold={self.threshold}, "
                f"reset={self.reset!r}, surrogate={self.surrogate.kind}({self.surrogate.param}), "
                f"learnable={self.learnable}")
