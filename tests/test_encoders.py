"""Encoders: exact outputs, rates within statistical bounds, LIF encoder against hand-written loops."""

from __future__ import annotations

import math

import pytest
import torch

from iirsnn.functional import encoders

SIGMAS = 5.0  # tolerance of the rate tests in standard errors


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_rates(spikes: torch.Tensor, p: torch.Tensor) -> None:
    """Per-input firing frequency over T steps within SIGMAS standard errors of p."""
    T = spikes.shape[0]
    freq = spikes.double().mean(0)
    bound = SIGMAS * torch.sqrt(p * (1 - p) / T) + 1e-12
    assert torch.all((freq - p).abs() <= bound), (freq, p)


# copy_along_time ------------------------------------------------------------------------------


def test_copy_along_time_repeats_input_and_passes_gradient():
    x = torch.rand(3, 2, 4, dtype=torch.float64, requires_grad=True)
    out = encoders.copy_along_time(x, 5)
    assert out.shape == (5, 3, 2, 4) and out.dtype == torch.float64
    for t in range(5):
        assert torch.equal(out[t], x)
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 5.0))


# bernoulli_rate -------------------------------------------------------------------------------


def test_bernoulli_rate_matches_probabilities():
    x = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]])
    spikes = encoders.bernoulli_rate(x, 20000, generator=_gen())
    assert spikes.shape == (20000, 1, 5) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes[:, 0, 0].sum() == 0 and spikes[:, 0, 4].sum() == 20000
    _assert_rates(spikes[:, 0], x[0].double())


def test_bernoulli_rate_applies_gain():
    x = torch.full((1, 2), 0.2, dtype=torch.float64)
    spikes = encoders.bernoulli_rate(x, 20000, gain=2.0, generator=_gen(1))
    assert spikes.dtype == torch.float64
    _assert_rates(spikes[:, 0], torch.full((2,), 0.4, dtype=torch.float64))


def test_bernoulli_rate_draws_independently_over_time_and_batch():
    """Counts over T of many equal inputs have the binomial variance T p (1 - p)."""
    T, p = 50, 0.3
    counts = encoders.bernoulli_rate(torch.full((4000,), p), T, generator=_gen(2)).sum(0).double()
    assert abs(counts.mean().item() - T * p) < 0.2
    assert abs(counts.var().item() / (T * p * (1 - p)) - 1) < 0.1


