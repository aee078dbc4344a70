"""Losses against independent computations: torch's cross-entropy / MSE, an explicit convolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf

from iirsnn.functional import losses, presets


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spikes(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    return (torch.rand(*shape, generator=_gen(seed), dtype=torch.float64) < p).double()


# spike_count_cross_entropy --------------------------------------------------------------------


def test_cross_entropy_of_a_hand_computed_case():
    spikes = torch.zeros(4, 1, 2)
    spikes[:3, 0, 0] = 1.0  # counts (3, 1)
    spikes[0, 0, 1] = 1.0
    loss = losses.spike_count_cross_entropy(spikes, torch.tensor([0]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_cross_entropy_equals_torch_on_counts(reduction, scale):
    spikes = _spikes(12, 5, 4).requires_grad_()
    target = torch.tensor([0, 3, 1, 3, 2])
    loss = losses.spike_count_cross_entropy(spikes, target, scale=scale, reduction=reduction)
    ref_spikes = spikes.detach().clone().requires_grad_()
    ref = nnf.cross_entropy(ref_spikes.sum(0) * scale, target, reduction=reduction)
    assert loss.shape == ref.shape
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    loss.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(spikes.grad, ref_spikes.grad, rtol=1e-12, atol=1e-12)


def test_cross_entropy_accepts_other_integer_targets():
    spikes = _spikes(6, 3, 4)
    target = torch.tensor([0, 3, 2])
    expected = losses.spike_count_cross_entropy(spikes, target)
    torch.testing.assert_close(losses.spike_count_cross_entropy(spikes, target.int()), expected)
    torch.testing.assert_close(losses.spike_count_cross_entropy(spikes, target.to(torch.uint8)), expected)


def test_cross_entropy_validation():
    spikes = _spikes(6, 3, 4)
    with pytest.raises(TypeError, match=r"target must hold integer class indices.*target\.long\(\)"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([True, False, True]))
    with pytest.raises(TypeError, match=r"target must be a torch\.Tensor"):
        losses.spike_count_cross_entropy(spikes, [0, 1, 2])
    with pytest.raises(ValueError, match=r"target must be \[B\] = \[3\] class indices.*got shape \[2\]"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"target must be \[B\] = \[3\].*got shape \[3, 1\]"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\] \(K = spikes.shape\[2\] = 4\)"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\]"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match=r"spikes must be \[T, B, K\] \(3 dimensions\)"):
        losses.spike_count_cross_entropy(spikes.unsqueeze(-1), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"spikes must be time-major \[T, B, K\]"):
        losses.spike_count_cross_entropy(spikes[0], torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=r"spikes must have a floating-point dtype.*spikes\.float\(\)"):
        losses.spike_count_cross_entropy(spikes.long(), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0, 1, 2]), scale=0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.spike_count_cross_entropy(spikes, torch.tensor([0, 1, 2]), reduction="avg")


# van_rossum_distance --------------------------------------------------------------------------


def _dual_exp_kernel(T: int, tau_m: float, tau_s: float) -> np.ndarray:
    s = np.arange(T, dtype=np.float64)
    return np.exp(-s / tau_m) - np.exp(-s / tau_s)  # a^s - b^s, k[0] = 0


def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution along axis 0 by explicit sums: F[t] = sum_{s <= t} k[s] x[t - s]."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for s in range(t + 1):
            out[t] += kernel[s] * x[t - s]
    return out


def _van_rossum_reference(output: torch.Tensor, target: torch.Tensor, kernel: np.ndarray) -> np.ndarray:
    """Per-sample [B]: both trains filtered separately, squared difference summed over t, n, over 2T."""
    o, t = output.detach().numpy(), target.detach().numpy()
    diff = _convolve(o, kernel) - _convolve(t, kernel)
    return (diff**2).sum(axis=(0, 2)) / (2 * o.shape[0])


def test_van_rossum_equals_explicit_convolution():
    output, target = _spikes(30, 3, 4, seed=1), _spikes(30, 3, 4, seed=2)
    ref = _van_rossum_reference(output, target, _dual_exp_kernel(30, 4.0, 1.0))
    per_sample = losses.van_rossum_distance(output, target, reduction="none")
    assert per_sample.shape == (3,)
    np.testing.assert_allclose(per_sample.numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(losses.van_rossum_distance(output, target).item(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(losses.van_rossum_distance(output, target, reduction="sum").item(), ref.sum(),
                               rtol=1e-12)


def test_van_rossum_other_time_constants_and_presets():
    output, target = _spikes(20, 2, 3, seed=3), _spikes(20, 2, 3, seed=4)
    ref = _van_rossum_reference(output, target, _dual_exp_kernel(20, 8.0, 2.0))
    got = losses.van_rossum_distance(output, target, tau_m=8.0, tau_s=2.0, reduction="none")
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    first_order = np.exp(-np.arange(20) / 3.0)  # a^s from s = 0
    ref = _van_rossum_reference(output, target, first_order)
    got = losses.van_rossum_distance(output, target, kernel="first_order", tau=3.0, reduction="none")
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    delta = np.eye(1, 20).ravel()  # "none": no filter, half the mean squared spike difference per step
    got = losses.van_rossum_distance(output, target, kernel="none", reduction="none")
    np.testing.assert_allclose(got.numpy(), _van_rossum_reference(output, target, delta), rtol=1e-12)


def test_van_rossum_accepts_coefficients():
    output, target = _spikes(25, 2, 3, seed=5), _spikes(25, 2, 3, seed=6)
    coefficients = presets.dual_exp(4.0, 1.0, dtype=torch.float64)
    got = losses.van_rossum_distance(output, target, kernel=coefficients)
    torch.testing.assert_close(got, losses.van_rossum_distance(output, target), rtol=1e-12, atol=0)
    got = losses.van_rossum_distance(output, target, kernel=(torch.tensor([0.5]), torch.tensor([1.0])))
    ref = _van_rossum_reference(output, target, 0.5 ** np.arange(25.0)).mean()
    np.testing.assert_allclose(got.item(), ref, rtol=1e-6)


def test_van_rossum_zero_for_identical_trains_and_symmetric():
    a, b = _spikes(15, 4, 5, seed=7), _spikes(15, 4, 5, seed=8)
    assert torch.equal(losses.van_rossum_distance(a, a.clone(), reduction="none"), torch.zeros(4, dtype=a.dtype))
    assert losses.van_rossum_distance(a, b) > 0
    torch.testing.assert_close(losses.van_rossum_distance(a, b, reduction="none"),
                               losses.van_rossum_distance(b, a, reduction="none"), rtol=1e-14, atol=0)


def test_van_rossum_casts_target_to_output_dtype():
    output, target = _spikes(10, 2, 3, seed=9), _spikes(10, 2, 3, seed=10)
    loss = losses.van_rossum_distance(output, target.float())
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, losses.van_rossum_distance(output, target))


def test_van_rossum_gradcheck():
    output = torch.rand(6, 2, 3, generator=_gen(11), dtype=torch.float64, requires_grad=True)
    target = _spikes(6, 2, 3, seed=12)
    assert torch.autograd.gradcheck(lambda o: losses.van_rossum_distance(o, target), (output,))
    assert torch.autograd.gradcheck(lambda o: losses.van_rossum_distance(o, target, reduction="none"), (output,))


def test_van_rossum_gradient_reaches_coefficients():
    output, target = _spikes(8, 2, 3, seed=13), _spikes(8, 2, 3, seed=14)
    alpha = torch.tensor([1.1, -0.3], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor([0.0, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: losses.van_rossum_distance(output, target, kernel=(a, b)),
                                    (alpha, beta))


def test_van_rossum_validation():
    output = _spikes(5, 2, 3)
    with pytest.raises(ValueError, match=r"target must have the shape of output \[5, 2, 3\], got \[5, 3, 2\]"):
        losses.van_rossum_distance(output, _spikes(5, 3, 2))
    with pytest.raises(TypeError, match=r"target must have a floating-point dtype.*target\.float\(\)"):
        losses.van_rossum_distance(output, output.bool())
    with pytest.raises(ValueError, match=r"output must be time-major \[T, B, N, \.\.\.\]"):
        losses.van_rossum_distance(output[:, 0], output[:, 0])
    with pytest.raises(ValueError, match="output contains 1 NaN"):
        losses.van_rossum_distance(torch.tensor(float("nan")).reshape(1, 1, 1), torch.zeros(1, 1, 1))
    with pytest.raises(ValueError, match="kernel must be a preset name"):
        losses.van_rossum_distance(output, output, kernel="gaussian")
    with pytest.raises(TypeError, match="kernel must be a preset name"):
        losses.van_rossum_distance(output, output, kernel=3)
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.van_rossum_distance(output, output, reduction="batchmean")
    with pytest.raises(ValueError, match="tau_m != tau_s"):
        losses.van_rossum_distance(output, output, tau_m=2.0, tau_s=2.0)


# spike_count_mse ------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_spike_count_mse_equals_torch(reduction):
    spikes = _spikes(10, 4, 3).requires_grad_()
    target = torch.randint(0, 6, (4, 3), generator=_gen(15))
    loss = losses.spike_count_mse(spikes, target, reduction=reduction)
    counts = spikes.detach().sum(0)
    ref = ((counts - target.double()) ** 2)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    assert loss.shape == ref.shape
    torch.testing.assert_close(loss.detach(), ref, rtol=1e-12, atol=1e-12)
    loss.sum().backward()
    assert spikes.grad is not None


def test_spike_count_mse_validation():
    spikes = _spikes(10, 4, 3)
    with pytest.raises(ValueError, match=r"target_counts must be \[B, K\] = \[4, 3\].*got shape \[3, 4\]"):
        losses.spike_count_mse(spikes, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="target_counts must be >= 0"):
        losses.spike_count_mse(spikes, torch.full((4, 3), -1.0))
    with pytest.raises(TypeError, match=r"target_counts must hold real spike counts.*\.float\(\)"):
        losses.spike_count_mse(spikes, torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="target_counts contains 1 NaN"):
        losses.spike_count_mse(spikes, torch.tensor([[float("nan"), 0, 0]] + [[0, 0, 0]] * 3))
    with pytest.raises(TypeError, match=r"spikes must have a floating-point dtype"):
        losses.spike_count_mse(spikes.int(), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.spike_count_mse(spikes, torch.zeros(4, 3), reduction="elementwise")


def test_batch_first_spikes_are_named_when_the_target_gives_them_away():
    """[B, T, N] input fits a time-major network whenever N fits; the loss's target [B] then matches the
    output's first size, not its second, and the error says so."""
    from iirsnn.functional import spike_count_cross_entropy
    from iirsnn.models import from_spec

    x = (torch.rand(8, 25, 12) < 0.3).float()  # [B=8, T=25, N=12], passed as if time-major
    out = from_spec("16-4", (12,))(x)
    with pytest.raises(ValueError, match=r"look batch-first \[B, T, K\], and iirsnn is time-major"):
        spike_count_cross_entropy(out, torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got shape \[7\]$"):  # no hint when nothing points at the layout
        spike_count_cross_entropy(out, torch.zeros(7, dtype=torch.long))
