"""Does a next-item model over text vectors carry what follows what to an unseen shop?

The cheap question to ask before making the model a candidate generator or a ranker feature. For
each source in turn, the model of :mod:`rectransfer.evaluation.next_item_model` is trained on the
*other* sources (their histories without each customer's last ``PRETRAIN_CUTS`` items, the ones
pretraining labels) and, optionally, on the held-out shop's own histories without their test item.
On a seeded sample of the held-out shop's customers it then ranks the whole catalogue (own items
removed) against the plain baseline it starts from, the last item's text similarity: NDCG@10,
Recall@10 and Recall@100 of each customer's last item, predicted from everything before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
ROWS = ("last item", "next-item, other shops", "next-item, this shop")


def run_next_item_probe(
    sources: Sequence[RetailerData | str | Path],
    *,
    encoder: Encoder | None = None,
    customers: int = 3_000,
    training: NextItemTraining | None = None,
    in_shop: bool = True,
    random_state: int = 0,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One fold per source; returns the JSON document (``folds`` and ``summary``).

    ``in_shop`` also trains a model on the held-out shop alone (its customers' histories without
    their test item), to tell a model that cannot learn from one that does not transfer.
    """
    datasets = [s if isinstance(s, RetailerData) else RetailerData.load(s) for s in sources]
    names = [d.name for d in datasets]
    if len(datasets) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"the probe needs two or more sources with distinct names, got {names!r}."
        )
    if customers < 1:
        raise ConfigError(f"customers must be >= 1, got {customers!r}.")
    training = training or NextItemTraining()
    encoder = encoder or load_encoder("default")
    prepared = [prepare(d, encoder) for d in datasets]
    doc: dict[str, Any] = {
        "study": "next-item-probe",
        "sources": names,
        "customers": customers,
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
        models = {ROWS[1]: train_next_item(others, training, random_state=random_state)}
        context = held.index.histories.truncate(1)
        if in_shop:
            own = [(context, held.catalogue.vectors)]
            models[ROWS[2]] = train_next_item(own, training, random_state=random_state)
        fold = {
            "held_out": held.name,
            "trained_on": [n for j, n in enumerate(names) if j != i],
            **_scores(held, models, customers, random_state),
            "seconds": round(time.perf_counter() - started, 1),
        }
        doc["folds"].append(fold)
        doc["summary"] = _summary(doc["folds"])
        if on_fold is not None:
            on_fold(doc)
    return doc


def _scores(
    held: PreparedRetailer, models: dict[str, NextItemModel], customers: int, random_state: int
) -> dict[str, Any]:
    """Metrics of each row on a seeded sample of the customers with two or more items before
    their last."""
    histories = held.index.histories
    context, targets = histories.truncate(1), histories.last(0)
    rows = np.flatnonzero((context.lengths >= 2) & (targets >= 0))
    if len(rows) > customers:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, customers, replace=False))
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
    """Per row and metric, the mean ratio to the last-item row over folds and where it is higher."""
    summary: dict[str, Any] = {}
    for name in ROWS[1:]:
        if not all(name in f["rows"] for f in folds):
            continue
        for metric in ("ndcg@10", "recall@100"):
            ratios = [
                f["rows"][name][metric] / f["rows"][ROWS[0]][metric]
                for f in folds
                if f["rows"][ROWS[0]][metric] > 0
            ]
            summary[f"{name}: {metric} / last item"] = {
                "mean": round(float(np.mean(ratios)), 3) if ratios else None,
                "higher_on": sum(r > 1 for r in ratios),
                "of": len(ratios),
            }
    return summary


def next_item_markdown(doc: dict[str, Any]) -> str:
    """The probe's folds as a markdown table (NDCG@10 / Recall@100 per row) and its summary."""
    rows = [r for r in ROWS if all(r in f["rows"] for f in doc["folds"])]
    lines = [
        "| held out | customers | " + " | ".join(rows) + " |",
        "|---|---|" + "---|" * len(rows),
    ]
    for f in doc["folds"]:
        cells = [f"{f['rows'][r]['ndcg@10']:.4f} / {f['rows'][r]['recall@100']:.4f}" for r in rows]
        lines.append(f"| {f['held_out']} | {f['n_customers']} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio to the last item | mean over folds | higher on |", "|---|---|---|"]
    for key, s in doc.get("summary", {}).items():
        lines.append(f"| {key} | {s['mean']} | {s['higher_on']} of {s['of']} |")
    return "\n".join(lines)
