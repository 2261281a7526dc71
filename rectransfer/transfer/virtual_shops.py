"""Virtual small retailers: a source's seeded customer subsample, prepared as a shop of its own.

A broad model pretrained only on big, dense sources meets far sparser statistics at a small shop
(popularity, co-occurrence and transitions counted over a few hundred customers). Pretraining can
also see *virtual shops*: for a fraction ``f``, a seeded ``f`` of a source's customers with only
their interactions, whose behaviour statistics are rebuilt from that subsample alone (each cut's
statistics come from the subsample's histories, exactly as at a real shop of that size). The
catalogue and its text vectors stay the source's, as at a small shop with a full catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from rectransfer.data.holdout import subset_customers
from rectransfer.errors import ConfigError
from rectransfer.prepared.prepare import PreparedRetailer, with_customers_of


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """``fractions`` as a tuple, each checked to lie strictly between 0 and 1.

    Examples
    --------
    >>> check_fractions([0.1, 0.3])
    (0.1, 0.3)
    """
    out = tuple(float(f) for f in fractions)
    for f in out:
        if not 0 < f < 1:
            raise ConfigError(f"virtual_shops fractions must lie in (0, 1), got {f!r}.")
    if len(set(out)) != len(out):
        raise ConfigError(f"virtual_shops fractions must be distinct, got {list(out)!r}.")
    return out


def virtual_shop(
    source: PreparedRetailer, fraction: float, *, seed: int
) -> tuple[PreparedRetailer, np.ndarray]:
    """A seeded ``fraction`` of ``source``'s customers as a prepared shop of its own.

    Returns the shop (named ``<source>@<fraction>``; whole catalogue and text vectors reused, no
    encoding) and, for each of its customer rows, the matching row of ``source`` (so that callers
    can keep one customer key across the source and its virtual shops).

    Examples
    --------
    >>> small, rows = virtual_shop(prepared, 0.1, seed=0)  # doctest: +SKIP
    >>> small.name  # doctest: +SKIP
    'books@0.1'
    """
    (fraction,) = check_fractions([fraction])
    lengths = source.index.histories.lengths
    active = source.index.user_ids[: len(lengths)][lengths > 0]
    if len(active) == 0:
        raise ConfigError(f"source {source.name!r} has no customer with interactions to sample.")
    n = max(1, round(fraction * len(active)))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(active, size=n, replace=False))
    subset = subset_customers(source.data, chosen.tolist())
    shop = with_customers_of(replace(subset, name=f"{source.name}@{fraction:g}"), source)
    position = source.user_positions
    parent_rows = np.array([position[u] for u in shop.index.user_ids.tolist()], dtype=np.int64)
    return shop, parent_rows
