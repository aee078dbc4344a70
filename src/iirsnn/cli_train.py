"""``iirsnn train``, ``iirsnn eval``, ``iirsnn experiments`` and ``iirsnn plot``: the experiment commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from iirsnn.data.errors import DataError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train an experiment (iirsnn experiments lists them)",
                           description="Train a recipe, a config file, or resume a run. Order: the recipe, "
                           "--quick, --config, the options below, then every --set.")
    train.add_argument("experiment", nargs="?", help="recipe name (see `iirsnn experiments`)")
    train.add_argument("--config", metavar="FILE", help="a config YAML (e.g. a run's config.yaml)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set optimizer.lr=3e-4 (repeatable)")
    train.add_argument("--quick", action="store_true", help="a run under a minute on 2 cores (a smoke test)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--model", choices=["snn", "lstm"], help="lstm: the LSTM baseline (temporal recipes)")
    kernels = train.add_mutually_exclusive_group()
    kernels.add_argument("--learn-synapse", action="store_true", help="train the synapse kernels (alpha, beta)")
    kernels.add_argument("--fixed-synapse", action="store_true", help="keep the synapse kernels fixed")
    train.add_argument("--precision", choices=["fp32", "bf16-mixed"])
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    train.add_argument("--threads", type=int, help="CPU threads")
    train.add_argument("--problem", help="the UEA problem of the uea recipe")
    train.add_argument("--data-dir", help="the data root (default $IIRSNN_DATA)")
    train.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="also checkpoint every STEPS steps")
    train.add_argument("--out", metavar="RUN_DIR", help="run directory (default runs/EXPERIMENT-TIME)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    train.add_argument("--no-figures", action="store_true", help="do not draw the figures at the end")
    train.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="score a run's selected model (or any checkpoint) on a split")
    ev.add_argument("path", help="a run directory (its checkpoint-best.pt) or a checkpoint file")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--data-dir", help="the data root (default: the run's, else $IIRSNN_DATA)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.set_defaults(func=_eval)
    ex = sub.add_parser("experiments", help="list the recipes, their networks and whether their data are present")
    ex.add_argument("--data-dir", help="the data root (default $IIRSNN_DATA)")
    ex.set_defaults(func=_experiments)
    plot = sub.add_parser("plot", help="draw a run's figures (several runs: also the ablation figure)")
    plot.add_argument("runs", nargs="+", help="run directories")
    plot.add_argument("--labels", help="comma-separated labels of the runs for the ablation figure")
    plot.add_argument("--out", help="where the ablation figure goes (default ablation.png)")
    plot.add_argument("--data-dir", help="the data root, for figures that run the model on data")
    plot.set_defaults(func=_plot)


def resolve_config(args: argparse.Namespace):
    """The :class:`ExperimentConfig` of ``iirsnn train``'s arguments (see the parser's description)."""
    from iirsnn.experiments import recipe
    from iirsnn.train.config import ConfigError, ExperimentConfig, apply_overrides, load_config

    cfg, rec = ExperimentConfig(), None
    if args.experiment:
        rec = recipe(args.experiment)
        cfg = rec.config()
        if args.quick:
            cfg = apply_overrides(cfg, list(rec.quick))
    elif args.quick:
        raise ConfigError("--quick needs an experiment name")
    if args.config:
        cfg = load_config(args.config, cfg)
    elif not args.experiment:
        raise ConfigError("name an experiment (iirsnn experiments lists them), or give --config FILE or --resume DIR")
    sets = []
    if args.model == "lstm":
        if rec is not None and not rec.temporal:
            raise ConfigError(f"--model lstm: the LSTM baseline is for the temporal recipes, not {rec.name!r}")
        sets += ["model.kind=lstm", *(rec.lstm if rec is not None else ())]
    for flag, key in (("epochs", "epochs"), ("batch", "batch"), ("seed", "seed"), ("lr", "optimizer.lr"),
                      ("precision", "precision"), ("device", "device"), ("threads", "threads"),
                      ("checkpoint_every", "checkpoint_every"), ("problem", "data.options.problem")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={value}")
    if args.learn_synapse or args.fixed_synapse:
        sets.append(f"model.options.learnable_synapse={'true' if args.learn_synapse else 'false'}")
    return apply_overrides(cfg, sets + list(args.overrides))


def _train(args: argparse.Namespace) -> int:
    from iirsnn.train import CheckpointError, ConfigError, Trainer, load_config
    from iirsnn.train.distributed import process_group

    run_dir = None
    try:
        with process_group() as ranks:  # under torchrun: one of its processes; rank 0 reads the files, writes the run
            if args.resume:
                given = [f for f in ("experiment", "config", "epochs", "batch", "seed", "lr", "model", "precision",
                                     "problem", "checkpoint_every", "out") if getattr(args, f)]
                if given or args.overrides or args.quick or args.learn_synapse or args.fixed_synapse:
                    raise ConfigError(f"--resume continues a run with its own config; drop {given or '--set/--quick'}")
                run_dir = Path(args.resume)
                cfg = ranks.on_main(load_config, run_dir / "config.yaml")
            else:
                cfg = ranks.on_main(resolve_config, args)
                run_dir = Path(args.out or ranks.on_main(time.strftime, f"runs/{cfg.experiment}-%Y%m%d-%H%M%S"))
            trainer = Trainer(cfg, run_dir, quiet=args.quiet, root=args.data_dir)
            results = trainer.run(resume=bool(args.resume))
            # the other ranks wait for rank 0's summary and figures: processes that leave the group at different
            # times abort at exit now and then ("terminate called without an active exception", gloo)
            ranks.on_main(_report, results, run_dir, args)
    except (ConfigError, CheckpointError, DataError, ValueError) as exc:
        print(f"iirsnn train: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # a NaN or Inf loss or gradient (nonfinite: stop)
        print(f"iirsnn train: {exc}; the last complete checkpoint is in {run_dir}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a file system gone read-only: the last complete checkpoint stays valid
        where = f"; the last complete checkpoint is intact: continue with --resume {run_dir}" if run_dir else ""
        print(f"iirsnn train: cannot write {exc.filename or run_dir}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return 0


def _report(results: dict, run_dir: Path, args: argparse.Namespace) -> None:
    """The summary lines and, unless ``--no-figures``, the run's figures."""
    print(summary(results, run_dir))
    if not args.no_figures:
        _draw(run_dir, args.data_dir, quiet=args.quiet)


