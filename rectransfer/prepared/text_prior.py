"""What follows what in the shared text space, learnt on the sources and carried to any shop.

A small shop has seen few transitions of its own, too few even between its own text clusters
(:mod:`rectransfer.ranking.text_clusters`). The sources have seen many. Their products are grouped
into clusters of the one shared text space (a *codebook*, k-means on product vectors of every
source), transitions of every source are counted per pair of codebook clusters, and the log lift
of "cluster b next to cluster a" is kept with the broad model. Any shop's products fall into
the same clusters by their text alone, so a shop without a single pair of its own inherits
"after something like a tent, something like a sleeping bag".

Pretraining must not show a source its own transitions through this prior (the ranker would
learn to trust it more than it deserves at a shop it has never seen): each source's training
lists see the prior of the *other* sources (:meth:`PriorCounts.leaving_out`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from rectransfer.data.histories import Histories
from rectransfer.prepared.catalogue import Catalogue

PRIOR_CLUSTERS = 256
CODEBOOK_ITEMS_PER_SOURCE = 20_000  # products per source the codebook is fitted on (seeded)
# Pseudo-transitions shrinking a cluster's row toward the overall distribution: a cluster seen
# leaving a few times says little (the same prior as a shop's own text clusters).
LIFT_PRIOR = 10.0
_ASSIGN_BLOCK = 16_384  # products assigned to clusters per matrix product


def pair_counts(histories: Histories, clusters: np.ndarray, k: int) -> np.ndarray:
    """(k, k) float64 counts of consecutive items of one customer, per pair of the items'
    clusters, both directions (symmetric)."""
    user = histories.user_of_event()
    same = user[1:] == user[:-1]
    a = clusters[histories.items[:-1][same]].astype(np.int64)
    b = clusters[histories.items[1:][same]].astype(np.int64)
    counts = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(np.float64)
    return counts + counts.T


def log_lift(counts: np.ndarray, prior: float = LIFT_PRIOR) -> np.ndarray:
    """(k, k) float32 log of P(b next to a) over P(b next to anything), each row shrunk toward the
    overall distribution by ``prior`` pseudo-transitions; 0 where nothing is known.

    Examples
    --------
    >>> lift = log_lift(np.array([[0.0, 50.0], [50.0, 0.0]]))
    >>> bool(lift[0, 1] > 0 > lift[0, 0])
    True
    """
    k = len(counts)
    total = counts.sum()
    share = (counts.sum(axis=0) + 1.0) / (total + k)  # where transitions go, overall
    rows = counts.sum(axis=1, keepdims=True)
    conditional = (counts + prior * share) / (rows + prior)
    return np.asarray(np.log(conditional / share), dtype=np.float32)


@dataclass(frozen=True)
class TextPrior:
    """Codebook clusters of the shared text space and the log lift between them."""

    centroids: np.ndarray  # float32 (k, d)
    lift: np.ndarray  # float32 (k, k)

    @cached_property
    def digest(self) -> str:
        """sha256 of both arrays: equal priors have equal digests."""
        h = hashlib.sha256()
        for array in (self.centroids, self.lift):
            h.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return h.hexdigest()

    def info(self) -> dict[str, Any]:
        """What ``config.json`` records of the prior (``PriorInfo``)."""
        return {"clusters": len(self.centroids), "sha256": self.digest}

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """The nearest centroid (int32) of every vector."""
        centroids = self.centroids.astype(np.float32)
        half_norms = 0.5 * (centroids**2).sum(axis=1)
        out = np.zeros(len(vectors), dtype=np.int32)
        for start in range(0, len(vectors), _ASSIGN_BLOCK):
            block = np.asarray(vectors[start : start + _ASSIGN_BLOCK], dtype=np.float32)
            out[start : start + len(block)] = np.argmax(block @ centroids.T - half_norms, axis=1)
        return out

    def clusters(self, catalogue: Catalogue) -> np.ndarray:
        """The codebook cluster of every product of ``catalogue`` (computed once per catalogue)."""
        found: np.ndarray = catalogue.derived.get(
            ("text prior clusters", self.digest), lambda: self.assign(catalogue.vectors)
        )
        return found


def codebook_sample(vectors: np.ndarray, *, index: int, seed: int = 0) -> np.ndarray:
    """The products of one source the codebook is fitted on: at most
    ``CODEBOOK_ITEMS_PER_SOURCE``, drawn with a seed of the source's position in name order (so
    one process and Dask workers draw the same)."""
    if len(vectors) <= CODEBOOK_ITEMS_PER_SOURCE:
        return np.asarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed + index)
    take = np.sort(rng.choice(len(vectors), size=CODEBOOK_ITEMS_PER_SOURCE, replace=False))
    return np.asarray(vectors[take], dtype=np.float32)


def fit_codebook(
    samples: Sequence[np.ndarray], *, k: int = PRIOR_CLUSTERS, seed: int = 0
) -> np.ndarray:
    """(k', d) float32 centroids of the sources' :func:`codebook_sample`, ``k' <= k``.

    Each source gives at most ``CODEBOOK_ITEMS_PER_SOURCE`` products, so a big catalogue does
    not take every cluster for itself.
    """
    pooled = np.concatenate(samples).astype(np.float32)
    k = int(min(k, len(pooled)))
    if k < 1:
        raise ValueError("fit_codebook needs at least one product vector")
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    model.fit(pooled)
    return np.asarray(model.cluster_centers_, dtype=np.float32)


def source_counts(centroids: np.ndarray, catalogue: Catalogue, histories: Histories) -> np.ndarray:
    """(k, k) transitions of one source between the codebook's clusters (:func:`pair_counts`)."""
    clusters = TextPrior(centroids, np.zeros((0, 0), np.float32)).assign(catalogue.vectors)
    return pair_counts(histories, clusters, len(centroids))


@dataclass
class PriorCounts:
    """The codebook and every source's transition counts between its clusters."""

    centroids: np.ndarray
    counts: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, catalogue: Catalogue, histories: Histories) -> None:
        """Count the transitions of source ``name`` (its catalogue and customers' histories)."""
        clusters = TextPrior(self.centroids, np.zeros((0, 0), np.float32)).assign(catalogue.vectors)
        self.counts[name] = pair_counts(histories, clusters, len(self.centroids))

    def leaving_out(self, name: str | None) -> TextPrior:
        """The prior of every source but ``name`` (``None``: of all of them)."""
        k = len(self.centroids)
        total = np.zeros((k, k), dtype=np.float64)
        for source, counts in self.counts.items():
            if source != name:
                total += counts
        return TextPrior(self.centroids, log_lift(total))
