"""Ranking metrics over the whole catalogue: where did each customer's held-out item land?"""

from __future__ import annotations

import numpy as np

from rectransfer.data.histories import Histories


def target_ranks(
    group: np.ndarray, label: np.ndarray, scores: np.ndarray, n_groups: int
) -> np.ndarray:
    """1-based rank of each group's labelled row among its rows by score; ``inf`` if absent.

    Ties count against the label (pessimistic), so a constant scorer earns nothing. Items outside
    a customer's candidates rank below all of them, so a missing label is a miss at every K.
    """
    ranks = np.full(n_groups, np.inf)
    positive = np.flatnonzero(label == 1)
    if len(positive) == 0:
        return ranks
    target_score = np.full(n_groups, np.nan)
    target_score[group[positive]] = scores[positive]
    rows_target = target_score[group]
    beats = (scores >= rows_target) & (label != 1)
    ahead = np.bincount(group[beats], minlength=n_groups)
    has = ~np.isnan(target_score)
    ranks[has] = ahead[has] + 1
    return ranks


def popularity_ranks(
    popularity: np.ndarray,
    targets: np.ndarray,
    excluded: Histories,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Rank of each target in the full catalogue ordered by ``popularity``, own items removed.

    A target among the customer's own items is removed with them (``inf``, a miss at every K), as
    in every other model's ranks: a ranker's candidates never include a customer's own items.
    """
    pop = popularity.astype(np.float64)
    if allowed is not None:
        pop = np.where(allowed, pop, -np.inf)
    sorted_pop = np.sort(pop)
    target_pop = pop[targets]
    ahead = len(pop) - np.searchsorted(sorted_pop, target_pop, side="left") - 1  # >= , minus self
    # the customer's own items (each counted once) that would have been ahead do not count
    pairs = np.unique(excluded.user_of_event() * len(pop) + excluded.items)
    user, own = pairs // len(pop), pairs % len(pop)
    own_ahead = pop[own] >= target_pop[user]
    ahead = ahead - np.bincount(user[own_ahead], minlength=len(targets))
    ranks = ahead.astype(np.float64) + 1
    ranks[~np.isfinite(target_pop)] = np.inf
    ranks[user[own == targets[user]]] = np.inf  # a target among the own items went with them
    return ranks


def ndcg_gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each customer's NDCG@k for one relevant item (0 beyond rank k)."""
    return np.where(ranks <= k, 1.0 / np.log2(np.minimum(ranks, 1e9) + 1), 0.0)


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k for one relevant item per customer."""
    return float(ndcg_gains(ranks, k).mean()) if len(ranks) else 0.0


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Share of customers whose held-out item is in their top k."""
    return float((ranks <= k).mean()) if len(ranks) else 0.0


def ndcg_stderr(ranks: np.ndarray, k: int) -> float:
    """Standard error of the mean NDCG@k over customers."""
    if len(ranks) < 2:
        return float("nan")
    gains = ndcg_gains(ranks, k)
    return float(gains.std(ddof=1) / np.sqrt(len(gains)))


def set_ndcg(top: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per-row NDCG of ranked lists ``top`` against boolean relevance (customers x items)."""
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    hits = np.take_along_axis(relevant, top, axis=1)
    sizes = np.minimum(relevant.sum(axis=1), top.shape[1])
    ideal = np.cumsum(discounts)[np.maximum(sizes - 1, 0)]
    gains = (hits * discounts).sum(axis=1)
    return np.where(sizes > 0, gains / ideal, 0.0)
