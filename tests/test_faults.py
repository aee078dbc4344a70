"""Real SIGKILLs at random moments of a training run (mid-step, mid-evaluation, mid-checkpoint write); each
time ``iirsnn train --resume`` continues, and the run ends bit for bit equal to an uninterrupted one."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from iirsnn.train.checkpoint import LAST, load
from iirsnn.train.config import ExperimentConfig, apply_overrides, dump_config
from iirsnn.train.loop import TIMING_KEYS

KILLS = 12  # kills per test (docs/reliability.md); each after 1 .. MAX_STEPS_PER_LIFE steps: 12 * 8 < 180 steps
MAX_STEPS_PER_LIFE = 8
CONFIG = ["epochs=20", "batch=20", "optimizer.lr=3e-3", "model.spec=24-16-5", "model.options.dropout=0.2",
          "model.options.learnable_synapse=true", "data.options.train_per_class=40", "data.options.test_per_class=10",
          "checkpoint_every=1", "threads=1"]  # a checkpoint every step: kills often land inside a write


def _train(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "iirsnn.cli", "train", *args, "--quiet", "--no-figures"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _steps_done(run_dir) -> int:
    last = run_dir / LAST
    return load(last)["global_step"] if last.exists() else 0  # written atomically: always a whole file


def _wait_for_steps(run_dir, proc: subprocess.Popen, start: int, steps: int) -> None:
    """Until the process has checkpointed ``steps`` steps past ``start`` (past its imports: it trains), or has
    ended: counted in steps, so that the kills land alike on a fast machine and a slow one."""
    while proc.poll() is None and _steps_done(run_dir) < start + steps:
        time.sleep(0.005)


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_runs_killed_at_random_moments_resume_to_the_same_weights_and_metrics(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(dump_config(apply_overrides(ExperimentConfig(experiment="kill"), CONFIG)))
    whole = _train("--config", str(config), "--out", str(tmp_path / "whole"))
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()

    killed_run = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    while True:
        started = (killed_run / "config.yaml").exists()  # else killed before it wrote anything: start it again
        args = ["--resume", str(killed_run)] if started else ["--config", str(config), "--out", str(killed_run)]
        start = _steps_done(killed_run)
        proc = _train(*args)
        if kills < KILLS:
            _wait_for_steps(killed_run, proc, start, rng.randint(1, MAX_STEPS_PER_LIFE))
            time.sleep(rng.uniform(0.0, 0.03))  # then somewhere in a step, an evaluation or a checkpoint write
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                continue
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
        break
    assert kills == KILLS
    assert not list(killed_run.glob(".*.tmp"))  # the unfinished writes of killed runs were removed
    a, b = load(tmp_path / "whole" / LAST), load(killed_run / LAST)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert _without_timing(a["history"]) == _without_timing(b["history"])
    results = [json.loads((run / "results.json").read_text()) for run in (tmp_path / "whole", killed_run)]
    assert _without_timing(results[0]["selected"]) == _without_timing(results[1]["selected"])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])  # a full disk; a file system gone read-only
def test_a_full_disk_mid_checkpoint_keeps_the_last_one_and_the_run_resumes(tmp_path, monkeypatch, capsys, code):
    from iirsnn.cli import main
    from iirsnn.train import checkpoint

    config = tmp_path / "config.yaml"
    config.write_text(dump_config(apply_overrides(ExperimentConfig(experiment="disk"),
                                                  [*CONFIG, "epochs=2", "checkpoint_every=0"])))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "whole"), "--quiet", "--no-figures"]) == 0
    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, path, *args, **kwargs):
        if f".{LAST}." in str(path):
            calls.append(path)
        if len(calls) == 2:  # the second last-checkpoint (epoch 2): half written, then no space left
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 half")
            raise OSError(code, os.strerror(code), str(path))
        return real_save(obj, path, *args, **kwargs)

    run = tmp_path / "run"
    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_fills)
    assert main(["train", "--config", str(config), "--out", str(run), "--quiet", "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert os.strerror(code) in err and f"--resume {run}" in err
    assert load(run / LAST)["epochs_done"] == 1  # the checkpoint before the failed write, intact
    assert not list(run.glob(".*.tmp"))
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert main(["train", "--resume", str(run), "--quiet", "--no-figures"]) == 0
    a, b = load(tmp_path / "whole" / LAST), load(run / LAST)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_an_unwritable_run_directory_is_refused_before_training(tmp_path, capsys):
    from iirsnn.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "spike-timing", "--out", str(blocker / "run"), "--quiet", "--no-figures"]) == 2
    assert f"cannot write the run directory {blocker / 'run'}" in capsys.readouterr().err


def _poison_layer_after(model, layer_index: int, calls_before: int):
    """Make layer ``layer_index``'s output NaN from its ``calls_before + 1``-th forward call on."""
    calls = []

    def hook(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) > calls_before else output

    return list(model.children())[layer_index].register_forward_hook(hook)


def test_a_nan_stops_the_run_naming_the_layer_and_the_step(tmp_path):
    from iirsnn.train import Trainer

    cfg = apply_overrides(ExperimentConfig(experiment="nan"), [*CONFIG, "epochs=2", "checkpoint_every=0"])
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    spiking = [i for i, m in enumerate(trainer.model.children()) if type(m).__name__ == "SpikingLayer"]
    _poison_layer_after(trainer.model, spiking[1], calls_before=3)
    with pytest.raises(FloatingPointError, match=rf"epoch 1, step 4: the forward pass met a non-finite value .*; "
                                                 rf"first layer {spiking[1]} \(SpikingLayer\): its output is not "
                                                 "finite"):
        trainer.run()


def test_a_nan_gradient_is_named_and_skip_mode_skips_only_those_steps(tmp_path):
    from iirsnn.train import Trainer

    cfg = apply_overrides(ExperimentConfig(experiment="nan"), [*CONFIG, "epochs=1", "checkpoint_every=0"])
    trainer = Trainer(cfg, tmp_path / "stop", quiet=True)
    first = next(p for p in trainer.model.parameters())
    first.register_hook(lambda grad: grad * float("inf"))
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 1: the gradient of 0\.\S+ is not finite"):
        trainer.run()
    cfg.nonfinite = "skip"
    trainer = Trainer(cfg, tmp_path / "skip", quiet=True)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    steps = []
    first = next(p for p in trainer.model.parameters())
    first.register_hook(lambda grad: grad * float("nan") if len(steps.append(1) or steps) % 2 else grad)
    with pytest.warns(RuntimeWarning, match="step skipped"):
        trainer.run()
    record = json.loads((tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["skipped_steps"] == (len(steps) + 1) // 2  # every other step
    after = list(trainer.model.parameters())
    assert all(bool(p.isfinite().all()) for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # the other steps trained
