"""Weighting the sources by how close their catalogues are to one retailer's, in text space.

Which sources a broad model learns from matters as much as how many (``docs/BENCHMARKS.md``,
the source-count curve): one close source can beat two far ones. A broad model pretrained *for*
one retailer can lean on the sources whose products resemble that retailer's: every source's
training lists get a weight from its **share** of the retailer's nearest products. For a sample
of the retailer's products, the ``NEIGHBOURS`` most similar products among equal-sized samples of
every source are found; a source's share is the fraction of those neighbours it supplied. Only
product text is read, never the retailer's interactions.

The weight mixes the share with uniform weights (``MIX``), so that no source is dropped and the
broad model still sees every kind of shop: ``w = (1 - MIX) + MIX * n_sources * share``, a mean
of 1 over the sources. On the leave-one-source-out loop it moved neither the broad model nor what
ships beyond noise (``docs/BENCHMARKS.md``), so pretraining weighs sources alike by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rectransfer.ranking.training_data import LabelledRows

NEIGHBOURS = 10
TARGET_SAMPLE = 2_000  # the retailer's products compared
SOURCE_SAMPLE = 5_000  # at most this many products per source (the same number for each)
MIX = 0.5
SOURCE_KEY_SHIFT = 40  # customer keys carry the source's position above this bit (pretrain)
_BLOCK = 512


def sample_rows(vectors: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows of ``vectors``, seeded, in their order."""
    if len(vectors) <= n:
        return np.asarray(vectors, dtype=np.float32)
    take = np.sort(np.random.default_rng(seed).choice(len(vectors), size=n, replace=False))
    return np.asarray(vectors[take], dtype=np.float32)


def neighbour_shares(
    target: np.ndarray, sources: Sequence[np.ndarray], *, seed: int = 0
) -> np.ndarray:
    """Each source's share of the target's nearest products (sums to 1 over the sources).

    Every source enters with the same number of products (the smallest source's count, at most
    ``SOURCE_SAMPLE``), so a big catalogue does not win by size alone.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> near, far = rng.normal(size=(50, 4)) + 5, rng.normal(size=(50, 4)) - 5
    >>> shares = neighbour_shares(rng.normal(size=(20, 4)) + 5, [near, far])
    >>> shares.round(2).tolist()
    [1.0, 0.0]
    """
    if not sources:
        raise ValueError("neighbour_shares needs at least one source")
    per_source = min(SOURCE_SAMPLE, min(len(s) for s in sources))
    pooled = np.concatenate([sample_rows(s, per_source, seed + i) for i, s in enumerate(sources)])
    owner = np.repeat(np.arange(len(sources)), per_source)
    queries = sample_rows(target, TARGET_SAMPLE, seed)
    k = min(NEIGHBOURS, len(pooled))
    counts = np.zeros(len(sources), dtype=np.float64)
    for start in range(0, len(queries), _BLOCK):
        sims = queries[start : start + _BLOCK] @ pooled.T
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        counts += np.bincount(owner[nearest].ravel(), minlength=len(sources))
    return counts / max(counts.sum(), 1.0)


def weights_from_shares(shares: np.ndarray, mix: float = MIX) -> np.ndarray:
    """``(1 - mix) + mix * n * share``: mean 1, never below ``1 - mix``.

    Examples
    --------
    >>> weights_from_shares(np.array([0.75, 0.25, 0.0])).tolist()
    [1.625, 0.875, 0.5]
    """
    return (1.0 - mix) + mix * len(shares) * np.asarray(shares, dtype=np.float64)


def row_weighting(weights: np.ndarray) -> Callable[[LabelledRows], np.ndarray]:
    """Per-row weights of pretraining lists: the weight of the source each list came from (read
    from its customer key, as :func:`~rectransfer.transfer.pretrain.source_rows` sets it)."""

    def weigh(rows: LabelledRows) -> np.ndarray:
        source = rows.group_customer >> SOURCE_KEY_SHIFT
        return np.asarray(weights[source][rows.group], dtype=np.float64)

    return weigh
