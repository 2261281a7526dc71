"""``rectransfer bench online``: one-customer requests against a loaded model, as a backend does.

A generated retailer with ``--items`` products is prepared once (catalogue vectors, statistics,
text neighbours: reported as ``warmup_seconds``); then every request is one
:func:`rectransfer.recommend_for` call, timed on its own: two thirds give a customer's recent
items (their last five), one third only their own words (encoded per request, never cached).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rectransfer.evaluation.perf._measure import (
    Timer,
    add_model_options,
    peak_rss_gb,
    reference_model,
)

HELP = "latency of one-customer recommend calls on a loaded model (p50, p99)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=50_000, help="catalogue size")
    parser.add_argument("--customers", type=int, default=20_000, help="customers in the shop")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--k", type=int, default=20)
    add_model_options(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import rectransfer as rt
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.text.load import load_encoder

    encoder = load_encoder(args.encoder, cache_dir=args.cache_dir)
    if args.model is None:
        model = reference_model(args.encoder, args.cache_dir, seed=args.seed)
    else:
        model = rt.RecModel.load(args.model, encoder=encoder)
    shop = make_retailer(args.customers, args.items, seed=args.seed)
    histories = shop.interactions.group_by("user_id", maintain_order=True).agg("item_id")
    texts = shop.users["text"].to_list() if shop.users is not None else []
    rng = np.random.default_rng(args.seed)
    with Timer() as warmup:
        rt.recommend_for(model, shop, history=histories["item_id"][0].to_list()[-5:], k=args.k)
        rt.recommend_for(model, shop, text=texts[0] if texts else "gift", k=args.k)

    latencies: dict[str, list[float]] = {"history": [], "text": []}
    for i in range(args.requests):
        kind = "text" if i % 3 == 2 and texts else "history"
        if kind == "text":
            request: dict[str, Any] = {"text": texts[int(rng.integers(len(texts)))]}
        else:
            items = histories["item_id"][int(rng.integers(histories.height))].to_list()
            request = {"history": items[-5:]}
        start = time.perf_counter()
        rt.recommend_for(model, shop, k=args.k, **request)
        latencies[kind].append((time.perf_counter() - start) * 1000)

    every = np.array(latencies["history"] + latencies["text"])

    def summary(values: list[float] | np.ndarray) -> dict[str, float]:
        values = np.asarray(values)
        if len(values) == 0:
            return {}
        return {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2),
            "requests": len(values),
        }

    return {
        **summary(every),
        "items": args.items,
        "customers": args.customers,
        "k": args.k,
        "by_request": {kind: summary(values) for kind, values in latencies.items()},
        "warmup_seconds": warmup.seconds,
        "peak_rss_gb": peak_rss_gb(),
        "goal_p50_ms": 20.0,
        "goal_p99_ms": 100.0,
    }
