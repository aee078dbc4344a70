"""The cpu backend's dense float32 products (iirsnn.kernels.cpu.gemm): each library choice against float64, on the
layouts SpikeLinear hands it, and the choice itself."""

import pytest
import torch

from iirsnn import config
from iirsnn.kernels.cpu import gemm
from iirsnn.kernels.cpu.layer import SpikeLinear

CHOICES = ["mkl", "onednn"] if gemm._onednn_linear() is not None else ["mkl"]


@pytest.mark.parametrize("choice", CHOICES)
@pytest.mark.parametrize("layout", ["contiguous", "a transposed", "b transposed"])
def test_product_agrees_with_float64_in_every_layout(choice, layout, monkeypatch):
    monkeypatch.setattr(config, "dense_gemm", choice)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(301, 67, generator=g)
    b = torch.randn(67, 45, generator=g)
    if layout == "a transposed":
        a = a.T.contiguous().T
    if layout == "b transposed":
        b = b.T.contiguous().T
    with torch.no_grad():
        out = gemm.matmul(a, b)
    assert out.shape == (301, 45) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("choice", CHOICES)
def test_spike_linear_input_and_weight_gradients_through_each_choice(choice, monkeypatch):
    """Above the sparse density the forward and the weight gradient are GEMMs too; every product matches float64."""
    monkeypatch.setattr(config, "dense_gemm", choice)
    monkeypatch.setattr(config, "sparse_max_density", 0.0)
    g = torch.Generator().manual_seed(1)
    X = (torch.rand(400, 90, generator=g) < 0.3).float().requires_grad_(True)
    W = torch.randn(70, 90, generator=g, requires_grad=True)
    Y = SpikeLinear.apply(X, W)
    G = torch.randn(Y.shape, generator=g)
    gX, gW = torch.autograd.grad((Y * G).sum(), [X, W])
    Xd, Wd, Gd = X.detach().double(), W.detach().double(), G.double()
    torch.testing.assert_close(Y.double(), Xd @ Wd.T, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gX.double(), Gd @ Wd, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gW.double(), Gd.T @ Xd, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("choice", CHOICES)
@pytest.mark.parametrize("shape", [(0, 4, 3), (5, 0, 3), (5, 4, 0)])
def test_empty_dimensions(choice, shape, monkeypatch):
    monkeypatch.setattr(config, "dense_gemm", choice)
    m, k, n = shape
    with torch.no_grad():
        out = gemm.matmul(torch.randn(m, k), torch.randn(k, n))
    assert out.shape == (m, n) and bool((out == 0).all())


def test_product_stays_differentiable_when_autograd_records(monkeypatch):
    """A second-order backward (create_graph) needs a recorded product; oneDNN's linear and out= are not."""
    monkeypatch.setattr(config, "dense_gemm", CHOICES[-1])
    a = torch.randn(5, 4, requires_grad=True)
    b = torch.randn(4, 3)
    (ga,) = torch.autograd.grad(gemm.matmul(a, b).square().sum(), [a])
    torch.testing.assert_close(ga, 2 * (a @ b) @ b.T)


def test_choice_is_checked_and_follows_the_vendor(monkeypatch):
    monkeypatch.setattr(config, "dense_gemm", "blas")
    with pytest.raises(ValueError, match="dense_gemm must be one of"):
        gemm.uses_onednn()
    monkeypatch.setattr(config, "dense_gemm", "mkl")
    assert not gemm.uses_onednn()
    if gemm._onednn_linear() is None:
        return
    monkeypatch.setattr(config, "dense_gemm", "auto")
    monkeypatch.setattr(gemm.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(gemm, "_cpu_vendor", lambda: "AuthenticAMD")
    assert gemm.uses_onednn()
    monkeypatch.setattr(gemm, "_cpu_vendor", lambda: "GenuineIntel")
    assert not gemm.uses_onednn()
    monkeypatch.setattr(gemm, "_cpu_vendor", lambda: "AuthenticAMD")
    monkeypatch.setattr(gemm.platform, "machine", lambda: "aarch64")
    assert not gemm.uses_onednn()  # not measured off x86: torch's own choice


def test_onednn_forced_without_it_says_so(monkeypatch):
    monkeypatch.setattr(config, "dense_gemm", "onednn")
    monkeypatch.setattr(gemm, "_onednn_linear", lambda: None)
    with pytest.raises(RuntimeError, match="no oneDNN linear"):
        gemm.uses_onednn()
