"""The one training loop of iirsnn: any task, any network, checkpointed, resumable bit for bit.

Protocol: the validation split (the task's own, or carved from the training data with a fixed seed)
selects the model; the test split is scored once with the selected model at the end (``results.json``,
``selected``). With ``test_every_epoch`` the test split is also scored after every epoch, and the
maximum over epochs (test-set selection, what the paper's authors report) is given beside it, labelled.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per epoch),
``checkpoint-last.pt`` (every epoch, and every ``checkpoint_every`` steps), ``checkpoint-best.pt``
(the validation-selected epoch), ``results.json`` at the end, and ``figures/``. Everything random is
drawn from seeds or from torch's generator, whose state the checkpoints keep, so that a run resumed
from any checkpoint ends with the same weights and metrics as an uninterrupted one (on the CPU).
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from iirsnn._checks import NonFiniteError
from iirsnn.atomic import atomic_path, atomic_write_json, atomic_write_text
from iirsnn.data.tasks import Batch
from iirsnn.train import augment, build, checkpoint, distributed, nonfinite
from iirsnn.train.config import ConfigError, ExperimentConfig, config_from_dict, dump_config
from iirsnn.train.metrics import FiringRates, Score, evaluate, score_batch

TIMING_KEYS = ("seconds", "samples_per_s")  # the fields of metrics that differ between identical runs


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available")
    return device


def selection_metric(record: dict) -> tuple[str, float, float]:
    """(description, value, loss) by which an epoch is selected: validation accuracy (or F1 for reconstruction),
    the training split's when there is no validation split; the higher value wins, and of equal values the
    lower loss (a small validation split gives many epochs the same accuracy)."""
    split = "val" if "val" in record else "train"
    metric = "accuracy" if "accuracy" in record[split] else "f1"
    return f"{split} {metric} (ties: lower loss)", record[split][metric], record[split]["loss"]


class Trainer:
    """Train ``cfg`` into ``run_dir``. ``root`` overrides ``cfg.data.root`` (where the data lie, not part of
    the experiment). ``quiet`` hides the progress bar and the per-epoch lines.

    In a process group of several processes (``torchrun``, :mod:`iirsnn.train.distributed`) every process runs
    the same Trainer: each trains on its share of every batch, the gradients and scores are summed over them, and
    rank 0 alone reads and writes ``run_dir``, shows progress and warns."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False, root: str | None = None):
        cfg.check()
        self.ranks = distributed.current()
        self.cfg, self.run_dir, self.quiet = cfg, Path(run_dir), quiet or not self.ranks.main
        self.device = self.ranks.device(resolve_device(cfg.device))
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.task = self.ranks.main_first(build.task_of, cfg, root)  # rank 0 fills the data cache, the others read it
        wanted = "reconstruction" if cfg.loss.name == "van_rossum" else "classification"
        if self.task.kind != wanted:
            raise ConfigError(f"loss.name {cfg.loss.name!r} needs a {wanted} task; {self.task.name!r} is a "
                              f"{self.task.kind} task")
        self.augmenting = bool(augment.active(cfg.augment))
        self._check_augment()
        self.encode = build.encoder_of(cfg, self.task)
        probe = self.encode(self.task.batch("train", torch.arange(1), 1).x)
        self.input_shape = tuple(probe.shape[2:])
        torch.manual_seed(cfg.seed)
        self.model = build.build_model(cfg, self.task, self.input_shape).to(self.device)
        self.optimizer = build.build_optimizer(cfg, self.model)
        self.history: list[dict] = []
        self.best: dict | None = None
        self.epochs_done, self.step_in_epoch, self.global_step = 0, 0, 0
        self.partial: dict = {}

    # -- state -------------------------------------------------------------------------------------------
    def _check_augment(self) -> None:
        """Refuse transforms that do not fit the task: series ones on images, image ones on series, any on a
        reconstruction task."""
        series, image = augment.active(self.cfg.augment, "series"), augment.active(self.cfg.augment, "image")
        task = self.task
        if (series or image) and task.kind != "classification":
            raise ConfigError(f"augment applies to classification; task {task.name!r} is a {task.kind} task")
        if series and task.static:
            raise ConfigError(f"augment.{series[0]} transforms series; task {task.name!r} has static inputs "
                              f"{list(task.input_shape)} (for images: augment.crop, augment.rotate)")
        if image and not (task.static and len(task.input_shape) == 3):
            raise ConfigError(f"augment.{image[0]} transforms static images [C, H, W]; task {task.name!r} has "
                              f"{'static' if task.static else 'series'} inputs {list(task.input_shape)}")

    def _state(self) -> dict:
        return {"config": self.cfg.to_dict(), "model_build": self.model.build_config,
                "input_shape": list(self.input_shape), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "epochs_done": self.epochs_done,
                "step_in_epoch": self.step_in_epoch, "global_step": self.global_step, "partial": self._summed(),
                "history": self.history, "best": self.best, "rng": checkpoint.rng_state()}

    def _restore(self, state: dict) -> None:
        stored = config_from_dict(state["config"])
        if stored != self.cfg:
            diff = _differences(stored.to_dict(), self.cfg.to_dict())
            raise ConfigError(f"{self.run_dir}: the checkpoint was written by another config; differing keys: "
                              f"{', '.join(diff)}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epochs_done, self.step_in_epoch = state["epochs_done"], state["step_in_epoch"]
        self.global_step, self.partial = state["global_step"], state["partial"]
        self.history, self.best = state["history"], state["best"]
        checkpoint.restore_rng(state["rng"])

    def _summed(self) -> dict:
        """The epoch in progress's running sums (``partial``), summed over ranks (each rank holds its share)."""
        if not self.partial:
            return self.partial
        return self.partial | self.ranks.sum({k: self.partial.get(k, {}) for k in ("score", "rates")})

    def _save_last(self) -> None:
        self.ranks.on_main(checkpoint.save, self.run_dir / checkpoint.LAST, self._state())

    def _write_metrics(self) -> None:
        atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, resume: bool = False, max_steps: int | None = None) -> dict | None:
        """Train to ``cfg.epochs`` (continuing from the run directory's last checkpoint when ``resume``) and
        return the results; ``max_steps`` stops after that many training steps in all, as if killed (no save
        at that point: only the checkpoints already written remain), and returns None."""
        state = self.ranks.on_main(self._open_run_dir, resume)
        if state is not None:
            self._restore(state)
        elif self.cfg.model.calibrate is not None:
            self._calibrate()
        self.ranks.broadcast_([*self.model.parameters(), *self.model.buffers()])  # every rank starts alike
        self.ranks.on_main(self._write_run_dir)
        rates = FiringRates(self.model)
        try:
            for epoch in range(self.epochs_done + 1, self.cfg.epochs + 1):
                if not self._train_epoch(epoch, rates, max_steps):
                    return None
                self._end_epoch(epoch, rates)
        finally:
            rates.remove()
        return self._finish()

    def _open_run_dir(self, resume: bool) -> dict | None:
        """The last checkpoint's state to continue from (``resume``), or None to start afresh (rank 0 only)."""
        last = self.run_dir / checkpoint.LAST
        if resume:
            self._drop_unfinished_writes()
            if last.exists():
                return checkpoint.load(last)
            warnings.warn(f"{self.run_dir}: no checkpoint yet (killed before its first one): starting from the "
                          "beginning", RuntimeWarning, stacklevel=4)
        elif last.exists():
            raise ConfigError(f"{self.run_dir} already holds a run; resume it (--resume) or choose another directory")
        return None

    def _write_run_dir(self) -> None:
        """Create the run directory with ``config.yaml`` and ``metrics.jsonl`` (rank 0 only)."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "figures").mkdir(exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", dump_config(self.cfg))
        except OSError as exc:
            raise ConfigError(f"cannot write the run directory {self.run_dir}: {exc.strerror or exc}") from None
        self._write_metrics()

    def _nonfinite(self, epoch: int, step_index: int, what: str, skipped: int) -> None:
        """A NaN or an infinity at this step: stop (``nonfinite: stop``), or skip the step's update and its
        score (``nonfinite: skip``; ``skipped`` steps so far this epoch, this one included)."""
        message = f"epoch {epoch}, step {step_index + 1}: {what}"
        if self.cfg.nonfinite == "stop":
            raise FloatingPointError(f"{message}; the run stops (nonfinite=skip skips such steps instead)")
        self.optimizer.zero_grad(set_to_none=True)
        if self.ranks.main:
            warnings.warn(f"{message}: step skipped ({skipped} this epoch)", RuntimeWarning, stacklevel=2)

    def _drop_unfinished_writes(self) -> None:
        """Remove the temporary files of writes a killed run left behind (:mod:`iirsnn.atomic`: never read)."""
        unfinished = sorted(self.run_dir.glob(".*.tmp"))
        for path in unfinished:
            path.unlink()
        if unfinished:
            warnings.warn(f"{self.run_dir}: removed {len(unfinished)} unfinished write(s) of a killed run: "
                          f"{', '.join(p.name for p in unfinished)}", RuntimeWarning, stacklevel=2)

    def _calibrate(self) -> None:
        """Scale the initial weights layer by layer to ``model.calibrate``'s firing range on training samples."""
        from iirsnn.init import calibrate_

        if not build.is_spiking(self.model):
            raise ConfigError("model.calibrate applies to spiking networks only")
        m = self.cfg.model
        count = min(m.calibrate_samples, self.task.size("train"))
        batch = self.task.batch("train", torch.arange(count), 1).to(self.device)
        with torch.no_grad():
            calibrate_(self.model, self.encode(batch.x), low=float(m.calibrate[0]), high=float(m.calibrate[1]))

    def _train_epoch(self, epoch: int, rates: FiringRates, max_steps: int | None) -> bool:
        cfg, task, ranks = self.cfg, self.task, self.ranks
        lr = build.set_lr(cfg, self.optimizer, epoch)
        n = task.size("train")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
        starts = list(range(0, n, cfg.batch))
        carried = self.partial if ranks.main else {}  # the sums so far: summed over ranks, rank 0 holds them
        score = Score(carried.get("score"))
        rates.sums = dict(carried.get("rates", {}))
        seconds = self.partial.get("seconds", 0.0)
        skipped = self.partial.get("skipped", 0)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.train()
        bar = tqdm(total=len(starts), initial=self.step_in_epoch, desc=f"epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=self.quiet, unit="batch")
        for i in range(self.step_in_epoch, len(starts)):
            t0 = time.perf_counter()
            ranks.seed_step(cfg.seed, self.global_step)
            index = order[starts[i]:starts[i] + cfg.batch]
            batch, out, loss, problem = self._gradients(ranks.shard(index), len(index), epoch)
            problem = ranks.sum_gradients(params, problem)
            if problem is None:
                if cfg.optimizer.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optimizer.grad_clip)
                self.optimizer.step()
                if batch is not None:
                    score_batch(score, cfg, self.model, out, batch, loss.detach())
            else:
                skipped += 1
                self._nonfinite(epoch, i, problem, skipped)
            seconds += time.perf_counter() - t0
            self.global_step += 1
            self.step_in_epoch = i + 1
            self.partial = {"score": score.state(), "rates": rates.state(), "seconds": seconds, "skipped": skipped}
            bar.update()
            shown = {k: f"{v:.3f}" for k, v in score.result().items()}
            bar.set_postfix(shown | {"samples/s": f"{score.sums.get('samples', 0) / max(seconds, 1e-9):.0f}"})
            if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0 and i + 1 < len(starts):
                self._save_last()
            if max_steps is not None and self.global_step >= max_steps:
                bar.close()
                return False
        bar.close()
        self.partial = self._summed() | {"lr": lr}
        rates.sums = dict(self.partial["rates"])
        return True

    def _gradients(self, index: torch.Tensor, n_global: int,
                   epoch: int) -> tuple[Batch | None, torch.Tensor | None, torch.Tensor | None, str | None]:
        """Forward and backward of the training samples ``index`` [B], this process's share of a batch of
        ``n_global``: (batch, output, mean loss, problem), the problem a message when a loss, forward value or
        gradient is not finite; all None for no samples (a process whose share of a small batch is empty)."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        if not len(index):
            return None, None, None, None
        batch = self.task.batch("train", index, epoch)
        batch = (augment.augment(batch, cfg.augment) if self.augmenting else batch).to(self.device)
        x = self.encode(batch.x)
        out = loss = problem = None
        try:
            out = build.forward(self.model, x, batch)
            loss = build.loss_of(cfg, self.model, out, batch)
        except NonFiniteError as exc:  # a layer refused a NaN or Inf input
            problem = f"the forward pass met a non-finite value ({exc})"
        if problem is None and not torch.isfinite(loss):
            problem = f"the loss is {float(loss)}"
        if problem is not None:
            again = functools.partial(build.forward, self.model, x, batch)
            where = nonfinite.first_nonfinite_layer(self.model, again)
            problem += f"; first {where}" if where else ""
        else:
            self.ranks.weight(loss, len(index), n_global).backward()
            bad = nonfinite.first_nonfinite_gradient(self.model)
            if bad is not None:
                problem = f"the gradient of {bad} is not finite (the loss is {float(loss):.6g})"
        return batch, out, loss, problem

    def _end_epoch(self, epoch: int, rates: FiringRates) -> None:
        cfg, task = self.cfg, self.task
        score = Score(self.partial["score"])
        train = score.result()
        train["samples_per_s"] = score.sums["samples"] / max(self.partial["seconds"], 1e-9)
        record = {"epoch": epoch, "step": self.global_step, "lr": self.partial["lr"],
                  "seconds": self.partial["seconds"], "train": train}
        if self.partial.get("skipped"):
            record["skipped_steps"] = self.partial["skipped"]
        for split in ("val", "test"):
            if task.size(split) and (split == "val" or cfg.test_every_epoch):
                record[split] = evaluate(cfg, self.model, task, split, self.encode, self.device, epoch,
                                         ranks=self.ranks)
        record["firing_rates"] = rates.rates()
        for name in rates.silent() if self.ranks.main else ():
            message = (f"{name} fired no spike in epoch {epoch}: its error signal is zero; raise the input gain or "
                       "the weight scale, or lower the threshold")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.history.append(record)
        if task.kind == "reconstruction" and task.size("val"):
            self.ranks.on_main(self._probe, epoch)
        self.epochs_done, self.step_in_epoch, self.partial = epoch, 0, {}
        what, value, loss = selection_metric(record)
        # a checkpoint written before ties were broken by the loss has none: its best then keeps ties, as it did
        best_loss = None if self.best is None else self.best.get("loss", -math.inf)
        if self.best is None or (value, -loss) > (self.best["value"], -best_loss):
            self.best = {"epoch": epoch, "metric": what, "value": value, "loss": loss}
            state = self._state()
            self.ranks.on_main(checkpoint.save, self.run_dir / checkpoint.BEST, state)  # before LAST: docs/training.md
        self._save_last()
        self.ranks.on_main(self._write_metrics)
        if not self.quiet:
            tqdm.write(_epoch_line(record, cfg.epochs))

    def _probe(self, epoch: int) -> None:
        """Keep the output for the first validation sample (``probes.pt``: input, target, outputs per epoch),
        for the reconstruction figure (rank 0 only)."""
        path = self.run_dir / "probes.pt"
        batch = self.task.batch("val", torch.arange(1), epoch).to(self.device)
        self.model.eval()
        with torch.no_grad():
            out = build.forward(self.model, self.encode(batch.x), batch)[:, 0]
        self.model.train()
        probe = torch.load(path, weights_only=True) if path.exists() else {
            "input": batch.x[:, 0].bool().cpu(), "target": batch.target[:, 0].bool().cpu(), "outputs": {}}
        probe["outputs"] = {e: o for e, o in probe["outputs"].items() if e < epoch} | {epoch: out.bool().cpu()}
        with atomic_path(path) as tmp:
            torch.save(probe, tmp)

    def _finish(self) -> dict:
        best_state = self.ranks.on_main(checkpoint.load, self.run_dir / checkpoint.BEST)
        model = checkpoint.rebuild_model(best_state).to(self.device)
        results = {"experiment": self.cfg.experiment, "epochs": self.epochs_done,
                   "selected": {"epoch": self.best["epoch"], "by": self.best["metric"],
                                **{s: self.history[self.best["epoch"] - 1][s] for s in ("train", "val")
                                   if s in self.history[self.best["epoch"] - 1]}},
                   "train_seconds": sum(r["seconds"] for r in self.history)}
        if self.task.size("test"):
            results["selected"]["test"] = evaluate(self.cfg, model, self.task, "test", self.encode, self.device,
                                                   confusion=True, ranks=self.ranks)
        tested = [r for r in self.history if "test" in r]
        if tested:
            metric = "accuracy" if "accuracy" in tested[0]["test"] else "f1"
            top = max(tested, key=lambda r: r["test"][metric])
            results["max_test_over_epochs"] = {"epoch": top["epoch"], metric: top["test"][metric],
                                               "note": "test-set selection (what the paper's authors report)"}
        self.ranks.on_main(atomic_write_json, self.run_dir / "results.json", results)
        return results


def _epoch_line(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for split in ("train", "val", "test"):
        if split in record:
            shown = {k: v for k, v in record[split].items() if k in ("loss", "accuracy", "f1", "mse")}
            parts.append(f"{split} " + " ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    parts.append(f"{record['seconds']:.1f} s, {record['train']['samples_per_s']:.0f} samples/s")
    return " | ".join(parts)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict) and k != "options":
            out += _differences(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.append(f"{prefix}{k} ({a.get(k)!r} in the checkpoint, {b.get(k)!r} now)")
    return out
