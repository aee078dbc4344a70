"""``iirsnn nir export`` and ``iirsnn nir import``: NIR graphs of trained networks (the ``nir`` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    nir_cmd = sub.add_parser("nir", help="write a run's network as a NIR graph, or read one (docs/interchange.md)")
    actions = nir_cmd.add_subparsers(dest="nir_action", required=True)
    export = actions.add_parser("export", help="a run's selected network (or any checkpoint) as a .nir file")
    export.add_argument("run", help="a run directory (its checkpoint-best.pt) or a checkpoint file")
    export.add_argument("out", help="the .nir file to write")
    export.add_argument("--profile", choices=["exact", "peer"], default="exact",
                        help="exact (default): iirsnn's model exactly, under forward Euler; peer: the nearest "
                        "CubaLIF graph snnTorch, Norse, SpikingJelly and Lava import (lossy)")
    export.add_argument("--dt", type=float, default=1e-4, help="the step in seconds (default 1e-4, the peers')")
    export.set_defaults(func=_export)
    read = actions.add_parser("import", help="read a .nir file into an iirsnn network and describe it")
    read.add_argument("file", help="the .nir file")
    read.add_argument("--dt", type=float, default=None, help="the step in seconds (default: the file's, else 1e-4)")
    read.set_defaults(func=_import)


def _model_of(path: str):
    from iirsnn.train import checkpoint

    where = Path(path)
    state = checkpoint.load(where / checkpoint.BEST if where.is_dir() else where)
    return checkpoint.rebuild_model(state)


def _export(args: argparse.Namespace) -> int:
    import nir

    from iirsnn.atomic import atomic_path
    from iirsnn.interop import export_nir
    from iirsnn.train.checkpoint import CheckpointError

    try:
        model = _model_of(args.run)
        graph = export_nir(model.eval(), dt=args.dt, profile=args.profile)
    except (CheckpointError, ValueError) as exc:
        print(f"iirsnn nir export: {exc}", file=sys.stderr)
        return 2
    with atomic_path(args.out) as tmp:
        nir.write(tmp, graph)
    print(f"wrote {args.out}: {len(graph.nodes) - 2} nodes between input and output, profile {args.profile}, "
          f"dt {args.dt:g} s")
    return 0


def _import(args: argparse.Namespace) -> int:
    from iirsnn.interop import import_nir

    try:
        network = import_nir(args.file, dt=args.dt)
    except (FileNotFoundError, ValueError) as exc:
        print(f"iirsnn nir import: {exc}", file=sys.stderr)
        return 2
    params = sum(p.numel() for p in network.parameters())
    print(f"{args.file}: network {network.spec!r} on input {list(network.input_shape)}, {params:,} parameters")
    print(network)
    return 0
