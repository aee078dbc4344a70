"""Surrogate derivatives against autograd of their documented primitives; areas; the exact spike forward."""

from __future__ import annotations

import math

import pytest
import torch

from iirsnn.functional import Surrogate, get_surrogate, surrogates

F64 = torch.float64
X = torch.linspace(-3.0, 3.0, 2001, dtype=F64)


def primitive(kind: str, x: torch.Tensor, p: float) -> torch.Tensor:
    """The smooth step whose derivative each surrogate is documented to be."""
    if kind == "gaussian":
        return 0.5 * torch.erfc(-x / (math.sqrt(2.0) * p))
    if kind == "sigmoid":
        return torch.sigmoid(p * x)
    if kind == "arctan":
        return torch.arctan(math.pi * p * x / 2.0) / math.pi + 0.5
    if kind == "fast_sigmoid":
        return x / (1.0 + p * x.abs())
    if kind == "triangle":  # integral of max(0, 1 - |x|/w)/w: 0 -> 1 over [-w, w]
        y = x.clamp(-p, p)
        return 0.5 + y / p - y * y.abs() / (2.0 * p * p)
    raise ValueError(kind)


CASES = [
    ("gaussian", 0.4), ("gaussian", 1.3),
    ("sigmoid", 4.0), ("sigmoid", 0.5),
    ("arctan", 2.0), ("arctan", 0.7),
    ("fast_sigmoid", 25.0), ("fast_sigmoid", 2.0),
    ("triangle", 1.0), ("triangle", 0.3),
]


@pytest.mark.parametrize(("kind", "param"), [c for c in CASES if c[0] != "triangle"])
def test_derivative_is_autograd_of_primitive(kind, param):
    x = X.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(primitive(kind, x, param).sum(), x)
    got = Surrogate(kind, param).derivative(X)
    assert got.dtype == F64 and got.shape == X.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("width", [1.0, 0.3, 2.5])
def test_triangle_by_finite_differences(width):
    # stay off the three kinks (0 and +-width), where the central difference mixes two slopes
    h = 1e-6
    x = X[((X.abs() - width).abs() > 1e-3) & (X.abs() > 1e-3)]
    fd = (primitive("triangle", x + h, width) - primitive("triangle", x - h, width)) / (2 * h)
    got = surrogates.triangle(width).derivative(x)
    torch.testing.assert_close(got, fd, rtol=0, atol=1e-7)
    peak = surrogates.triangle(width).derivative(torch.zeros(1, dtype=F64)).item()
    assert peak == pytest.approx(1.0 / width, rel=1e-15)
    assert (got[x.abs() >= width] == 0).all()


@pytest.mark.parametrize(("kind", "param"), CASES)
def test_default_constructors_and_names(kind, param):
    assert getattr(surrogates, kind)(param) == Surrogate(kind, param)
    default = get_surrogate(kind)
    assert default.kind == kind
    assert default == getattr(surrogates, kind)()


def test_documented_defaults():
    assert get_surrogate("gaussian").param == 0.4  # the paper / authors' code
    assert get_surrogate("erfc") == get_surrogate("gaussian")
    assert get_surrogate("fast_sigmoid").param == 25.0
    s = Surrogate("sigmoid", 2.0)
    assert get_surrogate(s) is s


def test_gaussian_is_eq_19():
    sigma = 0.4
    want = torch.exp(-(X**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    torch.testing.assert_close(get_surrogate("gaussian").derivative(X), want, rtol=1e-14, atol=0)


def _area(kind: str, param: float, half_width: float) -> float:
    x = torch.linspace(-half_width, half_width, 400_001, dtype=F64)
    return torch.trapezoid(Surrogate(kind, param).derivative(x), x).item()


@pytest.mark.parametrize(("kind", "param"), [c for c in CASES if c[0] in ("gaussian", "sigmoid", "triangle")])
def test_unit_area_light_tails(kind, param):
    assert _area(kind, param, 40.0) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("param", [2.0, 0.7])
def test_arctan_unit_area(param):
    """Tails ~ 1/x^2: over [-L, L] the area is (2/pi) arctan(pi a L / 2) -> 1."""
    L = 200.0
    got = _area("arctan", param, L)
    assert got == pytest.approx(2.0 / math.pi * math.atan(math.pi * param * L / 2.0), abs=1e-8)
    assert got == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("slope", [25.0, 2.0])
def test_fast_sigmoid_area_is_2_over_k(slope):
    """Documented: fast_sigmoid integrates to 2/k; over [-L, L] to (2/k)(1 - 1/(1 + kL))."""
    L = 50.0
    got = _area("fast_sigmoid", slope, L)
    # (the trapezoid rule is only second order at the cusp x = 0: rel 1e-4, far below a wrong 2/k)
    assert got == pytest.approx(2.0 / slope * (1.0 - 1.0 / (1.0 + slope * L)), rel=1e-4)


@pytest.mark.parametrize(("kind", "param"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_spike_forward_is_strict_heaviside(kind, param, dtype):
    x = torch.tensor([-1.0, -1e-30, -0.0, 0.0, 1e-30, 1e-7, 2.0, 1e10, -1e10], dtype=dtype)
    x = torch.cat([x, torch.randn(50, dtype=dtype, generator=torch.Generator().manual_seed(0))])
    s = Surrogate(kind, param).spike(x)
    assert s.dtype == dtype
    assert torch.equal(s, (x > 0).to(dtype))
    assert s[2] == 0 and s[3] == 0  # V == V_th is no spike


@pytest.mark.parametrize(("kind", "param"), CASES)
def test_spike_backward_is_derivative(kind, param):
    x = torch.randn(64, dtype=F64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    sur = Surrogate(kind, param)
    w = torch.randn(64, dtype=F64, generator=torch.Generator().manual_seed(2))
    (g,) = torch.autograd.grad((sur.spike(x) * w).sum(), x)
    torch.testing.assert_close(g, w * sur.derivative(x.detach()), rtol=0, atol=0)
    assert g.abs().max() > 0


@pytest.mark.parametrize(("kind", "param"), CASES)
def test_derivatives_are_even_and_peak_at_zero(kind, param):
    d = Surrogate(kind, param).derivative(X)
    torch.testing.assert_close(d, d.flip(0), rtol=1e-12, atol=1e-15)
    assert int(d.argmax()) == len(X) // 2
    assert (d >= 0).all()


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Surrogate("relu", 1.0), ValueError, r"unknown surrogate 'relu'"),
        (lambda: Surrogate("gaussian", 0.0), ValueError, r"parameter must be a finite number > 0"),
        (lambda: Surrogate("sigmoid", -1.0), ValueError, r"parameter must be a finite number > 0"),
        (lambda: Surrogate("arctan", math.inf), ValueError, r"parameter must be a finite number > 0"),
        (lambda: surrogates.triangle(math.nan), ValueError, r"parameter must be a finite number > 0"),
        (lambda: get_surrogate("boxcar"), ValueError, r"unknown surrogate 'boxcar'"),
        (lambda: get_surrogate(None), TypeError, r"surrogate must be a name or a Surrogate"),
    ],
)
def test_surrogate_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
