"""Customers' own-text vectors, stored only for the customers who have text.

At a shop where few customers write anything, a dense ``customers x d`` matrix is mostly zeros:
a million customers cost 1.4 GiB at 384 dimensions. Rows are looked up on demand instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UserVectors:
    """Vectors of ``n_users`` customers; those without text read as zero rows.

    ``vectors[i]`` belongs to customer row ``rows[i]``; ``rows`` is sorted and unique.
    """

    rows: np.ndarray  # int64 (m,), sorted
    vectors: np.ndarray  # float32 (m, d)
    n_users: int

    @classmethod
    def empty(cls, n_users: int, dim: int) -> UserVectors:
        return cls(np.zeros(0, np.int64), np.zeros((0, dim), np.float32), n_users)

    @classmethod
    def of(cls, rows: np.ndarray, vectors: np.ndarray, n_users: int) -> UserVectors:
        """From customer rows and their vectors (any order; a repeated row keeps its last)."""
        rows = np.asarray(rows, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)  # (len(rows), d)
        # A zero vector is no text. Squares summed in place: no copy of the matrix to find them.
        nonzero = np.einsum("ij,ij->i", vectors, vectors) > 0
        if bool(np.all(rows[1:] > rows[:-1])) and bool(nonzero.all()):
            # already sorted, unique and all text (rows in index order): kept as given, uncopied
            return cls(rows, np.ascontiguousarray(vectors), n_users)
        # the last occurrence of each row wins, as with ``dense[rows] = vectors``
        last = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]
        keep = last[nonzero[last]]
        order = keep[np.argsort(rows[keep], kind="stable")]
        return cls(rows[order], np.ascontiguousarray(vectors[order]), n_users)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.vectors.shape[1])

    def __getitem__(self, index: np.ndarray | slice) -> np.ndarray:
        """Dense rows (float32) for customer rows ``index``: zeros where there is no text."""
        wanted = np.arange(self.n_users)[index] if isinstance(index, slice) else np.asarray(index)
        out = np.zeros((len(wanted), self.vectors.shape[1]), dtype=np.float32)
        if len(self.rows) and len(wanted):
            at = np.minimum(np.searchsorted(self.rows, wanted), len(self.rows) - 1)
            hit = self.rows[at] == wanted
            out[hit] = self.vectors[at[hit]]
        return out

    def has_text(self) -> np.ndarray:
        """Mask over all customers: True where the customer has a text vector."""
        mask = np.zeros(self.n_users, dtype=bool)
        mask[self.rows] = True
        return mask

    def subset(self, rows: np.ndarray) -> UserVectors:
        """The customers ``rows`` (in that order) as a new set of ``len(rows)`` customers."""
        rows = np.asarray(rows, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.rows, rows), max(len(self.rows) - 1, 0))
        hit = (self.rows[at] == rows) if len(self.rows) else np.zeros(len(rows), bool)
        return UserVectors.of(np.flatnonzero(hit), self.vectors[at[hit]], len(rows))
