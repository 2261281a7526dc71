"""Behaviour statistics of one retailer: popularity and its trend, co-occurrence, transitions.

They are computed from a :class:`~rectransfer.data.histories.Histories`, so that training computes
them from history *before* each label (no leakage) and serving from all of it. Every statistic
becomes a scale-free quantity (percentiles, cosine-normalised counts, conditional probabilities) so
that features mean the same at a shop of 200 customers and one of 200,000.

Weights. An interaction's ``weight`` (or ``quantity``) counts ``log2(1 + weight)`` times in
``popular``, what popular lists sort by (the popular path, top-ups, the text path's popularity, the
guard's popularity row): a line of 120 units counts about 7 times a line of one, not 120 times, so
one wholesale order does not outweigh many customers, and a weight of 1 counts exactly once, so a
shop without weights gets exactly the unweighted lists. The ranker's inputs (the popularity,
trend and ``log_count`` features, co-occurrence, transitions, popular candidates) count events:
the broad ranker learnt them at many shops, most without weights, and weighting them lowered its
NDCG@10 on a shop with quantities and on the demo target (``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from rectransfer.data.histories import Histories

COOC_WINDOW = 10  # items this many places apart in one customer's sequence count as co-occurring
RECENT_SHARE = 0.1  # the newest tenth of the events defines "recent" popularity
# Each item keeps its strongest partners only (co-occurrence, transitions). Rows of popular items
# grow with the shop; uncapped, the pairs every customer's history reaches grow with it, and so
# does the cost per customer. The weak tail adds little to a ranking.
ITEM_PARTNERS = 100
PAIR_EVENTS_PER_SLICE = 1_000_000  # item pairs are counted over this many events at a time
TRIM_ENTRIES_PER_BLOCK = 2_000_000  # entries of long rows ranked at a time by strongest_per_row


@dataclass(frozen=True)
class BehaviourStats:
    """Item statistics and item-to-item matrices of one retailer."""

    count: np.ndarray  # float32 (n,), events per item
    pop_pct: np.ndarray  # float32 (n,), percentile of count in the catalogue, 0 for unseen items
    recent_pct: np.ndarray  # float32 (n,), the same over recent events only
    trend: np.ndarray  # float32 (n,), log ratio of recent share to overall share
    first_seen_pct: np.ndarray  # float32 (n,), time quantile of the first event, NaN if unseen
    cooc: sp.csr_matrix  # (n, n) cosine-normalised co-occurrence within COOC_WINDOW
    trans_fwd: sp.csr_matrix  # (n, n) row i: P(next = j | current = i)
    trans_bwd: sp.csr_matrix  # (n, n) row i: P(previous = j | current = i)
    # float32 (n,): what popular lists sort by: recent_pct + pop_pct, of the weighted counts
    popular: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.count)

    @cached_property
    def cooc_support(self) -> sp.csr_matrix:
        """1 wherever two items co-occur: how many history items back a candidate."""
        support = self.cooc.copy()
        support.data[:] = 1.0
        return support

    @cached_property
    def cluster_lifts(self) -> dict[bytes, np.ndarray]:
        """Transition lifts between text clusters, per clustering (filled by the features)."""
        return {}

    @cached_property
    def popular_orders(self) -> dict[bytes, np.ndarray]:
        """Proposable items by popularity, per mask of proposable items (filled by the features)."""
        return {}

    @classmethod
    def build(cls, histories: Histories) -> BehaviourStats:
        n = histories.n_items
        items = histories.items
        count, recent = _counts(histories)
        share_all = count / max(count.sum(), 1.0)
        share_recent = recent / max(recent.sum(), 1.0)
        eps = 1.0 / max(count.sum(), 1.0)
        trend = np.log((share_recent + eps) / (share_all + eps)).astype(np.float32)
        pop_pct, recent_pct = _percentile(count), _percentile(recent)
        weights = event_weights(histories)
        if weights is None:
            popular = recent_pct + pop_pct
        else:
            weighted, weighted_recent = _counts(histories, weights=weights)
            popular = _percentile(weighted_recent) + _percentile(weighted)

        first_seen = _first_seen(histories)
        # int32 customer rows: half the memory of user_of_event's int64 for the pair counts
        user = np.repeat(np.arange(histories.n_users, dtype=np.int32), histories.lengths)
        cooc = _pair_matrix(items, user, n, window=COOC_WINDOW, symmetric=True)
        _cosine_normalise(cooc, count)
        transitions = _pair_matrix(items, user, n, window=1, symmetric=False)
        return cls(
            count=count,
            pop_pct=pop_pct,
            recent_pct=recent_pct,
            trend=trend,
            first_seen_pct=first_seen,
            cooc=strongest_per_row(sp.csr_matrix(cooc, dtype=np.float32), ITEM_PARTNERS),
            trans_fwd=strongest_per_row(_row_normalise(transitions), ITEM_PARTNERS),
            trans_bwd=strongest_per_row(
                _row_normalise(sp.csr_matrix(transitions.T)), ITEM_PARTNERS
            ),
            popular=popular,
        )


def popularity_without(histories: Histories, groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each group of customer rows: what popular lists sort by (percentile of overall plus of
    recent popularity per item) as if those customers had never come. Their events are taken out
    of counts made once over all events; the recent window stays that of all events.
    """
    recent_mask = _recent_mask(histories.times)
    weights = event_weights(histories)
    count, recent = _counts(histories, recent_mask, weights=weights)
    out = []
    n = histories.n_items
    for rows in groups:
        events = histories.event_positions(np.asarray(rows, dtype=np.int64))
        gone = histories.items[events].astype(np.int64)
        in_recent = recent_mask[events]
        gone_weights = None if weights is None else weights[events]
        gone_recent_weights = None if gone_weights is None else gone_weights[in_recent]
        out.append(
            _percentile(recent - np.bincount(gone[in_recent], gone_recent_weights, minlength=n))
            + _percentile(count - np.bincount(gone, gone_weights, minlength=n))
        )
    return out


