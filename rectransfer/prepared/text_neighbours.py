"""Neighbours by customer text: what the known customers who write like a newcomer took.

A newcomer's words may say little about products directly (demographics share no words with film
titles) and still say much about which known customers they resemble. The pool is the retailer's
customers with both text and interactions; a newcomer's neighbour score of an item is

    sum over the K pool customers nearest by text of max(cosine, 0) * (1 if they took the item).

The pool is capped at ``MAX_POOL`` customers (a seeded sample) so that serving a very large shop
stays one ``block x pool x d`` product per block of newcomers, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rectransfer.data.histories import Histories
from rectransfer.prepared.user_vectors import UserVectors

MAX_POOL = 20_000
BLOCK = 256  # queries scored at a time: a block x pool float32 similarity matrix


@dataclass(frozen=True)
class NeighbourPool:
    """Known customers (text and interactions) that newcomers are compared with."""

    rows: np.ndarray  # int64 (m,), sorted customer rows in the retailer's index
    vectors: np.ndarray  # float32 (m, d), their text vectors (unit length)
    taken: sp.csr_matrix  # float32 (m, n_items), 1 where the customer interacted with the item

    @property
    def size(self) -> int:
        return len(self.rows)

    @classmethod
    def build(
        cls,
        histories: Histories,
        user_vectors: UserVectors,
        *,
        max_pool: int = MAX_POOL,
        random_state: int = 0,
    ) -> NeighbourPool:
        """The pool of a retailer: at most ``max_pool`` customers with text and interactions."""
        rows = user_vectors.rows[histories.lengths[user_vectors.rows] > 0]
        if len(rows) > max_pool:
            rng = np.random.default_rng(random_state)
            rows = np.sort(rng.choice(rows, max_pool, replace=False))
        owner = np.repeat(np.arange(len(rows)), histories.lengths[rows])
        taken = sp.csr_matrix(
            (np.ones(len(owner), np.float32), (owner, histories.select(rows).items)),
            shape=(len(rows), histories.n_items),
            dtype=np.float32,
        )
        taken.sum_duplicates()
        taken.data[:] = 1.0  # an item taken twice counts once
        return cls(np.asarray(rows, np.int64), user_vectors[rows], taken)

    def mask(self, customer_rows: np.ndarray) -> np.ndarray:
        """Boolean mask over the pool: True for the pool customers among ``customer_rows``."""
        return np.isin(self.rows, np.asarray(customer_rows, dtype=np.int64))

    def scores(
        self, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """Neighbour scores (queries x items, float32) of query text vectors, ``k`` neighbours.

        ``exclude`` is a boolean mask over the pool of customers who may not be neighbours (a
        calibration fold's own customers). A query's neighbours are its ``k`` most similar pool
        customers, ties by lower pool position, so the same query gets the same list in any block.
        """
        return self.scores_by_k(queries, (k,), exclude=exclude)[k]

    def scores_by_k(
        self, queries: np.ndarray, ks: Sequence[int], *, exclude: np.ndarray | None = None
    ) -> dict[int, np.ndarray]:
        """:meth:`scores` for several ``k`` at once (the similarities are computed once)."""
        queries = np.asarray(queries, dtype=np.float32)
        out = {k: np.zeros((len(queries), self.taken.shape[1]), np.float32) for k in ks}
        if exclude is not None and len(exclude) != self.size:
            raise ValueError(
                f"exclude has {len(exclude)} entries; the neighbour pool has {self.size}."
            )
        available = self.size if exclude is None else self.size - int(np.sum(exclude))
        for start in range(0, len(queries), BLOCK):
            similarity = queries[start : start + BLOCK] @ self.vectors.T
            if exclude is not None:
                similarity[:, exclude] = -np.inf
            for k in ks:
                if min(k, available) >= 1:
                    weights = nearest(similarity, min(k, available))
                    (weights @ self.taken).toarray(out=out[k][start : start + BLOCK])
        return out


def nearest(similarity: np.ndarray, k: int) -> sp.csr_matrix:
    """Each row's ``k`` highest similarities as a sparse matrix of ``max(similarity, 0)``.

    Of values tied at the ``k``-th place the lowest columns are kept, so the choice depends on the
    row's values only.
    """
    width = similarity.shape[1]
    kth = np.partition(similarity, width - k, axis=1)[:, width - k : width - k + 1]
    keep = similarity >= kth
    crowded = np.flatnonzero(keep.sum(axis=1) > k)  # rows with more than k tied at the k-th
    if len(crowded):
        part, at = similarity[crowded], kth[crowded]
        tied = part == at
        room = k - (part > at).sum(axis=1, keepdims=True)
        keep[crowded] = (part > at) | (tied & (np.cumsum(tied, axis=1) <= room))
    row, col = np.nonzero(keep)  # k per row, columns ascending: one summation order
    return sp.csr_matrix(
        (np.maximum(similarity[row, col], 0.0), col, np.arange(0, len(row) + 1, k)),
        shape=similarity.shape,
        dtype=np.float32,
    )
