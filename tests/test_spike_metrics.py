"""spike_timing_f1 and filtered_mse against independent references: maximum bipartite matching by
augmenting paths and by exhaustive search, an explicit convolution with the normalised kernel."""

from __future__ import annotations

import itertools
import math
import time

import pytest
import torch

from iirsnn.functional import filtered_mse, spike_timing_f1
from iirsnn.functional import spike_metrics as sm


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spikes(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    return (torch.rand(*shape, generator=_gen(seed)) < p).float()


# references -----------------------------------------------------------------------------------


def _max_matching_augmenting(a: list[int], b: list[int], k: int) -> int:
    """Kuhn's augmenting-path maximum bipartite matching of spike times a and b (edge: |a_i - b_j| <= k)."""
    partner_of_b: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j, tb in enumerate(b):
            if abs(a[i] - tb) <= k and j not in seen:
                seen.add(j)
                if j not in partner_of_b or augment(partner_of_b[j], seen):
                    partner_of_b[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(a)))


def _max_matching_exhaustive(a: list[int], b: list[int], k: int) -> int:
    """The largest number of disjoint pairs, trying every injective map of a subset of a into b."""
    best = 0
    for size in range(min(len(a), len(b)), 0, -1):
        for rows in itertools.combinations(range(len(a)), size):
            for cols in itertools.permutations(range(len(b)), size):
                if all(abs(a[i] - b[j]) <= k for i, j in zip(rows, cols, strict=True)):
                    return size
    return best


def _reference_f1(output: torch.Tensor, target: torch.Tensor, k: int, matching) -> torch.Tensor:
    out, tgt = output.flatten(2), target.flatten(2)
    result = []
    for b in range(out.shape[1]):
        matches = n_out = n_tgt = 0
        for n in range(out.shape[2]):
            a = torch.nonzero(out[:, b, n]).flatten().tolist()
            t = torch.nonzero(tgt[:, b, n]).flatten().tolist()
            n_out, n_tgt = n_out + len(a), n_tgt + len(t)
            matches += matching(a, t, k)
        if n_out == 0 and n_tgt == 0:
            result.append(1.0)
        elif n_out == 0 or n_tgt == 0:
            result.append(0.0)
        else:
            p, r = matches / n_out, matches / n_tgt
            result.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return torch.tensor(result)


# spike_timing_f1 ------------------------------------------------------------------------------


def test_the_two_references_agree():
    for seed in range(200):
        g = _gen(seed)
        a = sorted(torch.randperm(10, generator=g)[: int(torch.randint(0, 5, (), generator=g))].tolist())
        b = sorted(torch.randperm(10, generator=g)[: int(torch.randint(0, 5, (), generator=g))].tolist())
        k = int(torch.randint(0, 4, (), generator=g))
        assert _max_matching_augmenting(a, b, k) == _max_matching_exhaustive(a, b, k), (a, b, k)


