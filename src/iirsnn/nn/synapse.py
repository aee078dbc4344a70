"""SynapseFilter: the presynaptic IIR filter of eq. 5d as a module (fixed or learnable kernel)."""

from __future__ import annotations

import torch

from iirsnn.functional.filter import FilterState, synapse_filter
from iirsnn.functional.parametrization import alpha_to_reflection, reflection_to_alpha
from iirsnn.functional.presets import Coefficients, preset
from iirsnn.nn.state import StatefulModule

PARAMETRIZATIONS = ("reflection", "raw")


class SynapseFilter(StatefulModule):
    """Filter every presynaptic channel along time: [T, B, C, ...] -> [T, B, C, ...].

    The filter state lives on the presynaptic axon: one state per channel (and position), shared by
    every synapse that channel feeds, so state is O(neurons), not O(synapses).

    Args:
        synapse: a preset name (``"none"``, ``"first_order"``, ``"dual_exp"``, ``"alpha"``, ``"delay"``)
            or explicit :class:`~iirsnn.functional.presets.Coefficients` (alpha [P], beta [Q+1]).
        tau_m, tau_s, tau, d, lag, normalize: preset parameters (see :mod:`iirsnn.functional.presets`).
        channels: ``None`` for one kernel shared by all channels (the default, and what the fast paths
            exploit), or C for a separate kernel per channel (coefficients [C, P] and [C, Q+1]).
        learnable: learn the kernel (alpha and beta) with the weights.
        parametrization: for learnable feedback, ``"reflection"`` (default: alpha from reflection
            coefficients k = max_reflection * tanh(u), stable by construction for any step size) or
            ``"raw"`` (the paper's raw alpha, which gradient steps can push out of the unit circle).
        max_reflection: bound on |k| < 1 keeping the poles strictly inside the unit circle.
        stateful: carry the filter history from one call to the next (see :mod:`iirsnn.nn.state`).
        backend: scan backend (default ``iirsnn.config.backend``).
    """

    def __init__(self, synapse: str | Coefficients = "dual_exp", *, tau_m: float = 4.0, tau_s: float = 1.0,
                 tau: float | None = None, d: int = 1, lag: int | None = None, normalize: bool = False,
                 channels: int | None = None, learnable: bool = False, parametrization: str = "reflection",
                 max_reflection: float = 0.999, stateful: bool = False, backend: str | None = None) -> None:
        super().__init__(stateful)
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {list(PARAMETRIZATIONS)}, got {parametrization!r}")
        if not 0 < max_reflection < 1:
            raise ValueError(f"max_reflection must lie in (0, 1), got {max_reflection}")
        if channels is not None and (not isinstance(channels, int) or channels < 1):
            raise ValueError(f"channels must be a positive int or None (shared kernel), got {channels!r}")
        if isinstance(synapse, str):
            self.preset = synapse
            coef = preset(synapse, tau_m=tau_m, tau_s=tau_s, tau=tau, d=d, lag=lag, normalize=normalize,
                          dtype=torch.float64)
        else:
            self.preset = "custom"
            coef = Coefficients(*(torch.as_tensor(c, dtype=torch.float64) for c in synapse))
        alpha, beta = coef.alpha.detach(), coef.beta.detach()
        if channels is not None and alpha.dim() == 1:
            alpha, beta = alpha.expand(channels, -1).clone(), beta.expand(channels, -1).clone()
        self.channels = channels
        self.parametrization = parametrization if learnable else "fixed"
        self.max_reflection = max_reflection
        self.backend = backend
        dtype = torch.get_default_dtype()
        if not learnable:
            self.register_buffer("alpha_fixed", alpha.to(dtype))
            self.register_buffer("beta_fixed", beta.to(dtype))
            return
        self.beta_param = torch.nn.Parameter(beta.to(dtype))
        if parametrization == "raw":
            self.alpha_param = torch.nn.Parameter(alpha.to(dtype))
        else:
            k = alpha_to_reflection(alpha) / max_reflection
            if bool((k.abs() >= 1).any()):
                raise ValueError(f"the initial kernel has a reflection coefficient beyond max_reflection="
                                 f"{max_reflection}; raise max_reflection or use a faster-decaying preset")
            self.alpha_param = torch.nn.Parameter(torch.atanh(k).to(dtype))

    @property
    def alpha(self) -> torch.Tensor:
        """Feedback coefficients [P] (shared) or [C, P] (per channel)."""
        if self.parametrization == "fixed":
            return self.alpha_fixed
        if self.parametrization == "raw":
            return self.alpha_param
        return reflection_to_alpha(self.max_reflection * torch.tanh(self.alpha_param))

    @property
    def beta(self) -> torch.Tensor:
        """Feed-forward coefficients [Q+1] (shared) or [C, Q+1] (per channel)."""
        return self.beta_fixed if self.parametrization == "fixed" else self.beta_param

    @property
    def shared(self) -> bool:
        """True when one kernel serves every channel (so W F(O) = F(W O) holds)."""
        return self.channels is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, ...] -> F: [T, B, C, ...]."""
        F, state = synapse_filter(x, self.alpha, self.beta, self._initial_state(), return_state=True,
                                  backend=self.backend)
        self._keep_state(state)
        return F

    def forward_chunk(self, x: torch.Tensor, state: FilterState | None) -> tuple[torch.Tensor, FilterState]:
        """One chunk of a longer sequence with an explicit state (gradients flow through it):
        x [T_chunk, B, C, ...], the state after the previous chunk (None: zeros) -> (F, the state after this one)."""
        return synapse_filter(x, self.alpha, self.beta, state, return_state=True, backend=self.backend)

    def extra_repr(self) -> str:
        where = "shared" if self.shared else f"per-channel C={self.channels}"
        return (f"preset={self.preset!r}, P={self.alpha.shape[-1]}, Q={self.beta.shape[-1] - 1}, {where}, "
                f"parametrization={self.parametrization!r}")
