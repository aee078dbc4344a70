"""Bad input to synapse_filter and neuron_scan raises an error whose message names the argument."""

from __future__ import annotations

import pytest
import torch

import iirsnn
from iirsnn.functional import FilterState, NeuronState, neuron_scan, synapse_filter

NAN, INF = float("nan"), float("inf")
T, B, C = 5, 2, 3


def x_() -> torch.Tensor:
    return torch.rand(T, B, C, generator=torch.Generator().manual_seed(0))


def with_value(x: torch.Tensor, value: float) -> torch.Tensor:
    x = x.clone()
    x[2, 1, 0] = value
    return x


A, BETA = torch.tensor([0.5]), torch.tensor([1.0, 0.2])


# ----------------------------------------------------------------------------------------- synapse_filter


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        # rank: [B, C] without a time axis
        (dict(x=torch.rand(B, C)), ValueError, r"x must be time-major \[T, B, C, \.\.\.\].*got shape \[2, 3\]"),
        (dict(x=torch.rand(C)), ValueError, r"x must be time-major"),
        (dict(x=torch.rand(0, B, C)), ValueError, r"x has no time steps"),
        # dtype
        (dict(x=torch.ones(T, B, C, dtype=torch.int64)), TypeError, r"x must have a floating-point dtype.*int64"),
        (dict(x=torch.ones(T, B, C, dtype=torch.bool)), TypeError, r"x must have a floating-point dtype.*bool"),
        (dict(x=[[[1.0]]]), TypeError, r"x must be a torch.Tensor"),
        (dict(alpha=torch.tensor([1])), TypeError, r"alpha must have a floating-point dtype"),
        (dict(beta=torch.tensor([True])), TypeError, r"beta must have a floating-point dtype"),
        # non-finite
        (dict(x=with_value(x_(), NAN)), ValueError, r"x contains 1 NaN and 0 Inf"),
        (dict(x=with_value(x_(), -INF)), ValueError, r"x contains 0 NaN and 1 Inf"),
        (dict(alpha=torch.tensor([NAN])), ValueError, r"alpha contains 1 NaN"),
        (dict(beta=torch.tensor([1.0, INF])), ValueError, r"beta contains 0 NaN and 1 Inf"),
        # coefficient shapes
        (dict(alpha=torch.rand(2, 1)), ValueError, r"per-channel alpha has shape \[2, 1\].*C = x.shape\[2\] = 3"),
        (dict(beta=torch.rand(4, 2)), ValueError, r"per-channel beta has shape \[4, 2\]"),
        (dict(alpha=torch.rand(C, 1, 1)), ValueError, r"alpha must be \[K\] \(shared\) or \[C, K\]"),
        (dict(alpha=torch.tensor(0.5)), ValueError, r"alpha must be \[K\] \(shared\) or \[C, K\]"),
        (dict(beta=torch.rand(0)), ValueError, r"beta needs at least 1 coefficient"),
        (dict(beta=torch.rand(C, 0)), ValueError, r"beta needs at least 1 coefficient"),
        # state
        (dict(state=FilterState(torch.zeros(1, C, B), torch.zeros(1, B, C))), ValueError,
         r"state.outputs has shape \[1, 3, 2\], expected \[1, 2, 3\]"),
        (dict(state=FilterState(torch.zeros(1, B, C), torch.zeros(2, B, C))), ValueError,
         r"state.inputs has shape \[2, 2, 3\], expected \[1, 2, 3\]"),
        (dict(state=torch.zeros(1, B, C)), TypeError, r"state must be a FilterState"),
        # backend
        (dict(backend="cuda"), ValueError, r"unknown backend 'cuda'"),
    ],
)
def test_synapse_filter_rejects(kwargs, exc, match):
    args = dict(x=x_(), alpha=A, beta=BETA)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        synapse_filter(args.pop("x"), args.pop("alpha"), args.pop("beta"), **args)


def test_synapse_filter_state_from_batch_first_input():
    """A state made for [T, B, C] and a batch-first [B, T, C] input: the shapes disagree and the message says so."""
    x = x_()
    _, state = synapse_filter(x, A, BETA, return_state=True)
    with pytest.raises(ValueError, match=r"state.outputs has shape \[1, 2, 3\], expected \[1, 5, 3\].*time-major"):
        synapse_filter(x.transpose(0, 1).contiguous(), A, BETA, state)


def test_synapse_filter_check_finite_can_be_disabled(monkeypatch):
    x = with_value(x_(), NAN)
    monkeypatch.setattr(iirsnn.config, "check_finite", False)
    F = synapse_filter(x, A, BETA)
    assert torch.isnan(F[2, 1, 0]) and torch.isfinite(F[:2]).all()
    F = synapse_filter(x_(), torch.tensor([INF]), BETA)  # coefficients are not checked either
    assert not torch.isfinite(F).all()


def test_check_finite_restored_after_monkeypatch():
    assert iirsnn.config.check_finite is True
    with pytest.raises(ValueError, match="x contains"):
        synapse_filter(with_value(x_(), NAN), A, BETA)


