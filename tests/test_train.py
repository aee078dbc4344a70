"""The trainer: it learns, resumes bit for bit, scores a checkpoint alone, refuses bad configs and files."""

import json
import pickle

import pytest
import torch

from iirsnn.cli import main
from iirsnn.train import CheckpointError, ConfigError, Trainer, apply_overrides, evaluate_checkpoint
from iirsnn.train.checkpoint import BEST, LAST, load, save
from iirsnn.train.config import ExperimentConfig, dump_config, load_config
from iirsnn.train.loop import TIMING_KEYS

torch.set_num_threads(1)


def _small(*overrides):
    """The spike-timing task with a two-hidden-layer network, dropout and a rate-coded... well, spike input."""
    return apply_overrides(ExperimentConfig(experiment="t"), [
        "epochs=3", "batch=30", "optimizer.lr=3e-3", "model.spec=24-16-5", "model.options.dropout=0.2",
        "model.options.learnable_synapse=true", "data.options.train_per_class=40", "data.options.test_per_class=10",
        *overrides])


def _without_timing(records):
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        return value
    return [strip(r) for r in records]


def test_the_spike_timing_recipe_learns(tmp_path):
    assert main(["train", "spike-timing", "--epochs", "20", "--out", str(tmp_path / "run"), "--quiet",
                 "--no-figures"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    assert results["selected"]["test"]["accuracy"] > 0.6  # chance 0.2: only spike timing tells the classes apart
    assert results["max_test_over_epochs"]["accuracy"] >= results["selected"]["test"]["accuracy"] - 1e-12
    assert set(history[0]["firing_rates"]) == {"layer0", "layer1"}


@pytest.mark.parametrize("stop_at", [4, 6, 11])  # 6 steps an epoch: mid-epoch, its last step, mid-epoch 2
def test_resume_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path, stop_at):
    cfg = _small("checkpoint_every=3")
    whole = Trainer(cfg, tmp_path / "whole", quiet=True).run()
    assert Trainer(cfg, tmp_path / "cut", quiet=True).run(max_steps=stop_at) is None  # as if killed there
    resumed = Trainer(cfg, tmp_path / "cut", quiet=True).run(resume=True)
    a, b = load(tmp_path / "whole" / LAST), load(tmp_path / "cut" / LAST)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert _without_timing(a["history"]) == _without_timing(b["history"])
    lines = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("whole", "cut")]
    assert _without_timing([json.loads(x) for x in lines[0]]) == _without_timing([json.loads(x) for x in lines[1]])
    assert whole["selected"]["test"] == resumed["selected"]["test"]


def test_an_augmented_run_resumes_bitwise_and_differs_from_a_plain_one(tmp_path):
    cfg = _small("epochs=2", "checkpoint_every=3", "augment.noise=0.3", "augment.shift=2", "augment.channel_mask=4")
    whole = Trainer(cfg, tmp_path / "whole", quiet=True).run()
    assert Trainer(cfg, tmp_path / "cut", quiet=True).run(max_steps=4) is None
    resumed = Trainer(cfg, tmp_path / "cut", quiet=True).run(resume=True)
    a, b = load(tmp_path / "whole" / LAST), load(tmp_path / "cut" / LAST)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert whole["selected"]["test"] == resumed["selected"]["test"]
    Trainer(_small("epochs=2"), tmp_path / "plain", quiet=True).run()
    plain = load(tmp_path / "plain" / LAST)
    assert not all(torch.equal(a["model"][k], plain["model"][k]) for k in a["model"])


def test_a_checkpoint_from_before_the_loss_tie_break_resumes(tmp_path):
    """Checkpoints written before selection ties were broken by the validation loss hold no best loss."""
    cfg = _small("epochs=2")
    Trainer(cfg, tmp_path / "run", quiet=True).run(max_steps=7)  # killed in epoch 2, after its checkpoint
    state = load(tmp_path / "run" / LAST)
    del state["best"]["loss"]
    save(tmp_path / "run" / LAST, state)
    results = Trainer(cfg, tmp_path / "run", quiet=True).run(resume=True)
    assert results["epochs"] == 2 and results["selected"]["epoch"] in (1, 2)


def test_a_fresh_run_refuses_an_occupied_directory_and_resume_a_changed_config(tmp_path):
    cfg = _small("epochs=1")
    Trainer(cfg, tmp_path / "run", quiet=True).run()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, tmp_path / "run", quiet=True).run()
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        Trainer(apply_overrides(cfg, ["optimizer.lr=0.1"]), tmp_path / "run", quiet=True).run(resume=True)


