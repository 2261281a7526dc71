"""``rectransfer bench adapt``: adapting a broad model to a generated retailer, warm cache."""

from __future__ import annotations

import argparse
from typing import Any

from rectransfer.evaluation.perf._measure import (
    Timer,
    add_model_options,
    peak_rss_gb,
    reference_model,
)

HELP = "time to adapt a broad model to a retailer of N interactions (warm embedding cache)"
INTERACTIONS_PER_CUSTOMER = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interactions", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=5_000, help="catalogue size")
    add_model_options(parser, model_flag="--base")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rectransfer as rt
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.prepared.prepare import prepare
    from rectransfer.text.load import load_encoder

    encoder = load_encoder(args.encoder, cache_dir=args.cache_dir)
    if args.base is None:
        base = reference_model(args.encoder, args.cache_dir, seed=args.seed)
    else:
        base = rt.RecModel.load(args.base, encoder=encoder)
    customers = max(args.interactions // INTERACTIONS_PER_CUSTOMER, 2)
    shop = make_retailer(
        customers,
        args.items,
        interactions_per_customer=INTERACTIONS_PER_CUSTOMER,
        seed=args.seed + 1,
        name="adapt_bench",
    )
    with Timer() as warm:  # the embedding cache is warm before the timed run
        prepare(shop, encoder)
    with Timer() as adapting:
        model = rt.adapt(base, shop, random_state=args.seed)
    assert model.guard is not None
    return {
        "interactions": shop.interactions.height,
        "customers": customers,
        "items": args.items,
        "seconds": adapting.seconds,
        "goal_seconds": 60.0,
        "warmup_seconds": warm.seconds,
        "shipped": model.guard.decision,
        "peak_rss_gb": peak_rss_gb(),
    }
