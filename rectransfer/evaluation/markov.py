"""The order-aware heuristic peer: last-item text similarity plus transitions from recent items.

A customer's score for product ``j`` is::

    cos(text(j), text(last item)) + weight * sum_i decay**i * (P(j after h_i) + P(j before h_i))

over their last ``MARKOV_HISTORY`` items ``h_0`` (newest), ``h_1``, ... The transition
probabilities are the retailer's leak-free :class:`~rectransfer.prepared.stats.BehaviourStats` (both
directions, as the ranker's features use them). ``weight`` and ``decay`` are chosen on the
validation item (each customer's second-to-last item, predicted from the history before it, with
statistics built from those histories), never on the test item: :func:`choose_markov`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rectransfer.data.histories import Histories
from rectransfer.errors import ConfigError
from rectransfer.evaluation.baselines import Scorer
from rectransfer.metrics import ndcg_at
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.ranking.rules import MARKOV_WEIGHTS

MARKOV_HISTORY = 3  # transitions are taken from the customer's last three items
MARKOV_DECAYS = (1.0, 0.5)  # weight of each older item relative to the next newer one
MARKOV_METRIC_K = 10  # choices are compared by NDCG@10 on the validation items
CHUNK = 512


@dataclass(frozen=True)
class MarkovChoice:
    """The weights :func:`choose_markov` picked, with the validation figure of every choice."""

    weight: float
    decay: float
    customers: int  # validation customers the choice was made on
    ndcg: dict[tuple[float, float], float] = field(default_factory=dict)  # (weight, decay) -> NDCG

    def report(self) -> dict[str, object]:
        """A JSON-ready record of the choice (for the benchmark's row)."""
        return {
            "markov": {
                "weight": self.weight,
                "decay": self.decay,
                "validation_customers": self.customers,
                "validation_ndcg@10": [
                    {"weight": w, "decay": d, "ndcg@10": round(v, 6)}
                    for (w, d), v in self.ndcg.items()
                ],
            }
        }


def transition_history(
    context: Histories, rows: np.ndarray, *, decay: float, last: int = MARKOV_HISTORY
) -> sp.csr_matrix:
    """Sparse ``len(rows) x n_items``: each customer's last ``last`` items, newest weighing 1.

    Examples
    --------
    >>> h = Histories(np.array([0, 3]), np.array([0, 1, 2], dtype=np.int32), np.zeros(3), 4)
    >>> transition_history(h, np.array([0]), decay=0.5).toarray().tolist()
    [[0.25, 0.5, 1.0, 0.0]]
    """
    lengths = context.lengths[rows]
    take = np.minimum(lengths, last)
    ends = context.indptr[1:][rows]
    row_index = np.repeat(np.arange(len(rows)), take)
    from_end = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
    items = context.items[np.repeat(ends, take) - 1 - from_end]
    values = (decay**from_end).astype(np.float32)
    matrix = sp.csr_matrix((values, (row_index, items)), shape=(len(rows), context.n_items))
    matrix.sum_duplicates()
    return matrix


def _both_directions(stats: BehaviourStats) -> sp.csr_matrix:
    return sp.csr_matrix(stats.trans_fwd + stats.trans_bwd, dtype=np.float32)


def _last_item_text(context: Histories, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    last = context.last(0, rows=rows)
    out = np.zeros((len(rows), vectors.shape[0]), dtype=np.float32)
    has = last >= 0
    out[has] = vectors[last[has]] @ vectors.T
    return out


def markov_scorer(
    context: Histories,
    vectors: np.ndarray,
    stats: BehaviourStats,
    *,
    weight: float,
    decay: float = 1.0,
) -> Scorer:
    """Dense scores: last-item text similarity + ``weight`` x transitions from recent items.

    ``vectors`` are the catalogue's L2-normalised text vectors; ``stats`` must be built from
    histories that end before the items being predicted.

    Examples
    --------
    >>> from rectransfer.prepared.stats import BehaviourStats
    >>> h = Histories(np.array([0, 2, 4]), np.array([0, 1, 0, 1], dtype=np.int32), np.zeros(4), 3)
    >>> scores = markov_scorer(h, np.eye(3, dtype=np.float32), BehaviourStats.build(h), weight=1)
    >>> scores(np.array([0])).shape
    (1, 3)
    """
    if not np.isfinite(weight) or weight < 0:
        raise ConfigError(f"weight must be a finite number >= 0, got {weight!r}.")
    if not 0 <= decay <= 1:
        raise ConfigError(f"decay must lie in [0, 1], got {decay!r}.")
    transitions = _both_directions(stats)

    def score(rows: np.ndarray) -> np.ndarray:
        out = _last_item_text(context, rows, vectors)
        if weight > 0:
            history = transition_history(context, rows, decay=decay)
            out += weight * np.asarray((history @ transitions).todense(), dtype=np.float32)
        return out

    return score


def _pessimistic_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each row's target (ties count against it); ``-inf`` targets rank last."""
    local = np.arange(len(targets))
    target_score = scores[local, targets]
    ranks = ((scores >= target_score[:, None]).sum(axis=1)).astype(np.float64)
    ranks[~np.isfinite(target_score)] = np.inf
    return ranks


def choose_markov(
    context: Histories,
    rows: np.ndarray,
    targets: np.ndarray,
    vectors: np.ndarray,
    stats: BehaviourStats,
    *,
    excluded: Histories | None = None,
    weights: Sequence[float] = MARKOV_WEIGHTS,
    decays: Sequence[float] = MARKOV_DECAYS,
) -> MarkovChoice:
    """Pick ``weight`` and ``decay`` by NDCG@10 on validation items (ties: the earlier choice).

    ``context`` holds the histories *before* the validation items, ``rows`` the customers that
    have one and ``targets`` those items (aligned with ``rows``); ``stats`` is built from
    ``context``. ``excluded`` (aligned with ``rows``; default: their histories) are removed from
    the ranking; pass empty histories to keep the customers' own items.

    Examples
    --------
    >>> from rectransfer.prepared.stats import BehaviourStats
    >>> h = Histories(np.array([0, 2, 4]), np.array([0, 1, 0, 1], dtype=np.int32), np.zeros(4), 3)
    >>> choice = choose_markov(h, np.array([0, 1]), np.array([2, 2]), np.eye(3, dtype=np.float32),
    ...                        BehaviourStats.build(h))
    >>> choice.weight
    0.0
    """
    if not weights or min(weights) < 0:
        raise ConfigError(f"weights must be non-empty and >= 0, got {list(weights)!r}.")
    if not decays or min(decays) < 0 or max(decays) > 1:
        raise ConfigError(f"decays must be non-empty and lie in [0, 1], got {list(decays)!r}.")
    if len(rows) != len(targets):
        raise ConfigError(f"rows and targets must align, got {len(rows)} and {len(targets)}.")
    grid = [(float(w), float(d)) for w in weights for d in decays]
    if len(rows) == 0:
        return MarkovChoice(weight=grid[0][0], decay=grid[0][1], customers=0)
    excluded = excluded if excluded is not None else context.select(rows)
    transitions = _both_directions(stats)
    ranks = {choice: np.empty(len(rows)) for choice in grid}
    for start in range(0, len(rows), CHUNK):
        block = rows[start : start + CHUNK]
        block_targets = targets[start : start + CHUNK]
        text = _last_item_text(context, block, vectors).astype(np.float64)
        own = excluded.select(np.arange(start, start + len(block)))
        text[own.user_of_event(), own.items] = -np.inf
        for decay in decays:
            history = transition_history(context, block, decay=decay)
            moves = np.asarray((history @ transitions).todense(), dtype=np.float64)
            for weight in weights:
                scores = text + weight * moves if weight > 0 else text
                ranks[(float(weight), float(decay))][start : start + len(block)] = (
                    _pessimistic_ranks(scores, block_targets)
                )
    ndcg = {choice: ndcg_at(r, MARKOV_METRIC_K) for choice, r in ranks.items()}
    best = max(grid, key=lambda c: (ndcg[c], -grid.index(c)))
    return MarkovChoice(weight=best[0], decay=best[1], customers=len(rows), ndcg=ndcg)