def test_bernoulli_rate_is_reproducible_with_a_generator():
    x = torch.rand(4, 6, generator=_gen(3))
    a = encoders.bernoulli_rate(x, 10, generator=_gen(7))
    b = encoders.bernoulli_rate(x, 10, generator=_gen(7))
    c = encoders.bernoulli_rate(x, 10, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


# poisson --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [1e-3, 1e-2])
def test_poisson_uses_the_exact_bin_probability(dt):
    rates = torch.tensor([[0.0, 50.0, 200.0, 1000.0]], dtype=torch.float64)
    spikes = encoders.poisson(rates, 20000, dt=dt, generator=_gen(4))
    assert spikes.shape == (20000, 1, 4) and spikes.dtype == torch.float64
    assert spikes[:, 0, 0].sum() == 0
    p = 1 - torch.exp(-rates[0] * dt)  # 1000 Hz at 1 ms: 0.632, not rate * dt = 1
    _assert_rates(spikes[:, 0], p)


# latency --------------------------------------------------------------------------------------


def _only_spike_times(spikes: torch.Tensor) -> list[int | None]:
    """Step of the single spike of each input of a [T, N] train (None: no spike)."""
    assert torch.all(spikes.sum(0) <= 1)
    return [int(col.argmax()) if col.sum() else None for col in spikes.t()]


def test_latency_linear_exact_times():
    x = torch.tensor([[1.0, 0.7, 0.42, 0.04, 0.0]], dtype=torch.float64)
    spikes = encoders.latency(x, 11)
    assert spikes.shape == (11, 1, 5) and spikes.dtype == torch.float64
    # round((1 - x) * 10): 0, 3, 5.8 -> 6, 9.6 -> 10; x = 0 never fires
    assert _only_spike_times(spikes[:, 0]) == [0, 3, 6, 10, None]


def test_latency_linear_threshold_tau_and_clipping():
    x = torch.tensor([0.3, 0.31, 0.5, 0.9], dtype=torch.float64)
    # tau = 4: round(4 (1 - x)) = -, 2.76 -> 3, 2, 0.4 -> 0; x <= threshold never fires
    assert _only_spike_times(encoders.latency(x, 11, tau=4.0, threshold=0.3)) == [None, 3, 2, 0]
    # tau = 20 > T - 1: 14, 13.8 -> 14, 10, 2 clipped to T - 1 = 4 where later
    assert _only_spike_times(encoders.latency(x, 5, tau=20.0)) == [4, 4, 4, 2]


def test_latency_log_exact_times():
    x = torch.tensor([1.0, 0.6, 0.51, 0.5, 0.2, 2.0], dtype=torch.float64)
    threshold, tau, T = 0.5, 2.0, 6
    expected = []
    for v in x.tolist():
        t = tau * math.log(v / (v - threshold)) if v > threshold else None
        expected.append(None if t is None else min(round(t), T - 1))
    assert expected == [1, 4, 5, None, None, 1]  # 1.39, 3.58, 7.86 (clipped), -, -, 0.58
    spikes = encoders.latency(x, T, tau=tau, threshold=threshold, mode="log")
    assert _only_spike_times(spikes) == expected


def test_latency_log_default_tau_is_one():
    x = torch.tensor([0.9, 0.52], dtype=torch.float64)
    # ln(0.9 / 0.4) = 0.81 -> 1, ln(0.52 / 0.02) = 3.26 -> 3
    assert _only_spike_times(encoders.latency(x, 10, threshold=0.5, mode="log")) == [1, 3]


def test_latency_fires_at_most_once_for_random_input():
    x = torch.rand(8, 3, 5, generator=_gen(5))
    spikes = encoders.latency(x, 7)
    assert spikes.shape == (7, 8, 3, 5)
    assert torch.equal(spikes.sum(0), (x > 0).float())


# current_lif_encoder --------------------------------------------------------------------------


def _lif_loop(current: torch.Tensor, lam: float, th: float, theta: float, hard: bool) -> torch.Tensor:
    """Independent float64 loop of V = lam V + I - th R, R = theta R + O[t-1] (or a hard reset)."""
    T, n = current.shape
    out = torch.zeros(T, n, dtype=torch.float64)
    for i in range(n):
        v = r = o = 0.0
        for t in range(T):
            if hard:
                v = lam * v * (1.0 - o) + current[t, i].item()
            else:
                r = theta * r + o
                v = lam * v + current[t, i].item() - th * r
            o = 1.0 if v > th else 0.0
            out[t, i] = o
    return out


@pytest.mark.parametrize(("reset", "reset_decay"), [("filter", 0.0), ("filter", 0.6), ("hard", 0.0)])
def test_current_lif_encoder_matches_hand_written_loop(reset, reset_decay):
    x = torch.randn(40, 2, 3, generator=_gen(6), dtype=torch.float64)
    gain, bias, tau, th = 1.7, 0.2, 3.0, 0.8
    spikes = encoders.current_lif_encoder(x, threshold=th, tau=tau, gain=gain, bias=bias, split_sign=True,
                                          reset=reset, reset_decay=reset_decay)
    assert spikes.shape == (40, 2, 6) and spikes.dtype == torch.float64
    current = gain * x + bias
    pos, neg = current.clamp(min=0).reshape(40, 6), (-current).clamp(min=0).reshape(40, 6)
    lam = math.exp(-1 / tau)
    ref_pos = _lif_loop(pos, lam, th, reset_decay, reset == "hard").reshape(40, 2, 3)
    ref_neg = _lif_loop(neg, lam, th, reset_decay, reset == "hard").reshape(40, 2, 3)
    assert torch.equal(spikes[:, :, :3], ref_pos) and torch.equal(spikes[:, :, 3:], ref_neg)
    assert 0 < spikes.sum() < spikes.numel()  # neither silent nor saturated


def test_current_lif_encoder_without_split_sign():
    x = torch.rand(30, 2, 4, generator=_gen(9), dtype=torch.float64)
    spikes = encoders.current_lif_encoder(x, threshold=0.5, tau=2.0)
    ref = _lif_loop(x.reshape(30, 8), math.exp(-0.5), 0.5, 0.0, False).reshape(30, 2, 4)
    assert torch.equal(spikes, ref)


def test_current_lif_encoder_hard_reset_constant_current_closed_form_interval():
    """Hard reset: V_k = I (1 - lam^k) / (1 - lam) after k steps; it fires every k* steps."""
    current, tau, th, T = 0.3, 5.0, 1.0, 100
    lam = math.exp(-1 / tau)
    k = math.floor(math.log(1 - th * (1 - lam) / current) / math.log(lam)) + 1  # = 5
    x = torch.full((T, 1, 1), current)
    spikes = encoders.current_lif_encoder(x, threshold=th, tau=tau, reset="hard")[:, 0, 0]
    assert torch.nonzero(spikes).flatten().tolist() == list(range(k - 1, T, k))


def test_current_lif_encoder_integrate_and_fire_count():
    """tau = inf, subtractive reset: spike n needs t I > n th, so T steps give ceil(T I / th) - 1 spikes."""
    current, T = 0.375, 100  # exact in binary: T I = 37.5
    x = torch.tensor([current, -current]).reshape(1, 1, 2).expand(T, 1, 2).contiguous()
    spikes = encoders.current_lif_encoder(x, tau=math.inf, split_sign=True)
    assert spikes.sum((0, 1)).tolist() == [37.0, 0.0, 0.0, 37.0]


def test_current_lif_encoder_accepts_input_requiring_grad():
    x = torch.rand(10, 2, 3, requires_grad=True)
    spikes = encoders.current_lif_encoder(x, threshold=0.5)
    assert not spikes.requires_grad and spikes.sum() > 0


# validation -----------------------------------------------------------------------------------


FLOAT = torch.rand(2, 3)


@pytest.mark.parametrize("encode", [
    lambda x: encoders.copy_along_time(x, 3),
    lambda x: encoders.bernoulli_rate(x, 3),
    lambda x: encoders.latency(x, 3),
])
def test_integer_input_is_a_type_error(encode):
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype.*x\.float\(\)"):
        encode(torch.ones(2, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        encode(torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        encode(torch.tensor([0.5, float("nan")]))


@pytest.mark.parametrize(("T", "error", "fragment"), [
    (0, ValueError, "T .* must be a positive int, got 0"),
    (-2, ValueError, "must be a positive int, got -2"),
    (2.5, TypeError, "T .* must be an int, got float"),
    (True, TypeError, "must be an int, got bool"),
])
def test_steps_must_be_a_positive_int(T, error, fragment):
    for encode in (encoders.copy_along_time, encoders.bernoulli_rate, encoders.poisson, encoders.latency):
        with pytest.raises(error, match=fragment):
            encode(FLOAT, T)


def test_zero_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match=r"x must be \[B, \.\.\.\] with a batch dimension"):
        encoders.copy_along_time(torch.tensor(0.5), 3)


def test_bernoulli_rate_validation():
    with pytest.raises(ValueError, match=r"x \* gain must lie in \[0\.0, 1\.0\]"):
        encoders.bernoulli_rate(torch.tensor([0.5, 1.5]), 3)
    with pytest.raises(ValueError, match=r"x \* gain must lie in \[0\.0, 1\.0\]"):
        encoders.bernoulli_rate(torch.tensor([0.5, 0.8]), 3, gain=2.0)
    with pytest.raises(ValueError, match="gain must be a finite number"):
        encoders.bernoulli_rate(FLOAT, 3, gain=float("inf"))
    with pytest.raises(TypeError, match="gain must be a real number"):
        encoders.bernoulli_rate(FLOAT, 3, gain="2")


def test_poisson_validation():
    with pytest.raises(ValueError, match="rates must lie in"):
        encoders.poisson(torch.tensor([10.0, -1.0]), 3)
    with pytest.raises(ValueError, match="dt must be > 0"):
        encoders.poisson(FLOAT, 3, dt=0.0)
    with pytest.raises(TypeError, match=r"rates must have a floating-point dtype.*rates\.float\(\)"):
        encoders.poisson(torch.tensor([10, 20]), 3)
    with pytest.raises(ValueError, match="rates contains 0 NaN and 1 Inf"):
        encoders.poisson(torch.tensor([10.0, float("inf")]), 3)


def test_latency_validation():
    with pytest.raises(ValueError, match=r"x must lie in \[0\.0, 1\.0\]"):
        encoders.latency(torch.tensor([0.5, 1.2]), 3)
    with pytest.raises(ValueError, match=r"x must lie in \[0\.0, inf\]"):
        encoders.latency(torch.tensor([0.5, -0.2]), 3, threshold=0.1, mode="log")
    with pytest.raises(ValueError, match="needs threshold > 0"):
        encoders.latency(FLOAT, 3, mode="log")
    with pytest.raises(ValueError, match="latency mode must be one of"):
        encoders.latency(FLOAT, 3, mode="exp")
    with pytest.raises(ValueError, match="tau must be > 0"):
        encoders.latency(FLOAT, 3, tau=0.0)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        encoders.latency(FLOAT, 3, threshold=float("nan"))


def test_current_lif_encoder_validation():
    x = torch.rand(5, 2, 3)
    with pytest.raises(ValueError, match=r"x must be time-major \[T, B, C, \.\.\.\]"):
        encoders.current_lif_encoder(torch.rand(5, 3))
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype.*x\.float\(\)"):
        encoders.current_lif_encoder(torch.ones(5, 2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        encoders.current_lif_encoder(torch.tensor(float("nan")).reshape(1, 1, 1))
    with pytest.raises(ValueError, match="tau must be > 0"):
        encoders.current_lif_encoder(x, tau=-1.0)
    with pytest.raises(ValueError, match="tau must be a finite number"):
        encoders.current_lif_encoder(x, tau=float("nan"))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        encoders.current_lif_encoder(x, threshold=0.0)
    with pytest.raises(ValueError, match="reset must be one of"):
        encoders.current_lif_encoder(x, reset="soft")
    with pytest.raises(ValueError, match=r"reset_decay must lie in \[0, 1\]"):
        encoders.current_lif_encoder(x, reset_decay=1.5)
    with pytest.raises(ValueError, match="bias must be a finite number"):
        encoders.current_lif_encoder(x, bias=float("inf"))
