"""Top-K recommendations with business rules and cold-start fall-backs.

Every customer gets up to ``k`` items, by the first path that applies:

* ``ranker``: customers with history: candidates from their history and text, scored by the model;
* ``text``: customers with no history but their own text: the catalogue by similarity to that text,
  by what the known customers who write like them took, and by popularity, with weights chosen on
  the retailer's own customers (:mod:`rectransfer.prepared.text_blend`; where popularity takes all
  the weight they get the popular list);
* ``popular``: everyone else (unknown or silent customers): the shop's popular items, recent first.

Rules hold on every path: items the customer already bought are left out (``exclude_bought``;
with an ``event`` column only purchase-like events count as bought), out-of-stock items are left
out, and the optional allow / deny lists restrict the catalogue. A ranker list shorter than ``k``
after the rules is topped up with popular items scored below the ranker's own. Ties are broken by
catalogue order, so output is deterministic for a fixed model and data.
"""

from __future__ import annotations

import numbers
import threading
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import polars as pl

from rectransfer.data.columns import OUTPUT_SCHEMA, SOURCE, Columns
from rectransfer.data.histories import Histories, id_array
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, DataQualityWarning
from rectransfer.prepared.prepare import PreparedRetailer
from rectransfer.ranking.compiled import COMPILE_MIN_CUSTOMERS
from rectransfer.ranking.features import Queries, iter_candidate_rows
from rectransfer.ranking.features import chunk_size as ranker_block_size
from rectransfer.serving.routing import POPULAR, RANKER, TEXT, ServingModel, route
from rectransfer.utils.memory import release_freed_memory
from rectransfer.utils.parallel import map_in_threads
from rectransfer.utils.topk import descending_ranks_in_runs

PURCHASE_EVENTS = ("purchase", "buy", "order", "transaction", "checkout")
# Text-only customers are scored this many at a time. Block boundaries matter for exact
# reproducibility: BLAS may round a product differently for another block shape, so
# rectransfer.serving.fanout cuts customer chunks on these boundaries. A block holds several block x
# catalogue float32 matrices (similarity, neighbours, the blend): 256 keeps them near 50 MB each
# at 50,000 products.
TEXT_BLOCK = 256


def recommend(
    model: ServingModel,
    data: RetailerData,
    users: list[str] | None = None,
    *,
    k: int = 20,
    exclude_bought: bool = True,
    allow_items: list[str] | None = None,
    deny_items: list[str] | None = None,
    threads: int | None = None,
) -> pl.DataFrame:
    """Top-``k`` items for each customer, as a long frame with external ids.

    Parameters
    ----------
    model
        A pretrained or adapted :class:`~rectransfer.RecModel`.
    data
        The retailer's validated data (its catalogue, interactions and customer text).
    users
        Customer ids to recommend for, in the order wanted; default: every customer in the
        interactions and in ``users.parquet``. Unknown ids get the popular list.
    k
        List length per customer.
    exclude_bought
        Leave out items the customer already bought.
    allow_items, deny_items
        Only recommend items of ``allow_items``; never recommend items of ``deny_items``. Ids not
        in the catalogue are ignored.
    threads
        Threads scoring chunks of customers at once (default: the cores available, at most
        four). The lists do not depend on it.

    Returns
    -------
    polars.DataFrame
        ``user_id, item_id, rank (1..k), score, source``: one row per recommendation, customers in
        the requested order, ranks without gaps, scores non-increasing within a customer.

    Raises
    ------
    TypeError
        ``users``, ``allow_items`` or ``deny_items`` is a bare string or holds something that is
        not an id (see :func:`id_list`).

    Examples
    --------
    >>> import rectransfer as rt
    >>> recs = rt.recommend(model, shop, ["tm-0551", "tm-7389"], k=5)
    >>> recs.height, recs["rank"].max()
    (10, 5)
    """
    _check_options(k, threads)
    # Checked before preparing (which may encode the whole catalogue), then used as checked.
    users = id_list(users, "users")
    allow_items = id_list(allow_items, "allow_items")
    deny_items = id_list(deny_items, "deny_items")
    return recommend_prepared(
        model,
        model.prepare(data),
        users,
        k=k,
        exclude_bought=exclude_bought,
        allow_items=allow_items,
        deny_items=deny_items,
        threads=threads,
    )


