"""iirsnn.models.LSTMBaseline: the paper's LSTM baseline (shapes, lengths, build config, errors, learning)."""

import pytest
import torch

from iirsnn.models import LSTMBaseline, lstm_from_config


def test_default_is_two_layers_of_300_and_gives_logits_per_sample():
    torch.manual_seed(0)
    model = LSTMBaseline(input_size=20, n_classes=11)
    assert model.lstm.num_layers == 2 and model.lstm.hidden_size == 300
    assert model.readout.in_features == 300 and model.readout.out_features == 11
    assert model(torch.randn(7, 3, 20)).shape == (3, 11)
    assert model(torch.randn(7, 3, 20), lengths=torch.tensor([7, 1, 4])).shape == (3, 11)
    assert model(torch.randn(5, 0, 20)).shape == (0, 11)


@pytest.mark.parametrize("readout", ["mean", "last"])
def test_logits_at_lengths_are_those_of_each_sample_cut_to_its_length(readout):
    torch.manual_seed(0)
    model = LSTMBaseline(input_size=4, n_classes=3, hidden=8, readout=readout).double()
    x = torch.randn(9, 4, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 5, 3])
    padded = x.clone()
    for b, n in enumerate(lengths.tolist()):
        padded[n:, b] = 123.0  # whatever follows the valid frames must not matter
    logits = model(padded, lengths)
    alone = torch.cat([model(x[:n, b:b + 1]) for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(logits, alone)
    torch.testing.assert_close(model(x), model(x, torch.full((4,), 9)))  # None = all T


def test_build_config_rebuilds_the_same_network():
    torch.manual_seed(0)
    model = LSTMBaseline(input_size=6, n_classes=4, hidden=10, layers=3, dropout=0.25)
    assert model.build_config == {"kind": "lstm", "input_size": 6, "n_classes": 4, "hidden": 10, "layers": 3,
                                  "dropout": 0.25, "readout": "mean"}
    torch.manual_seed(1)
    again = lstm_from_config(dict(model.build_config))
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    x = torch.randn(8, 5, 6)
    torch.testing.assert_close(again(x, torch.tensor([8, 2, 3, 7, 1])), model(x, torch.tensor([8, 2, 3, 7, 1])),
                               rtol=0, atol=0)
    default = lstm_from_config({"kind": "lstm", "input_size": 6, "n_classes": 4})
    assert default.build_config == {"kind": "lstm", "input_size": 6, "n_classes": 4, "hidden": 300, "layers": 2,
                                    "dropout": 0.0, "readout": "mean"}


@pytest.mark.parametrize("config, match", [
    ({"kind": "lstm", "n_classes": 4}, r"missing keys \['input_size'\]"),
    ({"input_size": 6, "n_classes": 4}, r"missing keys \['kind'\]"),
    ({"kind": "lstm", "input_size": 6, "n_classes": 4, "width": 3}, r"unknown keys \['width'\]"),
    ({"kind": "spiking", "input_size": 6, "n_classes": 4}, "kind must be 'lstm'"),
    ([("kind", "lstm")], "must be a mapping"),
])
def test_build_config_errors_name_the_key(config, match):
    with pytest.raises(ValueError, match=match):
        lstm_from_config(config)


def test_constructor_errors():
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        LSTMBaseline(4, 2, hidden=0)
    with pytest.raises(TypeError, match="layers must be an int"):
        LSTMBaseline(4, 2, layers=2.0)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        LSTMBaseline(4, 2, dropout=1.0)


def test_input_errors_name_the_shape():
    model = LSTMBaseline(input_size=4, n_classes=2, hidden=5)
    with pytest.raises(ValueError, match=r"\[T, B, C\] with C = input_size = 4, got shape \[3, 2, 5\]"):
        model(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match=r"got shape \[2, 4\]"):
        model(torch.randn(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(3, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="no time steps"):
        model(torch.randn(0, 2, 4))
    with pytest.raises(TypeError, match="float64 but the LSTM's weights is float32"):
        model(torch.randn(3, 2, 4, dtype=torch.float64))
    x = torch.randn(3, 2, 4)
    with pytest.raises(ValueError, match=r"lengths must have shape \[B\] = \[2\].*got \[3\]"):
        model(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"lengths must lie in 1..T = 1..3, got values from 0 to 3"):
        model(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"1..3, got values from 2 to 4"):
        model(x, torch.tensor([4, 2]))
    with pytest.raises(TypeError, match="integer dtype"):
        model(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"lengths must be a torch\.Tensor"):
        model(x, [1, 2])


def _which_came_first(n: int, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two channels with one pulse each at distinct random steps; the class says which channel fired first.

    Both classes have the same pulses per channel and the same distribution of times: only their order tells
    the classes apart.
    """
    times = torch.stack([torch.randperm(steps, generator=generator)[:2] for _ in range(n)])  # [n, 2] distinct
    x = torch.zeros(steps, n, 2)
    x[times[:, 0], torch.arange(n), 0] = 1.0
    x[times[:, 1], torch.arange(n), 1] = 1.0
    return x, (times[:, 1] < times[:, 0]).long()


def test_it_learns_a_task_that_only_the_order_of_events_solves():
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = _which_came_first(400, 30, gen)
    x_test, y_test = _which_came_first(200, 30, gen)
    torch.manual_seed(0)
    model = LSTMBaseline(input_size=2, n_classes=2, hidden=16, readout="last")  # the order is in the final state
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(15):
        for i in range(0, 400, 50):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[:, i:i + 50]), y_train[i:i + 50]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy >= 0.9, accuracy  # chance is 0.5


def test_mean_readout_averages_the_top_outputs_over_the_valid_steps():
    torch.manual_seed(0)
    model = LSTMBaseline(input_size=3, n_classes=2, hidden=5, readout="mean").double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, _ = model.lstm(x)
    expected = model.readout(torch.stack([out[:6, 0].mean(0), out[:2, 1].mean(0)]))
    torch.testing.assert_close(model(x, torch.tensor([6, 2])), expected)
    with pytest.raises(ValueError, match="readout must be"):
        LSTMBaseline(3, 2, readout="max")
