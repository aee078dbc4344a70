"""NIR export and import (iirsnn.interop): the exact profile read back bit for bit, run by an independent
executor (nirtorch with a node map written from NIR's equations) and by nir 1.0.7; the peer profile read by
snnTorch; the sections form of IIR filters against impulse responses; refusals with clear messages."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ci_requirements import in_ci


def _require(module: str):
    """The module, or a skip; under CI (where the test extra installs it) a failure."""
    if in_ci():
        return __import__(module, fromlist=["_"])
    return pytest.importorskip(module)


nir = _require("nir")

from iirsnn import export_nir, import_nir  # noqa: E402
from iirsnn import nn as inn  # noqa: E402
from iirsnn.functional.filter import impulse_response  # noqa: E402
from iirsnn.functional.presets import Coefficients, preset  # noqa: E402
from iirsnn.interop.sections import NoSectionsError, from_sections, to_sections  # noqa: E402
from iirsnn.models import from_spec  # noqa: E402

STEPS = 200
NETWORKS = {  # spec, input shape, from_spec options: distinct poles and a reset decay != leak != 0
    "dense": ("20-10", (12,), dict(tau_m=4.0, tau_s=1.5, reset_tau=3.0)),
    "conv": ("4C3-P2-8C3-16-5", (2, 8, 8), dict(tau_m=5.0, tau_s=2.0, reset_tau=2.5)),
    "per-channel, learned kernels": ("6C3-P2-12-4", (2, 6, 6), dict(per_channel_synapse=True, learnable_synapse=True,
                                                                     learnable_neuron=True, pool="sum")),
    "hard reset, lag 0": ("16-8", (10,), dict(reset="hard", lag=0)),
    "first order, avg pool": ("4C3-P2-6", (1, 6, 6), dict(synapse="first_order", tau=3.0, pool="avg")),
    "integrating membrane (leak 1)": ("16-6", (10,), dict(leak=1.0, reset_tau=2.0, init="torch")),
}


def _network(name: str) -> torch.nn.Module:
    spec, shape, options = NETWORKS[name]
    torch.manual_seed(1)
    net = from_spec(spec, shape, **options).double().eval()
    with torch.no_grad():  # move learned parameters off their initial values, so that the export reads them
        for param_name, param in net.named_parameters():
            if "alpha_param" in param_name or "beta_param" in param_name or "logit" in param_name:
                param.add_(0.05 * torch.randn_like(param))
    return net


def _input(net: torch.nn.Module, batch: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return (torch.rand(STEPS, batch, *net.input_shape, generator=generator, dtype=torch.float64) < 0.3).double()


def _voltages(net: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    neurons = [m.neuron for m in net if isinstance(m, inn.SpikingLayer)]
    for n in neurons:
        n.record_voltage = True
    with torch.no_grad():
        out = net(x)
    return [out, *[n.voltage for n in neurons]]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("nir")
    files = {}
    for name in NETWORKS:
        files[name] = folder / f"{name.replace(' ', '_').replace(',', '')}.nir"
        nir.write(files[name], export_nir(_network(name), dt=1e-3))
    return files


@pytest.mark.parametrize("name", list(NETWORKS))
def test_exact_profile_reads_back_bit_for_bit(name, written):
    net, x = _network(name), _input(_network(name))
    back = import_nir(written[name])
    assert back.input_shape == net.input_shape
    ours, theirs = _voltages(net, x), _voltages(back, x)
    assert ours[0].sum() > 50, "the test network must spike"
    assert torch.equal(theirs[0], ours[0])
    for v_ours, v_back in zip(ours[1:], theirs[1:], strict=True):
        assert torch.equal(v_back, v_ours)  # the same parameters, the same kernels: bitwise the same membranes
    originals = [m for m in net if isinstance(m, inn.SpikingLayer)]
    for a, b in zip(originals, [m for m in back if isinstance(m, inn.SpikingLayer)], strict=True):
        assert torch.equal(a.connection.weight, b.connection.weight)
        assert torch.equal(a.synapse.alpha.detach(), b.synapse.alpha)
        assert torch.equal(a.synapse.beta.detach(), b.synapse.beta)
        assert torch.equal(a.neuron.leak.detach().expand_as(b.neuron.leak), b.neuron.leak.expand_as(a.neuron.leak))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_exact_profile_runs_the_same_under_nirtorch(name, written):
    """An executor that knows nothing of iirsnn (nirtorch, NIR's equations under forward Euler) gives the same
    spikes at every one of 200 steps, and the graph without its metadata reads back to the same spikes."""
    step_modules = _require("nir_step_modules")
    net = _network(name)
    x = _input(net)
    with torch.no_grad():
        expected = net(x)
    assert torch.equal(step_modules.run(written[name], x, dt=1e-3), expected)
    graph = nir.read(written[name])
    for node in graph.nodes.values():
        node.metadata = {}
    graph.metadata = {}
    with torch.no_grad():
        assert torch.equal(import_nir(graph, dt=1e-3)(x), expected)


def test_the_same_file_reads_with_nir_1_0_7(written, tmp_path):
    old = os.environ.get("IIRSNN_NIR_OLD")
    if not old:
        if in_ci():
            pytest.fail("IIRSNN_NIR_OLD (a --target install of nir 1.0.7, set by .ci/run) is missing")
        pytest.skip("IIRSNN_NIR_OLD not set (pip install --no-deps --target DIR nir==1.0.7)")
    net = _network("conv")
    x = _input(net)
    torch.save(x, tmp_path / "x.pt")
    script = ("import sys, torch, nir; from iirsnn import import_nir; assert nir.version == '1.0.7', nir.version; "
              "net = import_nir(sys.argv[1]); "
              "torch.save(net(torch.load(sys.argv[2])).detach(), sys.argv[3])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([old, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", script, str(written["conv"]), str(tmp_path / "x.pt"),
                    str(tmp_path / "y.pt")], check=True, env=env, timeout=300)
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "y.pt"), net(x))


def test_peer_profile_runs_the_same_in_snntorch_as_its_iirsnn_reading():
    """snnTorch imports the lossy peer profile; its spikes equal iirsnn's reading of the same graph (CubaLIF ->
    first-order synapse with lag 0 + zero reset), and that reading keeps the network's activity correlated."""
    import_from_nir = _require("snntorch.import_nir").import_from_nir
    torch.manual_seed(0)
    net = from_spec("30-10", (12,), tau_m=4.0, tau_s=1.0).eval()
    x = (torch.rand(100, 4, 12, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    graph = export_nir(net, profile="peer")
    assert "lossy" in graph.metadata
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints its threshold rescaling
        peer = import_from_nir(graph)
    with torch.no_grad():
        theirs = torch.stack([peer(step)[0] for step in x])  # nirtorch modules return (output, state)
        ours = import_nir(graph)(x)
        original = net(x)
    assert ours.sum() > 100
    assert torch.equal(theirs, ours)
    counts = lambda s: s.sum(0).flatten()  # noqa: E731
    assert torch.nn.functional.cosine_similarity(counts(ours), counts(original), dim=0) > 0.8


def test_peer_profile_is_exact_for_the_peers_own_neuron():
    """A network of the peers' neuron (first-order synapse with lag 0, reset to zero, no bias) crosses to snnTorch
    with the same spikes at every step."""
    import_from_nir = _require("snntorch.import_nir").import_from_nir
    torch.manual_seed(2)
    net = from_spec("30-10", (12,), synapse="first_order", tau=3.0, lag=0, reset="hard", bias=False).eval()
    x = (torch.rand(100, 4, 12, generator=torch.Generator().manual_seed(5)) < 0.3).float()
    with contextlib.redirect_stdout(io.StringIO()):
        peer = import_from_nir(export_nir(net, profile="peer"))
    with torch.no_grad():
        original = net(x)
        theirs = torch.stack([peer(step)[0] for step in x])
    assert original.sum() > 100
    assert torch.equal(theirs, original)


@pytest.mark.parametrize("name,kwargs", [("dual_exp", {}), ("dual_exp", {"lag": 0}), ("dual_exp", {"lag": 3}),
                                         ("first_order", {"lag": 2}), ("none", {}), ("delay", {"d": 3}),
                                         ("dual_exp", {"tau_m": 1.0, "tau_s": 6.0})])
def test_sections_give_the_filter_back(name, kwargs):
    coef = preset(name, dtype=torch.float64, **kwargs)
    sections = to_sections(coef.alpha.numpy(), coef.beta.numpy())
    h = np.zeros(40)
    for pole, gain in zip(sections.poles, sections.gains, strict=True):
        h += gain * pole ** np.arange(40)
    h[: sections.direct.shape[0]] += sections.direct
    np.testing.assert_allclose(h, impulse_response(coef.alpha, coef.beta, 40).numpy(), atol=1e-12)
    alpha, beta = from_sections(sections)
    np.testing.assert_allclose(alpha, coef.alpha.numpy(), atol=1e-12)
    np.testing.assert_allclose(beta[: coef.beta.shape[0]], coef.beta.numpy(), atol=1e-12)
    np.testing.assert_allclose(beta[coef.beta.shape[0]:], 0.0, atol=1e-12)


def test_filters_without_first_order_sections_are_refused():
    with pytest.raises(NoSectionsError, match="complex poles"):
        to_sections(np.array([1.0, -0.5]), np.array([1.0]))  # poles 0.5 +- 0.5i
    with pytest.raises(NoSectionsError, match="repeated poles"):
        to_sections(preset("alpha", tau=2.0, dtype=torch.float64).alpha.numpy(), np.array([0.0, 1.0]))
    net = from_spec("8-4", (6,), synapse="alpha")
    with pytest.raises(NoSectionsError, match=r"layer0.*profile='peer'"):
        export_nir(net)
    assert "lossy" in export_nir(net, profile="peer").metadata


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    net = from_spec("8-4", (6,))
    with pytest.raises(ValueError, match="profile must be one of"):
        export_nir(net, profile="fast")
    with pytest.raises(ValueError, match="dt must be a positive"):
        export_nir(net, dt=0.0)
    with pytest.raises(ValueError, match="max pooling of non-binary"):
        export_nir(torch.nn.Sequential(inn.MaxPool2d(2), from_spec("4", (1, 2, 2))[0]), input_shape=(1, 4, 4))
    custom = torch.nn.Sequential(inn.SpikingLayer(inn.Linear(6, 4), inn.SynapseFilter(Coefficients(
        torch.tensor([1.0, -0.5]), torch.tensor([1.0])))))
    with pytest.raises(NoSectionsError, match="complex"):
        export_nir(custom, input_shape=(6,))
    delayed = torch.nn.Sequential(inn.Delay(2), from_spec("4", (6,))[0])
    with pytest.raises(ValueError, match="peer importers read no NIR Delay"):
        export_nir(delayed, profile="peer", input_shape=(6,))
    assert isinstance(export_nir(delayed, input_shape=(6,)).nodes["delay0"], nir.Delay)
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        import_nir(tmp_path / "missing.nir")
    broken = tmp_path / "broken.nir"
    broken.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable NIR file"):
        import_nir(broken)
    recurrent = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                                    "w": nir.Affine(weight=np.eye(3), bias=np.zeros(3)),
                                    "lif": nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                                                   v_threshold=np.ones(3)),
                                    "output": nir.Output(output_type=np.array([3]))},
                             edges=[("input", "w"), ("w", "lif"), ("lif", "w"), ("lif", "output")])
    with pytest.raises(ValueError, match=r"feeds 2 nodes|recurrent"):
        import_nir(recurrent)


