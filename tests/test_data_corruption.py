"""The corruption model of the associative-memory experiment."""

from pathlib import Path

import pytest
import torch

from iirsnn.data.associative import load_patterns
from iirsnn.data.corruption import (
    DELETIONS,
    Corruption,
    add_background,
    corrupt,
    delete_block,
    delete_neurons,
    delete_steps,
    jitter,
)


@pytest.fixture(scope="module")
def patterns(shared_data: Path) -> torch.Tensor:
    return load_patterns(shared_data)


def _one_spike_per_neuron(n_steps: int = 300, n_neurons: int = 300, step: int = 150) -> torch.Tensor:
    pattern = torch.zeros(n_steps, n_neurons)
    pattern[step] = 1
    return pattern


def test_deletions_remove_exactly_their_region(patterns: torch.Tensor) -> None:
    pattern = patterns[2]
    rows = delete_neurons(pattern, 100, 40)
    assert rows[:, 100:140].sum() == 0 and torch.equal(rows[:, :100], pattern[:, :100])
    assert torch.equal(rows[:, 140:], pattern[:, 140:])
    assert (pattern - rows).sum() == pattern[:, 100:140].sum() > 0
    cols = delete_steps(pattern, 50, 30)
    assert cols[50:80].sum() == 0 and (pattern - cols).sum() == pattern[50:80].sum() > 0
    assert torch.equal(cols[:50], pattern[:50]) and torch.equal(cols[80:], pattern[80:])
    block = delete_block(pattern, 100, 40, 120, 40)
    changed = (block != pattern).nonzero()
    assert block[100:140, 120:160].sum() == 0 and len(changed) == pattern[100:140, 120:160].sum() > 0
    assert changed[:, 0].min() >= 100 and changed[:, 0].max() < 140
    assert changed[:, 1].min() >= 120 and changed[:, 1].max() < 160
    assert torch.equal(pattern, patterns[2])  # inputs untouched
    with pytest.raises(ValueError, match="outside the pattern"):
        delete_neurons(pattern, 280, 40)


def test_jitter_moves_each_spike_by_a_rounded_gaussian() -> None:
    pattern = _one_spike_per_neuron()
    assert torch.equal(jitter(pattern, 0.0), pattern)
    moved = jitter(pattern, 3.0, torch.Generator().manual_seed(0))
    assert moved.sum(0).tolist() == [1.0] * 300  # one spike per neuron still, none lost
    shift = moved.argmax(0).float() - 150
    assert shift.std().item() == pytest.approx(3.0, rel=0.2) and shift.abs().max() <= 15
    assert torch.equal(shift, shift.round())
    edges = jitter(_one_spike_per_neuron(step=0), 1e9, torch.Generator().manual_seed(0))
    times = edges.argmax(0)
    assert edges.sum() == 300 and set(times.tolist()) == {0, 299}  # clipped into the window


def test_background_adds_spikes_with_the_given_probability(patterns: torch.Tensor) -> None:
    pattern = patterns[0]
    assert torch.equal(add_background(pattern, 0.0), pattern)
    assert add_background(pattern, 1.0).sum() == pattern.numel()
    noisy = add_background(pattern, 0.01, torch.Generator().manual_seed(0))
    assert bool((noisy >= pattern).all())
    added = (noisy - pattern).sum().item()
    expected = 0.01 * (pattern.numel() - pattern.sum().item())
    assert abs(added - expected) < 5 * expected**0.5


def test_corruption_is_deterministic_with_a_seed(patterns: torch.Tensor) -> None:
    corruption = Corruption(p_modify=1.0, p_delete=1.0, deletions=DELETIONS)
    first = corrupt(patterns[4], corruption, torch.Generator().manual_seed(7))
    again = corrupt(patterns[4], corruption, torch.Generator().manual_seed(7))
    other = corrupt(patterns[4], corruption, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(corrupt(patterns[4], Corruption.clean()), patterns[4])


@pytest.mark.parametrize(("kind", "axis", "width"), [("neurons", 1, 40), ("steps", 0, 30)])
def test_corrupt_deletes_one_band_of_the_configured_width(kind: str, axis: int, width: int) -> None:
    pattern = torch.ones(300, 300)
    corruption = Corruption(p_modify=1.0, p_jitter=0.0, p_delete=1.0, deletions=(kind,), p_background=0.0)
    for seed in range(5):
        out = corrupt(pattern, corruption, torch.Generator().manual_seed(seed))
        silent = (out.sum(1 - axis) == 0).nonzero().flatten()
        assert len(silent) == width and silent.max() - silent.min() == width - 1
        assert out.sum() == 300 * (300 - width)


def test_corrupt_block_and_full_background() -> None:
    corruption = Corruption(p_modify=1.0, p_jitter=0.0, p_delete=1.0, deletions=("block",),
                               block_steps=20, block_neurons=50, p_background=0.0)
    out = corrupt(torch.ones(300, 300), corruption, torch.Generator().manual_seed(3))
    zeros = (out == 0).nonzero()
    assert len(zeros) == 20 * 50
    assert (zeros.max(0).values - zeros.min(0).values).tolist() == [19, 49]
    full = Corruption(p_modify=0.0, p_background=1.0)
    assert corrupt(torch.zeros(30, 20), full).sum() == 600


def test_corruption_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="p_modify"):
        Corruption(p_modify=1.5)
    with pytest.raises(ValueError, match="deletions"):
        Corruption(deletions=("rows",))
    with pytest.raises(ValueError, match="n_neurons_deleted = 40 exceeds the pattern's 30 neurons"):
        corrupt(torch.zeros(100, 30), Corruption(deletions=("neurons",)))
