"""Command line: ``iirsnn train|eval|experiments|plot`` (:mod:`iirsnn.cli_train`), ``iirsnn data``, ``iirsnn bench``
and ``iirsnn info``.

Before any command it applies the process settings, :func:`iirsnn.process.tune_process` with its
defaults: the allocator mode of ``IIRSNN_MALLOC`` (default ``reuse``) and flush-to-zero only if
``IIRSNN_FLUSH_DENORMAL`` asks for it.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from iirsnn.cli_nir import add_parsers as add_nir_parsers
from iirsnn.cli_train import add_parsers as add_train_parsers
from iirsnn.process import tune_process


def _info(_: argparse.Namespace) -> int:
    import importlib.util

    import iirsnn
    from iirsnn import config, kernels
    from iirsnn.kernels import cpu
    from iirsnn.process import process_settings

    print(f"iirsnn {iirsnn.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")
    print(f"backends: {', '.join(kernels.BACKENDS)} (default {config.backend!r}); "
          f"NaN/Inf checks {'on' if config.check_finite else 'off'}; precision {config.precision}")
    status = "available" if cpu.available() else f"unavailable: {cpu.unavailable_reason()}"
    print(f"compiled CPU kernels: {status}")
    print(f"Triton (gpu backend): {'installed' if importlib.util.find_spec('triton') else 'not installed'}")
    settings = process_settings()
    print(f"process settings (iirsnn.tune_process, applied by this command): malloc mode "
          f"{settings.malloc or 'system (glibc defaults)'} (IIRSNN_MALLOC), flush-to-zero {settings.flush_denormal} "
          f"(IIRSNN_FLUSH_DENORMAL)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from iirsnn.benchmark import format_report, run

    report = run(args.workloads, args.sweeps, steps=args.steps, quick=args.quick, precision=args.precision,
                 json_path=args.json)
    print(format_report(report))
    if args.json:
        print(f"results written to {args.json}")
    return 1 if any("error" in row for row in report["rows"]) else 0


def _data(args: argparse.Namespace) -> int:
    from iirsnn.data import commands

    try:
        if args.action == "list":
            return commands.list_datasets(args.root)
        if args.action == "verify":
            return commands.verify(args.names, args.root)
        if not args.names:
            print("name the datasets to download; `iirsnn data list` shows which can be")
            return 2
        return commands.download(args.names, args.root, progress=not args.quiet)
    except (KeyError, OSError) as exc:  # an unknown name, a missing root
        print(exc.args[0] if isinstance(exc, KeyError) else exc)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iirsnn", description="Spiking neural networks as networks of IIR filters.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parsers(sub)
    add_nir_parsers(sub)
    from iirsnn.benchmark import SWEEPS, WORKLOADS, names_type, positive_int

    data = sub.add_parser("data", help="list, verify (checksums, counts) or download the datasets")
    data.add_argument("action", choices=["list", "verify", "download"])
    data.add_argument("names", nargs="*", help="dataset names (default for verify: every one present)")
    data.add_argument("--root", default=None, help="directory holding the datasets (default $IIRSNN_DATA)")
    data.add_argument("--quiet", action="store_true", help="no progress bar")
    data.set_defaults(func=_data)
    bench = sub.add_parser("bench", help="time and peak memory of training and inference: workloads with their "
                           "dense floors, scaling curves in T, batch, width and spike density, throughput")
    bench.add_argument("--workloads", type=names_type(list(WORKLOADS)), default=list(WORKLOADS),
                       help=f"comma separated, default {','.join(WORKLOADS)}")
    bench.add_argument("--sweeps", type=names_type(list(SWEEPS), allow_none=True), default=list(SWEEPS),
                       help=f"comma separated or none, default {','.join(SWEEPS)}")
    bench.add_argument("--steps", type=positive_int, default=None, help="timed training steps (default: per workload)")
    bench.add_argument("--quick", action="store_true", help="tiny networks: a smoke run, about 3 s per measurement")
    bench.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON (atomically)")
    bench.add_argument("--precision", default="fp32",
                       help="passed to from_spec unless fp32; an option it rejects is reported as an error row")
    bench.set_defaults(func=_bench)
    info = sub.add_parser("info", help="versions, backends and settings")
    info.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "data":  # names after an option (`data verify --root D mnist`), which argparse leaves over
        args.names += [a for a in extra if not a.startswith("-")]
        extra = [a for a in extra if a.startswith("-")]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        tune_process()
    except ValueError as exc:  # an unknown IIRSNN_MALLOC or IIRSNN_FLUSH_DENORMAL
        print(f"iirsnn: {exc}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader of the output went away (`iirsnn data list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