# ---------------------------------------------------------------------------------------------- neuron_scan


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        # rank: [N] without time (and batch) axis; neuron_scan accepts [T, B] and more
        (dict(current=torch.rand(C)), ValueError, r"current must be time-major \[T, B, \.\.\.\].*got shape \[3\]"),
        (dict(current=torch.rand(0, B)), ValueError, r"current has no time steps"),
        # dtype
        (dict(current=torch.ones(T, B, C, dtype=torch.int32)), TypeError, r"current must have a floating-point dtype"),
        (dict(current=torch.ones(T, B, C, dtype=torch.bool)), TypeError, r"current must have a floating-point dtype"),
        (dict(leak=torch.tensor(1)), TypeError, r"leak must have a floating-point dtype"),
        (dict(reset_decay=torch.tensor([0, 1, 0])), TypeError, r"reset_decay must have a floating-point dtype"),
        (dict(leak=True), TypeError, r"leak must be a float or a floating tensor"),
        (dict(reset_decay="0.5"), TypeError, r"reset_decay must be a float or a floating tensor"),
        # non-finite
        (dict(current=with_value(x_(), NAN)), ValueError, r"current contains 1 NaN and 0 Inf"),
        (dict(current=with_value(x_(), INF)), ValueError, r"current contains 0 NaN and 1 Inf"),
        (dict(leak=NAN), ValueError, r"leak contains NaN or Inf"),
        (dict(reset_decay=torch.tensor([0.5, INF, 0.5])), ValueError, r"reset_decay contains NaN or Inf"),
        # threshold
        (dict(threshold=0.0), ValueError, r"threshold must be > 0, got 0.0"),
        (dict(threshold=-1.0), ValueError, r"threshold must be > 0, got -1.0"),
        (dict(threshold=NAN), ValueError, r"threshold must be > 0"),
        (dict(threshold=torch.tensor(0.0)), ValueError, r"threshold must be > 0"),
        (dict(threshold=torch.tensor([1.0, 1.0])), ValueError, r"threshold must be a positive float"),
        (dict(threshold=torch.tensor(1.0, requires_grad=True)), ValueError, r"threshold must be a positive float"),
        (dict(threshold="1"), TypeError, r"threshold must be a float"),
        (dict(threshold=True), TypeError, r"threshold must be a float"),
        # decays outside [0, 1]
        (dict(leak=1.1), ValueError, r"leak must lie in \[0, 1\]"),
        (dict(leak=-0.1), ValueError, r"leak must lie in \[0, 1\]"),
        (dict(leak=torch.tensor([0.5, 1.5, 0.2])), ValueError, r"leak must lie in \[0, 1\].*got 1.5"),
        (dict(reset_decay=2.0), ValueError, r"reset_decay must lie in \[0, 1\]"),
        (dict(reset_decay=-0.5, reset="hard"), ValueError, r"reset_decay must lie in \[0, 1\]"),
        # shapes of the decays
        (dict(leak=torch.full((4,), 0.5)), ValueError, r"leak of shape \[4\] does not broadcast to .* \[2, 3\]"),
        (dict(leak=torch.full((T, B, C), 0.5)), ValueError, r"leak of shape \[5, 2, 3\] does not broadcast"),
        (dict(reset_decay=torch.full((B, 1, 1), 0.5)), ValueError, r"reset_decay of shape \[2, 1, 1\] does not"),
        # state
        (dict(state=NeuronState(torch.zeros(C, B), torch.zeros(B, C))), ValueError,
         r"state.v has shape \[3, 2\], expected \[2, 3\]"),
        (dict(state=NeuronState(torch.zeros(B, C), torch.zeros(T, B, C))), ValueError,
         r"state.s has shape \[5, 2, 3\], expected \[2, 3\]"),
        (dict(state=torch.zeros(B, C)), TypeError, r"state must be a NeuronState"),
        # modes
        (dict(reset="soft"), ValueError, r"reset must be one of \['filter', 'hard'\], got 'soft'"),
        (dict(surrogate="relu"), ValueError, r"unknown surrogate 'relu'"),
        (dict(surrogate=3), TypeError, r"surrogate must be a name or a Surrogate"),
        (dict(backend="triton"), ValueError, r"unknown backend 'triton'"),
    ],
)
def test_neuron_scan_rejects(kwargs, exc, match):
    args = dict(current=x_(), leak=0.9, reset_decay=0.5)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        neuron_scan(args.pop("current"), args.pop("leak"), args.pop("reset_decay"), **args)


def test_neuron_scan_state_from_batch_first_input():
    current = x_()
    *_, state = neuron_scan(current, 0.9, 0.5, return_state=True)
    with pytest.raises(ValueError, match=r"state.v has shape \[2, 3\], expected \[5, 3\].*time-major"):
        neuron_scan(current.transpose(0, 1).contiguous(), 0.9, 0.5, state=state)


