"""Does a next-item model over text vectors carry what follows what to an unseen shop?

The cheap question to ask before making the model a candidate generator or a ranker feature. For
each source in turn, the model of :mod:`rectransfer.evaluation.next_item_model` is trained on the
*other* sources (their histories without each customer's last ``PRETRAIN_CUTS`` items, the ones
pretraining labels) and, optionally, on the held-out shop's own histories without their test item.
On a seeded sample of the held-out shop's customers it then ranks the whole catalogue (own items
removed) against the plain baseline it starts from, the last item's text similarity: NDCG@10,
Recall@10 and Recall@100 of each customer's last item, predicted from everything before it. At
each fraction of the shop's customers, models trained on those customers alone (from scratch, and
starting from the other shops' model) show whether the sources help where the shop has little.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.data.histories import Histories
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.baselines import dense_target_ranks
from rectransfer.evaluation.next_item_model import NextItemModel, NextItemTraining
from rectransfer.evaluation.next_item_net import train_next_item
from rectransfer.metrics import ndcg_at, recall_at
from rectransfer.prepared.prepare import PreparedRetailer, prepare
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder

PRETRAIN_CUTS = 3  # as pretrain's default: its training lists' labels are left out
ROWS = (
    "last item",
    "next-item, other shops",
    "next-item, this shop",
    "next-item, other shops then this shop",
)


def run_next_item_probe(
    sources: Sequence[RetailerData | str | Path],
    *,
    encoder: Encoder | None = None,
    customers: int = 3_000,
    fractions: Sequence[float] = (1.0, 0.1),
    training: NextItemTraining | None = None,
    in_shop: bool = True,
    random_state: int = 0,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One fold per source; returns the JSON document (``folds`` and ``summary``).

    At each fraction f of the held-out shop's customers (seeded), ``in_shop`` also trains a model
    on those customers' histories without their test item, from scratch and starting from the
    other shops' model: the shop alone against transfer, as the benchmark's local-only and
    adapted rows.
    """
    datasets = [s if isinstance(s, RetailerData) else RetailerData.load(s) for s in sources]
    names = [d.name for d in datasets]
    if len(datasets) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"the probe needs two or more sources with distinct names, got {names!r}."
        )
    if customers < 1:
        raise ConfigError(f"customers must be >= 1, got {customers!r}.")
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions must lie in (0, 1], got {list(fractions)!r}.")
    training = training or NextItemTraining()
    encoder = encoder or load_encoder("default")
    prepared = [prepare(d, encoder) for d in datasets]
    doc: dict[str, Any] = {
        "study": "next-item-probe",
        "sources": names,
        "customers": customers,
        "fractions": list(fractions),
        "training": training.to_dict(),
        "in_shop": in_shop,
        "random_state": random_state,
        "encoder": encoder.fingerprint,
        "folds": [],
    }
    for i, held in enumerate(prepared):
        started = time.perf_counter()
        others = [
            (p.index.histories.truncate(PRETRAIN_CUTS), p.catalogue.vectors)
            for j, p in enumerate(prepared)
            if j != i
        ]
        transferred = train_next_item(others, training, random_state=random_state)
        context = held.index.histories.truncate(1)  # what is known before each test item
        results = []
        for fraction in fractions:
            rng = np.random.default_rng(random_state)  # the same draws at every fold and fraction
            shop = _shop_customers(held, fraction, rng)
            models = {ROWS[1]: transferred}
            if in_shop:
                own = [(context.select(shop), held.catalogue.vectors)]
                models[ROWS[2]] = train_next_item(own, training, random_state=random_state)
                models[ROWS[3]] = train_next_item(
                    own, training, random_state=random_state, start=transferred
                )
            scored = _scores(held, context, shop, models, customers, rng)
            results.append({"fraction": fraction, **scored})
        fold = {
            "held_out": held.name,
            "trained_on": [n for j, n in enumerate(names) if j != i],
            "results": results,
            "seconds": round(time.perf_counter() - started, 1),
        }
        doc["folds"].append(fold)
        doc["summary"] = _summary(doc["folds"])
        if on_fold is not None:
            on_fold(doc)
    return doc


def _shop_customers(
    held: PreparedRetailer, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """A seeded ``fraction`` of the shop's customers who have an item before their last."""
    rows = np.flatnonzero(held.index.histories.lengths >= 2)
    n = max(1, round(fraction * len(rows)))
    return np.sort(rng.choice(rows, n, replace=False)) if n < len(rows) else rows


def _scores(
    held: PreparedRetailer,
    context: Histories,
    shop: np.ndarray,
    models: dict[str, NextItemModel],
    customers: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Metrics of each row on (up to ``customers`` of) the shop's customers with two or more
    items in their ``context``, each predicting their last item."""
    targets = held.index.histories.last(0)
    rows = shop[context.lengths[shop] >= 2]
    if len(rows) > customers:
        rows = np.sort(rng.choice(rows, customers, replace=False))
    vectors = held.catalogue.vectors
    queries = {ROWS[0]: vectors[context.last(0, rows=rows)]}
    queries |= {name: m.predict(context, rows, vectors) for name, m in models.items()}
    excluded = context.select(rows)
    out: dict[str, Any] = {"n_customers": len(rows), "rows": {}}
    for name, q in queries.items():

        def scores(block: np.ndarray, q: np.ndarray = q) -> np.ndarray:
            return q[np.searchsorted(rows, block)] @ vectors.T

        ranks = dense_target_ranks(scores, rows, targets[rows], excluded)
        out["rows"][name] = {
            "ndcg@10": round(ndcg_at(ranks, 10), 5),
            "recall@10": round(recall_at(ranks, 10), 5),
            "recall@100": round(recall_at(ranks, 100), 5),
        }
    return out


def _summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per fraction, row and metric: the mean ratio to the last-item row over the folds and on
    how many it is higher."""
    summary: dict[str, Any] = {}
    for fraction in [r["fraction"] for r in folds[0]["results"]]:
        results = [r for f in folds for r in f["results"] if r["fraction"] == fraction]
        for name in ROWS[1:]:
            if not all(name in r["rows"] for r in results):
                continue
            for metric in ("ndcg@10", "recall@100"):
                ratios = [
                    r["rows"][name][metric] / r["rows"][ROWS[0]][metric]
                    for r in results
                    if r["rows"][ROWS[0]][metric] > 0
                ]
                summary[f"f = {fraction:g}, {name}: {metric} / last item"] = {
                    "mean": round(float(np.mean(ratios)), 3) if ratios else None,
                    "higher_on": sum(r > 1 for r in ratios),
                    "of": len(ratios),
                }
    return summary


def next_item_markdown(doc: dict[str, Any]) -> str:
    """The probe's folds as a markdown table (NDCG@10 / Recall@100 per row) and its summary."""
    results = [(f, r) for f in doc["folds"] for r in f["results"]]
    rows = [name for name in ROWS if all(name in r["rows"] for _, r in results)]
    lines = [
        "| held out | f | customers | " + " | ".join(rows) + " |",
        "|---|---|---|" + "---|" * len(rows),
    ]
    for f, r in results:
        cells = [f"{r['rows'][n]['ndcg@10']:.4f} / {r['rows'][n]['recall@100']:.4f}" for n in rows]
        lines.append(
            f"| {f['held_out']} | {r['fraction']:g} | {r['n_customers']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "| ratio to the last item | mean over folds | higher on |", "|---|---|---|"]
    for key, s in doc.get("summary", {}).items():
        lines.append(f"| {key} | {s['mean']} | {s['higher_on']} of {s['of']} |")
    return "\n".join(lines)