def test_command_line_exports_a_run_and_reads_it_back(tmp_path):
    from iirsnn.cli import main
    from iirsnn.train import checkpoint

    net = from_spec("8-4", (6,))
    state = {"model_build": net.build_config, "model": net.state_dict()}
    path = tmp_path / "model.pt"
    checkpoint.save(path, state)
    out = tmp_path / "model.nir"
    assert main(["nir", "export", str(path), str(out)]) == 0
    assert isinstance(nir.read(out), nir.NIRGraph)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["nir", "import", str(out)]) == 0
    assert "'8-4'" in buffer.getvalue() and "parameters" in buffer.getvalue()
    assert main(["nir", "import", str(tmp_path / "none.nir")]) == 2


def test_axonal_delay_and_delay_synapse_round_trip(tmp_path):
    """A Delay module and the "delay" synapse preset (a pure FIR kernel: Delay nodes in the layer) read back and run
    under nirtorch with the same spikes."""
    torch.manual_seed(4)
    first = inn.SpikingLayer(inn.Linear(6, 12), inn.SynapseFilter("delay", d=2), inn.LIFNeuron(3.0))
    second = from_spec("5", (12,), tau_m=3.0, tau_s=1.5)[0]
    net = torch.nn.Sequential(inn.Delay(3), first, second).double().eval()
    x = (torch.rand(STEPS, 2, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64) < 0.4).double()
    with torch.no_grad():
        expected = net(x)
    assert expected.sum() > 20
    path = tmp_path / "delayed.nir"
    nir.write(path, export_nir(net, dt=1e-3, input_shape=(6,)))
    with torch.no_grad():
        assert torch.equal(import_nir(path)(x), expected)
    assert torch.equal(_require("nir_step_modules").run(path, x, dt=1e-3), expected)


