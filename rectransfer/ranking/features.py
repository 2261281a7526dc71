"""Retailer-agnostic features for (customer, candidate item) pairs.

Candidates come from :mod:`rectransfer.ranking.candidates`; then one feature row is gathered per
candidate. Only customers with their own text are scored against the
whole catalogue (one dense ``chunk x items`` block); every other signal is sparse or computed per
candidate, and z-scores against the whole catalogue come from its mean and second moment
(:class:`RowMoments`), so the cost per customer grows with its candidates, not the catalogue.

Every feature is scale-free (cosines, z-scores within the customer's row, percentiles,
probabilities, ranks), so a ranker learnt at one shop reads the same features at any other. Memory
is bounded by the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rectransfer.data.histories import Histories
from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.prepared.user_vectors import UserVectors
from rectransfer.ranking.candidates import (
    CandidateConfig,
    RowMoments,
    TextNeighbours,
    chunk_size,
    neighbour_top,
    popular_order,
    popular_top,
    proposable,
    row_moments,
    text_neighbours,
    text_top,
    top_per_row,
)
from rectransfer.ranking.text_clusters import cluster_lift, recent_cluster_lift, text_clusters
from rectransfer.utils.topk import descending_ranks_in_runs

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
    "trans_cluster",
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
        moments=row_moments(catalogue),
        allowed=np.ones(catalogue.n_items, dtype=bool) if allowed is None else allowed,
        popular_order=popular_order(stats, allowed),
        clusters=(clusters := text_clusters(catalogue)),
        cluster_lift=cluster_lift(stats, clusters),
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
    moments: RowMoments
    allowed: np.ndarray  # bool (n_items,)
    popular_order: np.ndarray  # proposable items, most popular first
    clusters: np.ndarray  # int32 (n_items,), text cluster of every item
    cluster_lift: np.ndarray  # float32 (k, k), log lift of cluster b next to cluster a


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
        ok = proposable(key, item, blocked, allowed) & np.isfinite(value)
        if positive_only:
            ok &= value > 0
        return top_per_row(row[ok], item[ok], value[ok], n, n_items)

    # --- candidate lists: the union of each signal's best proposable items ---
    lists = [
        neighbour_top(last_items, shared.neighbours, config.text_last, proposable_top),
        neighbour_top(recent, shared.neighbours, config.text_recent, proposable_top),
    ]
    text = queries.text_vectors[rows]
    has_text = np.linalg.norm(text, axis=1) > 0
    lists.append(text_top(text, has_text, vectors, ex, allowed, config.text_user, n_items))

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
    lists.append(popular_top(shared.popular_order, ex, config.popular, n_items))

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
    # each query's similarity spread over the catalogue (the recent items' come with it)
    spread_mean, spread_std = moments.spread_with_items(query_vectors, recent)
    recent_z = _recent_z(spread_mean, spread_std, recent, cand_row, sims)
    x[:, _F["sim_recent_zmax"]] = recent_z.max(axis=1)
    for name, slot in (
        ("sim_last_z", 0),
        ("sim_hist_mean_z", RECENT_ITEMS + 1),
        ("sim_user_text_z", RECENT_ITEMS + 2),
    ):
        x[:, _F[name]] = moments.z(
            spread_mean[:, slot], spread_std[:, slot], cand_row, sims[:, slot]
        )
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
    x[:, _F["trans_cluster"]] = recent_cluster_lift(
        shared.cluster_lift,
        shared.clusters,
        recent,
        np.asarray(TRANSITION_WEIGHTS),
        cand_row,
        cand,
    )
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
    mean: np.ndarray,
    std: np.ndarray,
    recent: np.ndarray,
    cand_row: np.ndarray,
    sims: np.ndarray,
) -> np.ndarray:
    """Each candidate's z-score against each recent item's catalogue-wide similarity row
    (``mean``, ``std``: each customer's query spreads, the recent items' first, as ``sims``'
    columns); -inf where there is none."""
    m = recent.shape[1]
    mean, std, sims = mean[:, :m], std[:, :m], sims[:, :m]
    ok = (recent >= 0) & (std > 1e-9)
    z = (sims - mean[cand_row]) / np.where(ok, std, 1.0)[cand_row]
    return np.where(ok[cand_row], z, -np.inf).astype(np.float32)


def _proposable_row_max(
    pairs: _Pairs, blocked: np.ndarray, allowed: np.ndarray, b: int
) -> np.ndarray:
    """Each row's highest value over the items it may be proposed (0 when there is none)."""
    out = np.zeros(b, dtype=np.float32)
    item = pairs.key % pairs.n_items
    ok = proposable(pairs.key, item, blocked, allowed)
    if ok.any():
        np.maximum.at(out, pairs.key[ok] // pairs.n_items, pairs.value[ok].astype(np.float32))
    return out


def _rank_within(query: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based descending rank of ``values`` among the rows of their ``query`` (ties by order)."""
    if len(query) > 1 and (np.diff(query) < 0).any():  # a query's rows apart: bring them together
        by_query = np.argsort(query, kind="stable")
        ranks = np.empty(len(query), dtype=np.float32)
        ranks[by_query] = descending_ranks_in_runs(query[by_query], values[by_query])
        return ranks
    return descending_ranks_in_runs(query, values).astype(np.float32)


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
