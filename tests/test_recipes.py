"""Every recipe's --quick run (what the tests can afford) learns: the loss falls and the accuracy rises above chance."""

import json

import pytest
import torch

from iirsnn.cli import main
from iirsnn.data.registry import present
from iirsnn.data.task_builders import TASKS
from iirsnn.experiments import RECIPES

torch.set_num_threads(1)

# (recipe, extra arguments, the accuracy (or F1) the selected model must reach on test: well above chance)
QUICK = [
    ("spike-timing", [], 0.4),  # chance 0.2
    ("auslan", [], 0.2),  # chance 0.011
    ("japanese-vowels", [], 0.25),  # chance 0.11
    ("spoken-digits", [], 0.2),  # chance 0.1
    ("spoken-digits-speakers", [], 0.2),  # a speaker never heard in training
    ("mnist-mlp", [], 0.4),  # chance 0.1
    ("mnist-conv", [], 0.2),
    ("japanese-vowels", ["--model", "lstm"], 0.5),  # the LSTM baseline
    ("nmnist", [], 0.15),  # chance 0.1 (SLAYER's subset, 200 samples)
]


def _needs_data(name):
    dataset = TASKS[RECIPES[name].config().data.name].dataset
    try:
        available = dataset is None or present(dataset)
    except Exception:  # no data root at all
        available = False
    if not available:
        pytest.skip(f"{dataset} is not under $IIRSNN_DATA")


def _history(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name, extra, floor", QUICK, ids=[f"{n}{'-' + e[-1] if e else ''}" for n, e, _ in QUICK])
def test_quick_recipe_learns(tmp_path, name, extra, floor):
    _needs_data(name)
    run = tmp_path / "run"
    assert main(["train", name, "--quick", *extra, "--out", str(run), "--quiet", "--no-figures"]) == 0
    history = _history(run)
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    results = json.loads((run / "results.json").read_text())
    assert results["selected"]["test"]["accuracy"] >= floor


def test_quick_associative_memory_writes_its_reconstruction_figure(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    assert main(["train", "assoc-memory", "--quick", "--out", str(run), "--quiet"]) == 0
    history = _history(run)
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    assert {"f1", "mse", "loss"} <= set(history[-1]["val"])
    probe = torch.load(run / "probes.pt", weights_only=True)
    assert sorted(probe["outputs"]) == [1, 2]
    assert probe["target"].shape == probe["input"].shape == (80, 40)
    assert (run / "figures" / "reconstruction.png").stat().st_size > 1000
    assert (run / "figures" / "curves.png").is_file()


def test_quick_dvs_gesture_runs_end_to_end_on_the_sample_streams(tmp_path):
    """Ten streams, one per gesture, as train and test alike: the pipeline (binning, cache, training, eval)
    runs; no accuracy is claimed."""
    _needs_data("dvs-gesture")
    run = tmp_path / "run"
    assert main(["train", "dvs-gesture", "--quick", "--out", str(run), "--quiet", "--no-figures"]) == 0
    results = json.loads((run / "results.json").read_text())
    confusion = results["selected"]["test"]["confusion"]
    assert len(confusion) == 11 and sum(map(sum, confusion)) == 10
    assert [sum(row) for row in confusion][:10] == [1] * 10


def test_the_uea_recipe_trains_on_a_problem_a_user_brings(tmp_path):
    """A UEA .ts problem written here (two classes: channel 0 above or below zero, noise on channel 1)."""
    from test_data_uea import write_ts

    g = torch.Generator().manual_seed(0)
    problem = tmp_path / "Levels"
    problem.mkdir()
    for split, n in (("TRAIN", 80), ("TEST", 40)):
        labels = [["up", "down"][i % 2] for i in range(n)]
        series = []
        for label in labels:
            level = torch.full((20,), 1.0 if label == "up" else -1.0) + 0.3 * torch.randn(20, generator=g)
            series.append(torch.stack([level, torch.randn(20, generator=g)], 1))
        write_ts(problem / f"Levels_{split}.ts", series, labels, ["up", "down"])
    run = tmp_path / "run"
    assert main(["train", "uea", "--quick", "--problem", "Levels", "--data-dir", str(tmp_path), "--epochs", "6",
                 "--out", str(run), "--quiet", "--no-figures"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["selected"]["test"]["accuracy"] >= 0.9  # chance 0.5
    assert main(["train", "uea", "--quick", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r2")]) == 2
