"""Synapse presets: closed-form kernels, the recursive (LCCD) form against the convolution of eq. 3, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iirsnn.functional import impulse_response, neuron_scan, presets, synapse_filter

F64 = torch.float64
LENGTH = 60
TAUS = [(4.0, 1.0), (10.0, 2.0), (2.5, 0.7), (1.0, 4.0)]


def closed_form(name: str, length: int = LENGTH, lag: int = 0, tau_m=4.0, tau_s=1.0, tau=3.0, d=0) -> np.ndarray:
    """Kernels written out from docs/derivation.md eq. (3) (s counts steps after the spike; zero before ``lag``)."""
    s = np.arange(length, dtype=np.float64)
    k = np.zeros(length)
    if name == "none":
        k[0] = 1.0
    elif name == "delay":
        k[d] = 1.0
    elif name == "first_order":
        a = math.exp(-1 / tau)
        k = np.where(s >= lag, a ** (s - lag), 0.0)
    elif name == "dual_exp":  # lag 1 is eq. 4c, k[s] = a^s - b^s
        a, b = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
        e = s - lag + 1
        k = np.where(s >= lag, a**e - b**e, 0.0)
    elif name == "alpha":  # lag 1: (s / tau) a^s
        a = math.exp(-1 / tau)
        e = s - lag + 1
        k = np.where(s >= lag, e / tau * a**e, 0.0)
    return k


def assert_kernel(got: torch.Tensor, want: np.ndarray, tol: float = 1e-13):
    assert got.dtype == F64
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


# -------------------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize(("tau_m", "tau_s"), TAUS)
def test_dual_exp_lag1_is_eq_4c(tau_m, tau_s):
    a, b = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    c = presets.dual_exp(tau_m, tau_s, dtype=F64)
    # coefficients as in docs/derivation.md eq. (3): alpha_2 = -a b (the paper's printed exponent sign is a typo),
    # beta_1 = a - b
    torch.testing.assert_close(c.alpha, torch.tensor([a + b, -a * b], dtype=F64), rtol=1e-15, atol=0)
    torch.testing.assert_close(c.beta, torch.tensor([0.0, a - b], dtype=F64), rtol=1e-15, atol=0)
    k = impulse_response(c.alpha, c.beta, LENGTH)
    s = np.arange(LENGTH)
    assert_kernel(k, a**s - b**s)
    assert k[0] == 0.0


@pytest.mark.parametrize(("tau_m", "tau_s"), TAUS)
@pytest.mark.parametrize("lag", [0, 2])
def test_dual_exp_other_lags_are_shifts(tau_m, tau_s, lag):
    c = presets.dual_exp(tau_m, tau_s, lag=lag, dtype=F64)
    k = impulse_response(c.alpha, c.beta, LENGTH)
    assert_kernel(k, closed_form("dual_exp", lag=lag, tau_m=tau_m, tau_s=tau_s))
    k1 = impulse_response(*presets.dual_exp(tau_m, tau_s, lag=1, dtype=F64), LENGTH)
    if lag == 0:
        torch.testing.assert_close(k[:-1], k1[1:], rtol=1e-13, atol=1e-15)  # lag 0 = lag 1 one step earlier
        assert k[0] != 0.0
    else:
        torch.testing.assert_close(k[1:], k1[:-1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("tau", [1.0, 3.0, 7.5])
@pytest.mark.parametrize("lag", [0, 1, 3])
def test_alpha_kernel(tau, lag):
    c = presets.alpha(tau, lag=lag, dtype=F64)
    a = math.exp(-1 / tau)
    torch.testing.assert_close(c.alpha, torch.tensor([2 * a, -a * a], dtype=F64), rtol=1e-15, atol=0)
    assert_kernel(impulse_response(c.alpha, c.beta, LENGTH), closed_form("alpha", lag=lag, tau=tau))


@pytest.mark.parametrize("tau", [0.5, 3.0, 20.0])
@pytest.mark.parametrize("lag", [0, 1, 2])
def test_first_order_kernel(tau, lag):
    c = presets.first_order(tau, lag=lag, dtype=F64)
    assert c.alpha.shape == (1,) and c.beta.shape == (lag + 1,)
    assert_kernel(impulse_response(c.alpha, c.beta, LENGTH), closed_form("first_order", lag=lag, tau=tau))


@pytest.mark.parametrize("d", [0, 1, 4])
def test_delay_kernel(d):
    c = presets.delay(d, dtype=F64)
    assert c.alpha.numel() == 0 and c.beta.shape == (d + 1,)
    k = impulse_response(c.alpha, c.beta, 10)
    assert torch.equal(k, torch.tensor(closed_form("delay", 10, d=d)))


def test_none_is_identity():
    c = presets.none(dtype=F64)
    assert c.alpha.numel() == 0 and c.beta.tolist() == [1.0]
    assert torch.equal(impulse_response(c.alpha, c.beta, 10), torch.tensor(closed_form("none", 10)))
    x = (torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(0)) < 0.5).to(F64)
    assert torch.equal(synapse_filter(x, c.alpha, c.beta), x)


def test_preset_by_name_and_dtype():
    torch.testing.assert_close(presets.preset("dual_exp", tau_m=5.0, tau_s=2.0, dtype=F64),
                               presets.dual_exp(5.0, 2.0, dtype=F64))
    torch.testing.assert_close(presets.preset("alpha", tau_s=3.0, dtype=F64), presets.alpha(3.0, dtype=F64))
    torch.testing.assert_close(presets.preset("first_order", tau=2.0, lag=1, dtype=F64),
                               presets.first_order(2.0, 1, dtype=F64))
    torch.testing.assert_close(presets.preset("delay", d=3, dtype=F64), presets.delay(3, dtype=F64))
    torch.testing.assert_close(presets.preset("none", dtype=F64), presets.none(dtype=F64))
    assert presets.dual_exp(4.0, 1.0).alpha.dtype == torch.get_default_dtype()
    assert presets.dual_exp(4.0, 1.0, dtype=F64).beta.dtype == F64


def test_synapse_filter_impulses_per_channel():
    """Per-channel presets in one [C, K] filter: each channel answers an impulse at t0 with its own kernel."""
    cs = [presets.dual_exp(4.0, 1.0, dtype=F64), presets.alpha(3.0, dtype=F64), presets.dual_exp(10.0, 2.0, dtype=F64)]
    kernels = [closed_form("dual_exp", lag=1), closed_form("alpha", lag=1),
               closed_form("dual_exp", lag=1, tau_m=10, tau_s=2)]
    alpha, beta = torch.stack([c.alpha for c in cs]), torch.stack([c.beta for c in cs])
    T, t0 = 40, [0, 5, 11]
    x = torch.zeros(T, 2, 3, dtype=F64)
    for j, t in enumerate(t0):
        x[t, 1, j] = 1.0
    F = synapse_filter(x, alpha, beta)
    assert torch.equal(F[:, 0], torch.zeros(T, 3, dtype=F64))
    for j, t in enumerate(t0):
        want = np.concatenate([np.zeros(t), kernels[j][: T - t]])
        np.testing.assert_allclose(F[:, 1, j].numpy(), want, rtol=0, atol=1e-13)


# ------------------------------------------------------------------------ LCCD form = convolution (eq. 3)


@pytest.mark.parametrize("backend", ["torch", "cpu", "reference"])
@pytest.mark.parametrize(
    ("name", "kwargs", "make"),
    [
        ("dual_exp", dict(lag=1, tau_m=4.0, tau_s=1.0), lambda: presets.dual_exp(4.0, 1.0, dtype=F64)),
        ("dual_exp", dict(lag=0, tau_m=6.0, tau_s=2.0), lambda: presets.dual_exp(6.0, 2.0, lag=0, dtype=F64)),
        ("alpha", dict(lag=1, tau=3.0), lambda: presets.alpha(3.0, dtype=F64)),
        ("first_order", dict(lag=0, tau=5.0), lambda: presets.first_order(5.0, dtype=F64)),
        ("delay", dict(d=3), lambda: presets.delay(3, dtype=F64)),
        ("none", {}, lambda: presets.none(dtype=F64)),
    ],
    ids=["dual_exp_lag1", "dual_exp_lag0", "alpha", "first_order", "delay", "none"],
)
def test_recursive_form_equals_convolution(name, kwargs, make, backend):
    T = 40
    g = torch.Generator().manual_seed(1)
    O = (torch.rand(T, 2, 3, generator=g, dtype=F64) < 0.3).to(F64)
    k = closed_form(name, T, **kwargs)
    c = make()
    F = synapse_filter(O, c.alpha, c.beta, backend=backend)
    conv = np.zeros((T, 2, 3))
    for t in range(T):  # F[t] = sum_s k[s] O[t - s]
        for s in range(t + 1):
            conv[t] += k[s] * O[t - s].numpy()
    assert O.sum() > 10
    np.testing.assert_allclose(F.numpy(), conv, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(("tau_m", "tau_s"), [(4.0, 1.0), (10.0, 2.0), (30.0, 29.0), (2.5, 0.7)])
@pytest.mark.parametrize("lag", [0, 1])
def test_dual_exp_normalize_peaks_at_one(tau_m, tau_s, lag):
    c = presets.dual_exp(tau_m, tau_s, lag=lag, normalize=True, dtype=F64)
    raw = presets.dual_exp(tau_m, tau_s, lag=lag, dtype=F64)
    k = impulse_response(c.alpha, c.beta, 2000)
    assert abs(k.max().item() - 1.0) < 1e-12
    assert k.min().item() >= 0.0
    torch.testing.assert_close(c.alpha, raw.alpha, rtol=0, atol=0)
    # only beta is scaled: the shape of the kernel is kept
    k_raw = impulse_response(raw.alpha, raw.beta, 2000)
    torch.testing.assert_close(k, k_raw / k_raw.max(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("tau", [1.0, 5.0, 40.0])
@pytest.mark.parametrize("lag", [0, 1])
def test_alpha_normalize_peaks_at_one(tau, lag):
    c = presets.alpha(tau, lag=lag, normalize=True, dtype=F64)
    k = impulse_response(c.alpha, c.beta, 3000)
    assert abs(k.max().item() - 1.0) < 1e-12
    # (s / tau) a^s peaks at s = tau in continuous time: the discrete peak is next to it
    assert abs(int(k.argmax()) - (tau + lag - 1)) <= 1


def test_normalize_false_keeps_paper_gain():
    c = presets.alpha(2.0, dtype=F64)
    assert c.beta[1].item() == pytest.approx(math.exp(-0.5) / 2.0, rel=1e-15)


# ------------------------------------------------------------------------------------ simple LIF (none)


@pytest.mark.parametrize(
    ("reset", "leak"), [("hard", 0.8), ("hard", 0.0), ("soft", 1.0), ("soft", 0.9), ("soft", 0.0)]
)
def test_none_synapse_gives_simple_lif(reset, leak):
    """A 'none' synapse and neuron_scan equal a textbook LIF written with Python floats.

    hard: v <- leak v + I; spike if v > 1; then v <- 0.
    soft (reset_decay = 0): the threshold is subtracted from V at the step after a spike,
    V[t] = leak V[t-1] + I[t] - O[t-1]; with leak = 1 this is the integrate-and-fire neuron
    v <- v + I; spike if v > 1; v <- v - 1.
    """
    g = torch.Generator().manual_seed(5)
    T, N_in, N = 30, 4, 3
    x = (torch.rand(T, 2, N_in, generator=g, dtype=F64) < 0.4).to(F64)
    W = torch.rand(N, N_in, generator=g, dtype=F64) * 0.8
    c = presets.none(dtype=F64)
    F = synapse_filter(x, c.alpha, c.beta)
    I = F @ W.t()
    O = neuron_scan(I, leak, 0.0, 1.0, reset="hard" if reset == "hard" else "filter")

    want = np.zeros((T, 2, N))
    for b in range(2):
        for n in range(N):
            v, spiked = 0.0, 0.0
            for t in range(T):
                i_t = sum(W[n, j].item() * x[t, b, j].item() for j in range(N_in))
                if reset == "hard":
                    v = leak * v + i_t
                    want[t, b, n] = float(v > 1.0)
                    if v > 1.0:
                        v = 0.0
                elif leak == 1.0:  # textbook IF: subtract right after the spike
                    v = v + i_t
                    want[t, b, n] = float(v > 1.0)
                    if v > 1.0:
                        v -= 1.0
                else:
                    v = leak * v + i_t - spiked
                    spiked = float(v > 1.0)
                    want[t, b, n] = spiked
    assert 0.05 < want.mean() < 0.8
    np.testing.assert_array_equal(O.numpy(), want)


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: presets.first_order(0.0), "tau must be > 0"),
        (lambda: presets.first_order(-2.0), "tau must be > 0"),
        (lambda: presets.alpha(0.0), "tau must be > 0"),
        (lambda: presets.alpha(-1.0), "tau must be > 0"),
        (lambda: presets.dual_exp(0.0, 1.0), "tau_m must be > 0"),
        (lambda: presets.dual_exp(4.0, -1.0), "tau_s must be > 0"),
        (lambda: presets.dual_exp(4.0, float("nan")), "tau_s must be a finite number"),
        (lambda: presets.dual_exp(3.0, 3.0), "tau_m != tau_s"),
        (lambda: presets.preset("dual_exp", tau_m=2.0, tau_s=2.0), "tau_m != tau_s"),
        (lambda: presets.preset("exponential"), "unknown synapse preset 'exponential'"),
        (lambda: presets.delay(-1), "delay d must be an integer >= 0"),
        (lambda: presets.preset("delay", d=-2), "delay d must be an integer >= 0"),
        (lambda: presets.delay(1.5), "delay d must be an integer >= 0"),
        (lambda: presets.dual_exp(4.0, 1.0, lag=-1), "lag must be an integer >= 0"),
        (lambda: presets.first_order(2.0, lag=-1), "lag must be an integer >= 0"),
    ],
)
def test_preset_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
