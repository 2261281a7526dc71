"""Candidates and retailer-agnostic features for (customer, candidate item) pairs.

For a chunk of customers the module scores the whole catalogue with a few cheap signals held as
dense ``chunk x items`` blocks (text similarity to the last / recent / all history items and to the
customer's own words, co-occurrence, transitions), takes the union of each signal's top items as
candidates, and gathers one feature row per candidate. Every feature is scale-free (cosines,
z-scores within the customer's row, percentiles, probabilities, ranks), so a ranker learnt at one
shop reads the same features at any other. Memory is bounded by the chunk size: the blocks of one
chunk are all that is ever materialised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rectransfer.catalogue import Catalogue
from rectransfer.histories import Histories
from rectransfer.stats import BehaviourStats

FEATURE_NAMES: tuple[str, ...] = (
    "sim_last",
    "sim_last_z",
    "sim_last_rank",
    "sim_recent_max",
    "sim_recent_max_z",
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
BLOCK_BUDGET_BYTES = 384 * 1024**2  # dense score blocks of one chunk stay below this
_DENSE_BLOCKS = 12


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
    text_vectors: np.ndarray  # float32 (n, d); zero rows where the customer has no text
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
    """Customers per chunk so that the dense blocks of a chunk fit ``BLOCK_BUDGET_BYTES``."""
    per_customer = max(n_items, 1) * 4 * _DENSE_BLOCKS
    return int(np.clip(BLOCK_BUDGET_BYTES // per_customer, 8, 4096))


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
    step = chunk_size(catalogue.n_items)
    for start in range(0, len(selected), step):
        yield _chunk_rows(
            catalogue, stats, queries, selected[start : start + step], config, allowed
        )


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


def _row_z(block: np.ndarray) -> np.ndarray:
    mean = block.mean(axis=1, keepdims=True)
    std = block.std(axis=1, keepdims=True)
    return np.divide(block - mean, std, out=np.zeros_like(block), where=std > 1e-9)


def _top_mask(scores: np.ndarray, n: int, *, positive_only: bool) -> np.ndarray:
    """Boolean mask of each row's ``n`` highest finite scores (only > 0 if ``positive_only``)."""
    mask = np.zeros(scores.shape, dtype=bool)
    if n <= 0 or scores.shape[1] == 0:
        return mask
    n = min(n, scores.shape[1])
    top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    picked = np.take_along_axis(scores, top, axis=1)
    ok = np.isfinite(picked) & ((picked > 0) if positive_only else True)
    rows = np.repeat(np.arange(scores.shape[0]), n).reshape(scores.shape[0], n)
    mask[rows[ok], top[ok]] = True
    return mask


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


def _chunk_rows(
    catalogue: Catalogue,
    stats: BehaviourStats,
    queries: Queries,
    rows: np.ndarray,
    config: CandidateConfig,
    allowed: np.ndarray | None,
) -> CandidateRows:
    context = queries.context
    vectors = catalogue.vectors
    n_items = catalogue.n_items
    b = len(rows)
    lengths = context.lengths[rows]
    has_history = lengths > 0

    # --- dense signal blocks (b x n_items) ---
    last_items = context.last(0, rows=rows)
    s_last = vectors[np.maximum(last_items, 0)] @ vectors.T
    s_last[~has_history] = np.nan
    s_recent_max = s_last.copy()
    for offset in range(1, RECENT_ITEMS):
        previous = context.last(offset, rows=rows)
        has = previous >= 0
        if has.any():
            sims = vectors[previous[has]] @ vectors.T
            s_recent_max[has] = np.fmax(s_recent_max[has], sims)
    recent_mean = _normalised(
        np.asarray(_history_matrix(context, rows, last=RECENT_ITEMS) @ vectors)
    )
    s_recent_mean = recent_mean @ vectors.T
    hist_mean = _normalised(np.asarray(_history_matrix(context, rows, last=10**9) @ vectors))
    s_hist_mean = hist_mean @ vectors.T
    s_recent_mean[~has_history] = np.nan
    s_hist_mean[~has_history] = np.nan

    text = queries.text_vectors[rows]
    has_text = np.linalg.norm(text, axis=1) > 0
    s_text = text @ vectors.T
    s_text[~has_text] = np.nan

    cooc_history = _history_matrix(
        context, rows, last=COOC_HISTORY, weights=COOC_DECAY ** np.arange(COOC_HISTORY)
    )
    s_cooc = (cooc_history @ stats.cooc).toarray()
    support_history = cooc_history.copy()
    support_history.data[:] = 1.0
    s_support = (support_history @ stats.cooc_support).toarray()
    trans_history = _history_matrix(
        context, rows, last=len(TRANSITION_WEIGHTS), weights=np.asarray(TRANSITION_WEIGHTS)
    )
    s_fwd = (trans_history @ stats.trans_fwd).toarray()
    s_bwd = (trans_history @ stats.trans_bwd).toarray()

    # --- what may be proposed ---
    blocked = np.zeros((b, n_items), dtype=bool)
    if allowed is not None:
        blocked[:, ~allowed] = True
    excluded = queries.excluded if queries.excluded is not None else context
    ex = excluded.select(rows)
    blocked[ex.user_of_event(), ex.items] = True

    def open_scores(block: np.ndarray) -> np.ndarray:
        return np.where(blocked, -np.inf, np.nan_to_num(block, nan=-np.inf))

    popular = np.broadcast_to(stats.recent_pct + stats.pop_pct + 1e-6, (b, n_items))
    mask = _top_mask(open_scores(s_last), config.text_last, positive_only=False)
    mask |= _top_mask(open_scores(s_recent_max), config.text_recent, positive_only=False)
    mask |= _top_mask(open_scores(s_text), config.text_user, positive_only=False)
    mask |= _top_mask(open_scores(s_cooc), config.cooc, positive_only=True)
    mask |= _top_mask(open_scores(s_fwd + s_bwd), config.transitions, positive_only=True)
    mask |= _top_mask(open_scores(popular), config.popular, positive_only=True)
    mask &= ~blocked

    cand_row, cand = np.nonzero(mask)
    n_rows = len(cand)
    x = np.full((n_rows, len(FEATURE_NAMES)), np.nan, dtype=np.float32)

    def put(name: str, block: np.ndarray) -> None:
        x[:, _F[name]] = block[cand_row, cand]

    put("sim_last", s_last)
    put("sim_last_z", _row_z(np.nan_to_num(s_last)))
    put("sim_recent_max", s_recent_max)
    put("sim_recent_max_z", _row_z(np.nan_to_num(s_recent_max)))
    put("sim_recent_mean", s_recent_mean)
    put("sim_hist_mean", s_hist_mean)
    put("sim_hist_mean_z", _row_z(np.nan_to_num(s_hist_mean)))
    put("sim_user_text", s_text)
    put("sim_user_text_z", _row_z(np.nan_to_num(s_text)))
    for name in ("sim_last_z", "sim_recent_max_z", "sim_hist_mean_z"):
        x[~has_history[cand_row], _F[name]] = np.nan
    x[~has_text[cand_row], _F["sim_user_text_z"]] = np.nan
    put("cooc", s_cooc)
    put("cooc_support", s_support)
    put("trans_fwd", s_fwd)
    put("trans_bwd", s_bwd)
    cooc_max = np.where(blocked, 0.0, s_cooc).max(axis=1)
    fwd_max = np.where(blocked, 0.0, s_fwd).max(axis=1)
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