def test_neuron_scan_check_finite_can_be_disabled(monkeypatch):
    current = with_value(x_(), NAN)
    monkeypatch.setattr(iirsnn.config, "check_finite", False)
    _, V = neuron_scan(current, 0.9, 0.5, return_voltage=True)
    assert torch.isnan(V[2, 1, 0]) and torch.isfinite(V[:2]).all()
    with pytest.raises(ValueError, match="leak contains NaN"):  # decays are always checked
        neuron_scan(x_(), NAN, 0.5)


def test_valid_edge_values_are_accepted():
    """The boundaries of the checks are not errors: leak and reset_decay 0 and 1, [T, B] currents, int decays."""
    current = x_()
    for leak, theta in ((0.0, 0.0), (1.0, 1.0), (1, 0), (torch.tensor(1.0), torch.zeros(C))):
        assert neuron_scan(current, leak, theta).shape == current.shape
    assert neuron_scan(current[:, :, 0], 0.9, 0.5).shape == (T, B)
    assert neuron_scan(current, 0.9, 0.5, threshold=torch.tensor(0.5)).shape == current.shape
    assert synapse_filter(current, [0.5], [1.0]).shape == current.shape  # lists are taken as coefficients
    assert synapse_filter(current, torch.rand(C, 0), torch.rand(C, 1)).shape == current.shape


# --------------------------------------------------------------------- gaps found while writing these tests


@pytest.mark.parametrize("backend", ["torch", "cpu", "reference"])
def test_neuron_scan_rejects_infinite_threshold(backend):
    with pytest.raises(ValueError, match="threshold"):
        neuron_scan(x_(), 0.9, 0.5, threshold=INF, backend=backend)


def test_neuron_scan_rejects_nonfinite_state():
    state = NeuronState(with_value(torch.zeros(T, B, C), NAN)[2], torch.zeros(B, C))
    with pytest.raises(ValueError, match=r"state\.v"):
        neuron_scan(x_(), 0.9, 0.5, state=state)


def test_synapse_filter_rejects_nonfinite_state():
    state = FilterState(torch.full((1, B, C), INF), torch.zeros(1, B, C))
    with pytest.raises(ValueError, match=r"state\.outputs"):
        synapse_filter(x_(), A, BETA, state)


def test_whole_layer_functions_check_the_neuron_options():
    from iirsnn.functional.layer import spiking_conv, spiking_linear

    x, w = torch.zeros(3, 2, 4), torch.zeros(5, 4)
    a, b = torch.zeros(0), torch.ones(1)
    for threshold, match in ((0.0, "threshold must be > 0"), (float("inf"), "threshold must be finite")):
        with pytest.raises(ValueError, match=match):
            spiking_linear(x, w, None, a, b, 0.5, 0.5, threshold=threshold)
    with pytest.raises(ValueError, match="reset must be one of"):
        spiking_linear(x, w, None, a, b, 0.5, 0.5, reset="soft")
    with pytest.raises(ValueError, match="unknown surrogate"):
        spiking_conv(torch.zeros(3, 2, 1, 4, 4), torch.zeros(2, 1, 3, 3), None, a, b, 0.5, 0.5, surrogate="relu")


def test_unwritable_kernel_cache_falls_back_with_a_reason(tmp_path, monkeypatch):
    from iirsnn.kernels.cpu import build

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("IIRSNN_CACHE", str(blocked))
    with pytest.raises(build.BuildError, match="building or loading"):
        build.load()


def test_a_kernel_library_others_could_have_planted_is_not_loaded(tmp_path, monkeypatch):
    import os

    from iirsnn.kernels.cpu import build

    monkeypatch.setenv("IIRSNN_CACHE", str(tmp_path))
    build.load()  # compiles into the private cache
    (library,) = (tmp_path / "kernels").glob("*.so")
    library.chmod(0o777)
    with pytest.raises(build.BuildError, match=r"refusing to load .* is writable by other users"):
        build.load()
    library.chmod(0o755)
    (tmp_path / "kernels").chmod(0o777)
    with pytest.raises(build.BuildError, match=r"kernels is writable by other users"):
        build.load()
    (tmp_path / "kernels").chmod(0o755)
    build.load()
    if os.geteuid() == 0:  # only root can hand a file to another user
        os.chown(library, 12345, -1)
        with pytest.raises(build.BuildError, match="belongs to user id 12345"):
            build.load()


def test_without_a_compiler_everything_runs_on_the_torch_backend():
    """IIRSNN_NO_COMPILE=1 stands for a machine without a C compiler: a warning, then the portable backend."""
    import subprocess
    import sys

    code = (
        "import warnings, torch\n"
        "from iirsnn import kernels\n"
        "from iirsnn.models import from_spec\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    out = from_spec('6-3', (4,))((torch.rand(5, 2, 4) < 0.5).float())\n"
        "    out.sum().backward()\n"
        "print(kernels.resolve(None, out), any('compiled CPU kernels unavailable' in str(x.message) for x in w))\n"
    )
    env = {**__import__("os").environ, "IIRSNN_NO_COMPILE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["torch", "True"]