def test_a_peer_written_lif_graph_reads_as_the_peer_runs_it():
    """Affine -> LIF as snnTorch writes a Leaky neuron (tau = dt / (1 - beta), r = tau / dt, reset to 0; its own
    export_to_nir fails type inference under nir 1.0.8, so the graph is written here by its mapping): iirsnn's
    reading gives the snnTorch network's spikes at every step."""
    snn = _require("snntorch")
    dt, betas = 1e-4, (0.8, 0.7)
    torch.manual_seed(6)
    linears = [torch.nn.Linear(12, 30), torch.nn.Linear(30, 10)]
    with torch.no_grad():
        for linear in linears:
            linear.weight.mul_(3.0)
    peer = torch.nn.Sequential(*(m for linear, beta in zip(linears, betas, strict=True) for m in (
        linear, snn.Leaky(beta=beta, reset_mechanism="zero", reset_delay=False, init_hidden=True))))
    nodes, edges, previous = {"input": nir.Input(input_type=np.array([12]))}, [], "input"
    for i, (linear, beta) in enumerate(zip(linears, betas, strict=True)):
        n, tau = linear.out_features, dt / (1 - beta)
        nodes[f"w{i}"] = nir.Affine(weight=linear.weight.detach().numpy(), bias=linear.bias.detach().numpy())
        nodes[f"lif{i}"] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),
                                   v_threshold=np.ones(n), v_reset=np.zeros(n))
        edges += [(previous, f"w{i}"), (f"w{i}", f"lif{i}")]
        previous = f"lif{i}"
    nodes["output"] = nir.Output(output_type=np.array([10]))
    edges.append((previous, "output"))
    x = (torch.rand(100, 4, 12, generator=torch.Generator().manual_seed(9)) < 0.3).float()
    with torch.no_grad():
        theirs = torch.stack([peer(step) for step in x])
        ours = import_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=dt)(x)
    assert theirs.sum() > 100
    assert torch.equal(ours, theirs)
