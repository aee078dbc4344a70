"""Online inference: a network fed chunks of time of any length as they arrive, its state carried between them.

    with Stream(network) as stream:
        for chunk in source:          # [t, B, ...], any t >= 1
            spikes = stream(chunk)    # [t, B, n_out], the spikes of these steps
        stream.reset()                # a new sequence starts from zero state

The concatenated outputs equal the network's output on the whole sequence (tests/test_streaming.py).
"""

from __future__ import annotations

import torch

from iirsnn.nn.state import StatefulModule, reset_states, set_stateful


class Stream:
    """Runs ``model`` (time-major [T, B, ...] -> [T, B, ...]) chunk by chunk, in eval mode and without
    gradients, carrying every layer's state from one chunk to the next.

    Entering (or constructing) switches the model's layers to carrying state; :meth:`close` (or leaving the
    ``with`` block) switches them back and restores the model's training mode.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        if not any(isinstance(m, StatefulModule) for m in model.modules()):
            raise ValueError(f"{type(model).__name__} has no layer with a state to carry (no iirsnn.nn module)")
        self.model = model
        self._was_training = model.training
        self._flags = {m: m.stateful for m in model.modules() if isinstance(m, StatefulModule)}
        self.steps = 0
        model.eval()
        set_stateful(model, True)

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        """The output [t, B, ...] of the next ``t`` steps of the sequence, given their input ``chunk`` [t, B, ...]."""
        if self.model is None:
            raise RuntimeError("this stream is closed")
        with torch.no_grad():
            out = self.model(chunk)
        self.steps += chunk.shape[0]
        return out

    def reset(self) -> None:
        """Start a new sequence: every layer's state back to zero."""
        reset_states(self.model)
        self.steps = 0

    def close(self) -> None:
        """Give the model back as it was: its stateful flags (state cleared) and its training mode."""
        if self.model is None:
            return
        for module, flag in self._flags.items():
            module.stateful = flag
            module.reset_state()
        self.model.train(self._was_training)
        self.model = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