def test_eval_rebuilds_the_network_from_the_checkpoint_alone(tmp_path, capsys):
    cfg = _small()
    results = Trainer(cfg, tmp_path / "run", quiet=True).run()
    scored = evaluate_checkpoint(tmp_path / "run")
    assert scored["accuracy"] == results["selected"]["test"]["accuracy"]
    assert scored["confusion"] == results["selected"]["test"]["confusion"]
    assert sum(map(sum, scored["confusion"])) == scored["samples"] == 50
    assert main(["eval", str(tmp_path / "run" / BEST), "--split", "val", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "val" and 0 <= out["accuracy"] <= 1


def test_config_yaml_round_trips_and_trains_again(tmp_path):
    cfg = _small("epochs=1", "schedule.name=multistep", "schedule.milestones=[1]")
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet", "--no-figures"]) == 0
    assert load_config(tmp_path / "run" / "config.yaml") == cfg


@pytest.mark.parametrize("args, message", [
    (["--set", "optimizer.lrr=1"], "optimizer.lrr"),
    (["--set", "optimizer.lr=fast"], "optimizer.lr must be float"),
    (["--set", "epochs=0"], "epochs must be >= 1"),
    (["--set", "model.kind=gru"], "model.kind"),
    (["--set", "data.options.clases=3"], "clases"),
    (["--set", "model.options.leek=0.5"], "leek"),
    (["--set", "model.spec=64-7"], "7 outputs"),
    (["--set", "encoder.name=repeat"], "does not fit"),
    (["--model", "lstm"], "temporal recipes"),
    (["--set", "loss.name=van_rossum"], "reconstruction task"),
    (["--set", "device=tpu"], "device"),
    (["--set", "model.calibrate=[0.5, 0.1]"], "model.calibrate"),
    (["--set", "augment.warp=1.5"], "augment.warp"),
    (["--set", "augment.noise=-1"], "augment.noise"),
    (["--set", "augment.shfit=2"], "augment.shfit"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--set", "nonfinite=ignore"], "nonfinite must be one of"),
])
def test_config_errors_name_the_key_before_training(tmp_path, capsys, args, message):
    assert main(["train", "spike-timing", "--out", str(tmp_path / "run"), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / LAST).exists()


def test_augmentation_of_a_reconstruction_task_is_refused(tmp_path, capsys):
    assert main(["train", "assoc-memory", "--quick", "--set", "augment.noise=0.1", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    assert "augment applies to classification; task 'assoc-memory'" in capsys.readouterr().err


def test_image_augmentation_of_a_series_task_is_refused(tmp_path, capsys):
    assert main(["train", "spike-timing", "--set", "augment.rotate=10", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    assert "augment.rotate transforms static images [C, H, W]" in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "auslan", "--quick", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "auslan_hq" in capsys.readouterr().err


class _Planted:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.path}",))


def test_a_checkpoint_that_carries_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    planted = _Planted()
    planted.path = marker
    bad = tmp_path / "checkpoint-last.pt"
    bad.write_bytes(pickle.dumps({"format": "iirsnn-checkpoint", "payload": planted}))
    torch.save({"format": "iirsnn-checkpoint", "payload": planted}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load(bad)
    assert not marker.exists()
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"checkpoint-last\.pt"):
        load(tmp_path)


def test_a_silent_layer_is_named_in_a_warning(tmp_path):
    cfg = _small("epochs=1", "model.options.threshold=1000.0", "model.options.init=torch")
    with pytest.warns(RuntimeWarning) as caught:
        Trainer(cfg, tmp_path / "run", quiet=True).run()
    silent = [str(w.message).split(" fired")[0] for w in caught if "fired no spike in epoch 1" in str(w.message)]
    assert silent == ["layer0", "layer2", "layer4"]  # every silent layer named, once


def test_cli_experiments_and_info(capsys):
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out
    assert "assoc-memory" in out and "auslan" in out and "no data needed" in out
    assert main(["info"]) == 0
    assert "compiled CPU kernels: " in capsys.readouterr().out


def test_spike_count_ties_go_to_the_earliest_first_spike_not_the_lowest_index():
    from iirsnn.train.build import spike_count_winner

    spikes = torch.zeros(6, 3, 4)
    spikes[[1, 4], 0, 0] = 1  # sample 0: neurons 0 and 2 fire twice, neuron 2 first
    spikes[[0, 5], 0, 2] = 1
    spikes[[0, 1, 2], 1, 3] = 1  # sample 1: neuron 3 has most spikes, neuron 1 fires earlier but less
    spikes[[0], 1, 1] = 1
    spikes[[2], 2, 1] = 1  # sample 2: neurons 1 and 3 fire once at the same step: the lowest index
    spikes[[2], 2, 3] = 1
    assert spike_count_winner(spikes).tolist() == [2, 3, 1]
    assert spike_count_winner(torch.zeros(5, 2, 3)).tolist() == [0, 0]  # silence: no evidence, class 0


def test_a_checkpoint_with_a_changed_byte_fails_its_checksum_and_version_1_still_loads(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save(path, {"model": {"w": torch.arange(1000.0)}, "epochs_done": 3})
    state = load(path)
    assert state["epochs_done"] == 3 and state["format_version"] == 2 and torch.equal(state["model"]["w"],
                                                                                      torch.arange(1000.0))
    outer = torch.load(path, weights_only=True)
    outer["content"][len(outer["content"]) // 2] ^= 1  # one bit of the state flipped, the zip still valid
    torch.save(outer, path)
    with pytest.raises(CheckpointError, match="SHA-256 of its content does not match"):
        load(path)
    torch.save({"format": "iirsnn-checkpoint", "format_version": 1, "epochs_done": 2}, path)
    assert load(path)["epochs_done"] == 2
    torch.save({"format": "iirsnn-checkpoint", "format_version": 7}, path)
    with pytest.raises(CheckpointError, match="format version 7, this iirsnn reads versions 1 and 2"):
        load(path)
