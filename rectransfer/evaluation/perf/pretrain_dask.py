"""``rectransfer bench pretrain --runner dask``: Dask pretraining against one process, same rows.

Sources are retailer folders, or ``--generate N`` shops of ``--customers`` x ``--items`` made by
:func:`rectransfer.evaluation.synthetic.make_retailer` (written in a fresh process). Then, each in a
fresh process with its own empty embedding cache:

* **one process**: :func:`rectransfer.pretrain` (early stopping on 10% of the customers), or its
  refusal when the sources are too many for one process (``one_process.refused`` says why);
* **Dask**: a ``LocalCluster`` of ``--workers`` single-threaded worker processes and
  :func:`rectransfer.transfer.distributed.pretrain_on_dask` (rounds from a sampled one-process
  run); the coordinating process and every worker report their own peak resident memory.

Both models then rank the customers of a held-out generated shop (a consistency check that the
two trainings agree, not a quality figure: see :mod:`rectransfer.evaluation.synthetic`), NDCG@10
with its standard error.

Run as a module (``python -m rectransfer.evaluation.perf.pretrain_dask <mode> ...``) it is one of
those fresh processes and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from rectransfer.errors import ConfigError
from rectransfer.evaluation.perf._measure import GIB, Timer, peak_rss_gb, run_fresh

MODULE = "rectransfer.evaluation.perf.pretrain_dask"
HELD_OUT_SEED = 9_999


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both runs on the same sources; the figures side by side."""
    with tempfile.TemporaryDirectory(prefix="rectransfer-bench-dask-") as work_dir:
        work = Path(work_dir)
        sources = [str(p) for p in args.sources or []]
        if args.generate:
            size = ["--customers", str(args.customers), "--items", str(args.items)]
            sources = run_fresh(
                MODULE,
                [
                    "generate",
                    str(work / "sources"),
                    str(args.generate),
                    *size,
                    "--seed",
                    str(args.seed),
                ],
            )["sources"]
        if not sources:
            raise ConfigError(
                "bench pretrain --runner dask needs --sources DIR ... or --generate N."
            )
        common = ["--encoder", args.encoder, "--max-customers", str(args.max_customers)]
        common += ["--max-rounds", str(args.max_rounds), "--seed", str(args.seed)]
        one = run_fresh(
            MODULE,
            [
                "one-process",
                str(work / "one"),
                "--cache-dir",
                str(work / "cache-one"),
                *common,
                "--sources",
                *sources,
            ],
        )
        on_dask = run_fresh(
            MODULE,
            [
                "dask",
                str(work / "dask"),
                "--cache-dir",
                str(work / "cache-dask"),
                *common,
                "--workers",
                str(args.workers),
                "--sources",
                *sources,
            ],
        )
        quality = run_fresh(
            MODULE,
            [
                "quality",
                str(work / "one"),
                str(work / "dask"),
                "--seed",
                str(args.seed),
                "--customers",
                str(min(args.customers, 5_000)),
                "--items",
                str(args.items),
            ],
        )
    return {
        "runner": "dask",
        "sources": [Path(s).name for s in sources],
        "generated": {"customers": args.customers, "items": args.items} if args.generate else None,
        "encoder": args.encoder,
        "max_customers": args.max_customers,
        "max_rounds": args.max_rounds,
        "workers": args.workers,
        "threads_per_worker": 1,
        "one_process": one,
        "dask": on_dask,
        "held_out_ndcg@10": quality,
        "goal_peak_rss_gb_per_worker": 4.0,
    }


def _main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=MODULE)
    parser.add_argument("mode", choices=["generate", "one-process", "dask", "quality"])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--sources", nargs="*", default=[])
    parser.add_argument("--encoder", default="hashing")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--max-customers", type=int, default=8_000)
    parser.add_argument("--max-rounds", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.mode == "generate":
        from rectransfer.evaluation.synthetic import make_retailer, write_retailer

        root, n = Path(args.paths[0]), int(args.paths[1])
        folders = [
            write_retailer(
                make_retailer(args.customers, args.items, seed=args.seed + i, name=f"gen{i:03d}"),
                root / f"gen{i:03d}",
            )
            for i in range(n)
        ]
        return {"sources": [str(f) for f in folders]}

    import rectransfer as rt
    from rectransfer.text.load import load_encoder

    if args.mode == "quality":
        return _held_out_ndcg(args)
    encoder = load_encoder(args.encoder, cache_dir=args.cache_dir)
    options: dict[str, Any] = {
        "encoder": encoder,
        "max_customers_per_retailer": args.max_customers,
        "max_rounds": args.max_rounds,
        "random_state": args.seed,
    }
    if args.mode == "one-process":
        with Timer() as timer:
            try:
                model = rt.pretrain(args.sources, **options)
            except ConfigError as refusal:  # too big for one process: the Dask runner's case
                return {"refused": str(refusal), "seconds": timer.seconds}
        model.save(args.paths[0])
        return {
            "seconds": timer.seconds,
            "peak_rss_gb": peak_rss_gb(),
            "rounds": model.config.rounds["broad"],
        }

    from distributed import Client, LocalCluster

    from rectransfer.transfer.distributed import pretrain_on_dask

    cluster_options = {"threads_per_worker": 1, "processes": True, "dashboard_address": None}
    with (
        Timer() as with_startup,
        LocalCluster(n_workers=args.workers, host="127.0.0.1", **cluster_options) as cluster,
        Client(cluster) as client,
    ):
        with Timer() as timer:
            model = pretrain_on_dask(args.sources, client=client, **options)
        workers = client.run(_own_peak_rss_gb)
    model.save(args.paths[0])
    return {
        "seconds": timer.seconds,
        "seconds_with_cluster_startup": with_startup.seconds,
        "peak_rss_gb_per_worker": sorted(workers.values()),
        "peak_rss_gb_coordinator": peak_rss_gb(),
        "rounds": model.config.rounds["broad"],
        "rounds_from": model.config.params["rounds_from"],
    }


def _own_peak_rss_gb() -> float:
    """A worker's peak resident memory, in GiB (run on each worker by ``client.run``)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 3)


def _held_out_ndcg(args: argparse.Namespace) -> dict[str, Any]:
    import rectransfer as rt
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.metrics import ndcg_at, ndcg_stderr, target_ranks
    from rectransfer.ranking.candidates import CandidateConfig
    from rectransfer.ranking.training_data import labelled_rows

    shop = make_retailer(args.customers, args.items, seed=args.seed + HELD_OUT_SEED, name="held")
    result: dict[str, Any] = {"customers": args.customers}
    for name, path in (("one_process", args.paths[0]), ("dask", args.paths[1])):
        if not Path(path).exists():  # one process refused the sources
            result[name] = result[f"{name}_stderr"] = None
            continue
        model = rt.RecModel.load(path)
        rows = labelled_rows(model.prepare(shop), range(1), config=CandidateConfig())
        ranks = target_ranks(
            rows.group, rows.rows.label, model.score(rows.rows.features), rows.n_groups
        )
        result[name] = round(ndcg_at(ranks, 10), 4)
        result[f"{name}_stderr"] = round(ndcg_stderr(ranks, 10), 4)
    return result


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1:])))
