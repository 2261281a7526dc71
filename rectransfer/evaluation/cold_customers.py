"""Customers known only by their own words: how well the text path serves them.

:func:`run_cold_customers` hides all interactions of a seeded share of the customers who have text
and scores their lists from text alone, popularity, their text neighbours alone and the blend that
serving gives them (``rectransfer benchmark --cold-customers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.holdout import subset_customers
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.metrics import set_ndcg
from rectransfer.model.recmodel import RecModel
from rectransfer.prepared.prepare import prepare

__all__ = ["COLD_SHARE", "run_cold_customers"]


COLD_SHARE = 0.2  # share of the customers with text whose interactions are hidden


def _set_metrics(top: np.ndarray, relevant: list[set[int]], ks: Sequence[int]) -> dict[str, float]:
    """Recall@K and NDCG@K (binary relevance) of ranked lists against sets of relevant items."""
    out: dict[str, float] = {}
    width = max([int(top.max(initial=-1))] + [max(rel, default=-1) for rel in relevant]) + 1
    matrix = np.zeros((len(relevant), width), dtype=bool)
    for row, rel in enumerate(relevant):
        matrix[row, list(rel)] = True
    sizes = matrix.sum(axis=1)
    for k in ks:
        hits = np.take_along_axis(matrix, top[:, :k], axis=1)
        out[f"recall@{k}"] = float((hits.sum(axis=1) / sizes).mean())
        out[f"ndcg@{k}"] = float(set_ndcg(top[:, :k], matrix).mean())
    return out


def run_cold_customers(
    base: RecModel,
    target: RetailerData,
    *,
    ks: Sequence[int] = (10, 20, 50),
    seed: int = 0,
) -> dict[str, Any]:
    """Customers known only by their own words: hide all interactions of a seeded 20% of the
    customers with text and recommend from their text alone, compared with popularity; all rows
    are scored against every item they really interacted with. Rows: ``text`` (similarity
    alone), ``popularity``, ``neighbours`` (what the known customers nearest by text took, with
    the chosen K) and ``text-path`` (the blend ``recommend`` serves them, chosen on the other
    customers; :mod:`rectransfer.prepared.text_blend`)."""
    if target.users is None:
        raise ConfigError(
            f"{target.name!r} has no users file; --cold-customers needs customers' own text."
        )
    with_text = target.users.filter(pl.col(Columns.TEXT).str.strip_chars() != "")[Columns.USER]
    active = set(target.interactions[Columns.USER].unique().to_list())
    candidates = sorted(set(with_text.to_list()) & active)
    if len(candidates) < 5:
        raise ConfigError(
            f"{target.name!r} has {len(candidates)} customers with both text and interactions; "
            "--cold-customers needs at least 5."
        )
    rng = np.random.default_rng(seed)
    cold = sorted(
        rng.choice(candidates, max(1, round(COLD_SHARE * len(candidates))), replace=False)
    )
    cold_set = set(cold)
    warm = [u for u in sorted(active) if u not in cold_set]
    known = subset_customers(target, warm)
    known = replace(known, users=target.users)  # the cold customers' text stays known
    prepared = prepare(known, base.encoder)
    position = {u: i for i, u in enumerate(prepared.index.user_ids.tolist())}
    cold_rows = np.array([position[u] for u in cold], dtype=np.int64)
    item_position = {item: i for i, item in enumerate(prepared.index.item_ids.tolist())}
    truth = subset_customers(target, cold).interactions
    relevant_by_user: dict[str, set[int]] = {}
    for user, item in truth.select(Columns.USER, Columns.ITEM).iter_rows():
        relevant_by_user.setdefault(user, set()).add(item_position[item])
    relevant = [relevant_by_user[u] for u in cold]

    width = max(ks)
    allowed = prepared.catalogue.in_stock
    text_scores = prepared.user_vectors[cold_rows] @ prepared.catalogue.vectors.T
    text_scores[:, ~allowed] = -np.inf
    text_top = np.argsort(-text_scores, axis=1, kind="stable")[:, :width]
    stats = prepared.serving_stats
    popularity = np.where(allowed, stats.popular, -np.inf)
    popular_top = np.tile(np.argsort(-popularity, kind="stable")[:width], (len(cold), 1))
    # what recommend serves them: weights and K are chosen on the other customers (the held-out
    # ones have no interactions left to choose on), and they are not in the neighbour pool
    text_blend = prepared.text_blend
    cold_vectors = prepared.user_vectors[cold_rows]
    neighbour_scores = prepared.neighbour_pool.scores(cold_vectors, text_blend.k)
    neighbour_scores[:, ~allowed] = -np.inf
    neighbours_top = np.argsort(-neighbour_scores, axis=1, kind="stable")[:, :width]
    served = text_blend.scores(
        cold_vectors,
        prepared.catalogue.vectors,
        stats.popular,
        prepared.neighbour_pool,
    )
    served[:, ~allowed] = -np.inf
    served_top = np.argsort(-served, axis=1, kind="stable")[:, :width]
    rows = [
        {"model": name, "users": len(cold), **_set_metrics(top, relevant, ks)}
        for name, top in (
            ("text", text_top),
            ("popularity", popular_top),
            ("neighbours", neighbours_top),
            ("text-path", served_top),
        )
    ]
    return {
        "target": target.name,
        "protocol": (
            f"cold customers: {COLD_SHARE:.0%} of the customers with text (seed {seed}) have all "
            "interactions hidden; lists from their text, their text neighbours and popularity, "
            "scored against every item they interacted with"
        ),
        "base": {"model_version": base.model_version, "encoder": base.config.encoder.name},
        "text_blend": {
            "text": text_blend.text,
            "neighbours": text_blend.neighbours,
            "popularity": text_blend.popularity,
            "k": text_blend.k,
            "customers": text_blend.customers,
            "pool": prepared.neighbour_pool.size,
            "ndcg@10_by_choice": [
                {"text": a, "neighbours": b, "popularity": c, "k": k, "ndcg@10": v}
                for (a, b, c, k), v in text_blend.ndcg.items()
            ],
            "reason": text_blend.reason,
        },
        "results": rows,
    }
