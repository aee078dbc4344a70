"""Training on two processes (gloo): the same run as one process, resumable with another number of processes,
rank 0 alone writing the run directory; and two processes building the compiled CPU kernels at once."""

import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing

from iirsnn.cli import main
from iirsnn.train import Trainer, apply_overrides
from iirsnn.train.checkpoint import LAST, load
from iirsnn.train.config import ExperimentConfig
from iirsnn.train.distributed import SINGLE, Ranks, process_group
from iirsnn.train.loop import TIMING_KEYS

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")

# 35 training samples in batches of 17: steps of 17, 17 and 1 samples, shared 9/8, 9/8 and 1/0 by two processes
# (the last one has none); evaluation batches of 7 (5 validation, 20 test samples) split unevenly as well. No
# dropout, augmentation or random encoder: nothing random inside a step, so the runs agree to float rounding.
CFG = apply_overrides(ExperimentConfig(experiment="t"), [
    "epochs=3", "batch=17", "eval_batch=7", "optimizer.lr=3e-3", "model.spec=24-16-5", "threads=1",
    "model.options.learnable_synapse=true", "data.options.train_per_class=8", "data.options.test_per_class=4",
    "checkpoint_every=2"])
KILL_AT = 5  # training steps: epoch 2's second step, after the checkpoint of step 4 (mid-epoch 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, jobs: list) -> None:
    """One of ``world`` processes: join the group as torchrun's processes do, then run each job
    (run directory per rank, resume, max_steps)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    with process_group() as ranks:
        assert ranks == Ranks(rank, world)
        for dirs, resume, max_steps in jobs:
            Trainer(CFG, dirs[rank], quiet=True).run(resume=resume, max_steps=max_steps)


def _on_two_processes(jobs: list) -> None:
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), jobs), nprocs=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run directories: ``single`` (one process), ``two`` (two processes; rank 1 given ``two-rank1``, which
    must stay absent), ``one-two`` (killed on one process, resumed on two), ``two-one`` (the other way)."""
    root = tmp_path_factory.mktemp("distributed")
    d = {name: root / name for name in ("single", "two", "two-rank1", "one-two", "two-one", "elsewhere")}
    Trainer(CFG, d["single"], quiet=True).run()
    assert Trainer(CFG, d["one-two"], quiet=True).run(max_steps=KILL_AT) is None
    _on_two_processes([((d["two"], d["two-rank1"]), False, None),
                       ((d["one-two"], d["elsewhere"]), True, None),  # rank 1 reads nothing of the run directory
                       ((d["two-one"], d["elsewhere"]), False, KILL_AT)])
    assert load(d["two-one"] / LAST)["global_step"] == 4  # killed after the checkpoint of step 4
    Trainer(CFG, d["two-one"], quiet=True).run(resume=True)
    return d


def _numbers(value, prefix=""):
    """Every number of a nested record as {path: value}, without the timings."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key not in (*TIMING_KEYS, "train_seconds")
                for k, v in _numbers(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}{i}.").items()}
    return {prefix: value}


def _assert_same_run(a, b):
    """The models of two run directories' last checkpoints to 1e-5 relative, and their metrics."""
    sa, sb = load(a / LAST), load(b / LAST)
    assert sa["global_step"] == sb["global_step"] == 9
    for key, x in sa["model"].items():
        torch.testing.assert_close(sb["model"][key], x, rtol=1e-5, atol=1e-6, msg=key)
    ha = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    hb = [json.loads(line) for line in (b / "metrics.jsonl").read_text().splitlines()]
    na, nb = _numbers(ha), _numbers(hb)
    assert na.keys() == nb.keys() and len(ha) == 3
    for key, value in na.items():
        assert math.isclose(nb[key], value, rel_tol=1e-5, abs_tol=1e-7), key
    ra, rb = (_numbers(json.loads((d / "results.json").read_text())) for d in (a, b))
    assert ra.keys() == rb.keys()
    for key, value in ra.items():
        assert value == rb[key] if isinstance(value, (str, int)) else math.isclose(rb[key], value, rel_tol=1e-5), key


def test_two_processes_train_the_model_one_process_trains(runs):
    _assert_same_run(runs["single"], runs["two"])
    single, two = (load(runs[name] / LAST) for name in ("single", "two"))
    start = Trainer(CFG, runs["single"].parent / "untrained", quiet=True).model.state_dict()
    assert any(not torch.allclose(start[k], single["model"][k]) for k in start)  # it trained: the test can fail
    assert set(two["history"][0]["firing_rates"]) == {"layer0", "layer1", "layer2"}
    confusion = json.loads((runs["two"] / "results.json").read_text())["selected"]["test"]["confusion"]
    assert sum(map(sum, confusion)) == 20


