"""Candidate generation: which items a customer's ranker list is drawn from.

A customer's candidates are the union of each signal's best items the customer may be offered:
text neighbours of the last item and of the recent items (read from per-item neighbour lists
computed once per catalogue, :class:`TextNeighbours`), the items closest to the customer's own
words, co-occurrence with the history, transitions from the last items, and popular items
(:class:`CandidateConfig` says how many of each). What is derived from a catalogue once (the
neighbour lists, the moments of its vectors) is kept by the catalogue itself
(:attr:`~rectransfer.prepared.catalogue.Catalogue.derived`), so every chunk and call reuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rectransfer.data.histories import Histories
from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.utils.topk import descending_ranks_in_runs, top_k_rows

BLOCK_BUDGET_BYTES = 384 * 1024**2  # the dense score block of one chunk stays below this
# a customer's row of the dense text block: float32 scores, a mask and selection headroom
_DENSE_BYTES_PER_ITEM = 4 + 8 + 1
NEIGHBOUR_MARGIN = 30  # extra text neighbours per item, for those a customer may not be offered


@dataclass(frozen=True)
class CandidateConfig:
    """How many items each signal contributes to a customer's candidate list (the union is used)."""

    text_last: int = 60
    text_recent: int = 40
    text_user: int = 30
    cooc: int = 60
    transitions: int = 40
    popular: int = 30

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def chunk_size(n_items: int) -> int:
    """Customers per chunk so that the one dense block of a chunk fits ``BLOCK_BUDGET_BYTES``.

    Only customers with their own text get a dense ``chunk x items`` block (their similarity to
    the whole catalogue, with the buffers of its top-k selection); everything else is
    sparse or per candidate.
    """
    per_customer = max(n_items, 1) * _DENSE_BYTES_PER_ITEM
    return int(np.clip(BLOCK_BUDGET_BYTES // per_customer, 8, 4096))


@dataclass(frozen=True)
class TextNeighbours:
    """Each item's most similar proposable items by text, best first (computed once per catalogue).

    The text candidate lists of every customer are read from these lists instead of scoring the
    whole catalogue per customer: the top ``n`` items by similarity to the last item are the first
    ``n`` of its list that the customer may be offered, and the top ``n`` by the highest similarity
    to any recent item are among the union of the recent items' lists. ``NEIGHBOUR_MARGIN`` extra
    entries absorb items a customer may not be offered (their own history).
    """

    items: np.ndarray  # int32 (n_items, width), -1 past the proposable items
    sims: np.ndarray  # float32 (n_items, width), -inf past the proposable items

    @classmethod
    def build(cls, vectors: np.ndarray, allowed: np.ndarray | None, width: int) -> TextNeighbours:
        n_items = len(vectors)
        pool = np.arange(n_items) if allowed is None else np.flatnonzero(allowed)
        width = max(width, 1)
        items = np.full((n_items, width), -1, dtype=np.int32)
        sims = np.full((n_items, width), -np.inf, dtype=np.float32)
        take = min(width, len(pool))
        if take == 0:
            return cls(items, sims)
        pool_vectors = vectors[pool]
        step = int(np.clip(BLOCK_BUDGET_BYTES // (max(len(pool), 1) * 12), 1, 4096))
        for start in range(0, n_items, step):
            top, top_sims = top_k_rows(vectors[start : start + step] @ pool_vectors.T, take)
            items[start : start + step, :take] = pool[top]
            sims[start : start + step, :take] = top_sims
        return cls(items, sims)


@dataclass(frozen=True)
class RowMoments:
    """Mean and second moment of the catalogue's vectors: any query's similarity row statistics.

    For a query vector ``q`` the similarities ``V @ q`` to all items have mean ``q . mean`` and
    variance ``q' M q - (q . mean)^2`` with ``M = V'V / n``: z-scores over the whole catalogue
    without scoring it.
    """

    mean: np.ndarray  # float64 (d,)
    second: np.ndarray  # float64 (d, d)
    # the spread of every item's own row: recent items are queries of every customer
    item_mean: np.ndarray  # float64 (n_items,)
    item_std: np.ndarray  # float64 (n_items,)

    @classmethod
    def of(cls, vectors: np.ndarray) -> RowMoments:
        v = vectors.astype(np.float64)
        n = max(len(v), 1)
        moments = cls(v.sum(axis=0) / n, (v.T @ v) / n, np.zeros(0), np.zeros(0))
        del v
        step = 8192  # float64 rows at a time, for catalogues of any size
        spreads = [moments.spread(vectors[i : i + step]) for i in range(0, len(vectors), step)]
        return cls(
            moments.mean,
            moments.second,
            np.concatenate([mean for mean, _ in spreads] or [np.zeros(0)]),
            np.concatenate([std for _, std in spreads] or [np.zeros(0)]),
        )

    def spread(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each query's similarities to the whole catalogue."""
        q = queries.astype(np.float64)
        mean = q @ self.mean
        var = ((q @ self.second) * q).sum(axis=1) - mean**2
        return mean, np.sqrt(np.maximum(var, 0.0))

    def spread_with_items(
        self, queries: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`spread` of (customers, m, d) query vectors whose first ``items.shape[1]`` are
        catalogue items (positions; -1 for none, spread 0): theirs are read, not computed."""
        b, n_items_taken = items.shape
        rest_mean, rest_std = self.spread(queries[:, n_items_taken:].reshape(-1, queries.shape[2]))
        known, at = items >= 0, np.maximum(items, 0)
        return (
            np.concatenate([np.where(known, self.item_mean[at], 0.0), rest_mean.reshape(b, -1)], 1),
            np.concatenate([np.where(known, self.item_std[at], 0.0), rest_std.reshape(b, -1)], 1),
        )

    def z(
        self, mean: np.ndarray, std: np.ndarray, cand_row: np.ndarray, sims: np.ndarray
    ) -> np.ndarray:
        """z-scores of candidate ``sims`` against their customer's query, given the query's
        :meth:`spread` (``mean``, ``std`` per customer); 0 where a query's row is flat."""
        ok = std > 1e-9
        z = (sims - mean[cand_row]) / np.where(ok, std, 1.0)[cand_row]
        return np.where(ok[cand_row], z, 0.0).astype(np.float32)


def text_neighbours(
    catalogue: Catalogue, allowed: np.ndarray | None, config: CandidateConfig
) -> TextNeighbours:
    """The catalogue's :class:`TextNeighbours` for this candidate config (cached)."""
    width = max(config.text_last, config.text_recent) + NEIGHBOUR_MARGIN
    key = (b"" if allowed is None else np.packbits(allowed).tobytes(), width)
    built: TextNeighbours = catalogue.derived.get(
        ("text neighbours", key),
        lambda: TextNeighbours.build(catalogue.vectors, allowed, width),
    )
    return built


def row_moments(catalogue: Catalogue) -> RowMoments:
    moments: RowMoments = catalogue.derived.get(
        ("row moments",), lambda: RowMoments.of(catalogue.vectors)
    )
    return moments


def popular_order(stats: BehaviourStats, allowed: np.ndarray | None) -> np.ndarray:
    key = b"" if allowed is None else np.packbits(allowed).tobytes()
    order = stats.popular_orders.get(key)
    if order is None:
        score = stats.recent_pct + stats.pop_pct
        pool = np.arange(len(score)) if allowed is None else np.flatnonzero(allowed)
        order = stats.popular_orders[key] = pool[np.lexsort((pool, -score[pool]))]
    return order


def proposable(
    key: np.ndarray, item: np.ndarray, blocked: np.ndarray, allowed: np.ndarray
) -> np.ndarray:
    """Mask of pairs that may be proposed: an allowed item the customer is not excluded from.

    ``blocked`` holds the sorted keys of the excluded pairs.
    """
    at = np.minimum(np.searchsorted(blocked, key), max(len(blocked) - 1, 0))
    is_blocked = blocked[at] == key if len(blocked) else np.zeros(len(key), dtype=bool)
    return allowed[item] & ~is_blocked


def top_per_row(
    row: np.ndarray, item: np.ndarray, value: np.ndarray, n: int, n_items: int
) -> np.ndarray:
    """Keys of each row's ``n`` highest values (ties to the lower catalogue position)."""
    if n <= 0 or len(row) == 0:
        return np.zeros(0, dtype=np.int64)
    key = row.astype(np.int64) * n_items + item
    if len(key) > 1 and (np.diff(key) < 0).any():
        by_key = np.argsort(key, kind="stable")
        row, value, key = row[by_key], value[by_key], key[by_key]
    return key[descending_ranks_in_runs(row, value) <= n]


def neighbour_top(
    anchors: np.ndarray,
    neighbours: TextNeighbours,
    n: int,
    proposable_top: Callable[..., np.ndarray],
) -> np.ndarray:
    """Keys of each row's ``n`` best items by text similarity to its anchor item(s).

    ``anchors`` is (b,) or (b, m) item positions, -1 for none; with several anchors an item's
    value is its highest similarity to any of them.
    """
    anchors = anchors.reshape(len(anchors), -1)
    row, slot = np.nonzero(anchors >= 0)
    anchor = anchors[row, slot]
    width = neighbours.items.shape[1]
    row = np.repeat(row, width)
    item = neighbours.items[anchor].ravel().astype(np.int64)
    value = neighbours.sims[anchor].ravel()
    real = item >= 0
    row, item, value = row[real], item[real], value[real]
    if anchors.shape[1] > 1 and len(row):  # an item listed by several anchors: its best value
        pair = row.astype(np.int64) * neighbours.items.shape[0] + item
        order = np.argsort(pair, kind="stable")
        pair = pair[order]
        first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        value = np.maximum.reduceat(value[order], first)
        row, item = row[order[first]], item[order[first]]
    return proposable_top(row, item, value, n, positive_only=False)


def text_top(
    text: np.ndarray,
    has_text: np.ndarray,
    vectors: np.ndarray,
    excluded: Histories,
    allowed: np.ndarray,
    n: int,
    n_items: int,
) -> np.ndarray:
    """Keys of the ``n`` proposable items closest to each customer's own text (dense block)."""
    rows = np.flatnonzero(has_text)
    if len(rows) == 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    scores = text[rows] @ vectors.T
    scores[:, ~allowed] = -np.inf
    position = np.full(len(has_text), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    user = excluded.user_of_event()
    mine = position[user] >= 0
    scores[position[user[mine]], excluded.items[mine]] = -np.inf
    top, picked = top_k_rows(scores, n)
    ok = np.isfinite(picked)
    row = np.repeat(rows, top.shape[1]).reshape(top.shape)[ok]
    top_items = top[ok]
    return top_per_row(row, top_items, picked[ok], n, n_items)


def popular_top(order: np.ndarray, excluded: Histories, n: int, n_items: int) -> np.ndarray:
    """Keys of each customer's ``n`` most popular proposable items they are not excluded from."""
    if n <= 0 or len(order) == 0:
        return np.zeros(0, dtype=np.int64)
    b = excluded.n_users
    head = order[: n + int(excluded.lengths.max(initial=0))]
    row = np.repeat(np.arange(b), len(head))
    item = np.tile(head, b)
    key = row * n_items + item
    blocked = excluded.user_of_event() * n_items + excluded.items
    ok = ~np.isin(key, blocked)
    rank = np.tile(np.arange(len(head)), b)[ok]
    return top_per_row(row[ok], item[ok], -rank.astype(np.float32), n, n_items)
