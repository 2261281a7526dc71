"""One retailer's recommendations in customer chunks, row for row identical to a single run.

A large retailer's export is split so that its chunks can be scored by separate workers (see
``flows/`` with the Dask task runner): the retailer is prepared once (ids, vectors, behaviour
statistics), every chunk is scored against that prepared retailer, and the chunk results are merged
back into customer order before the partition is written once.

Why chunks are not plain slices of the customer list: :func:`~rectransfer.serving.recommend` scores
customers in blocks (ranker customers ``features.chunk_size(n_items)`` at a time, text-only ones
``TEXT_BLOCK`` at a time), and BLAS may round a matrix product differently for another block shape
(a one-row block takes another code path than a many-row one). A z-scored feature can turn such a
last-bit difference into another tree branch. So each scoring path's customers are cut on that
path's own block boundaries, and every chunk scores exactly the blocks a single run scores: the
merged output equals ``recommend(model, data, k=k)`` row for row, scores included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from rectransfer.data.columns import OUTPUT_SCHEMA, Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.prepared.prepare import PreparedRetailer
from rectransfer.ranking.features import chunk_size as ranker_block_size
from rectransfer.serving.recommend import TEXT_BLOCK, recommend_prepared
from rectransfer.serving.routing import PATHS, POPULAR, ServingModel, route
from rectransfer.utils.memory import release_freed_memory

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "customer_chunks",
    "merge_chunks",
    "recommend_chunk",
    "recommend_in_chunks",
]

# Customers per chunk (one recommend task each). A task's scoring memory is bounded by the scoring
# blocks, not by this; its result is up to k rows per customer.
DEFAULT_CHUNK_SIZE = 50_000
_ROW = "__customer_row"  # a chunk's customer positions, for the merge; never written


def customer_chunks(
    prepared: PreparedRetailer, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> list[np.ndarray]:
    """Customer positions (into ``prepared.index.user_ids``) of each chunk, ascending.

    There are about ``n_customers / chunk_size`` chunks; each holds the same share of the ranker,
    text-only and popular customers, cut on scoring-block boundaries (see the module docstring), so
    a chunk may exceed ``chunk_size`` by up to a block of each path, and there are fewer chunks
    when a path has fewer customers than one block per chunk. A retailer without customers has
    none.

    Examples
    --------
    The sample shop's 180 customers fit one scoring block (up to 4,096 customers with a small
    catalogue), so however small the chunks asked for, they stay one:

    >>> prepared = model.prepare(shop)
    >>> [len(rows) for rows in customer_chunks(prepared, chunk_size=100)]
    [180]
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    n_customers = len(prepared.index.user_ids)
    if n_customers == 0:
        return []
    # The same routing as recommend(); each path's customers cut on its own scoring blocks.
    path_of = route(prepared.index.histories.lengths, prepared.user_vectors.has_text())
    block_of = {
        "ranker": ranker_block_size(prepared.catalogue.n_items),
        "text": TEXT_BLOCK,
        POPULAR: 1,  # popular lists are per customer
    }
    paths = [(np.flatnonzero(path_of == path), block_of[path]) for path in PATHS]
    n_chunks = -(-n_customers // chunk_size)
    pieces: list[list[np.ndarray]] = []
    for rows, block in paths:
        per_chunk = max(1, -(-len(rows) // (n_chunks * block))) * block
        pieces.append([rows[start : start + per_chunk] for start in range(0, len(rows), per_chunk)])
    return [
        np.sort(np.concatenate([path[i] for path in pieces if i < len(path)]))
        for i in range(max(len(path) for path in pieces))
    ]


def recommend_chunk(
    model: ServingModel,
    prepared: PreparedRetailer,
    rows: np.ndarray,
    *,
    k: int = 20,
    threads: int | None = None,
) -> pl.DataFrame:
    """Recommendations for the customers at positions ``rows``, ready for :func:`merge_chunks`.

    Chunks of one model may run in several threads at once; the prepared retailer is passed as it
    is, so nothing is embedded or counted again. ``threads`` is passed on to the scoring.

    Examples
    --------
    >>> prepared = model.prepare(shop)
    >>> chunks = customer_chunks(prepared, chunk_size=100)
    >>> parts = [recommend_chunk(model, prepared, rows, k=20) for rows in chunks]
    """
    rows = np.asarray(rows, dtype=np.int64)
    users = prepared.index.user_ids[rows].tolist()
    recs = recommend_prepared(model, prepared, users, k=k, threads=threads)
    release_freed_memory()  # what the chunk's threads freed, before the worker's next task
    positions = pl.DataFrame(
        {Columns.USER: users, _ROW: rows}, schema={Columns.USER: pl.String, _ROW: pl.Int64}
    )
    return recs.join(positions, on=Columns.USER, how="left", maintain_order="left")


def merge_chunks(chunks: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The chunks' recommendations in customer order, as one single run returns them.

    Examples
    --------
    >>> prepared = model.prepare(shop)
    >>> parts = [recommend_chunk(model, prepared, rows) for rows in customer_chunks(prepared)]
    >>> merge_chunks(parts).equals(rt.recommend(model, shop))
    True
    """
    if not chunks:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    merged = pl.concat(chunks, how="vertical", rechunk=False)
    # A stable sort: each customer's rows keep their rank order.
    return merged.sort(_ROW, maintain_order=True).drop(_ROW).rechunk()


def recommend_in_chunks(
    model: ServingModel,
    data: RetailerData,
    *,
    k: int = 20,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> pl.DataFrame:
    """Every customer's recommendations, computed chunk by chunk in this process.

    The same rows as ``rt.recommend(model, data, k=k)``; the flows run the chunks as separate tasks.

    Examples
    --------
    >>> chunked = recommend_in_chunks(model, shop, k=20, chunk_size=50)
    >>> chunked.equals(rt.recommend(model, shop, k=20))
    True
    """
    prepared = model.prepare(data)
    return merge_chunks(
        [
            recommend_chunk(model, prepared, rows, k=k)
            for rows in customer_chunks(prepared, chunk_size=chunk_size)
        ]
    )