def event_weights(histories: Histories) -> np.ndarray | None:
    """How much each event counts: ``log2(1 + weight)`` (1 for weight 1); None when all are 1.

    Examples
    --------
    >>> import numpy as np
    >>> h = Histories(np.array([0, 3]), np.array([0, 1, 2], dtype=np.int32),
    ...               np.arange(3), 3, np.array([1.0, 3.0, 0.0], dtype=np.float32))
    >>> event_weights(h).tolist()
    [1.0, 2.0, 0.0]
    """
    if histories.weights is None:
        return None
    return np.log2(1.0 + histories.weights.astype(np.float64))


def _counts(
    histories: Histories,
    recent_mask: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Events per item (weighted when ``weights`` is given), overall and among the newest
    ``RECENT_SHARE`` of events."""
    items = histories.items.astype(np.int64)
    n = histories.n_items
    count = np.bincount(items, weights, minlength=n).astype(np.float32)
    if recent_mask is None:
        recent_mask = _recent_mask(histories.times)
    recent_weights = None if weights is None else weights[recent_mask]
    recent = np.bincount(items[recent_mask], recent_weights, minlength=n).astype(np.float32)
    return count, recent


def _recent_mask(times: np.ndarray) -> np.ndarray:
    if len(times) == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.quantile(times, 1.0 - RECENT_SHARE)
    return np.asarray(times >= threshold)


def _first_seen(histories: Histories) -> np.ndarray:
    """Each item's first event as a quantile of global time in [0, 1] (NaN if never seen).

    The quantile of a time is its rank among the distinct event times over their number less
    one. Only each item's earliest time is ranked: no per-event ranks, inverse or sort order of
    the whole event table are built.
    """
    n = histories.n_items
    first_seen = np.full(n, np.nan, dtype=np.float32)
    if len(histories.items) == 0:
        return first_seen
    earliest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, histories.items, histories.times)
    seen = np.bincount(histories.items, minlength=n) > 0
    # distinct times by sorting (numpy's hash-based unique is far slower on tens of millions)
    times = np.sort(histories.times)
    distinct = times[np.concatenate([[True], times[1:] != times[:-1]])]
    del times
    rank = np.searchsorted(distinct, earliest[seen])
    first_seen[seen] = (rank / max(len(distinct) - 1, 1)).astype(np.float32)
    return first_seen


def _percentile(values: np.ndarray) -> np.ndarray:
    """Fraction of the catalogue with a strictly smaller value; items with 0 get 0."""
    order = np.sort(values)
    pct = np.searchsorted(order, values, side="left") / max(len(values), 1)
    pct[values <= 0] = 0.0
    return pct.astype(np.float32)


def _pair_matrix(
    items: np.ndarray, user: np.ndarray, n: int, *, window: int, symmetric: bool
) -> sp.csr_matrix:
    """Counts of item pairs at most ``window`` places apart within a customer's sequence.

    Events are taken a slice of whole customers at a time (``user`` is grouped), so the pair
    lists in memory are those of one slice, not of the whole shop.
    """
    total = sp.csr_matrix((n, n), dtype=np.float32)
    start = 0
    while start < len(items):
        stop = min(start + PAIR_EVENTS_PER_SLICE, len(items))
        if stop < len(items):  # cut before the customer the slice would split
            cut = int(np.searchsorted(user, user[stop], side="left"))
            stop = cut if cut > start else int(np.searchsorted(user, user[stop], side="right"))
        total = total + _slice_pairs(items[start:stop], user[start:stop], n, window, symmetric)
        start = stop
    return sp.csr_matrix(total, dtype=np.float32)


def _slice_pairs(
    items: np.ndarray, user: np.ndarray, n: int, window: int, symmetric: bool
) -> sp.csr_matrix:
    items = items.astype(np.int32)
    rows, cols = [], []
    for distance in range(1, window + 1):
        same_user = user[distance:] == user[:-distance]
        a, b = items[:-distance][same_user], items[distance:][same_user]
        distinct = a != b
        rows.append(a[distinct])
        cols.append(b[distinct])
    row = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    if symmetric:
        row, col = np.concatenate([row, col]), np.concatenate([col, row])
    data = np.ones(len(row), dtype=np.float32)
    return sp.csr_matrix((data, (row, col)), shape=(n, n), dtype=np.float32)


def _cosine_normalise(pairs: sp.csr_matrix, count: np.ndarray) -> None:
    """Divide each pair count by the square roots of both items' counts, in place.

    The products of ``diag(1/d) @ pairs @ diag(1/d)``, multiplied in the same order (row factor
    first, both float32), without the two intermediate matrices of a product.
    """
    inverse = 1.0 / np.sqrt(np.maximum(count, 1.0))
    row = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))
    pairs.data *= inverse[row]
    del row
    pairs.data *= inverse[pairs.indices]


def _row_normalise(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


def strongest_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """``matrix`` with each row's ``keep`` largest values only (ties to the lower column)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()  # canonical: sorted, unique columns per row
    lengths = np.diff(matrix.indptr)
    if len(lengths) == 0 or lengths.max() <= keep:
        return matrix
    kept = np.ones(matrix.nnz, dtype=bool)
    long_rows = np.flatnonzero(lengths > keep)  # shorter rows keep every entry unsorted
    # Whole rows, about TRIM_ENTRIES_PER_BLOCK entries at a time: the sort keys and orders of a
    # block, not of the whole matrix, are in memory.
    before = np.cumsum(lengths[long_rows]) - lengths[long_rows]  # entries of earlier long rows
    start = 0
    while start < len(long_rows):
        limit = before[start] + TRIM_ENTRIES_PER_BLOCK
        stop = max(int(np.searchsorted(before, limit, side="left")), start + 1)
        _drop_weakest(matrix, long_rows[start:stop], keep, kept)
        start = stop
    indptr = np.concatenate([[0], np.cumsum(np.minimum(lengths, keep))])
    # Masking keeps each row's columns sorted: the result is canonical as it stands.
    return sp.csr_matrix(
        (matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape, dtype=matrix.dtype
    )


def _drop_weakest(matrix: sp.csr_matrix, rows: np.ndarray, keep: int, kept: np.ndarray) -> None:
    """Clear ``kept`` for every entry of ``rows`` past the row's ``keep`` largest (ties to the
    lower column)."""
    lengths = np.diff(matrix.indptr)[rows]
    first = np.cumsum(lengths) - lengths  # each row's first place among the block's entries
    entries = np.repeat(matrix.indptr[rows] - first, lengths) + np.arange(int(lengths.sum()))
    row = np.repeat(np.arange(len(rows)), lengths)
    data = matrix.data[entries]
    order = _by_row_value_down(row, data)
    if order is None:
        order = np.lexsort((matrix.indices[entries], -data, row))  # by row, value down, column up
    beyond = np.arange(len(order)) - np.repeat(first, lengths) >= keep
    kept[entries[order[beyond]]] = False


def _by_row_value_down(row: np.ndarray, data: np.ndarray) -> np.ndarray | None:
    """The order of ``lexsort((columns, -data, row))`` for canonical CSR entries with values >= 0,
    from one stable sort of one integer key; None for other values (NaN, negative, not float32).

    Within a row, entries are in column order, so a stable sort on (row, value down) keeps ties by
    column. Non-negative float32 values order as their bit patterns do; ``+ 0.0`` turns -0.0 into
    0.0, which lexsort counts as equal.
    """
    if data.dtype != np.float32 or not bool(np.all(data >= 0)):
        return None  # NaN fails data >= 0 too
    bits = (data + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    key = (row.astype(np.uint64) << np.uint64(32)) | (np.uint64(0xFFFFFFFF) - bits)
    return np.argsort(key, kind="stable")
