"""Figures of run directories: what `iirsnn plot` draws from the files a training run leaves."""

import json

import pytest
import torch

from iirsnn.cli import main

pytest.importorskip("matplotlib")
torch.set_num_threads(1)


def _train(run, *sets):
    args = ["train", "spike-timing", "--epochs", "2", "--out", str(run), "--quiet", "--no-figures"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0


def test_plot_draws_curves_rate_map_kernels_and_the_ablation(tmp_path, capsys):
    learned, fixed = tmp_path / "learned", tmp_path / "fixed"
    _train(learned, "model.spec=16-8-5", "model.options.learnable_synapse=true")
    _train(fixed, "model.spec=16-8-5")
    out = tmp_path / "fig6.png"
    assert main(["plot", str(learned), str(fixed), "--labels", "learned,fixed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = {p.name for p in (learned / "figures").iterdir()}
    assert names == {"curves.png", "rate_map.png", "kernels-layer0.png", "kernels-layer1.png", "kernels-layer2.png"}
    assert {p.name for p in (fixed / "figures").iterdir()} == {"curves.png", "rate_map.png"}  # nothing learned
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(out) in printed


def test_the_ablation_figure_holds_each_runs_test_accuracy(tmp_path):
    from iirsnn.figures import plot_ablation

    runs = {}
    for label, learn in (("learned", "true"), ("fixed", "false")):
        runs[label] = tmp_path / label
        _train(runs[label], "model.spec=16-5", f"model.options.learnable_synapse={learn}")
    fig = plot_ablation(runs, split="test", metric="accuracy")
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    for label, run in runs.items():
        history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert lines[label] == [r["test"]["accuracy"] for r in history]


def test_plot_reports_a_directory_without_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err
