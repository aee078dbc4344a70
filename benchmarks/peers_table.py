"""Markdown tables, with ratios to the fastest peer, from the JSON of ../shared/bench/peers.py.

    python benchmarks/peers_table.py /tmp/peers.json [--project iirsnn]

Prints the median training step, inference forward and peak RSS added per workload and library,
iirsnn's ratio to the fastest (leanest) peer library, and the training memory per neuron-step
(temporal-long minus temporal) when both workloads were run.
"""

from __future__ import annotations

import argparse
import json

NOT_PEERS = {"dense-floor"}


def _by_workload(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["workload"], []).append(r)
    return out


def _added(r: dict) -> float:
    return r["peak_rss_mb"] - r["rss_after_build_mb"]


def table(rows: list[dict], project: str) -> str:
    lines = ["| workload | library | train step (s) | inference (s) | peak RSS added (MB) |", "|---|---|---|---|---|"]
    ratios = ["", "| workload | train vs fastest peer | inference vs fastest peer | peak added vs leanest peer |",
              "|---|---|---|---|"]
    for workload, group in _by_workload(rows).items():
        ok = [r for r in group if "error" not in r]
        for r in group:
            if "error" in r:
                lines.append(f"| {workload} | {r['lib']} | error: {r['error'][:60]} | | |")
            else:
                lines.append(f"| {workload} | {r['lib']} | {r['train_s']:.3f} | {r['infer_s']:.3f} | {_added(r):.0f} |")
        peers = [r for r in ok if r["lib"] not in NOT_PEERS and r["lib"] != project]
        mine = [r for r in ok if r["lib"] == project]
        if peers and mine:
            m = mine[0]
            best_train = min(peers, key=lambda r: r["train_s"])
            best_infer = min(peers, key=lambda r: r["infer_s"])
            leanest = min(peers, key=_added)
            ratios.append(f"| {workload} | {m['train_s'] / best_train['train_s']:.2f}x ({best_train['lib']}) | "
                          f"{m['infer_s'] / best_infer['infer_s']:.2f}x ({best_infer['lib']}) | "
                          f"{_added(m) / _added(leanest):.2f}x ({leanest['lib']}) |")
    return "\n".join(lines + ratios + _memory(rows, project))


def _memory(rows: list[dict], project: str) -> list[str]:
    by = {(r["lib"], r["workload"]): r for r in rows if "peak_rss_mb" in r}
    neurons = (500 + 200 + 500 + 300) * 16
    per_step = {lib: (by[lib, "temporal-long"]["peak_rss_mb"] - by[lib, "temporal"]["peak_rss_mb"]) * 2**20
                / ((1200 - 300) * neurons)
                for lib, w in by if w == "temporal" and (lib, "temporal-long") in by}
    if not per_step:
        return []
    out = ["", "| library | training bytes per neuron-step | time T 1200 / T 300 |", "|---|---|---|"]
    for lib, b in per_step.items():
        growth = by[lib, "temporal-long"]["train_s"] / by[lib, "temporal"]["train_s"]
        out.append(f"| {lib} | {b:.1f} | {growth:.1f}x |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--project", default="iirsnn")
    args = ap.parse_args()
    with open(args.json) as f:
        print(table(json.load(f), args.project))


if __name__ == "__main__":
    main()
