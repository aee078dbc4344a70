"""Optional state carried between forward calls (for sequences fed in chunks).

By default every module starts each forward call from zero state. With ``stateful=True`` a
module keeps the final state of a call and starts the next call from it (detached from the graph,
i.e. truncated backpropagation through time) until :meth:`StatefulModule.reset_state`.
"""

from __future__ import annotations

import torch


class StatefulModule(torch.nn.Module):
    """Base of modules with a recurrent state: the ``stateful`` flag and the carried ``state``."""

    def __init__(self, stateful: bool = False) -> None:
        super().__init__()
        self.stateful = stateful
        self.state = None

    def _initial_state(self):
        return self.state if self.stateful else None

    def _keep_state(self, state) -> None:
        if self.stateful:
            self.state = type(state)(*(s.detach() for s in state))

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from zero."""
        self.state = None


def reset_states(model: torch.nn.Module) -> None:
    """Reset the carried state of every stateful module inside ``model``."""
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.reset_state()


def set_stateful(model: torch.nn.Module, stateful: bool = True) -> None:
    """Switch state carrying on (or off) for every module inside ``model``; clears carried state."""
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.stateful = stateful
            m.reset_state()