def id_list(values: Iterable[object] | None, argument: str) -> list[str] | None:
    """A list of external ids as strings, or None; a bare string or a non-id raises TypeError.

    A bare string is refused rather than read as a list of its characters (``"123"`` would be
    three customers, ``"1"``, ``"2"`` and ``"3"``). Integers become their decimal text, as integer
    ids in the retailer's tables do; anything else (None, floats, booleans) has no id meaning.

    Examples
    --------
    >>> id_list(["c-1", 7], "users")
    ['c-1', '7']
    """
    if values is None:
        return None
    if isinstance(values, str | bytes):
        raise TypeError(
            f"{argument} must be a list of ids, got the single {type(values).__name__} "
            f"{values!r}; pass a list, e.g. {argument}=[{values!r}]."
        )
    if isinstance(values, pl.Series):
        values = values.to_list()
    try:
        given = list(values)
    except TypeError:
        raise TypeError(
            f"{argument} must be a list of ids (strings), got {type(values).__name__} "
            f"{values!r}; pass a list, e.g. {argument}=['c-001']."
        ) from None
    out = []
    for position, value in enumerate(given):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
            out.append(str(int(value)))
        else:
            raise TypeError(
                f"{argument}[{position}] is {type(value).__name__} {value!r}, not an id; "
                f"ids are strings (or integers, read as their decimal text)."
            )
    return out


def _check_options(k: int, threads: int | None) -> None:
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}.")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError(f"threads must be a positive integer or None, got {threads!r}.")


