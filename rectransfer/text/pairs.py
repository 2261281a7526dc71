"""Product-text pairs mined from customer histories, the training data of the text encoder.

From every customer's time-ordered history: (item, next item) pairs, plus co-purchase pairs of
items bought within ``window`` positions of each other. Only product text enters a pair (title,
category, brand, description as :func:`rectransfer.text.texts.item_texts` builds it): never a
customer id, a customer's own text or an item id. An unordered pair of distinct texts is kept once
(the earliest, closest occurrence fixes its direction); two items with the same text never form a
pair. Sampling is seeded and spreads ``max_pairs`` evenly across sources (a small source's unused
share goes to the others), preferring consecutive pairs. Where a catalogue has categories, each
pair gets a hard negative: another product of the positive's category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.histories import RetailerIndex
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.text.texts import item_texts

__all__ = ["DEFAULT_MAX_PAIRS", "DEFAULT_WINDOW", "PAIR_COLUMNS", "mine_pairs", "training_pairs"]

DEFAULT_MAX_PAIRS: Final = 20_000
DEFAULT_WINDOW: Final = 2
# A catalogue "has categories" when at least this share of its products name one.
MIN_CATEGORY_SHARE: Final = 0.5
PAIR_COLUMNS: Final = ("source", "anchor", "positive", "negative")


def _text_codes(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct non-blank texts, and for every input its position among them (-1 when blank)."""
    position: dict[str, int] = {}
    codes = np.full(len(texts), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        if text.strip():
            codes[i] = position.setdefault(text, len(position))
    return list(position), codes


def mine_pairs(data: RetailerData, *, window: int = DEFAULT_WINDOW) -> pl.DataFrame:
    """Distinct product-text pairs from one retailer's customer histories.

    Every customer's items in time order give (item, item ``g`` places later) pairs for
    ``g = 1 .. window``: ``g = 1`` is "bought next", larger gaps are co-purchases close in time.
    Pairs of items with the same text are dropped, and each unordered pair of texts is kept once,
    oriented as it first occurred at the smallest gap.

    Parameters
    ----------
    data
        The retailer (only its catalogue text and the order of its interactions are read).
    window
        The largest gap between the two items of a pair.

    Returns
    -------
    polars.DataFrame
        ``anchor`` (str), ``positive`` (str), ``gap`` (int), sorted by gap, then by first
        occurrence. Product text only: no customer or item id.

    Examples
    --------
    >>> import polars as pl
    >>> ids = ["a", "b", "c"]
    >>> shop = RetailerData.from_frames(
    ...     pl.DataFrame({"item_id": ids, "title": ["Tent", "Sleeping bag", "Stove"]}),
    ...     pl.DataFrame({"user_id": ["u"] * 3, "item_id": ids, "timestamp": [7, 8, 9]}),
    ...     name="demo",
    ... )
    >>> mine_pairs(shop, window=1).rows()
    [('Tent.', 'Sleeping bag.', 1), ('Sleeping bag.', 'Stove.', 1)]
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"window must be a positive integer, got {window!r}")
    unique, item_code = _text_codes(item_texts(data.items))
    histories = RetailerIndex.build(data).histories
    events = item_code[histories.items]  # text code of every event, customers' runs contiguous
    user = histories.user_of_event()
    anchors, positives, gaps, positions = [], [], [], []
    for gap in range(1, window + 1):
        n = len(events) - gap
        if n <= 0:
            break
        same_customer = user[:n] == user[gap:]
        a, b = events[:n], events[gap:]
        keep = same_customer & (a >= 0) & (b >= 0) & (a != b)
        anchors.append(a[keep])
        positives.append(b[keep])
        gaps.append(np.full(int(keep.sum()), gap, dtype=np.int64))
        positions.append(np.flatnonzero(keep))
    empty = pl.DataFrame(
        {"anchor": [], "positive": [], "gap": []},
        schema={"anchor": pl.String, "positive": pl.String, "gap": pl.Int64},
    )
    if not anchors or sum(len(x) for x in anchors) == 0:
        return empty
    a = np.concatenate(anchors)
    b = np.concatenate(positives)
    g = np.concatenate(gaps)
    order = np.lexsort((np.concatenate(positions), g))  # by gap, then by time of occurrence
    key = np.minimum(a, b) * len(unique) + np.maximum(a, b)  # the unordered pair
    _, first = np.unique(key[order], return_index=True)
    kept = order[np.sort(first)]
    texts = np.array(unique, dtype=object)
    return pl.DataFrame(
        {"anchor": texts[a[kept]].tolist(), "positive": texts[b[kept]].tolist(), "gap": g[kept]},
        schema=empty.schema,
    )


def _budgets(sizes: Sequence[int], total: int) -> list[int]:
    """Split ``total`` as evenly as possible, no part above its size (water filling)."""
    budgets = [0] * len(sizes)
    remaining = total
    by_size = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for done, i in enumerate(by_size):
        share = -(-remaining // (len(sizes) - done))  # ceil: the last ones take the remainder
        budgets[i] = min(sizes[i], share)
        remaining -= budgets[i]
    return budgets


def _category_negatives(
    data: RetailerData, anchors: list[str], positives: list[str], rng: np.random.Generator
) -> list[str | None]:
    """A product of the positive's category for every pair, where the catalogue has categories."""
    texts = item_texts(data.items)
    categories = data.items[Columns.CATEGORY].fill_null("").str.strip_chars().to_list()
    if sum(1 for c in categories if c) < MIN_CATEGORY_SHARE * max(1, len(categories)):
        return [None] * len(anchors)
    members: dict[str, list[str]] = {}
    category_of: dict[str, str] = {}
    for text, category in zip(texts, categories, strict=True):
        if text.strip() and category:
            category_of.setdefault(text, category)
            if category_of[text] == category:
                members.setdefault(category, []).append(text)
    for category, group in members.items():
        members[category] = list(dict.fromkeys(group))
    negatives: list[str | None] = []
    for anchor, positive in zip(anchors, positives, strict=True):
        group = members.get(category_of.get(positive, ""), [])
        choice = None
        if len(group) > 2:
            for _ in range(8):  # a few draws suffice unless the category is tiny
                candidate = group[int(rng.integers(len(group)))]
                if candidate not in (anchor, positive):
                    choice = candidate
                    break
        negatives.append(choice)
    return negatives


def training_pairs(
    sources: Sequence[RetailerData],
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    window: int = DEFAULT_WINDOW,
    hard_negatives: bool = True,
    random_state: int = 0,
) -> pl.DataFrame:
    """The seeded sample of product-text pairs the encoder is fine-tuned on.

    Each source's pairs come from :func:`mine_pairs`; ``max_pairs`` is split evenly across the
    sources (a source with fewer pairs than its share gives the rest to the others); within a
    source, consecutive pairs are taken before co-purchase pairs, in seeded random order. An
    unordered pair of texts that two sources share is kept once.

    Parameters
    ----------
    sources
        Loaded retailers with distinct names.
    max_pairs
        The most pairs returned.
    window
        Passed to :func:`mine_pairs`.
    hard_negatives
        Draw a same-category product as a hard negative for pairs of sources whose catalogue has
        categories (``negative`` is null elsewhere).
    random_state
        Seed of the sampling.

    Returns
    -------
    polars.DataFrame
        ``source`` (the retailer's name), ``anchor``, ``positive``, ``negative`` (str or null):
        product text only.

    Examples
    --------
    >>> pairs = training_pairs([shop_a, shop_b], max_pairs=1_000)  # doctest: +SKIP
    >>> pairs.columns  # doctest: +SKIP
    ['source', 'anchor', 'positive', 'negative']
    """
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1:
        raise ConfigError(f"max_pairs must be a positive integer, got {max_pairs!r}")
    names = [data.name for data in sources]
    if not names:
        raise ConfigError("training_pairs needs at least one source retailer; none was given")
    if len(set(names)) != len(names):
        raise ConfigError(f"source retailers need distinct names, got {names!r}")
    # An unordered pair of texts two sources share is kept once, at the first of them.
    mined = pl.concat(
        [
            mine_pairs(data, window=window).with_columns(source=pl.lit(i))
            for i, data in enumerate(sources)
        ]
    )
    low = pl.min_horizontal("anchor", "positive").alias("low")
    high = pl.max_horizontal("anchor", "positive").alias("high")
    mined = mined.filter(pl.struct(low, high).is_first_distinct())
    by_source = [mined.filter(pl.col("source") == i) for i in range(len(sources))]
    budgets = _budgets([m.height for m in by_source], max_pairs)
    parts = []
    for i, (data, pairs, budget) in enumerate(zip(sources, by_source, budgets, strict=True)):
        rng = np.random.default_rng([random_state, i])
        priority = pairs["gap"].to_numpy() + rng.random(pairs.height)  # gap 1 first, then 2, ...
        chosen = pairs[np.sort(np.argsort(priority, kind="stable")[:budget])]
        anchors, positives = chosen["anchor"].to_list(), chosen["positive"].to_list()
        negatives = (
            _category_negatives(data, anchors, positives, rng)
            if hard_negatives
            else [None] * len(anchors)
        )
        parts.append(
            pl.DataFrame(
                {
                    "source": [data.name] * len(anchors),
                    "anchor": anchors,
                    "positive": positives,
                    "negative": negatives,
                },
                schema=dict.fromkeys(PAIR_COLUMNS, pl.String),
            )
        )
    return pl.concat(parts)
