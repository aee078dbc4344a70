"""Command line: ``iirsnn demo`` (the embedded default job) and ``iirsnn info``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch


def _demo(args: argparse.Namespace) -> int:
    from iirsnn.demo import DemoConfig, run

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)
                 if getattr(args, f.name, None) is not None}
    cfg = DemoConfig(**overrides)
    metrics = run(cfg, out_dir=args.out, progress=not args.quiet)
    print(f"spike-timing classification, {cfg.classes} classes (chance {metrics['chance']:.2f}), "
          f"network {cfg.spec}: test accuracy {metrics['final_test_accuracy']:.3f}, "
          f"train accuracy {metrics['train_accuracy']:.3f}, {metrics['seconds']:.1f} s")
    if args.out:
        print(f"weights and metrics written to {args.out}")
    return 0


def _info(_: argparse.Namespace) -> int:
    import iirsnn
    from iirsnn import config, kernels

    print(f"iirsnn {iirsnn.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")
    print(f"backends: {', '.join(kernels.BACKENDS)} (default {config.backend!r}); "
          f"NaN/Inf checks {'on' if config.check_finite else 'off'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iirsnn", description="Spiking neural networks as networks of IIR filters.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small network to classify spike-timing patterns (no data needed)")
    from iirsnn.demo import DemoConfig

    for f in dataclasses.fields(DemoConfig):
        demo.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default), default=None,
                          help=f"default {f.default}")
    demo.add_argument("--out", default=None, help="directory for weights and metrics (written atomically)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="versions, backends and settings")
    info.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