def summary(results: dict, run_dir: Path) -> str:
    """The lines ``iirsnn train`` ends with: the selected epoch's validation and test figures, the maximum test."""
    sel = results["selected"]
    metric = "accuracy" if "accuracy" in sel.get("val", sel["train"]) else "f1"
    lines = [f"{results['experiment']}: {results['epochs']} epochs, {results['train_seconds']:.1f} s of training; "
             f"run directory {run_dir}"]
    parts = [f"{split} {metric} {sel[split][metric]:.4f}" for split in ("val", "test") if split in sel]
    lines.append(f"selected epoch {sel['epoch']} (by {sel['by']}): " + ", ".join(parts))
    if "max_test_over_epochs" in results:
        top = results["max_test_over_epochs"]
        lines.append(f"maximum test {metric} over epochs: {top[metric]:.4f} (epoch {top['epoch']}; test-set selection)")
    return "\n".join(lines)


def _draw(run_dir: Path, root: str | None, quiet: bool) -> None:
    try:
        from iirsnn.figures.run_figures import draw_run
    except ImportError:
        if not quiet:
            print("figures skipped: pip install iirsnn[figures] for matplotlib")
        return
    for path in draw_run(run_dir, root):
        if not quiet:
            print(f"figure {path}")


def _eval(args: argparse.Namespace) -> int:
    from iirsnn.train import CheckpointError, ConfigError, evaluate_checkpoint

    try:
        result = evaluate_checkpoint(args.path, args.split, args.data_dir, args.device)
    except (CheckpointError, ConfigError, DataError, ValueError) as exc:
        print(f"iirsnn eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    shown = ", ".join(f"{k} {result[k]:.4f}" for k in ("loss", "accuracy", "f1", "mse") if k in result)
    print(f"{result['checkpoint']} (epoch {result['epoch']}), {result['split']} split of {result['samples']}: {shown}")
    if "confusion" in result:
        print(format_confusion(result["confusion"], result["classes"]))
    return 0


def format_confusion(matrix: list[list[int]], classes: list[str], max_classes: int = 20) -> str:
    """A confusion matrix as text (rows: true class, columns: predicted); large ones as per-class recall."""
    if len(classes) > max_classes:
        recall = [row[i] / max(1, sum(row)) for i, row in enumerate(matrix)]
        worst = sorted(range(len(classes)), key=lambda i: recall[i])[:10]
        return "lowest per-class recall: " + ", ".join(f"{classes[i]} {recall[i]:.2f}" for i in worst)
    width = max(5, *(len(c) for c in classes))
    head = " " * width + " " + " ".join(f"{c[:width]:>{width}}" for c in classes)
    rows = [f"{c[:width]:>{width}} " + " ".join(f"{v:>{width}}" for v in row) for c, row in zip(classes, matrix,
                                                                                              strict=True)]
    return "confusion (rows: true, columns: predicted)\n" + "\n".join([head, *rows])


def _experiments(args: argparse.Namespace) -> int:
    from iirsnn.data.registry import present
    from iirsnn.data.task_builders import TASKS
    from iirsnn.experiments import RECIPES

    for rec in RECIPES.values():
        cfg = rec.config()
        dataset = TASKS[cfg.data.name].dataset
        try:
            state = "no data needed" if dataset is None else ("data present" if present(dataset, args.data_dir)
                                                              else f"data missing ({dataset})")
        except DataError:
            state = f"data missing ({dataset}; no data root)"
        print(f"{rec.name:16s} {cfg.model.spec:24s} {cfg.epochs:4d} epochs  {state:28s} {rec.description}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    try:
        from iirsnn.figures import plot_ablation
        from iirsnn.figures.run_figures import draw_run
    except ImportError as exc:
        print(f"iirsnn plot: {exc}", file=sys.stderr)
        return 2
    try:
        for run in args.runs:
            for path in draw_run(Path(run), args.data_dir):
                print(f"figure {path}")
        if len(args.runs) > 1:
            labels = args.labels.split(",") if args.labels else [Path(r).name for r in args.runs]
            if len(labels) != len(args.runs):
                raise ValueError(f"{len(labels)} labels for {len(args.runs)} runs")
            from iirsnn.figures.runs import read_metrics

            split = "test" if all("test" in r for run in args.runs for r in read_metrics(run)[:1]) else "val"
            metric = "accuracy" if "accuracy" in read_metrics(args.runs[0])[0][split] else "f1"
            out = args.out or "ablation.png"
            plot_ablation(dict(zip(labels, args.runs, strict=True)), out, split=split, metric=metric)
            print(f"figure {out}")
    except (OSError, ValueError, DataError) as exc:
        print(f"iirsnn plot: {exc}", file=sys.stderr)
        return 2
    return 0
