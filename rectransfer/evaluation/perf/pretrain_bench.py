"""``rectransfer bench pretrain``: pretraining the broad model, cold and warm embedding cache.

Both runs are ``rectransfer pretrain`` in a fresh process: first with an empty embedding cache
(every product text is encoded), then again with the cache the first run filled. Peak memory is
the larger of the two processes' peaks.

``--runner dask`` measures pretraining on a local Dask cluster against one process on the same
sources instead (:mod:`rectransfer.evaluation.perf.pretrain_dask`): wall time, and peak memory of
every worker.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rectransfer.errors import ConfigError
from rectransfer.evaluation.perf._measure import GIB, Timer
from rectransfer.ranking.ranker import BROAD_ROUNDS

HELP = "pretraining time with a cold and a warm embedding cache, and peak memory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sources", nargs="+", type=Path, default=None, metavar="DIR")
    parser.add_argument(
        "--runner",
        choices=["local", "dask"],
        default="local",
        help="local: cold and warm one-process runs; dask: a local Dask cluster vs one process",
    )
    dask = parser.add_argument_group("with --runner dask")
    dask.add_argument(
        "--generate", type=int, default=0, metavar="N", help="N generated sources (no --sources)"
    )
    dask.add_argument("--customers", type=int, default=20_000, help="per generated source")
    dask.add_argument("--items", type=int, default=5_000, help="per generated source")
    dask.add_argument("--workers", type=int, default=2, help="Dask worker processes (1 thread)")
    dask.add_argument(
        "--max-rounds", type=int, default=BROAD_ROUNDS, help="boosting rounds, at most"
    )
    parser.add_argument("--encoder", default="default", help="encoder spec")
    parser.add_argument("--max-customers", type=int, default=8_000)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=(
            "cache folder for the runs (default: a new temporary one, so the first run is cold); "
            "a folder that already holds vectors gets the warm run only"
        ),
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save-model", type=Path, default=None, metavar="DIR", help="keep the last run's model"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.runner == "dask":
        from rectransfer.evaluation.perf import pretrain_dask

        return pretrain_dask.run(args)
    if not args.sources:
        raise ConfigError(
            "bench pretrain needs --sources DIR ... (or --runner dask with --generate N)."
        )
    with tempfile.TemporaryDirectory(prefix="rectransfer-bench-") as work:
        cache = args.cache_dir or Path(work) / "cache"
        command = [sys.executable, "-m", "rectransfer.cli", "pretrain"]
        command += ["--sources", *map(str, args.sources), "--encoder", args.encoder]
        command += ["--max-customers", str(args.max_customers), "--seed", str(args.seed)]
        command += ["--cache-dir", str(cache)]
        # A cache that already holds vectors cannot give a cold figure: report none.
        runs = ("warm",) if cache.is_dir() and any(cache.iterdir()) else ("cold", "warm")
        seconds: dict[str, float | None] = {"cold": None}
        for run_name in runs:
            out = Path(work) / run_name
            if args.save_model is not None and run_name == runs[-1]:
                out = args.save_model
            with Timer() as timer:
                subprocess.run([*command, "--out", str(out)], check=True)
            seconds[run_name] = timer.seconds
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "sources": [path.name for path in args.sources],
        "encoder": args.encoder,
        "max_customers": args.max_customers,
        "seconds_cold": seconds["cold"],
        "seconds_warm": seconds["warm"],
        "peak_rss_gb": round(peak_kib * 1024 / GIB, 3),
        "goal_seconds_cold": 900.0,
        "goal_seconds_warm": 180.0,
        "goal_peak_rss_gb": 8.0,
    }