def recommend_prepared(
    model: ServingModel,
    prepared: PreparedRetailer,
    users: list[str] | None = None,
    *,
    k: int = 20,
    exclude_bought: bool = True,
    allow_items: list[str] | None = None,
    deny_items: list[str] | None = None,
    threads: int | None = None,
) -> pl.DataFrame:
    """:func:`recommend` for a retailer the caller has already prepared with the model's encoder.

    Examples
    --------
    >>> prepared = model.prepare(shop)
    >>> recs = recommend_prepared(model, prepared, ["tm-0551"], k=5)
    """
    _check_options(k, threads)
    users = id_list(users, "users")
    allow_items = id_list(allow_items, "allow_items")
    deny_items = id_list(deny_items, "deny_items")
    data = prepared.data
    index = prepared.index
    histories = index.histories
    stats = prepared.serving_stats
    allowed = allowed_items(data, allow_items, deny_items)
    popularity = np.where(allowed, stats.popular, -np.inf)

    position = prepared.user_positions
    wanted = index.user_ids.tolist() if users is None else list(dict.fromkeys(users))
    rows = np.array([position.get(u, -1) for u in wanted], dtype=np.int64)
    known = rows >= 0
    if users is not None and len(wanted) and np.mean(known) < 0.5:
        # the text is the same for every call at this shop, so the warning shows once
        warnings.warn(
            f"most customers asked for are unknown at {data.name!r}: they get the shop's popular "
            "list. Pass ids as they are in interactions.user_id or users.user_id (matched "
            "exactly).",
            DataQualityWarning,
            stacklevel=3,
        )
    lengths = np.zeros(len(wanted), dtype=np.int64)
    lengths[known] = histories.lengths[rows[known]]
    has_text = np.zeros(len(wanted), dtype=bool)
    has_text[known] = prepared.user_vectors.has_text()[rows[known]]

    excluded = _bought(data, histories) if exclude_bought else _empty_like(histories)
    queries = Queries(context=histories, text_vectors=prepared.user_vectors, excluded=excluded)

    lists: dict[int, tuple[np.ndarray, np.ndarray, str]] = {}
    config = model.candidate_config
    paths = route(lengths, has_text)

    ranker_rows = np.unique(rows[known & (paths == RANKER)])
    compile_first = len(ranker_rows) >= COMPILE_MIN_CUSTOMERS
    if compile_first:
        # seconds to compile, several times faster per row after: compiled on a thread of its
        # own while the first chunks' candidates are built, and waited for before any scoring
        threading.Thread(target=model.compile_scoring, daemon=True).start()

    def ranked(block: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = []
        for chunk in iter_candidate_rows(
            prepared.catalogue, stats, queries, config=config, allowed=allowed, rows=block
        ):
            if compile_first:
                model.compile_scoring()  # waits for the compiling thread; at once after it
            scores = model.score(chunk.features)
            out.extend(top_k_per_query(chunk.query, chunk.item, scores, k))
        return out

    # Chunks are independent: score them on several threads, cut where iter_candidate_rows
    # would cut them, so lists do not depend on the thread count.
    step = ranker_block_size(prepared.catalogue.n_items)
    blocks = [ranker_rows[start : start + step] for start in range(0, len(ranker_rows), step)]
    for block_lists in map_in_threads(ranked, blocks, threads):
        for user, items, item_scores in block_lists:
            lists[int(user)] = (items, item_scores, RANKER)

    text_rows = np.unique(rows[known & (paths == TEXT)])
    if len(text_rows):
        text_blend = prepared.text_blend  # chosen on first need: a calibration per retailer
        if text_blend.popular_only:  # text says nothing at this shop: the popular list as such
            text_rows = text_rows[:0]
    for start in range(0, len(text_rows), TEXT_BLOCK):
        block_rows = text_rows[start : start + TEXT_BLOCK]
        sims = text_blend.scores(
            prepared.user_vectors[block_rows],
            prepared.catalogue.vectors,
            stats.popular,
            prepared.neighbour_pool,
        )
        sims[:, ~allowed] = -np.inf
        for user, sim_row in zip(block_rows, sims, strict=True):
            items = top_k(sim_row, k)
            lists[int(user)] = (items, sim_row[items].astype(np.float64), TEXT)

    frames = []
    no_items = np.zeros(0, dtype=np.int64)
    for user_id, row in zip(wanted, rows, strict=True):
        items, item_scores, source = lists.get(int(row), (no_items, np.zeros(0), POPULAR))
        own = excluded.sequence(int(row)) if row >= 0 else no_items
        frames.append((user_id, *top_up(items, item_scores, source, popularity, own, k)))
    return _to_frame(frames, index.item_ids)


def iter_recommendations(
    model: ServingModel,
    data: RetailerData,
    *,
    k: int = 20,
    chunk_size: int = 50_000,
    exclude_bought: bool = True,
    threads: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Every customer's recommendations, ``chunk_size`` customers at a time.

    For exports of any size with flat memory: pass the chunks to
    :func:`~rectransfer.write_recommendation_chunks`. The customers come in the order of
    :func:`recommend` without ``users``; lists are the ones it returns, up to last-bit rounding of
    products over blocks of another shape. ``threads`` is passed on to :func:`recommend`.

    Examples
    --------
    >>> for chunk in iter_recommendations(model, shop, k=20, chunk_size=100):
    ...     print(chunk.height)
    2000
    1600
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    users = model.prepare(data).index.user_ids
    for start in range(0, len(users), chunk_size):
        chunk = users[start : start + chunk_size].tolist()
        recs = recommend(model, data, chunk, k=k, exclude_bought=exclude_bought, threads=threads)
        release_freed_memory()  # what the chunk's threads freed, before the next one
        yield recs


def allowed_items(
    data: RetailerData, allow_items: list[str] | None, deny_items: list[str] | None
) -> np.ndarray:
    item_ids = data.items[Columns.ITEM]
    allowed = data.items[Columns.IN_STOCK].to_numpy().astype(bool)
    if allow_items is not None:
        in_allow = item_ids.is_in(pl.Series(allow_items, dtype=pl.String)).to_numpy()
        if not in_allow.any():
            raise ConfigError(
                f"allow_items names none of {data.name!r}'s items (e.g. {allow_items[:3]!r}); "
                "pass ids from items.item_id, or no allow list."
            )
        allowed &= in_allow
    if deny_items is not None:
        allowed &= ~item_ids.is_in(pl.Series(deny_items, dtype=pl.String)).to_numpy()
    return allowed


def _bought(data: RetailerData, histories: Histories) -> Histories:
    """The purchase-like events of each customer (all events when there is no event column)."""
    events = data.interactions[Columns.EVENT]
    if events.null_count() == len(events):
        return histories
    purchase = (events.is_null() | events.is_in(list(PURCHASE_EVENTS))).to_numpy()
    return _filter_events(histories, purchase)


def _filter_events(histories: Histories, keep: np.ndarray) -> Histories:
    full = np.zeros(len(histories.items), dtype=bool)
    full[: len(keep)] = keep
    user = histories.user_of_event()
    lengths = np.bincount(user[full], minlength=histories.n_users)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Histories(indptr, histories.items[full], histories.times[full], histories.n_items)


def _empty_like(histories: Histories) -> Histories:
    return _filter_events(histories, np.zeros(len(histories.items), dtype=bool))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest finite scores, best first, ties by lower index."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((finite, -scores[finite]))
    return finite[order[:k]]


def top_k_per_query(query: np.ndarray, item: np.ndarray, scores: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    """Yield (query, items, scores) with each query's best ``k`` rows, ties by item order."""
    if len(query) == 0:
        return
    step = np.diff(query)
    if ((step < 0) | ((step == 0) & (np.diff(item) <= 0))).any():  # candidate rows come sorted
        by_key = np.lexsort((item, query))
        query, item, scores = query[by_key], item[by_key], scores[by_key]
    rank = descending_ranks_in_runs(query, scores)
    kept = np.flatnonzero(rank <= k)
    # each query's kept rows, placed by rank: a (queries, k) block read row by row
    starts = np.flatnonzero(np.r_[True, query[kept][1:] != query[kept][:-1]])
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(kept)]))
    block = np.full((len(starts), k), -1, dtype=np.int64)
    block[run, rank[kept] - 1] = kept
    order = block[block >= 0]
    query, item, scores = query[order], item[order], scores[order]
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends, strict=True):
        yield query[start], item[start:end].astype(np.int64), scores[start:end]


