"""The LSTM baseline of the paper: stacked LSTM layers (2 x 300 units) and a linear readout.

The network reads a time-major sequence ``[T, B, C]`` and gives class logits ``[B, n_classes]`` from the top
layer's outputs: their mean over each sample's valid steps (``readout="mean"``, the default) or the output at
its last valid step (``"last"``). The LSTM is causal, so the output at step ``t`` of a padded batch is the
output of the sample cut to its first ``t + 1`` frames: padding after a sample's ``lengths`` frames does not
change its logits. The mean is the default because the last step alone learns far slower on long sequences:
on Auslan (60 frames, 95 classes) a 2 x 128 LSTM read at the last step was at 2 % training accuracy after four
epochs of Adam 1e-3, read through the mean at 55 %. ``build_config`` records the constructor's arguments, and
:func:`lstm_from_config` (and a checkpoint) rebuilds the network from them.
"""

from __future__ import annotations

import torch

from iirsnn import _checks


class LSTMBaseline(torch.nn.Module):
    """``layers`` stacked LSTM layers of ``hidden`` units (one :class:`torch.nn.LSTM`) and a linear readout.

    Args:
        input_size: C, channels per time step.
        n_classes: K, classes of the readout.
        hidden: units per LSTM layer (the paper's baseline: 300).
        layers: stacked LSTM layers (the paper's baseline: 2).
        dropout: dropout on the outputs of every LSTM layer but the top one, as :class:`torch.nn.LSTM`'s
            ``dropout`` (it has no effect with one layer), in [0, 1).
        readout: ``"mean"`` (the mean of the top layer's outputs over the valid steps) or ``"last"``.

    Shapes: ``forward(x [T, B, C], lengths [B] or None) -> logits [B, K]``.
    """

    build_config: dict[str, object]

    def __init__(self, input_size: int, n_classes: int, hidden: int = 300, layers: int = 2,
                 dropout: float = 0.0, readout: str = "mean") -> None:
        super().__init__()
        if readout not in ("mean", "last"):
            raise ValueError(f"readout must be 'mean' or 'last', got {readout!r}")
        input_size = _checks.positive_int(input_size, "input_size")
        n_classes = _checks.positive_int(n_classes, "n_classes")
        hidden = _checks.positive_int(hidden, "hidden")
        layers = _checks.positive_int(layers, "layers")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise TypeError(f"dropout must be a number, got {type(dropout).__name__}")
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.input_size, self.mode = input_size, readout
        # torch.nn.LSTM warns about dropout with a single layer, where it drops nothing: pass it only when it acts
        self.lstm = torch.nn.LSTM(input_size, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
        self.readout = torch.nn.Linear(hidden, n_classes)
        self.build_config = {"kind": "lstm", "input_size": input_size, "n_classes": n_classes, "hidden": hidden,
                             "layers": layers, "dropout": dropout, "readout": readout}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, n_classes]`` of ``x`` ``[T, B, C]`` (time-major), from steps 0 .. lengths - 1 of each sample.

        ``lengths`` ``[B]`` (integer dtype) counts the valid frames of each sample, 1..T; None means all T.
        """
        x = _checks.float_tensor(x, "x")
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must be time-major [T, B, C] with C = input_size = {self.input_size}, got shape "
                             f"{list(x.shape)}")
        n_steps, batch = x.shape[0], x.shape[1]
        if n_steps == 0:
            raise ValueError(f"x has no time steps (shape {list(x.shape)})")
        _checks.matches_input(self.readout.weight, "the LSTM's weights", x, "x", module=True)
        _checks.finite(x, "x")
        out, _ = self.lstm(x)  # [T, B, hidden]
        last = (torch.full((batch,), n_steps - 1, dtype=torch.long) if lengths is None
                else self._last_steps(lengths, n_steps, batch)).to(out.device)
        if self.mode == "last":
            return self.readout(out[last, torch.arange(batch, device=out.device)])
        valid = torch.arange(n_steps, device=out.device)[:, None] <= last[None, :]  # [T, B]
        pooled = (out * valid[..., None]).sum(0) / (last + 1)[:, None].to(out.dtype)
        return self.readout(pooled)

    @staticmethod
    def _last_steps(lengths: object, n_steps: int, batch: int) -> torch.Tensor:
        """``lengths - 1`` after checking that ``lengths`` is an integer tensor [B] with values in 1..T."""
        if not isinstance(lengths, torch.Tensor):
            raise TypeError(f"lengths must be a torch.Tensor of integer dtype [B] or None, got "
                            f"{type(lengths).__name__}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must have an integer dtype (e.g. torch.long), got {lengths.dtype}")
        if tuple(lengths.shape) != (batch,):
            raise ValueError(f"lengths must have shape [B] = [{batch}] (one length per sample of x), got "
                             f"{list(lengths.shape)}")
        if batch and not bool(((lengths >= 1) & (lengths <= n_steps)).all()):
            raise ValueError(f"lengths must lie in 1..T = 1..{n_steps}, got values from {int(lengths.min())} "
                             f"to {int(lengths.max())}")
        return lengths.long() - 1


def lstm_from_config(build_config: dict[str, object]) -> LSTMBaseline:
    """The :class:`LSTMBaseline` that ``build_config`` (an :attr:`LSTMBaseline.build_config`) describes.

    Raises ValueError naming a missing or unknown key, or a ``kind`` other than ``"lstm"``.
    """
    if not isinstance(build_config, dict):
        raise ValueError(f"an LSTM's build config must be a mapping, got {type(build_config).__name__}")
    required, optional = {"kind", "input_size", "n_classes"}, {"hidden", "layers", "dropout", "readout"}
    missing, unknown = required - set(build_config), set(build_config) - required - optional
    if missing or unknown:
        raise ValueError(f"LSTM build config: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}; "
                         f"expected {sorted(required)} and optionally {sorted(optional)}")
    cfg = dict(build_config)
    kind = cfg.pop("kind")
    if kind != "lstm":
        raise ValueError(f"LSTM build config: kind must be 'lstm', got {kind!r}")
    return LSTMBaseline(**cfg)
