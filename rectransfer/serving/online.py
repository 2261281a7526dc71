"""In-process recommendations for one customer, for a retailer's backend answering a request.

:func:`recommend_for` scores one customer described by the request itself (their recent items,
their own words, or both) against a retailer the model has already prepared: the catalogue vectors,
behaviour statistics and per-item text neighbours are computed on the first call and reused, so a
request costs one customer's candidates, features and ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from rectransfer.data.columns import SOURCE, Columns
from rectransfer.data.histories import Histories
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.prepared.prepare import uncached
from rectransfer.ranking.features import Queries, iter_candidate_rows
from rectransfer.serving.recommend import allowed_items, id_list, top_k, top_k_per_query, top_up
from rectransfer.serving.routing import POPULAR, RANKER, TEXT, ServingModel, route

ONLINE_SCHEMA = {
    Columns.ITEM: pl.String,
    Columns.RANK: pl.Int32,
    Columns.SCORE: pl.Float64,
    SOURCE: pl.String,
}


def recommend_for(
    model: ServingModel,
    data: RetailerData,
    *,
    history: Sequence[str] = (),
    text: str | None = None,
    k: int = 20,
    exclude: Sequence[str] | None = None,
    allow_items: list[str] | None = None,
    deny_items: list[str] | None = None,
) -> pl.DataFrame:
    """Top-``k`` items for one customer known only from this request.

    Parameters
    ----------
    model
        A pretrained or adapted model; ``data`` is prepared with it once and then reused.
    data
        The retailer's validated data (its catalogue and interactions give the statistics).
    history
        The customer's item ids, oldest first (e.g. their recent views or orders). Ids that are not
        in the catalogue are ignored, so a request naming a delisted product still works.
    text
        The customer's own words (a search, a profile); never written to the embedding cache.
    k
        List length.
    exclude
        Item ids never to recommend; default: the ``history`` items.
    allow_items, deny_items
        Restrict the catalogue as in :func:`rectransfer.serving.recommend`.

    Returns
    -------
    polars.DataFrame
        ``item_id, rank, score, source`` with the same paths as the batch export: ``ranker`` with
        a history, ``text`` with only text (``popular`` where the shop's text path is all
        popularity), else ``popular``; short lists are topped up with popular items.

    Raises
    ------
    TypeError
        An id argument is a bare string (``history="A1"`` would be read as two items, ``"A"`` and
        ``"1"``) or holds a non-id, or ``text`` is not a string.

    Examples
    --------
    >>> recs = rt.recommend_for(model, shop, history=["TM-99342"], text="trail shoes", k=5)
    >>> recs["rank"].to_list(), recs["source"].unique().to_list()
    ([1, 2, 3, 4, 5], ['ranker'])
    """
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}.")
    history_ids = id_list(history, "history") or []
    exclude_ids = id_list(exclude, "exclude")
    allow_items = id_list(allow_items, "allow_items")
    deny_items = id_list(deny_items, "deny_items")
    if text is not None and not isinstance(text, str):
        raise TypeError(
            f"text must be a string (the customer's own words) or None, got "
            f"{type(text).__name__} {text!r}."
        )
    prepared = model.prepare(data)
    n_items = prepared.catalogue.n_items
    position = prepared.item_positions
    items = np.array([position[i] for i in history_ids if i in position], dtype=np.int32)
    excluded_ids = history_ids if exclude_ids is None else exclude_ids
    blocked = np.array(sorted({position[i] for i in excluded_ids if i in position}), dtype=np.int32)
    allowed = allowed_items(data, allow_items, deny_items)
    stats = prepared.serving_stats
    popularity = np.where(allowed, stats.popular, -np.inf)

    vector = np.zeros((1, prepared.catalogue.vectors.shape[1]), dtype=np.float32)
    if text is not None and text.strip():
        vector[0] = uncached(model.encoder).encode([text])[0]
    has_text = bool(np.any(vector))

    path = route(np.array([len(items)]), np.array([has_text]))[0]
    if path == RANKER:
        context = _one_customer(items, n_items)
        queries = Queries(
            context=context, text_vectors=vector, excluded=_one_customer(blocked, n_items)
        )
        config = model.candidate_config
        (chunk,) = iter_candidate_rows(  # one customer: one chunk
            prepared.catalogue, stats, queries, config=config, allowed=allowed
        )
        ranked = list(top_k_per_query(chunk.query, chunk.item, model.score(chunk.features), k))
        found, scores = (
            (ranked[0][1], ranked[0][2]) if ranked else (np.zeros(0, np.int64), np.zeros(0))
        )
        source = RANKER
    elif path == TEXT and not prepared.text_blend.popular_only:
        sims = prepared.text_blend.scores(
            vector,
            prepared.catalogue.vectors,
            stats.popular,
            prepared.neighbour_pool,
        )[0]
        sims[~allowed] = -np.inf
        sims[blocked] = -np.inf
        found = top_k(sims, k)
        scores = sims[found].astype(np.float64)
        source = TEXT
    else:
        found, scores, source = np.zeros(0, dtype=np.int64), np.zeros(0), POPULAR
    final, final_scores, sources = top_up(found, scores, source, popularity, blocked, k)
    return pl.DataFrame(
        {
            Columns.ITEM: prepared.index.item_ids[final],
            Columns.RANK: np.arange(1, len(final) + 1),
            Columns.SCORE: final_scores,
            SOURCE: sources,
        },
        schema=ONLINE_SCHEMA,
    )


def _one_customer(items: np.ndarray, n_items: int) -> Histories:
    return Histories(
        indptr=np.array([0, len(items)], dtype=np.int64),
        items=items.astype(np.int32),
        times=np.zeros(len(items), dtype=np.int64),
        n_items=n_items,
    )
