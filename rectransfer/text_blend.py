"""Lists for customers known only by their own words: their text blended with popularity.

A customer's own text (a profile, searches, tags) may say much about what they will take, or
almost nothing: on film-rating data, demographics and tags alone did ten times worse than plain
popularity. So the text path does not trust text blindly. It scores the catalogue by

    w * z(similarity to the customer's text) + (1 - w) * z(popularity),

each signal standardised (the similarity per customer, popularity over the catalogue), and picks
``w`` on the retailer's own customers who have both text and interactions: the weight whose lists,
made from their text alone, best find the items they really took (NDCG@10). ``w = 0`` is the popular
list and ``w = 1`` text alone. Popularity for this choice leaves out the customers it is measured
on (one fifth of them at a time), as it would for a newcomer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rectransfer.stats import popularity_without
from rectransfer.topk import top_k_rows

if TYPE_CHECKING:
    from rectransfer.prepare import PreparedRetailer

WEIGHTS = tuple(round(float(w), 1) for w in np.linspace(0.0, 1.0, 11))
MAX_CALIBRATION_CUSTOMERS = 2_000
MIN_CALIBRATION_CUSTOMERS = 20
# With too few customers to choose on, text and popularity count equally: text then reorders
# the popular items rather than replacing them.
DEFAULT_WEIGHT = 0.5
METRIC_K = 10
TIE_BREAK_K = 50  # weights equal at METRIC_K are told apart deeper down the list
FOLDS = 5  # popularity for each fifth of them is counted without that fifth
BLOCK = 256  # calibration customers scored at a time (a block x catalogue float32 matrix)


@dataclass(frozen=True)
class TextBlend:
    """The text weight of the text path and the evidence it was chosen on."""

    weight: float
    customers: int  # customers with text and interactions it was chosen on
    ndcg: dict[float, float] = field(default_factory=dict)  # NDCG@10 per weight tried
    reason: str = ""

    def scores(
        self, user_vectors: np.ndarray, item_vectors: np.ndarray, popularity: np.ndarray
    ) -> np.ndarray:
        """Blended scores (customers x items) of customers' text vectors against the catalogue.

        ``popularity`` is the raw popularity of every item; it is standardised here.
        """
        return blend(user_vectors @ item_vectors.T, standardise(popularity), self.weight)


def standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean and unit spread along the last axis (a constant row becomes zeros)."""
    values = np.asarray(values, dtype=np.float32)
    mean = values.mean(axis=-1, keepdims=True)
    spread = values.std(axis=-1, keepdims=True)
    return np.asarray((values - mean) / np.where(spread > 0, spread, 1.0), dtype=np.float32)


def blend(similarity: np.ndarray, popularity_z: np.ndarray, weight: float) -> np.ndarray:
    """``weight * z(similarity) + (1 - weight) * popularity_z``, row by row."""
    if weight >= 1.0:
        return np.asarray(similarity, dtype=np.float32)  # text alone, unchanged
    if weight <= 0.0:
        return np.broadcast_to(popularity_z, similarity.shape).astype(np.float32)
    return np.asarray(
        weight * standardise(similarity) + (1.0 - weight) * popularity_z, dtype=np.float32
    )


def fit_text_blend(prepared: PreparedRetailer, *, random_state: int = 0) -> TextBlend:
    """Choose the text weight on ``prepared``'s customers with text and interactions.

    At most ``MAX_CALIBRATION_CUSTOMERS`` of them (seeded); each one's list from their text alone
    is scored against every item they interacted with. Weights equal at NDCG@10 are told apart by
    NDCG@50, then the lower weight wins.
    """
    histories = prepared.index.histories
    with_text = prepared.user_vectors.rows
    with_text = with_text[histories.lengths[with_text] > 0]
    if len(with_text) < MIN_CALIBRATION_CUSTOMERS:
        return TextBlend(
            DEFAULT_WEIGHT,
            len(with_text),
            reason=(
                f"{len(with_text)} customers have both text and interactions (need "
                f"{MIN_CALIBRATION_CUSTOMERS} to choose); text and popularity count equally"
            ),
        )
    rng = np.random.default_rng(random_state)
    if len(with_text) > MAX_CALIBRATION_CUSTOMERS:
        with_text = np.sort(rng.choice(with_text, MAX_CALIBRATION_CUSTOMERS, replace=False))
    item_vectors = prepared.catalogue.vectors
    totals = dict.fromkeys(WEIGHTS, 0.0)
    deep_totals = dict.fromkeys(WEIGHTS, 0.0)
    folds = np.array_split(rng.permutation(with_text), FOLDS)
    # popularity as a newcomer would see it: each fold counted without its own customers
    for fold, popularity in zip(folds, popularity_without(histories, folds), strict=True):
        popularity_z = standardise(popularity)
        for start in range(0, len(fold), BLOCK):
            rows = np.sort(fold[start : start + BLOCK])
            relevant = np.zeros((len(rows), histories.n_items), dtype=bool)
            customer = np.repeat(np.arange(len(rows)), histories.lengths[rows])
            relevant[customer, histories.select(rows).items] = True
            similarity = prepared.user_vectors[rows] @ item_vectors.T
            for weight in WEIGHTS:
                top, _ = top_k_rows(blend(similarity, popularity_z, weight), TIE_BREAK_K)
                totals[weight] += float(set_ndcg(top[:, :METRIC_K], relevant).sum())
                deep_totals[weight] += float(set_ndcg(top, relevant).sum())
    ndcg = {weight: total / len(with_text) for weight, total in totals.items()}
    best = max(WEIGHTS, key=lambda w: (round(ndcg[w], 9), round(deep_totals[w], 6), -w))
    return TextBlend(
        best,
        len(with_text),
        ndcg,
        reason=(
            f"chosen on {len(with_text)} customers with text and interactions: NDCG@{METRIC_K} "
            f"{ndcg[best]:.4f} at weight {best} (text alone {ndcg[1.0]:.4f}, popularity "
            f"{ndcg[0.0]:.4f})"
        ),
    )


def set_ndcg(top: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per-row NDCG of ranked lists ``top`` against boolean relevance (customers x items)."""
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    hits = np.take_along_axis(relevant, top, axis=1)
    sizes = np.minimum(relevant.sum(axis=1), top.shape[1])
    ideal = np.cumsum(discounts)[np.maximum(sizes - 1, 0)]
    gains = (hits * discounts).sum(axis=1)
    return np.where(sizes > 0, gains / ideal, 0.0)
