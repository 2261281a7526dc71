"""Reference scorers that rank the whole catalogue: popularity, item-kNN and text similarity.

They are what a retailer could run without rectransfer, and the bar the rankers must clear in the
benchmark. Each returns a dense ``customers x items`` score block for a chunk of customers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from rectransfer.data.histories import Histories
from rectransfer.prepared.stats import BehaviourStats

Scorer = Callable[[np.ndarray], np.ndarray]  # customer rows -> (rows, n_items) scores

RECENT_ITEMS = 5


def popularity_scorer(stats: BehaviourStats) -> Scorer:
    """Everyone gets the catalogue by popularity (recent popularity first, then overall)."""
    popularity = stats.popular.astype(np.float32)

    def score(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(popularity, (len(rows), len(popularity))).copy()

    return score


def item_knn_scorer(context: Histories) -> Scorer:
    """Item-to-item cosine on who-bought-what; a customer's score sums over their items."""
    user = context.user_of_event()
    matrix = sp.csr_matrix(
        (np.ones(len(user), dtype=np.float32), (user, context.items)),
        shape=(context.n_users, context.n_items),
    )
    matrix.data[:] = 1.0  # repeat purchases count once
    columns = normalize(matrix.T.tocsr(), norm="l2", axis=1)  # items x users, unit rows
    similarity = (columns @ columns.T).tocsr()
    similarity.setdiag(0.0)
    similarity.eliminate_zeros()

    def score(rows: np.ndarray) -> np.ndarray:
        return np.asarray((matrix[rows] @ similarity).todense(), dtype=np.float32)

    return score


def text_scorer(context: Histories, vectors: np.ndarray) -> Scorer:
    """Similarity of each product's text to the mean of the customer's last five items."""

    def score(rows: np.ndarray) -> np.ndarray:
        recent = np.zeros((len(rows), vectors.shape[1]), dtype=np.float32)
        for offset in range(RECENT_ITEMS):
            items = context.last(offset, rows=rows)
            has = items >= 0
            recent[has] += vectors[items[has]]
        return recent @ vectors.T

    return score


def dense_target_ranks(
    scorer: Scorer,
    rows: np.ndarray,
    targets: np.ndarray,
    excluded: Histories,
    *,
    chunk: int = 512,
) -> np.ndarray:
    """Rank of each customer's target in the whole catalogue by ``scorer``, own items removed.

    Ties count against the target (pessimistic). ``excluded`` is aligned with ``rows``.
    """
    ranks = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        block_rows = rows[start : start + chunk]
        scores = scorer(block_rows).astype(np.float64, copy=True)
        local = np.arange(len(block_rows))
        own = excluded.select(np.arange(start, start + len(block_rows)))
        scores[own.user_of_event(), own.items] = -np.inf
        target = targets[start : start + len(block_rows)]
        target_score = scores[local, target]
        ahead = (scores >= target_score[:, None]).sum(axis=1) - 1  # minus the target itself
        ranks[start : start + len(block_rows)] = ahead + 1
        ranks[start : start + len(block_rows)][~np.isfinite(target_score)] = np.inf
    return ranks
