"""What each process setting of iirsnn.tune_process gives: ../shared/bench/peers.py's iirsnn steps under each.

    python benchmarks/process_settings.py [--workloads mlp,temporal,conv] [--repeats 3] [--json PATH]
    python benchmarks/process_settings.py --workloads mlp --steps 1 --repeats 1   # a smoke run

Settings: ``none`` (glibc's defaults, no flush-to-zero: what ``import iirsnn`` alone leaves), ``reuse``
and ``lean`` (``tune_process(malloc=...)``), ``flush_denormal`` (``tune_process(malloc="system",
flush_denormal=True)``). peers.py builds its networks with ``iirsnn.models.from_spec`` in one fresh
process per workload, so the setting reaches those processes through a ``sitecustomize.py`` on
PYTHONPATH, written to a temporary directory (for this measurement only); it also records the settings
each process ran under, which are checked. The runs of the settings are interleaved, ``--repeats``
times; the table shows the median over repeats of peers.py's medians (training step, inference
forward) and of the peak RSS added by training, and the ratio of each step to the ``none`` one.
Timings move by 10-20 % between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "bench" / "peers.py"
SETTINGS = {"none": None, "reuse": dict(malloc="reuse"), "lean": dict(malloc="lean"),
            "flush_denormal": dict(malloc="system", flush_denormal=True)}
_SITECUSTOMIZE = """\
import json, os
import iirsnn
settings = iirsnn.tune_process(**{kwargs}) if {kwargs} is not None else iirsnn.process_settings()
with open(os.environ["PROCESS_SETTINGS_LOG"], "a") as log:
    log.write(json.dumps({{"malloc": settings.malloc, "flush_denormal": settings.flush_denormal}}) + "\\n")
"""
_EXPECTED = {"none": (None, "off"), "reuse": ("reuse", "off"), "lean": ("lean", "off"),
             "flush_denormal": (None, "on")}


def cpu_model() -> str:
    """The CPU's model name, family and model (lscpu), for every figure."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    get = lambda key: fields.get(key, "?").strip()  # noqa: E731
    flags = get("Flags").split()
    return (f"{get('Model name')}, family {get('CPU family')} model {get('Model')}"
            f"{', avx512' if 'avx512f' in flags else ''}, {os.cpu_count()} cores")


def run_setting(name: str, workloads: str, work: Path, python: str, steps: int | None = None) -> list[dict]:
    """One peers.py run of iirsnn on ``workloads`` under setting ``name``; its rows, settings checked."""
    site = work / name
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(kwargs=repr(SETTINGS[name])))
    log, out = work / f"{name}.log", work / f"{name}.json"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")]),
           "PROCESS_SETTINGS_LOG": str(log)}
    env.pop("IIRSNN_MALLOC", None)
    env.pop("IIRSNN_FLUSH_DENORMAL", None)
    cmd = [python, str(PEERS), "--libs", "iirsnn", "--workloads", workloads, "--json", str(out)]
    subprocess.run(cmd + (["--steps", str(steps)] if steps else []), env=env, check=True, stdout=subprocess.DEVNULL)
    seen = {tuple(json.loads(line).values()) for line in log.read_text().splitlines()}
    if seen != {_EXPECTED[name]}:
        raise RuntimeError(f"setting {name}: its processes ran under {sorted(seen, key=str)}, not {_EXPECTED[name]}")
    rows = json.loads(out.read_text())
    errors = [r for r in rows if "error" in r]
    if errors:
        raise RuntimeError(f"setting {name}: peers.py failed: {errors}")
    return rows


def summarise(runs: dict[str, list[list[dict]]]) -> dict[str, dict[str, dict]]:
    """setting -> workload -> median train_s, infer_s and peak RSS added (MB) over the repeats."""
    table: dict[str, dict[str, dict]] = {}
    for name, repeats in runs.items():
        for wname in dict.fromkeys(r["workload"] for r in repeats[0]):
            rows = [r for rows in repeats for r in rows if r["workload"] == wname]
            table.setdefault(name, {})[wname] = {
                "train_s": statistics.median(r["train_s"] for r in rows),
                "infer_s": statistics.median(r["infer_s"] for r in rows),
                "peak_added_mb": statistics.median(r["peak_rss_mb"] - r["rss_after_build_mb"] for r in rows),
                "train_s_runs": [r["train_s"] for r in rows]}
    return table


def format_table(table: dict[str, dict[str, dict]], cpu: str, repeats: int) -> str:
    lines = [f"iirsnn through peers.py, {cpu}; median of {repeats} interleaved runs (noise 10-20 %)", "",
             "| setting | workload | train step (s) | vs none | inference (s) | peak RSS added (MB) |",
             "|---|---|---|---|---|---|"]
    for name, per in table.items():
        for wname, m in per.items():
            ratio = m["train_s"] / table["none"][wname]["train_s"] if "none" in table else float("nan")
            lines.append(f"| {name} | {wname} | {m['train_s']:.3f} | {ratio:.2f}x | {m['infer_s']:.3f} | "
                         f"{m['peak_added_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="mlp,temporal,conv", help="passed to peers.py")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma separated out of {','.join(SETTINGS)}")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs of every setting")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per workload (default: peers.py's)")
    ap.add_argument("--python", default=sys.executable, help="interpreter with torch for peers.py")
    ap.add_argument("--json", default=None, help="write the table and every run as JSON")
    args = ap.parse_args()
    names = [n.strip() for n in args.settings.split(",")]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        ap.error(f"unknown settings {unknown}; choose out of {list(SETTINGS)}")
    cpu = cpu_model()
    runs: dict[str, list[list[dict]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            for name in names[k % len(names):] + names[:k % len(names)]:  # rotated, so drift spreads over all
                runs[name].append(run_setting(name, args.workloads, Path(tmp), args.python, args.steps))
                print(f"repeat {k + 1}/{args.repeats}: {name} done", file=sys.stderr, flush=True)
    table = summarise(runs)
    print(format_table(table, cpu, args.repeats))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "workloads": args.workloads, "repeats": args.repeats,
                                               "table": table, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