def test_a_run_resumes_on_another_number_of_processes(runs):
    _assert_same_run(runs["single"], runs["one-two"])  # killed on one process, resumed on two
    _assert_same_run(runs["single"], runs["two-one"])  # killed on two, resumed on one


def test_only_rank_0_writes_the_run_directory(runs):
    assert not runs["two-rank1"].exists() and not runs["elsewhere"].exists()
    files = {p.name for p in runs["two"].iterdir()}
    assert files == {"config.yaml", "metrics.jsonl", "checkpoint-last.pt", "checkpoint-best.pt", "results.json",
                     "figures"}


def test_torchrun_runs_the_command_line_on_two_processes(tmp_path):
    """``torchrun -m iirsnn train``: one summary and one line per epoch (rank 0's), the run directory written
    once and nothing else, and the single process's results."""
    args = ["train", "spike-timing", "--quick", "--epochs", "2", "--batch", "17", "--threads", "1", "--no-figures",
            "--set", "data.options.train_per_class=8", "--set", "data.options.test_per_class=4"]
    assert main([*args, "--out", str(tmp_path / "single"), "--quiet"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "iirsnn", *args, "--out", "two"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("selected epoch") for line in lines) == 1
    assert [line.split(" |")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single", "two"]  # no rank made a directory of its own
    assert {p.name for p in (tmp_path / "two").iterdir()} == {p.name for p in (tmp_path / "single").iterdir()}
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("single", "two"))
    assert a["selected"]["epoch"] == b["selected"]["epoch"]
    assert a["selected"]["test"]["confusion"] == b["selected"]["test"]["confusion"]
    assert b["selected"]["test"]["loss"] == pytest.approx(a["selected"]["test"]["loss"], rel=1e-5)


def test_one_process_is_untouched():
    """Without torchrun's variables the hooks are the identity: the same objects come back."""
    index, loss = torch.arange(5), torch.tensor(1.5)
    assert SINGLE.shard(index) is index and SINGLE.weight(loss, 2, 5) is loss
    sums = {"samples": 3.0}
    assert SINGLE.sum(sums) is sums and SINGLE.on_main(len, "abc") == 3
    assert [len(Ranks(r, 3).shard(torch.arange(7))) for r in range(3)] == [3, 2, 2]
    assert [len(Ranks(r, 3).shard(torch.arange(2))) for r in range(3)] == [1, 1, 0]


def _sum_worker(rank: int, port: int, results) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    with process_group() as ranks:
        a, b = torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4))
        if rank == 0:  # rank 1 had no samples: no gradients at all, but a non-finite loss
            a.grad = torch.arange(6.0).view(2, 3)
        problem = ranks.sum_gradients([a, b], "the loss is nan" if rank == 1 else None)
        results.put((rank, problem, a.grad.tolist(), b.grad, ranks.sum({"n": rank + 1.0, "rates": {"l0": (rank, 1)}})))


def test_gradients_and_sums_over_ranks():
    """Every rank gets the summed gradients, None where no rank had one, and learns of another rank's problem."""
    results = multiprocessing.get_context("spawn").Queue()
    torch.multiprocessing.spawn(_sum_worker, args=(_free_port(), results), nprocs=2)
    got = sorted(results.get(timeout=30) for _ in range(2))
    assert got[0][1].startswith("another rank met a non-finite value") and got[1][1] == "the loss is nan"
    for _, _, a, b, sums in got:
        assert a == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and b is None
        assert sums == {"n": 3.0, "rates": {"l0": (1, 2)}}


def _build(cache: str, barrier, results) -> None:
    os.environ["IIRSNN_CACHE"] = cache
    from iirsnn.kernels.cpu import build

    barrier.wait()  # both compile at the same moment
    try:
        build.load()
        results.put("loaded")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.skipif(os.environ.get("IIRSNN_NO_COMPILE") == "1", reason="compilation disabled")
def test_two_processes_build_the_cpu_kernels_at_once(tmp_path):
    """torchrun's processes each load the kernels at their first step: both compile into their own temporary
    file, renamed into place atomically, and both load a complete library."""
    import shutil

    if shutil.which(os.environ.get("IIRSNN_CC", "cc")) is None:
        pytest.skip("no C compiler")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_build, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert outcomes == ["loaded", "loaded"]
    assert [p.name for p in (tmp_path / "kernels").iterdir()] == [next((tmp_path / "kernels").glob("*.so")).name]