@pytest.mark.parametrize("tolerance", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("seed", range(6))
def test_f1_equals_exhaustive_maximum_matching_on_tiny_cases(tolerance, seed):
    p = [0.15, 0.3, 0.5][seed % 3]
    output, target = _spikes(9, 4, 3, p=p, seed=seed), _spikes(9, 4, 3, p=p, seed=100 + seed)
    expected = _reference_f1(output, target, tolerance, _max_matching_exhaustive)
    torch.testing.assert_close(spike_timing_f1(output, target, tolerance), expected)


@pytest.mark.parametrize("tolerance", [1, 2, 4])
def test_f1_equals_augmenting_path_matching_on_larger_cases(tolerance):
    output, target = _spikes(60, 5, 7, p=0.2, seed=1), _spikes(60, 5, 7, p=0.2, seed=2)
    expected = _reference_f1(output, target, tolerance, _max_matching_augmenting)
    torch.testing.assert_close(spike_timing_f1(output, target, tolerance), expected)


def test_greedy_traps_are_avoided():
    # output at 2 and 4, target at 0 and 3 with tolerance 2: nearest-first would pair 2-3 and leave 4 and 0
    output, target = torch.zeros(6, 1, 1), torch.zeros(6, 1, 1)
    output[[2, 4], 0, 0] = 1
    target[[0, 3], 0, 0] = 1
    assert spike_timing_f1(output, target, 2).item() == 1.0
    assert spike_timing_f1(target, output, 2).item() == 1.0  # symmetric


def test_f1_of_a_hand_computed_case():
    output, target = torch.zeros(10, 1, 2), torch.zeros(10, 1, 2)
    output[[1, 5, 9], 0, 0] = 1  # neuron 0: 1-2 match, 5 and 9 do not (targets at 2 only)
    target[2, 0, 0] = 1
    output[3, 0, 1] = 1  # neuron 1: 3-4 match, target 8 unmatched
    target[[4, 8], 0, 1] = 1
    p, r = 2 / 4, 2 / 3
    assert spike_timing_f1(output, target, 1).item() == pytest.approx(2 * p * r / (p + r))


def test_shifted_copy():
    pattern = _spikes(40, 3, 20, p=0.2, seed=3)
    pattern[-3:] = 0  # nothing falls off the end when shifted
    shifted = torch.zeros_like(pattern)
    shifted[2:] = pattern[:-2]
    torch.testing.assert_close(spike_timing_f1(shifted, pattern, 2), torch.ones(3))
    torch.testing.assert_close(spike_timing_f1(pattern, shifted, 2), torch.ones(3))
    assert bool((spike_timing_f1(shifted, pattern, 1) < 0.6).all())
    torch.testing.assert_close(spike_timing_f1(shifted, pattern, 1),
                               _reference_f1(shifted, pattern, 1, _max_matching_augmenting))


def test_identical_trains_and_empty_conventions():
    x = _spikes(20, 4, 5, seed=4)
    torch.testing.assert_close(spike_timing_f1(x, x, 0), torch.ones(4))
    empty = torch.zeros(20, 4, 5)
    torch.testing.assert_close(spike_timing_f1(empty, empty), torch.ones(4))
    torch.testing.assert_close(spike_timing_f1(x, empty), torch.zeros(4))
    torch.testing.assert_close(spike_timing_f1(empty, x), torch.zeros(4))
    mixed = x.clone()
    mixed[:, 1] = 0  # one sample empty in output only
    torch.testing.assert_close(spike_timing_f1(mixed, x), torch.tensor([1.0, 0.0, 1.0, 1.0]))


def test_spikes_at_the_edges_and_a_single_step():
    output, target = torch.zeros(5, 1, 1), torch.zeros(5, 1, 1)
    output[4], target[3] = 1, 1
    assert spike_timing_f1(output, target, 1).item() == 1.0
    assert spike_timing_f1(output, target, 0).item() == 0.0
    one = torch.ones(1, 2, 3)
    torch.testing.assert_close(spike_timing_f1(one, one, 3), torch.ones(2))


def test_dtypes_and_extra_dimensions():
    output, target = _spikes(30, 2, 3, 4, p=0.2, seed=5), _spikes(30, 2, 3, 4, p=0.2, seed=6)
    expected = _reference_f1(output, target, 2, _max_matching_augmenting)
    torch.testing.assert_close(spike_timing_f1(output, target), expected)
    torch.testing.assert_close(spike_timing_f1(output.bool(), target.bool()), expected)
    torch.testing.assert_close(spike_timing_f1(output.long(), target.long()), expected)
    f64 = spike_timing_f1(output.double(), target.double())
    assert f64.dtype == torch.float64
    torch.testing.assert_close(f64, expected.double())


def test_f1_is_fast_on_the_experiment_size():
    output, target = _spikes(300, 10, 300, p=0.03, seed=7), _spikes(300, 10, 300, p=0.03, seed=8)
    spike_timing_f1(output, target)
    start = time.perf_counter()
    spike_timing_f1(output, target)
    assert time.perf_counter() - start < 1.0


def test_f1_validation():
    x = _spikes(10, 2, 3)
    with pytest.raises(ValueError, match=r"one shape.*output \[10, 2, 3\] and target \[10, 2, 4\]"):
        spike_timing_f1(x, _spikes(10, 2, 4))
    with pytest.raises(TypeError, match=r"output is torch.float32 but target is torch.float64"):
        spike_timing_f1(x, x.double())
    with pytest.raises(ValueError, match=r"time-major \[T, B, N, \.\.\.\]"):
        spike_timing_f1(x[0], x[0])
    with pytest.raises(ValueError, match="no time steps"):
        spike_timing_f1(x[:0], x[:0])
    with pytest.raises(TypeError, match=r"target must be a torch\.Tensor"):
        spike_timing_f1(x, x.tolist())
    with pytest.raises(ValueError, match=r"output must hold 0/1 spikes.*0\.5"):
        spike_timing_f1(x * 0.5, x)
    with pytest.raises(ValueError, match="tolerance must be an integer"):
        spike_timing_f1(x, x, -1)
    with pytest.raises(ValueError, match="tolerance must be an integer"):
        spike_timing_f1(x, x, 1.5)
    with pytest.raises(TypeError, match="real 0/1 spikes"):
        spike_timing_f1(x.to(torch.complex64), x.to(torch.complex64))


# filtered_mse ---------------------------------------------------------------------------------


def _reference_mse(output: torch.Tensor, target: torch.Tensor, tau_m: float, tau_s: float, delay: int):
    """Explicit convolution with kernel a^s - b^s (s >= 1) divided by its largest value."""
    steps = output.shape[0]
    a, b = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    kernel = torch.tensor([a**s - b**s for s in range(steps)], dtype=torch.float64)
    kernel = kernel / kernel.max()
    shifted = torch.zeros_like(target)
    shifted[delay:] = target[: steps - delay]

    def filt(x):
        return torch.stack([sum(kernel[s] * x[t - s] for s in range(t + 1)) for t in range(steps)])

    diff = filt(output.double()) - filt(shifted.double())
    return diff.square().mean(dim=(0, 2))


@pytest.mark.parametrize("delay", [0, 1, 4])
@pytest.mark.parametrize(("tau_m", "tau_s"), [(8.0, 2.0), (4.0, 1.0)])
def test_filtered_mse_equals_explicit_convolution(delay, tau_m, tau_s):
    output, target = _spikes(40, 3, 5, seed=9).double(), _spikes(40, 3, 5, seed=10).double()
    got = filtered_mse(output, target, tau_m, tau_s, delay)
    assert got.shape == (3,)
    torch.testing.assert_close(got, _reference_mse(output, target, tau_m, tau_s, delay))


def test_filtered_mse_kernel_peaks_at_one_and_delay_cancels():
    impulse = torch.zeros(30, 1, 1)
    impulse[0] = 1
    # against an empty target, mse = mean of kernel^2; the kernel's peak is 1
    alpha, beta = sm.dual_exp(8.0, 2.0, lag=1, normalize=True)
    from iirsnn.functional import impulse_response

    kernel = impulse_response(alpha.double(), beta.double(), 30)
    assert kernel.max().item() == pytest.approx(1.0)
    torch.testing.assert_close(filtered_mse(impulse, torch.zeros_like(impulse)),
                               kernel.square().mean().float().reshape(1))
    pattern = _spikes(50, 2, 6, seed=11)
    pattern[-4:] = 0
    late = torch.zeros_like(pattern)
    late[4:] = pattern[:-4]
    torch.testing.assert_close(filtered_mse(late, pattern, delay=4), torch.zeros(2))
    assert bool((filtered_mse(late, pattern) > 0).all())


def test_filtered_mse_validation():
    x = _spikes(10, 2, 3)
    with pytest.raises(ValueError, match="one shape"):
        filtered_mse(x, x[:, :1])
    with pytest.raises(TypeError, match=r"float32 but target is torch\.float64"):
        filtered_mse(x, x.double())
    with pytest.raises(TypeError, match="must be floating point"):
        filtered_mse(x.long(), x.long())
    with pytest.raises(ValueError, match=r"delay must be an integer number of steps in 0\.\.9"):
        filtered_mse(x, x, delay=10)
    with pytest.raises(ValueError, match="delay must be"):
        filtered_mse(x, x, delay=-1)
