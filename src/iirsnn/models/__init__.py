"""Networks: spiking networks from the paper's notation (:mod:`~iirsnn.models.spec`).

:func:`from_spec` builds a :class:`Network` and records the arguments it was built from in
``Network.build_config``, so that :func:`network_from_config` (and a checkpoint) rebuilds it.
"""

from iirsnn.models.lstm import LSTMBaseline, lstm_from_config
from iirsnn.models.spec import DEFAULT_OPTIONS, Network, from_spec, network_from_config

__all__ = ["DEFAULT_OPTIONS", "LSTMBaseline", "Network", "from_spec", "lstm_from_config", "network_from_config"]
