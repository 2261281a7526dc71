"""Candidates and retailer-agnostic features for (customer, candidate item) pairs.

A customer's candidates are the union of each signal's best items the customer may be offered:
text neighbours of the last item and of the recent items (read from per-item neighbour lists
computed once per catalogue, :class:`TextNeighbours`), the items closest to the customer's own
words, co-occurrence with the history, transitions from the last items, and popular items. Then one
feature row is gathered per candidate. Only customers with their own text are scored against the
whole catalogue (one dense ``chunk x items`` block); every other signal is sparse or computed per
candidate, and z-scores against the whole catalogue come from its mean and second moment
(:class:`_RowMoments`), so the cost per customer grows with its candidates, not the catalogue.

Every feature is scale-free (cosines, z-scores within the customer's row, percentiles,
probabilities, ranks), so a ranker learnt at one shop reads the same features at any other. Memory
is bounded by the chunk size.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rectransfer.catalogue import Catalogue
from rectransfer.histories import Histories
from rectransfer.stats import BehaviourStats
from rectransfer.topk import top_k_rows
from rectransfer.user_vectors import UserVectors

FEATURE_NAMES: tuple[str, ...] = (
    "sim_last",
    "sim_last_z",
    "sim_last_rank",
    "sim_recent_max",
    "sim_recent_zmax",
    "sim_recent_mean",
    "sim_hist_mean",
    "sim_hist_mean_z",
    "sim_user_text",
    "sim_user_text_z",
    "cooc",
    "cooc_rel",
    "cooc_rank",
    "cooc_support",
    "trans_fwd",
    "trans_fwd_rel",
    "trans_bwd",
    "pop_pct",
    "recent_pct",
    "trend",
    "log_count",
    "first_seen_pct",
    "hist_len_log",
    "cat_share",
    "same_cat_last",
    "brand_share",
    "same_brand_last",
    "price_ratio_log",
)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}

RECENT_ITEMS = 5  # "recent history" = the last five items
COOC_HISTORY = 20  # co-occurrence looks at the last twenty items, newer ones weighing more
COOC_DECAY = 0.85
TRANSITION_WEIGHTS = (1.0, 0.5, 0.25)  # transitions from the last three items
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


@dataclass(frozen=True)
class Queries:
    """The customers to find candidates for: their known history and optional text vector."""

    context: Histories  # what is known of each customer (the features' input)
    # float32 (n, d) or stored per customer with text; zero rows where there is no text
    text_vectors: np.ndarray | UserVectors
    excluded: Histories | None = None  # per-customer items never to propose (default: context)
    targets: np.ndarray | None = None  # int (n,) item to label 1, -1 for none (training, eval)

    @property
    def n(self) -> int:
        return self.context.n_users


@dataclass
class CandidateRows:
    """One row per (customer, candidate item); customers' rows are contiguous and in order."""

    query: np.ndarray  # int64 (rows,), index into Queries
    item: np.ndarray  # int32 (rows,), catalogue position
    features: np.ndarray  # float32 (rows, len(FEATURE_NAMES))
    label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    @property
    def n_rows(self) -> int:
        return len(self.query)

    @classmethod
    def concat(cls, parts: list[CandidateRows]) -> CandidateRows:
        if not parts:
            return cls(
                np.zeros(0, np.int64),
                np.zeros(0, np.int32),
                np.zeros((0, len(FEATURE_NAMES)), np.float32),
                np.zeros(0, np.int8),
            )
        return cls(
            np.concatenate([p.query for p in parts]),
            np.concatenate([p.item for p in parts]),
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.label for p in parts]),
        )


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
class _RowMoments:
    """Mean and second moment of the catalogue's vectors: any query's similarity row statistics.

    For a query vector ``q`` the similarities ``V @ q`` to all items have mean ``q . mean`` and
    variance ``q' M q - (q . mean)^2`` with ``M = V'V / n``: z-scores over the whole catalogue
    without scoring it.
    """

    mean: np.ndarray  # float64 (d,)
    second: np.ndarray  # float64 (d, d)

    @classmethod
    def of(cls, vectors: np.ndarray) -> _RowMoments:
        v = vectors.astype(np.float64)
        n = max(len(v), 1)
        return cls(v.sum(axis=0) / n, (v.T @ v) / n)

    def spread(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each query's similarities to the whole catalogue."""
        q = queries.astype(np.float64)
        mean = q @ self.mean
        var = ((q @ self.second) * q).sum(axis=1) - mean**2
        return mean, np.sqrt(np.maximum(var, 0.0))

    def z(self, queries: np.ndarray, cand_row: np.ndarray, sims: np.ndarray) -> np.ndarray:
        """z-scores of candidate ``sims`` against their customer's query (rows of ``queries``)."""
        mean, std = self.spread(queries)
        ok = std > 1e-9
        z = (sims - mean[cand_row]) / np.where(ok, std, 1.0)[cand_row]
        return np.where(ok[cand_row], z, 0.0).astype(np.float32)


class _CatalogueCache:
    """What candidate generation derives from a catalogue once, reused by every chunk and call."""

    def __init__(self) -> None:
        self.moments: _RowMoments | None = None
        self.neighbours: dict[tuple[bytes, int], TextNeighbours] = {}
        # Threads serving this catalogue (chunks of an export, a backend's requests) build each
        # entry once; other catalogues do not wait for it.
        self.lock = threading.Lock()


_CACHES: dict[int, _CatalogueCache] = {}
_CACHES_LOCK = threading.Lock()  # held only to find or add a catalogue's entry


def _catalogue_cache(catalogue: Catalogue) -> _CatalogueCache:
    # Keyed by the vectors array (never modified once a catalogue is built); the entry goes with it.
    key = id(catalogue.vectors)
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = _CatalogueCache()
            weakref.finalize(catalogue.vectors, _CACHES.pop, key, None)
        return cache


def text_neighbours(
    catalogue: Catalogue, allowed: np.ndarray | None, config: CandidateConfig
) -> TextNeighbours:
    """The catalogue's :class:`TextNeighbours` for this candidate config (cached)."""
    width = max(config.text_last, config.text_recent) + NEIGHBOUR_MARGIN
    key = (b"" if allowed is None else np.packbits(allowed).tobytes(), width)
    cache = _catalogue_cache(catalogue)
    with cache.lock:
        if key not in cache.neighbours:
            cache.neighbours[key] = TextNeighbours.build(catalogue.vectors, allowed, width)
        return cache.neighbours[key]


def _row_moments(catalogue: Catalogue) -> _RowMoments:
    cache = _catalogue_cache(catalogue)
    with cache.lock:
        if cache.moments is None:
            cache.moments = _RowMoments.of(catalogue.vectors)
        return cache.moments


def iter_candidate_rows(
    catalogue: Catalogue,
    stats: BehaviourStats,
    queries: Queries,
    *,
    config: CandidateConfig,
    allowed: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> Iterator[CandidateRows]:
    """Candidate rows for the queries (or the subset ``rows``), one chunk of customers at a time.

    ``allowed`` is a catalogue-wide mask of items that may be proposed at all (stock, allow and
    deny lists); each customer's ``excluded`` items (by default their whole context) are never
    proposed.
    """
    selected = np.arange(queries.n) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(selected) == 0:
        return
    step = chunk_size(catalogue.n_items)
    shared = _Shared(
        neighbours=text_neighbours(catalogue, allowed, config),
        moments=_row_moments(catalogue),
        allowed=np.ones(catalogue.n_items, dtype=bool) if allowed is None else allowed,
        popular_order=_popular_order(stats, allowed),
    )
    for start in range(0, len(selected), step):
        yield _chunk_rows(catalogue, stats, queries, selected[start : start + step], config, shared)


def candidate_rows(
    catalogue: Catalogue,
    stats: BehaviourStats,
    queries: Queries,
    *,
    config: CandidateConfig,
    allowed: np.ndarray | None = None,
) -> CandidateRows:
    """All candidate rows of all queries (see :func:`iter_candidate_rows`)."""
    return CandidateRows.concat(
        list(iter_candidate_rows(catalogue, stats, queries, config=config, allowed=allowed))
    )


@dataclass(frozen=True)
class _Shared:
    """Per-call inputs that every chunk reads."""

    neighbours: TextNeighbours
    moments: _RowMoments
    allowed: np.ndarray  # bool (n_items,)
    popular_order: np.ndarray  # proposable items, most popular first


def _popular_order(stats: BehaviourStats, allowed: np.ndarray | None) -> np.ndarray:
    key = b"" if allowed is None else np.packbits(allowed).tobytes()
    order = stats.popular_orders.get(key)
    if order is None:
        score = stats.recent_pct + stats.pop_pct
        pool = np.arange(len(score)) if allowed is None else np.flatnonzero(allowed)
        order = stats.popular_orders[key] = pool[np.lexsort((pool, -score[pool]))]
    return order


def _history_matrix(
    context: Histories, rows: np.ndarray, *, last: int, weights: np.ndarray | None = None
) -> sp.csr_matrix:
    """Sparse ``len(rows) x n_items`` matrix of each customer's last ``last`` items.

    The newest item gets ``weights[0]``, the one before ``weights[1]``, ...; without weights every
    item gets 1 / (number of items taken), i.e. the rows average the items.
    """
    lengths = context.lengths[rows]
    take = np.minimum(lengths, last)
    ends = context.indptr[1:][rows]
    row_index = np.repeat(np.arange(len(rows)), take)
    from_end = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
    event = np.repeat(ends, take) - 1 - from_end
    items = context.items[event]
    # without weights: the average of the items taken; with weights: newest first
    values = 1.0 / np.repeat(np.maximum(take, 1), take) if weights is None else weights[from_end]
    matrix = sp.csr_matrix(
        (values.astype(np.float32), (row_index, items)), shape=(len(rows), context.n_items)
    )
    matrix.sum_duplicates()
    return matrix


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class _Pairs:
    """(chunk row, item) pairs with a value, as sorted keys ``row * n_items + item``."""

    def __init__(self, row: np.ndarray, item: np.ndarray, value: np.ndarray, n_items: int):
        key = row.astype(np.int64) * n_items + item
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.value = value[order]
        self.n_items = n_items

    @classmethod
    def of_sparse(cls, matrix: sp.csr_matrix, n_items: int) -> _Pairs:
        coo = matrix.tocoo()
        return cls(coo.row, coo.col, coo.data, n_items)

    def lookup(self, key: np.ndarray, default: float = 0.0) -> np.ndarray:
        at = np.searchsorted(self.key, key)
        hit = at < len(self.key)
        hit[hit] = self.key[at[hit]] == key[hit]
        out = np.full(len(key), default, dtype=np.float32)
        out[hit] = self.value[at[hit]]
        return out


def _proposable(
    key: np.ndarray, item: np.ndarray, blocked: np.ndarray, allowed: np.ndarray
) -> np.ndarray:
    """Mask of pairs that may be proposed: an allowed item the customer is not excluded from.

    ``blocked`` holds the sorted keys of the excluded pairs.
    """
    at = np.minimum(np.searchsorted(blocked, key), max(len(blocked) - 1, 0))
    is_blocked = blocked[at] == key if len(blocked) else np.zeros(len(key), dtype=bool)
    return allowed[item] & ~is_blocked


def _top_per_row(
    row: np.ndarray, item: np.ndarray, value: np.ndarray, n: int, n_items: int
) -> np.ndarray:
    """Keys of each row's ``n`` highest values (ties to the lower catalogue position)."""
    if n <= 0 or len(row) == 0:
        return np.zeros(0, dtype=np.int64)
    key = row.astype(np.int64) * n_items + item
    if len(key) > 1 and (np.diff(key) < 0).any():
        by_key = np.argsort(key, kind="stable")
        row, item, value, key = row[by_key], item[by_key], value[by_key], key[by_key]
    # One stable sort by (row, value descending) on a float64 key: rows take the integer part,
    # the value (scaled to [0, 1)) the fraction; ties keep the catalogue order set above. Much
    # faster than a three-key lexsort on the millions of pairs of a chunk.
    low, high = float(value.min()), float(value.max())
    scaled = (value.astype(np.float64) - low) / (high - low) if high > low else 0.0
    order = np.argsort(row * 2.0 + (1.0 - scaled) * 0.999, kind="stable")
    row, key = row[order], key[order]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    return key[rank < n]


def _chunk_rows(
    catalogue: Catalogue,
    stats: BehaviourStats,
    queries: Queries,
    rows: np.ndarray,
    config: CandidateConfig,
    shared: _Shared,
) -> CandidateRows:
    context = queries.context
    vectors = catalogue.vectors
    n_items = catalogue.n_items
    b = len(rows)
    lengths = context.lengths[rows]
    has_history = lengths > 0
    recent = np.stack([context.last(i, rows=rows) for i in range(RECENT_ITEMS)], axis=1)
    last_items = recent[:, 0]
    excluded = queries.excluded if queries.excluded is not None else context
    ex = excluded.select(rows)
    blocked = np.unique(ex.user_of_event() * n_items + ex.items)
    allowed = shared.allowed

    def proposable_top(
        row: np.ndarray, item: np.ndarray, value: np.ndarray, n: int, *, positive_only: bool
    ) -> np.ndarray:
        key = row.astype(np.int64) * n_items + item
        ok = _proposable(key, item, blocked, allowed) & np.isfinite(value)
        if positive_only:
            ok &= value > 0
        return _top_per_row(row[ok], item[ok], value[ok], n, n_items)

    # --- candidate lists: the union of each signal's best proposable items ---
    lists = [
        _neighbour_top(last_items, shared.neighbours, config.text_last, proposable_top),
        _neighbour_top(recent, shared.neighbours, config.text_recent, proposable_top),
    ]
    text = queries.text_vectors[rows]
    has_text = np.linalg.norm(text, axis=1) > 0
    lists.append(_text_top(text, has_text, vectors, ex, allowed, config.text_user, n_items))

    cooc_history = _history_matrix(
        context, rows, last=COOC_HISTORY, weights=COOC_DECAY ** np.arange(COOC_HISTORY)
    )
    cooc = _Pairs.of_sparse(cooc_history @ stats.cooc, n_items)
    support_history = cooc_history.copy()
    support_history.data[:] = 1.0
    support = _Pairs.of_sparse(support_history @ stats.cooc_support, n_items)
    trans_history = _history_matrix(
        context, rows, last=len(TRANSITION_WEIGHTS), weights=np.asarray(TRANSITION_WEIGHTS)
    )
    fwd_scores = trans_history @ stats.trans_fwd
    bwd_scores = trans_history @ stats.trans_bwd
    fwd = _Pairs.of_sparse(fwd_scores, n_items)
    bwd = _Pairs.of_sparse(bwd_scores, n_items)
    both = _Pairs.of_sparse(fwd_scores + bwd_scores, n_items)  # either direction
    for pairs, n in ((cooc, config.cooc), (both, config.transitions)):
        lists.append(
            proposable_top(
                pairs.key // n_items, pairs.key % n_items, pairs.value, n, positive_only=True
            )
        )
    lists.append(_popular_top(shared.popular_order, ex, config.popular, n_items))

    keys = np.unique(np.concatenate(lists))
    cand_row = keys // n_items
    cand = (keys % n_items).astype(np.int64)
    n_rows = len(cand)
    x = np.full((n_rows, len(FEATURE_NAMES)), np.nan, dtype=np.float32)

    # --- text similarities of every candidate, from per-customer query vectors ---
    recent_mean = _normalised(
        np.asarray(_history_matrix(context, rows, last=RECENT_ITEMS) @ vectors)
    )
    hist_mean = _normalised(np.asarray(_history_matrix(context, rows, last=10**9) @ vectors))
    recent_vectors = np.where((recent >= 0)[..., None], vectors[np.maximum(recent, 0)], 0.0)
    query_vectors = np.concatenate(
        [recent_vectors, recent_mean[:, None], hist_mean[:, None], text[:, None]], axis=1
    ).astype(np.float32)  # (b, RECENT_ITEMS + 3, d)
    sims = _candidate_sims(query_vectors, vectors, cand_row, cand)  # (rows, RECENT_ITEMS + 3)
    moments = shared.moments
    recent_sims = np.where((recent >= 0)[cand_row], sims[:, :RECENT_ITEMS], -np.inf)
    x[:, _F["sim_last"]] = sims[:, 0]
    x[:, _F["sim_recent_max"]] = recent_sims.max(axis=1)
    x[:, _F["sim_recent_mean"]] = sims[:, RECENT_ITEMS]
    x[:, _F["sim_hist_mean"]] = sims[:, RECENT_ITEMS + 1]
    x[:, _F["sim_user_text"]] = sims[:, RECENT_ITEMS + 2]
    recent_z = _recent_z(moments, recent_vectors, recent, cand_row, sims[:, :RECENT_ITEMS])
    x[:, _F["sim_recent_zmax"]] = recent_z.max(axis=1)
    for name, slot in (
        ("sim_last_z", 0),
        ("sim_hist_mean_z", RECENT_ITEMS + 1),
        ("sim_user_text_z", RECENT_ITEMS + 2),
    ):
        x[:, _F[name]] = moments.z(query_vectors[:, slot], cand_row, sims[:, slot])
    no_history = ~has_history[cand_row]
    for name in (
        "sim_last",
        "sim_last_z",
        "sim_recent_max",
        "sim_recent_zmax",
        "sim_recent_mean",
        "sim_hist_mean",
        "sim_hist_mean_z",
    ):
        x[no_history, _F[name]] = np.nan
    no_text = ~has_text[cand_row]
    x[no_text, _F["sim_user_text"]] = np.nan
    x[no_text, _F["sim_user_text_z"]] = np.nan

    # --- behaviour ---
    x[:, _F["cooc"]] = cooc.lookup(keys)
    x[:, _F["cooc_support"]] = support.lookup(keys)
    x[:, _F["trans_fwd"]] = fwd.lookup(keys)
    x[:, _F["trans_bwd"]] = bwd.lookup(keys)
    cooc_max = _proposable_row_max(cooc, blocked, allowed, b)
    fwd_max = _proposable_row_max(fwd, blocked, allowed, b)
    x[:, _F["cooc_rel"]] = np.divide(
        x[:, _F["cooc"]],
        cooc_max[cand_row],
        out=np.zeros(n_rows, np.float32),
        where=cooc_max[cand_row] > 0,
    )
    x[:, _F["trans_fwd_rel"]] = np.divide(
        x[:, _F["trans_fwd"]],
        fwd_max[cand_row],
        out=np.zeros(n_rows, np.float32),
        where=fwd_max[cand_row] > 0,
    )
    query = rows[cand_row]
    x[:, _F["sim_last_rank"]] = _rank_within(query, np.nan_to_num(x[:, _F["sim_last"]], nan=-9))
    x[:, _F["cooc_rank"]] = _rank_within(query, x[:, _F["cooc"]])

    x[:, _F["pop_pct"]] = stats.pop_pct[cand]
    x[:, _F["recent_pct"]] = stats.recent_pct[cand]
    x[:, _F["trend"]] = stats.trend[cand]
    x[:, _F["log_count"]] = np.log1p(stats.count[cand])
    x[:, _F["first_seen_pct"]] = stats.first_seen_pct[cand]
    x[:, _F["hist_len_log"]] = np.log1p(lengths[cand_row])

    x[:, _F["cat_share"]] = _share_of_history(catalogue.category, context, rows, cand_row, cand)
    x[:, _F["brand_share"]] = _share_of_history(catalogue.brand, context, rows, cand_row, cand)
    for name, codes in (
        ("same_cat_last", catalogue.category),
        ("same_brand_last", catalogue.brand),
    ):
        last_code = np.where(last_items >= 0, codes[np.maximum(last_items, 0)], -1)[cand_row]
        known = (last_code >= 0) & (codes[cand] >= 0)
        x[known, _F[name]] = (last_code[known] == codes[cand][known]).astype(np.float32)

    x[:, _F["price_ratio_log"]] = _price_ratio(catalogue.log_price, context, rows, cand_row, cand)

    label = np.zeros(n_rows, dtype=np.int8)
    if queries.targets is not None:
        label = (cand == queries.targets[query]).astype(np.int8)
    return CandidateRows(query=query, item=cand.astype(np.int32), features=x, label=label)


def _neighbour_top(
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


def _text_top(
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
    return _top_per_row(row, top_items, picked[ok], n, n_items)


def _popular_top(order: np.ndarray, excluded: Histories, n: int, n_items: int) -> np.ndarray:
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
    return _top_per_row(row[ok], item[ok], -rank.astype(np.float32), n, n_items)


_SIMS_BLOCK_BYTES = 8 * 1024**2  # gathered candidate vectors per product: cache-sized


def _candidate_sims(
    queries: np.ndarray, vectors: np.ndarray, cand_row: np.ndarray, cand: np.ndarray
) -> np.ndarray:
    """Dot products of every candidate's vector with its customer's query vectors.

    Candidates are gathered per customer into a padded (customers, candidates, d) block, a few
    customers at a time, and multiplied with the customers' (m, d) query vectors in one batched
    product: each item vector is read once per candidate row.
    """
    n_queries = queries.shape[1]
    out = np.zeros((len(cand), n_queries), dtype=np.float32)
    if len(cand) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, cand_row[1:] != cand_row[:-1]])
    ends = np.r_[starts[1:], len(cand)]
    widest = int((ends - starts).max())
    per_customer = widest * vectors.shape[1] * 4
    step = max(1, _SIMS_BLOCK_BYTES // per_customer)
    for first in range(0, len(starts), step):
        s, e = starts[first : first + step], ends[first : first + step]
        sizes = e - s
        width = int(sizes.max())
        slot = np.arange(width)
        valid = slot[None, :] < sizes[:, None]
        index = np.where(valid, s[:, None] + slot[None, :], 0)
        block = vectors[cand[index]]  # (customers, width, d)
        # (customers, d, m), contiguous: a transposed view would miss BLAS (~50x slower)
        block_queries = np.ascontiguousarray(queries[cand_row[s]].transpose(0, 2, 1))
        products = np.matmul(block, block_queries)  # (customers, width, m)
        out[index[valid]] = products[valid]
    return out


def _recent_z(
    moments: _RowMoments,
    recent_vectors: np.ndarray,
    recent: np.ndarray,
    cand_row: np.ndarray,
    sims: np.ndarray,
) -> np.ndarray:
    """Each candidate's z-score against each recent item's catalogue-wide similarity row."""
    b, m, d = recent_vectors.shape
    mean, std = moments.spread(recent_vectors.reshape(b * m, d))
    mean, std = mean.reshape(b, m), std.reshape(b, m)
    ok = (recent >= 0) & (std > 1e-9)
    z = (sims - mean[cand_row]) / np.where(ok, std, 1.0)[cand_row]
    return np.where(ok[cand_row], z, -np.inf).astype(np.float32)


def _proposable_row_max(
    pairs: _Pairs, blocked: np.ndarray, allowed: np.ndarray, b: int
) -> np.ndarray:
    """Each row's highest value over the items it may be proposed (0 when there is none)."""
    out = np.zeros(b, dtype=np.float32)
    item = pairs.key % pairs.n_items
    ok = _proposable(pairs.key, item, blocked, allowed)
    if ok.any():
        np.maximum.at(out, pairs.key[ok] // pairs.n_items, pairs.value[ok].astype(np.float32))
    return out


def _rank_within(query: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based descending rank of ``values`` within each run of equal ``query`` (ties by order)."""
    order = np.lexsort((-values, query))
    starts = np.r_[0, np.flatnonzero(query[order][1:] != query[order][:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    ranks_sorted = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    ranks = np.empty(len(order), dtype=np.float32)
    ranks[order] = ranks_sorted
    return ranks


def _share_of_history(
    codes: np.ndarray, context: Histories, rows: np.ndarray, cand_row: np.ndarray, cand: np.ndarray
) -> np.ndarray:
    """Share of each customer's history with the candidate's code (NaN where it is unknown)."""
    n_codes = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    out = np.full(len(cand), np.nan, dtype=np.float32)
    if n_codes == 0:
        return out
    sub = context.select(rows)
    hist_codes = codes[sub.items]
    user = sub.user_of_event()
    known = hist_codes >= 0
    counts = np.zeros((len(rows), n_codes), dtype=np.float32)
    np.add.at(counts, (user[known], hist_codes[known]), 1.0)
    lengths = np.maximum(sub.lengths, 1).astype(np.float32)
    cand_code = codes[cand]
    ok = cand_code >= 0
    out[ok] = counts[cand_row[ok], cand_code[ok]] / lengths[cand_row[ok]]
    return out


def _price_ratio(
    log_price: np.ndarray,
    context: Histories,
    rows: np.ndarray,
    cand_row: np.ndarray,
    cand: np.ndarray,
) -> np.ndarray:
    """log(candidate price / geometric mean price of the customer's history); NaN where unknown."""
    if np.isnan(log_price).all():
        return np.full(len(cand), np.nan, dtype=np.float32)
    sub = context.select(rows)
    prices = log_price[sub.items]
    known = ~np.isnan(prices)
    user = sub.user_of_event()[known]
    total = np.bincount(user, weights=prices[known], minlength=len(rows))
    count = np.bincount(user, minlength=len(rows))
    mean = np.divide(total, count, out=np.full(len(rows), np.nan), where=count > 0)
    return (log_price[cand] - mean[cand_row]).astype(np.float32)
