"""iirsnn bench: the plan of measurements, the report and its JSON, training memory per neuron-step."""

import argparse
import json
import math

import pytest

from iirsnn.benchmark import (
    QUICK_WORKLOADS,
    SWEEPS,
    WORKLOADS,
    Config,
    _length_memory,
    bytes_per_neuron_step,
    format_report,
    names_type,
    run,
    run_in_process,
)
from iirsnn.cli import main


def _positive_finite(x):
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_quick_run_has_every_workload_floor_and_sweep(tmp_path):
    path = tmp_path / "bench.json"
    report = run(list(WORKLOADS), list(SWEEPS), steps=1, quick=True, json_path=str(path), progress=False,
                 runner=run_in_process)
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(report))
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.json"]  # no temporary file left
    rows = saved["rows"]
    assert not [r["error"] for r in rows if "error" in r]
    workload_rows = {(r["workload"], r["model"]) for r in rows if r["sweep"] == "workloads"}
    assert workload_rows == {(w, m) for w in WORKLOADS for m in ("iirsnn", "dense-floor")}
    for name, sweep in SWEEPS.items():
        points = [(r["workload"], r["value"]) for r in rows if r["sweep"] == name]
        names = [sweep.workload] if sweep.workload else list(WORKLOADS)
        assert points == [(w, v) for w in names for v in sweep.quick_values]
    for r in rows:
        assert _positive_finite(r["infer_s"]) and _positive_finite(r["infer_samples_per_s"])
        assert ("train_s" in r) == r["train"] == (r["sweep"] != "throughput")
        if "train_s" in r:
            assert _positive_finite(r["train_s"])
        if r["model"] == "iirsnn":
            assert len(r["layer_rates"]) == len(r["spec"].split("-"))
            assert all(0 <= v <= 1 for v in r["layer_rates"]) and r["out_rate"] == r["layer_rates"][-1]
    widths = [r["spec"] for r in rows if r["sweep"] == "width"]
    assert widths == [f"{w}-{w}-10" for w in SWEEPS["width"].quick_values]
    lengths = [r for r in rows if r["sweep"] == "length"]
    assert [r["T"] for r in lengths] == list(SWEEPS["length"].quick_values)
    assert lengths[0]["neurons"] == 50 + 20 + 50 + 30
    assert math.isfinite(saved["bytes_per_neuron_step"])
    text = format_report(report)
    assert "dense floor" in text and "floor train s" in text and "bytes per neuron-step" in text
    assert all(f"sweep {name}" in text for name in SWEEPS)


def test_cli_runs_each_measurement_in_its_own_process(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--workloads", "mlp", "--sweeps", "none", "--steps", "1",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mlp" in out and "train/floor" in out
    rows = json.loads(path.read_text())["rows"]
    assert [r["model"] for r in rows] == ["iirsnn", "dense-floor"]
    assert all(_positive_finite(r["train_s"]) and r["peak_rss_added_mb"] >= 0 for r in rows)


def test_rejected_precision_is_an_error_row():
    row = run_in_process(Config("workloads", "mlp", "iirsnn", QUICK_WORKLOADS["mlp"], 1, precision="fp7"))
    assert row["error"] and row["precision"] == "fp7" and "train_s" not in row
    report = dict(rows=[row], bytes_per_neuron_step=None)
    assert "ERROR workloads mlp iirsnn" in format_report(report)


def test_bytes_per_neuron_step_is_the_slope_of_peak_memory():
    neurons, batch = 1500, 16
    T = [25, 100, 300, 1000]
    per_step = 37.5  # bytes per neuron-step on top of a fixed 80 MiB
    peak_mb = [80 + per_step * t * batch * neurons / 2**20 for t in T]
    assert bytes_per_neuron_step([t * batch * neurons for t in T], peak_mb) == pytest.approx(per_step)
    rows = [dict(sweep="length", T=t, batch=batch, neurons=neurons, peak_rss_added_mb=m)
            for t, m in zip(T, peak_mb, strict=True)]
    rows.append(dict(sweep="length", T=2000, error="MemoryError"))
    assert _length_memory(rows) == pytest.approx(per_step)
    assert _length_memory(rows[:1]) is None
    with pytest.raises(ValueError):
        bytes_per_neuron_step([10, 10], [1.0, 2.0])


def test_names_are_validated():
    parse = names_type(list(SWEEPS), allow_none=True)
    assert parse("none") == []
    assert parse("density,length,density") == ["density", "length"]
    with pytest.raises(argparse.ArgumentTypeError):
        parse("densty")
    with pytest.raises(argparse.ArgumentTypeError):
        names_type(list(WORKLOADS))("none")
