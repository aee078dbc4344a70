"""The embedded default job (iirsnn demo) and the command line."""

import json

import torch

from iirsnn.cli import main
from iirsnn.demo import DemoConfig, _split, make_patterns, run


def test_demo_classes_differ_only_in_timing():
    """Nearest-centroid on spike counts stays near chance: the task cannot be solved by rates."""
    cfg = DemoConfig()
    g = torch.Generator().manual_seed(0)
    times, _ = make_patterns(cfg, g)
    x_train, y_train = _split(times, cfg, 100, g)
    x_test, y_test = _split(times, cfg, 100, g)
    counts_train, counts_test = x_train.sum(0), x_test.sum(0)
    centroids = torch.stack([counts_train[y_train == c].mean(0) for c in range(cfg.classes)])
    predicted = torch.cdist(counts_test, centroids).argmin(1)
    assert float((predicted == y_test).float().mean()) < 0.3
    # the spike times do carry the class: nearest centroid on the raw rasters is far above chance
    raster_centroids = torch.stack([x_train[:, y_train == c].mean(1).flatten() for c in range(cfg.classes)])
    predicted = torch.cdist(x_test.permute(1, 0, 2).flatten(1), raster_centroids).argmin(1)
    assert float((predicted == y_test).float().mean()) > 0.6


def test_demo_network_learns_spike_timing(tmp_path):
    metrics = run(DemoConfig(epochs=10), out_dir=str(tmp_path), progress=False)
    assert metrics["final_test_accuracy"] > 0.6  # chance is 0.2
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["final_test_accuracy"] == metrics["final_test_accuracy"]
    state = torch.load(tmp_path / "model.pt")
    assert state["0.connection.weight"].shape == (64, 40)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_demo_and_info(tmp_path, capsys):
    assert main(["demo", "--epochs", "2", "--quiet", "--out", str(tmp_path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 2
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backends" in out and "compiled CPU kernels: " in out
