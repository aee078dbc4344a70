"""iirsnn.figures: the paper's figures, checked by what they draw (line data, scatter offsets, image arrays)."""

import importlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from iirsnn import nn
from iirsnn.figures import (
    impulse_response,
    plot_ablation,
    plot_curves,
    plot_kernels,
    plot_rate_map,
    plot_reconstruction,
    read_metrics,
    synapse_coefficients,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 40  # small PNGs keep the tests fast

RECORDS = [
    {"epoch": 1, "step": 31, "lr": 0.001, "seconds": 12.3,
     "train": {"loss": 1.2, "accuracy": 0.6, "samples_per_s": 800.0},
     "val": {"loss": 1.3, "accuracy": 0.55}, "test": {"loss": 1.4, "accuracy": 0.5},
     "firing_rates": {"layer0": 0.05, "layer1": 0.1}},
    {"epoch": 2, "train": {"loss": 0.9, "accuracy": 0.7}, "test": {"loss": 1.1, "accuracy": 0.6}},  # no val
    {"epoch": 3, "train": {"loss": 0.7, "accuracy": 0.8}, "val": {"loss": 1.0, "accuracy": 0.65},
     "test": {"loss": 0.9, "accuracy": 0.7}},
]


def write_run(directory, records, extra_lines=()):
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    (directory / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def axes_by_ylabel(fig):
    return {ax.get_ylabel(): ax for ax in fig.axes}


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > len(PNG_MAGIC)
    assert data[:8] == PNG_MAGIC


# --- runs ---------------------------------------------------------------------------------------

def test_read_metrics_skips_blank_lines(tmp_path):
    run = write_run(tmp_path / "run", RECORDS[:1], ["", "   ", json.dumps(RECORDS[1])])
    assert read_metrics(run) == RECORDS[:2]
    assert read_metrics(run / "metrics.jsonl") == RECORDS[:2]  # the file itself works too


def test_read_metrics_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics\.jsonl"):
        read_metrics(tmp_path / "nowhere")


def test_read_metrics_names_file_and_line_of_bad_line(tmp_path):
    run = write_run(tmp_path / "run", RECORDS[:2], ["{not json"])
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 3: not JSON") as info:
        read_metrics(run)
    assert str(run / "metrics.jsonl") in str(info.value)
    write_run(run, RECORDS[:1], ["[1, 2]"])
    with pytest.raises(ValueError, match=r"line 2: expected a JSON object"):
        read_metrics(run)


# --- curves -------------------------------------------------------------------------------------

def test_curves_lines_equal_the_metrics(tmp_path):
    fig = plot_curves(write_run(tmp_path / "run", RECORDS), tmp_path / "out" / "curves.png", dpi=DPI)
    assert_png(tmp_path / "out" / "curves.png")
    axes = axes_by_ylabel(fig)
    assert set(axes) == {"loss", "accuracy"}
    for key, ax in axes.items():
        lines = lines_by_label(ax)
        assert set(lines) == {"train", "val", "test"}
        for split, line in lines.items():
            expected = [(r["epoch"], r[split][key]) for r in RECORDS if split in r]
            assert list(zip(line.get_xdata(), line.get_ydata(), strict=True)) == expected
    assert list(lines_by_label(axes["loss"])["val"].get_xdata()) == [1, 3]


@pytest.mark.parametrize(("fields", "metric"), [(("mse", "f1"), "f1"), (("mse",), "mse")])
def test_curves_of_a_reconstruction_task_use_f1_else_mse(tmp_path, fields, metric):
    records = [{"epoch": e, "train": {"loss": 1.0 / e, **{f: 0.1 * e for f in fields}}} for e in (1, 2)]
    fig = plot_curves(write_run(tmp_path / "run", records))
    axes = axes_by_ylabel(fig)
    assert set(axes) == {"loss", metric}
    assert list(lines_by_label(axes[metric])["train"].get_ydata()) == [0.1, 0.2]


def test_curves_without_any_value_raise(tmp_path):
    with pytest.raises(ValueError, match="no record holds a loss"):
        plot_curves(write_run(tmp_path / "run", [{"epoch": 1, "lr": 0.1}]))


# --- ablation (Figure 6) -----------------------------------------------------------------------

def test_ablation_one_line_per_run(tmp_path):
    fixed = [{"epoch": r["epoch"], "test": {"accuracy": r["test"]["accuracy"] - 0.1}} for r in RECORDS]
    runs = {"learned kernels": write_run(tmp_path / "a", RECORDS), "fixed kernels": write_run(tmp_path / "b", fixed)}
    fig = plot_ablation(runs, tmp_path / "ablation.png", dpi=DPI)
    assert_png(tmp_path / "ablation.png")
    (ax,) = fig.axes
    lines = lines_by_label(ax)
    assert list(lines) == ["learned kernels", "fixed kernels"]
    assert list(lines["learned kernels"].get_ydata()) == [0.5, 0.6, 0.7]
    assert np.allclose(lines["fixed kernels"].get_ydata(), [0.4, 0.5, 0.6])
    val = lines_by_label(plot_ablation(runs | {"fixed kernels": runs["learned kernels"]}, split="val").axes[0])
    assert list(val["learned kernels"].get_xdata()) == [1, 3]


def test_ablation_names_the_run_lacking_the_metric(tmp_path):
    runs = {"learned": write_run(tmp_path / "a", RECORDS),
            "fixed": write_run(tmp_path / "b", [{"epoch": 1, "train": {"loss": 1.0}}])}
    with pytest.raises(ValueError, match=r"run 'fixed' \(.*metrics\.jsonl\) has no test/accuracy") as info:
        plot_ablation(runs)
    assert "train/loss" in str(info.value)
    with pytest.raises(ValueError, match="has no val/f1"):
        plot_ablation({"learned": runs["learned"]}, split="val", metric="f1")
    with pytest.raises(ValueError, match="runs is empty"):
        plot_ablation({})


# --- rasters (Figure 3) ------------------------------------------------------------------------

def test_reconstruction_scatter_points_are_the_spikes(tmp_path):
    g = torch.Generator().manual_seed(0)
    T, N = 30, 12
    rasters = {name: (torch.rand(T, N, generator=g) < p).float()
               for name, p in [("target", 0.1), ("noisy input", 0.2), ("epoch 1", 0.3), ("epoch 50", 0.1)]}
    rasters["epoch 1"][:] = 0  # a silent output draws an empty panel
    fig = plot_reconstruction(rasters["target"], rasters["noisy input"].numpy(),
                              {"epoch 1": rasters["epoch 1"], "epoch 50": rasters["epoch 50"]},
                              tmp_path / "rasters.png", dpi=DPI)
    assert_png(tmp_path / "rasters.png")
    assert [ax.get_title() for ax in fig.axes] == list(rasters)
    for ax, spikes in zip(fig.axes, rasters.values(), strict=True):
        (points,) = ax.collections
        offsets = np.asarray(points.get_offsets()).reshape(-1, 2)
        expected = torch.nonzero(spikes).numpy()
        assert offsets.shape == expected.shape == (int(spikes.sum()), 2)
        assert np.array_equal(offsets, expected)  # x = t, y = n, one point per spike
        assert ax.get_ylim() == (N - 0.5, -0.5)  # neuron 0 on top


def test_reconstruction_rejects_mismatched_rasters():
    with pytest.raises(ValueError, match="share one shape"):
        plot_reconstruction(torch.zeros(5, 4), torch.zeros(5, 4), {"out": torch.zeros(5, 3)})
    with pytest.raises(ValueError, match=r"\[T, N\] raster"):
        plot_reconstruction(torch.zeros(5, 4, 1), torch.zeros(5, 4), {})


# --- rate map (Figure 4) -----------------------------------------------------------------------

def test_rate_map_is_the_rates_sorted_by_label(tmp_path):
    g = torch.Generator().manual_seed(1)
    S, N = 64, 20
    rates = torch.rand(S, N, generator=g)
    labels = torch.randint(0, 10, (S,), generator=g)
    labels[labels == 4] = 7  # a class absent from the batch
    fig = plot_rate_map(rates, labels, tmp_path / "rates.png", class_names=[f"digit {k}" for k in range(10)], dpi=DPI)
    assert_png(tmp_path / "rates.png")
    axes = {ax.get_label(): ax for ax in fig.axes}
    order = torch.sort(labels, stable=True).indices
    (image,) = axes["rates"].get_images()
    assert np.allclose(image.get_array(), rates[order].double().numpy())
    (strip,) = axes["classes"].get_images()
    assert np.array_equal(np.asarray(strip.get_array()).ravel(), labels[order].numpy())
    assert [t.get_text() for t in axes["classes"].get_yticklabels()] == [
        f"digit {k}" for k in labels.unique().tolist()]
    colours = {tuple(strip.to_rgba(float(k))) for k in labels.unique().tolist()}
    assert len(colours) == len(labels.unique())  # one colour per class


def test_rate_map_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r"labels must be \[S\] = \[4\]"):
        plot_rate_map(torch.rand(4, 3), torch.arange(5))
    with pytest.raises(ValueError, match="integer class"):
        plot_rate_map(torch.rand(4, 3), torch.zeros(4))


# --- kernels (Figure 5) ------------------------------------------------------------------------

def dual_exp(tau_m, tau_s):
    a, b = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    return a, b, [a + b, -a * b], [a - b]


def test_impulse_response_of_a_dual_exponential_is_its_closed_form():
    a, b, alpha, beta = dual_exp(4.0, 1.0)
    response = impulse_response(torch.tensor(alpha, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64), 25)
    k = torch.arange(25, dtype=torch.float64)
    assert response.shape == (1, 25)
    assert response.dtype == torch.float64
    assert torch.allclose(response[0], a ** (k + 1) - b ** (k + 1), rtol=0, atol=1e-12)


def test_impulse_response_per_channel_gives_one_row_per_channel():
    taus = [(4.0, 1.0), (8.0, 2.0), (2.0, 0.5)]
    filters = [dual_exp(*tau) for tau in taus]
    alpha = torch.tensor([f[2] for f in filters], dtype=torch.float64)
    beta = torch.tensor([f[3] for f in filters], dtype=torch.float64)
    response = impulse_response(alpha, beta, 15)
    k = torch.arange(15, dtype=torch.float64)
    assert response.shape == (3, 15)
    for row, (a, b, _, _) in zip(response, filters, strict=True):
        assert torch.allclose(row, a ** (k + 1) - b ** (k + 1), rtol=0, atol=1e-12)
    shared_beta = impulse_response(alpha, torch.tensor([1.0]), 15)  # a 1-D beta serves every channel
    assert torch.allclose(shared_beta, response / beta, rtol=0, atol=1e-12)
    no_feedback = impulse_response(torch.zeros(0), torch.tensor([0.0, 0.0, 1.0]), 5)  # pure delay of 2
    assert no_feedback.tolist() == [[0.0, 0.0, 1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="same number of rows"):
        impulse_response(torch.zeros(3, 2), torch.ones(2, 1), 5)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        impulse_response(alpha, beta, 0)


def test_synapse_coefficients_snapshot_every_filter():
    net = torch.nn.Sequential(nn.SynapseFilter("dual_exp", learnable=True), torch.nn.Identity(),
                              nn.SynapseFilter("first_order", tau=2.0, channels=3),
                              nn.SynapseFilter("alpha", tau=3.0, channels=2, learnable=True, parametrization="raw"))
    filters = [m for m in net if isinstance(m, nn.SynapseFilter)]
    snapshot = synapse_coefficients(net)
    assert len(snapshot) == 3
    for (alpha, beta), module in zip(snapshot, filters, strict=True):
        assert torch.equal(alpha, module.alpha.detach()) and torch.equal(beta, module.beta.detach())
        assert not alpha.requires_grad and not beta.requires_grad
    assert snapshot[1].alpha.shape == (3, 1) and snapshot[2].beta.shape == (2, 2)
    with torch.no_grad():  # training moves the parameters in place; the snapshot keeps the initial kernel
        filters[0].beta_param.mul_(2)
        filters[2].alpha_param.mul_(0.5)
    assert torch.equal(synapse_coefficients(net)[0].beta, 2 * snapshot[0].beta)
    assert not torch.equal(synapse_coefficients(net)[2].alpha, snapshot[2].alpha)
    assert synapse_coefficients(filters[1])[0].alpha.shape == (3, 1)  # a filter on its own


def test_plot_kernels_draws_initial_dashed_and_learned_solid(tmp_path):
    _, _, alpha, beta = dual_exp(4.0, 1.0)
    initial = (torch.tensor(alpha).expand(6, 2), torch.tensor(beta).expand(6, 1))
    learned = (initial[0] * torch.linspace(0.8, 1.0, 6)[:, None], initial[1] * 1.5)
    fig = plot_kernels(initial, learned, tmp_path / "kernels" / "k.png", steps=20, max_kernels=5, dpi=DPI)
    assert_png(tmp_path / "kernels" / "k.png")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5  # the first max_kernels of 6
    before, after = impulse_response(*initial, 20), impulse_response(*learned, 20)
    for k, ax in enumerate(visible):
        lines = lines_by_label(ax)
        assert set(lines) == {"initial", "learned"}
        assert lines["initial"].get_linestyle() == "--" and lines["learned"].get_linestyle() == "-"
        assert list(lines["initial"].get_xdata()) == list(range(20))
        assert np.allclose(lines["initial"].get_ydata(), before[k].numpy())
        assert np.allclose(lines["learned"].get_ydata(), after[k].numpy())
    shared = plot_kernels((alpha, beta), learned, steps=10)  # one shared initial kernel against each learned one
    assert len([ax for ax in shared.axes if ax.get_visible()]) == 6
    with pytest.raises(ValueError, match="initial has 6 kernels and learned 2"):
        plot_kernels(initial, (learned[0][:2], learned[1][:2]))


# --- the package --------------------------------------------------------------------------------

def test_figures_touch_no_pyplot_and_no_global_state(tmp_path):
    script = f"""
import sys, matplotlib
rc = dict(dict.items(matplotlib.rcParams))  # the raw items: reading "backend" through rcParams would import pyplot
import torch
from iirsnn.figures import plot_reconstruction
plot_reconstruction(torch.eye(4), torch.eye(4), {{"out": torch.eye(4)}}, {str(tmp_path / "r.png")!r}, dpi=20)
assert "matplotlib.pyplot" not in sys.modules
assert dict(dict.items(matplotlib.rcParams)) == rc
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "r.png")


def test_import_without_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "iirsnn.figures" or m.startswith("iirsnn.figures.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r"pip install iirsnn\[figures\]"):
        importlib.import_module("iirsnn.figures")
