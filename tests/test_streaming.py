"""Streaming inference: chunks of any length, state carried, the same spikes as the whole sequence."""

import pytest
import torch

from iirsnn import nn as inn
from iirsnn.models import from_spec

torch.set_num_threads(1)


def _cuts(steps: int, seed: int) -> list[int]:
    """Random chunk boundaries, single steps among them."""
    g = torch.Generator().manual_seed(seed)
    cuts = sorted(set(torch.randint(1, steps, (12,), generator=g).tolist()) | {1, 2, steps - 1})
    return cuts


@pytest.mark.parametrize("spec, shape, options", [
    ("40-30-5", (12,), {"reset_tau": 6.0, "learnable_synapse": True}),
    ("4C3-P2-6C3-12-3", (2, 8, 8), {"reset_tau": 3.0}),
    ("20-4", (6,), {"synapse": "delay", "reset": "hard"}),
])
def test_chunks_of_random_lengths_give_the_whole_sequences_spikes(spec, shape, options):
    torch.manual_seed(0)
    options = dict(options)
    synapse = options.pop("synapse", "dual_exp")
    net = from_spec(spec, shape, synapse=synapse, tau_m=5.0, tau_s=2.0, **options).double()
    x = (torch.rand(220, 3, *shape, dtype=torch.float64) < 0.3).double()
    with torch.no_grad():
        whole = net.eval()(x)
    assert whole.sum() > 0
    for seed in range(3):
        with inn.Stream(net) as stream:
            parts = [stream(chunk) for chunk in torch.tensor_split(x, _cuts(x.shape[0], seed))]
            assert stream.steps == x.shape[0]
        assert torch.equal(torch.cat(parts), whole)


def test_reset_starts_a_new_sequence_and_close_gives_the_model_back():
    torch.manual_seed(1)
    net = from_spec("16-4", (6,), tau_m=4.0).double().train()
    x = (torch.rand(30, 2, 6, dtype=torch.float64) < 0.4).double()
    stream = inn.Stream(net)
    first = stream(x)
    assert not torch.equal(stream(x), first)  # the state carried on
    stream.reset()
    assert torch.equal(stream(x), first) and stream.steps == 30
    stream.close()
    assert net.training and not any(m.stateful for m in net.modules() if isinstance(m, inn.StatefulModule))
    with pytest.raises(RuntimeError, match="closed"):
        stream(x)
    with pytest.raises(ValueError, match="no layer with a state"):
        inn.Stream(torch.nn.Linear(3, 3))