def top_up(
    items: np.ndarray,
    scores: np.ndarray,
    source: str,
    popularity: np.ndarray,
    bought: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fill a list shorter than ``k`` with popular items, scored below what is already there.

    An empty list becomes the popular list itself, scored by popularity.
    """
    sources = [source] * len(items)
    if len(items) >= k:
        return items, scores, sources
    taken = np.zeros(len(popularity), dtype=bool)
    taken[items] = True
    taken[bought] = True
    fill = top_k(np.where(taken, -np.inf, popularity), k - len(items))
    if len(items):
        fill_scores = float(scores.min()) - 1.0 - np.arange(len(fill), dtype=np.float64)
    else:
        fill_scores = popularity[fill].astype(np.float64)
    return (
        np.concatenate([items, fill]),
        np.concatenate([scores, fill_scores]),
        sources + [POPULAR] * len(fill),
    )


def _to_frame(
    lists: list[tuple[str, np.ndarray, np.ndarray, list[str]]], item_ids: np.ndarray
) -> pl.DataFrame:
    if not lists:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    lengths = [len(items) for _, items, _, _ in lists]
    return pl.DataFrame(
        {
            # Object arrays, not fixed-width unicode: see rectransfer.data.histories.id_array.
            Columns.USER: np.repeat(id_array([u for u, _, _, _ in lists]), lengths),
            Columns.ITEM: item_ids[np.concatenate([items for _, items, _, _ in lists])],
            Columns.RANK: np.concatenate([np.arange(1, n + 1) for n in lengths]),
            Columns.SCORE: np.concatenate([scores for _, _, scores, _ in lists]),
            SOURCE: [s for _, _, _, sources in lists for s in sources],
        },
        schema=OUTPUT_SCHEMA,
    )
