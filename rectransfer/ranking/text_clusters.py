"""What follows what between regions of the text space: transitions between clusters of products.

A small shop has few item-to-item transitions: most pairs were never seen. Grouping its products
into clusters of similar text and counting transitions between clusters pools them, so "after a
tent, something like a sleeping bag" is learnt from every tent and sleeping bag of the shop, not
from one pair. The clusters are the shop's own (k-means on its product vectors, about the square
root of the catalogue's size), so the feature means the same at any shop: the log lift of the
candidate's cluster after the customer's recent clusters, 0 where nothing is known.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import MiniBatchKMeans

from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats

MAX_CLUSTERS = 256
MIN_CLUSTERS = 2
# Pseudo-transitions shrinking a cluster's row toward the catalogue's overall distribution: a
# cluster seen leaving a few times says little.
LIFT_PRIOR = 10.0


def cluster_count(n_items: int) -> int:
    """Clusters for a catalogue of ``n_items``: about its square root, within bounds.

    Examples
    --------
    >>> cluster_count(2_500), cluster_count(50_000), cluster_count(3)
    (50, 224, 2)
    """
    return int(min(MAX_CLUSTERS, max(MIN_CLUSTERS, round(np.sqrt(n_items)))))


def text_clusters(catalogue: Catalogue) -> np.ndarray:
    """Cluster of every product (int32), from its text vector; computed once per catalogue."""
    clusters: np.ndarray = catalogue.derived.get(("text clusters",), lambda: _fit(catalogue))
    return clusters


def _fit(catalogue: Catalogue) -> np.ndarray:
    n = catalogue.n_items
    k = cluster_count(n)
    if n <= k:
        return np.arange(n, dtype=np.int32)
    # seeded: the same catalogue gets the same clusters in every process
    model = MiniBatchKMeans(n_clusters=k, random_state=0, n_init=3, batch_size=4096)
    return model.fit_predict(catalogue.vectors).astype(np.int32)


def cluster_lift(stats: BehaviourStats, clusters: np.ndarray) -> np.ndarray:
    """(k, k) float32 log lift of cluster b next to (before or after) cluster a; cached on stats.

    Transitions are the statistics' item transitions in both directions, each item's row
    weighted by its events, summed per pair of clusters.
    """
    key = clusters.tobytes()
    lift = stats.cluster_lifts.get(key)
    if lift is None:
        lift = stats.cluster_lifts[key] = _lift(stats, clusters)
    return lift


def _lift(stats: BehaviourStats, clusters: np.ndarray) -> np.ndarray:
    k = int(clusters.max()) + 1 if len(clusters) else 0
    n = stats.n_items
    member = sp.csr_matrix((np.ones(n, np.float64), (np.arange(n), clusters)), shape=(n, max(k, 1)))
    moves = sp.diags(stats.count.astype(np.float64)) @ (stats.trans_fwd + stats.trans_bwd)
    counts = np.asarray((member.T @ moves @ member).todense())
    total = counts.sum()
    share = (counts.sum(axis=0) + 1.0) / (total + k)  # where transitions go, overall
    rows = counts.sum(axis=1, keepdims=True)
    conditional = (counts + LIFT_PRIOR * share) / (rows + LIFT_PRIOR)
    return np.log(conditional / share).astype(np.float32)


def recent_cluster_lift(
    lift: np.ndarray,
    clusters: np.ndarray,
    recent: np.ndarray,
    weights: np.ndarray,
    cand_row: np.ndarray,
    cand: np.ndarray,
) -> np.ndarray:
    """Weighted mean lift of each candidate's cluster after its customer's recent items.

    ``recent`` is (customers, m) item codes, newest first, -1 where the history is shorter;
    ``weights`` (m,) weigh them. NaN for a customer without history.
    """
    m = len(weights)
    items = recent[cand_row, :m]
    known = items >= 0
    from_cluster = clusters[np.maximum(items, 0)]
    values = lift[from_cluster, clusters[cand][:, None]]
    w = np.where(known, weights[None, :], 0.0)
    total = w.sum(axis=1)
    out = np.full(len(cand), np.nan, dtype=np.float32)
    has = total > 0
    out[has] = ((values * w).sum(axis=1)[has] / total[has]).astype(np.float32)
    return out
