"""``rectransfer bench report``: the performance table in the docs, from the benchmarks' JSON files.

Reads ``encode.json``, ``pretrain.json``, ``export.json``, ``load.json`` (a million-customer
export), ``adapt.json`` and ``online.json`` (those present) from ``--results`` and rewrites the
part of ``--doc`` between the markers ``<!-- perf-table -->`` and ``<!-- /perf-table -->``
(appended when missing), atomically.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

HELP = "rewrite the performance table of a markdown file from the benchmarks' JSON files"
START, END = "<!-- perf-table -->", "<!-- /perf-table -->"


# a million customers in one night on two cores (the load run)
LOAD_GOAL_MINUTES = 8
LOAD_GOAL_GB = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, required=True, metavar="DIR")
    parser.add_argument("--doc", type=Path, required=True, metavar="FILE.md")


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(args.results.glob("*.json"))
    }
    table = perf_table(results)
    text = args.doc.read_text(encoding="utf-8") if args.doc.exists() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    staging = args.doc.with_name(f".{args.doc.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, args.doc)
    return {"doc": str(args.doc), "benchmarks": sorted(results), "table": table}


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "-"
    return "met" if ok else "**not met**"


def perf_table(results: dict[str, dict[str, Any]]) -> str:
    """One markdown row per measured figure: value, goal, and whether it is met."""
    rows = ["| benchmark | figure | measured | goal | |", "|---|---|---|---|---|"]

    def add(bench: str, figure: str, value: str, goal: str, ok: bool | None) -> None:
        rows.append(f"| {bench} | {figure} | {value} | {goal} | {_verdict(ok)} |")

    if "encode" in results:
        r = results["encode"]
        add(
            "encode",
            f"speed-up on {r['texts']} product texts",
            f"{r['speedup']:.2f}x",
            ">= 2.5x",
            r["speedup"] >= 2.5,
        )
        add(
            "encode",
            "mean cosine to float32",
            f"{r['mean_cosine']:.4f}",
            ">= 0.99",
            r["mean_cosine"] >= 0.99,
        )
        add(
            "encode",
            "re-encoded: unchanged / 1% changed",
            f"{r['reencoded_unchanged']} / {r['reencoded_after_1pct_change']}",
            f"0 / {r.get('expected_reencoded_after_1pct_change', 'changed only')}",
            r["reencoded_unchanged"] == 0
            and r["reencoded_after_1pct_change"]
            == r.get("expected_reencoded_after_1pct_change", r["reencoded_after_1pct_change"]),
        )
    if "pretrain" in results:
        r = results["pretrain"]
        cold = r["seconds_cold"]  # None: the run started from a warm cache
        add(
            "pretrain",
            "cold cache",
            "not measured in this run" if cold is None else f"{cold / 60:.1f} min",
            "<= 15 min",
            None if cold is None else cold <= 900,
        )
        add(
            "pretrain",
            "warm cache",
            f"{r['seconds_warm'] / 60:.1f} min",
            "<= 3 min",
            r["seconds_warm"] <= 180,
        )
        add(
            "pretrain",
            "peak memory",
            f"{r['peak_rss_gb']:.2f} GB",
            "<= 8 GB",
            r["peak_rss_gb"] <= 8,
        )
    if "export" in results:
        runs = results["export"].get("runs", [results["export"]])
        for r in runs:
            size = f"{r['customers']:,} x {r['items']:,}"
            at_goal_size = r["customers"] >= 200_000
            add(
                "export",
                f"{size}: time",
                f"{r['seconds'] / 60:.1f} min",
                "<= 5 min at 200k",
                r["seconds"] <= 300 if at_goal_size else None,
            )
            add(
                "export",
                f"{size}: peak memory",
                f"{r['peak_rss_gb']:.2f} GB",
                "<= 6 GB",
                r["peak_rss_gb"] <= 6,
            )
            if r.get("limit_ratio") is not None:
                add(
                    "export",
                    f"{size}: ours / brute-force limit (argpartition)",
                    f"{r['limit_ratio']:.2f} ({r['limit_seconds']:.0f} s)",
                    "<= 3",
                    r["limit_ratio"] <= 3,
                )
            if r.get("fast_limit_ratio") is not None:
                add(
                    "export",
                    f"{size}: ours / fast brute-force limit (torch.topk)",
                    f"{r['fast_limit_ratio']:.2f} ({r['fast_limit_seconds']:.0f} s)",
                    "<= 2 at 200k",
                    r["fast_limit_ratio"] <= 2 if at_goal_size else None,
                )
        if len(runs) >= 2 and max(r["customers"] for r in runs) < 200_000:
            # time is linear in customers: a line through the measured sizes, at the goal's size
            (n0, t0), (n1, t1) = [(r["customers"], r["seconds"]) for r in (runs[0], runs[-1])]
            at_200k = t0 + (t1 - t0) / (n1 - n0) * (200_000 - n0)
            add(
                "export",
                f"200,000 x {runs[-1]['items']:,}: time, extrapolated linearly",
                f"{at_200k / 60:.1f} min",
                "<= 5 min",
                at_200k <= 300,
            )
    if "load" in results:  # bench export --from-files --skip-limit at a million customers
        for r in results["load"].get("runs", [results["load"]]):
            size = f"{r['customers']:,} x {r['items']:,}"
            add(
                "load",
                f"{size}: time",
                f"{r['seconds'] / 60:.1f} min",
                f"<= {LOAD_GOAL_MINUTES} min, k rows per customer",
                r["rows"] == r["customers"] * r["k"] and r["seconds"] <= LOAD_GOAL_MINUTES * 60,
            )
            add(
                "load",
                f"{size}: peak memory (loading alone: {r['peak_rss_gb_before_export']:.2f} GB)",
                f"{r['peak_rss_gb']:.2f} GB",
                f"<= {LOAD_GOAL_GB} GB",
                r["peak_rss_gb"] <= LOAD_GOAL_GB,
            )
    if "adapt" in results:
        r = results["adapt"]
        add(
            "adapt",
            f"{r['interactions']:,} interactions, warm cache",
            f"{r['seconds']:.1f} s",
            "<= 60 s",
            r["seconds"] <= 60,
        )
    if "online" in results:
        r = results["online"]
        add(
            "online",
            f"p50 over {r['requests']} requests, {r['items']:,} items",
            f"{r['p50_ms']:.1f} ms",
            "<= 20 ms",
            r["p50_ms"] <= 20,
        )
        add("online", "p99", f"{r['p99_ms']:.1f} ms", "<= 100 ms", r["p99_ms"] <= 100)
    return "\n".join(rows)
