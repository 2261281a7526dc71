"""``rectransfer bench export``: the nightly export of a generated retailer against its limit.

Each size runs in a fresh process: generate the shop (seeded, not timed), then time the nightly
path (prepare with a warm embedding cache, candidates, features, ranking, rules, top-K, Parquet,
streamed in customer chunks), then two brute-force references on the same customers: one vector per
customer (the mean of their recent items' vectors) times the item matrix, in the same chunks the
recommender uses, with the top-K taken by numpy's ``argpartition`` (the slow reference, kept for
comparison with earlier figures) and by ``torch.topk`` (the fast one, as the product selects:
:func:`rectransfer.utils.topk.top_k_rows`). Both ratios are reported; the goal is set against the
fast one. Peak memory is the process's, after our run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from rectransfer.evaluation.perf._measure import (
    Timer,
    add_model_options,
    peak_rss_gb,
    reference_model,
    run_fresh,
)

HELP = "nightly recommend + Parquet export of generated retailers, against brute-force references"
LIMIT_GOAL = 3.0  # ours / the argpartition reference
FAST_LIMIT_GOAL = 2.0  # ours / the torch.topk reference
CHUNK_CUSTOMERS = 50_000  # customers per recommend call and Parquet row group


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[50_000, 100_000, 200_000],
        metavar="N,N,...",
        help="customer counts, one fresh process each (default: 50000,100000,200000)",
    )
    parser.add_argument("--items", type=int, default=50_000, help="catalogue size")
    parser.add_argument("--k", type=int, default=20, help="items per customer")
    parser.add_argument(
        "--from-files",
        action="store_true",
        help=(
            "write each generated shop to Parquet in another process and load it, as a nightly "
            "job does: peak memory is then that of loading and exporting, not of generating"
        ),
    )
    parser.add_argument(
        "--skip-limit",
        action="store_true",
        help="do not time the brute-force limit (for load runs, where only memory is asked)",
    )
    add_model_options(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.text.load import load_encoder
    from rectransfer.text.texts import item_texts

    with tempfile.TemporaryDirectory(prefix="rectransfer-bench-") as work:
        model_dir = args.model
        if model_dir is None:
            model_dir = reference_model(args.encoder, args.cache_dir, seed=args.seed).save(
                Path(work) / "model"
            )
        # The catalogue depends on (items, seed) only: embed it once, outside the timings.
        catalogue = make_retailer(1, args.items, seed=args.seed).items
        with Timer() as warm:
            load_encoder(args.encoder, cache_dir=args.cache_dir).encode(item_texts(catalogue))
        runs = []
        for n in args.customers:
            shop_dir = ""
            if args.from_files:
                shop_dir = str(Path(work) / f"shop-{n}")
                run_fresh(__name__, ["write", str(n), str(args.items), str(args.seed), shop_dir])
            argv = [str(model_dir), str(n), str(args.items), str(args.k), args.encoder]
            argv += [str(args.cache_dir or ""), str(args.seed), work, shop_dir]
            argv += ["no-limit" if args.skip_limit else "limit"]
            runs.append(run_fresh(__name__, argv))
    largest = runs[-1]
    return {
        **largest,
        "limit_goal": LIMIT_GOAL,
        "fast_limit_goal": FAST_LIMIT_GOAL,
        "embedding_warmup_seconds": warm.seconds,
        "runs": runs,
    }


def _one_size(argv: list[str]) -> dict[str, Any]:
    import rectransfer as rt
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.text.load import load_encoder

    model_dir, n, items, k, encoder, cache_dir, seed, work, shop_dir, limit_wanted = argv
    n_customers, n_items, top = int(n), int(items), int(k)
    with Timer() as generate:  # or load, with --from-files
        if shop_dir:
            shop = rt.RetailerData.load(shop_dir)
        else:
            shop = make_retailer(n_customers, n_items, seed=int(seed))
    model = rt.RecModel.load(
        model_dir, encoder=load_encoder(encoder, cache_dir=Path(cache_dir) if cache_dir else None)
    )
    before_export = peak_rss_gb()
    with Timer() as ours:
        path = rt.write_recommendation_chunks(
            rt.iter_recommendations(model, shop, k=top, chunk_size=CHUNK_CUSTOMERS),
            Path(work) / "exports",
            retailer=shop.name,
            run_date="2026-01-31",
            model_version=model.model_version,
        )
    peak = peak_rss_gb()
    rows = len(rt.read_recommendations(path.parents[2], retailer=shop.name, run_date="2026-01-31"))

    result: dict[str, Any] = {
        "customers": n_customers,
        "items": n_items,
        "k": top,
        "interactions": shop.interactions.height,
        "rows": rows,
        "seconds": ours.seconds,
        "peak_rss_gb": peak,
        "peak_rss_gb_before_export": before_export,
        "generate_seconds" if not shop_dir else "load_seconds": generate.seconds,
        "model_version": model.model_version,
        "chunk_size": CHUNK_CUSTOMERS,
        "limit_seconds": None,
        "limit_ratio": None,
        "fast_limit_seconds": None,
        "fast_limit_ratio": None,
    }
    if limit_wanted == "limit":
        prepared = model.prepare(shop)
        for name, select in (("limit", _argpartition_top), ("fast_limit", _torch_top)):
            seconds = _limit_seconds(prepared, top, select)
            result[f"{name}_seconds"] = seconds
            result[f"{name}_ratio"] = round(ours.seconds / max(seconds, 1e-9), 3)
    return result


def _argpartition_top(scores: Any, top: int) -> Any:
    import numpy as np

    return np.argpartition(-scores, top - 1, axis=1)[:, :top]


def _torch_top(scores: Any, top: int) -> Any:
    from rectransfer.utils.topk import top_k_rows

    return top_k_rows(scores, top)[0]


def _limit_seconds(prepared: Any, top: int, select: Any) -> float:
    """Seconds of the GEMM of every customer's vector with the catalogue plus ``select``'s top-K,
    chunk by chunk as the recommender scores."""
    import numpy as np

    from rectransfer.ranking.candidates import chunk_size
    from rectransfer.ranking.features import RECENT_ITEMS

    vectors = prepared.catalogue.vectors
    histories = prepared.index.histories
    customers = np.zeros((histories.n_users, vectors.shape[1]), dtype=np.float32)
    for offset in range(RECENT_ITEMS):
        last = histories.last(offset)
        customers[last >= 0] += vectors[last[last >= 0]]
    customers /= np.maximum(np.linalg.norm(customers, axis=1, keepdims=True), 1e-12)
    step = chunk_size(len(vectors))
    with Timer() as limit:
        for start in range(0, len(customers), step):
            select(customers[start : start + step] @ vectors.T, top)
    return limit.seconds


def _write_shop(argv: list[str]) -> dict[str, Any]:
    from rectransfer.evaluation.synthetic import make_retailer, write_retailer

    n, items, seed, folder = argv
    write_retailer(make_retailer(int(n), int(items), seed=int(seed)), folder)
    return {"written": folder}


if __name__ == "__main__":
    command = sys.argv[1:]
    result = _write_shop(command[1:]) if command[0] == "write" else _one_size(command)
    print(json.dumps(result))
