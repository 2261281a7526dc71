"""Lists for customers known only by their own words: their text, their text neighbours, popularity.

A customer's own text (a profile, searches, tags) may say much about what they will take, or almost
nothing: on film-rating data, demographics and tags alone did ten times worse than plain popularity.
It may also say little about products directly and much about which known customers the newcomer
resembles (:mod:`rectransfer.prepared.text_neighbours`). So the text path trusts neither blindly. It
scores the catalogue by

    a * z(similarity to the customer's text) + b * z(neighbour score) + c * z(popularity),

each signal standardised (similarity and neighbour score per customer, popularity over the
catalogue), ``a + b + c = 1``, and picks ``a, b, c`` and the number of neighbours ``K`` on the
retailer's own customers who have both text and interactions: the choice whose lists, made from
their text alone, best find the items they really took (NDCG@10). ``c = 1`` is the popular list.
Each fifth of these customers is measured as a newcomer would be served: popularity is counted
without them and they are not in the neighbour pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

from rectransfer.data.histories import Histories
from rectransfer.metrics import set_ndcg
from rectransfer.prepared.stats import popularity_without
from rectransfer.prepared.text_neighbours import NeighbourPool
from rectransfer.prepared.user_vectors import UserVectors
from rectransfer.utils.topk import top_k_rows

STEP = 0.25  # weights of the three signals: multiples of STEP summing to 1 (15 choices)
NEIGHBOURS = (20, 50, 200)  # K tried wherever the neighbour score has weight
# (text, neighbours, popularity, K); K is 0 where the neighbour score has no weight
Choice = tuple[float, float, float, int]
MAX_CALIBRATION_CUSTOMERS = 2_000
MIN_CALIBRATION_CUSTOMERS = 20
TEXT_ALONE: Choice = (1.0, 0.0, 0.0, 0)
POPULARITY_ALONE: Choice = (0.0, 0.0, 1.0, 0)
# With too few customers to choose on, there are as few to be neighbours: text and popularity
# count equally, so text reorders the popular items rather than replacing them.
DEFAULT_CHOICE: Choice = (0.5, 0.0, 0.5, 0)
DEFAULT_NEIGHBOURS = 50  # K reported where none was chosen
METRIC_K = 10
TIE_BREAK_K = 50  # choices equal at METRIC_K are told apart deeper down the list
FOLDS = 5  # each fifth of them is measured without its own customers
# Calibration customers scored at a time. Each block holds several block x catalogue float32
# matrices (similarity, neighbours at every K, the blend): at 50,000 products 256 added 0.55 GB to
# the peak, 64 adds 0.18 GB and is no slower.
BLOCK = 64


def choices() -> list[Choice]:
    """Every weight triple on the STEP simplex, with each K where the neighbours weigh."""
    steps = round(1 / STEP)
    out: list[Choice] = []
    for i, j in product(range(steps + 1), repeat=2):
        if i + j <= steps:
            a, b, c = i * STEP, j * STEP, (steps - i - j) * STEP
            out.extend((a, b, c, k) for k in (NEIGHBOURS if b > 0 else (0,)))
    return out


@dataclass(frozen=True)
class TextBlend:
    """The text path's weights and number of neighbours, and the evidence they were chosen on."""

    text: float
    neighbours: float
    popularity: float
    k: int  # neighbours per customer; where they weigh 0, the K that did best alone (unused)
    customers: int  # customers with text and interactions it was chosen on
    ndcg: dict[Choice, float] = field(default_factory=dict)  # NDCG@10 per choice tried
    reason: str = ""

    @property
    def popular_only(self) -> bool:
        """All weight on popularity: the text path serves the popular list as such."""
        return self.popularity >= 1.0

    @property
    def choice(self) -> Choice:
        return (self.text, self.neighbours, self.popularity, self.k if self.neighbours else 0)

    def scores(
        self,
        user_vectors: np.ndarray,
        item_vectors: np.ndarray,
        popularity: np.ndarray,
        pool: NeighbourPool,
    ) -> np.ndarray:
        """Blended scores (customers x items) of customers' text vectors against the catalogue.

        ``popularity`` is the raw popularity of every item; it is standardised here. ``pool`` is
        the retailer's neighbour pool.
        """
        shape = (len(user_vectors), len(item_vectors))
        similarity = (  # signals with no weight are not computed
            standardise(user_vectors @ item_vectors.T)
            if self.text > 0
            else np.zeros(shape, np.float32)
        )
        neighbours = standardise(pool.scores(user_vectors, self.k)) if self.neighbours > 0 else None
        return blend(self.choice, similarity, neighbours, standardise(popularity))


def standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean and unit spread along the last axis (a constant row becomes zeros)."""
    values = np.asarray(values, dtype=np.float32)
    mean = values.mean(axis=-1, keepdims=True)
    spread = values.std(axis=-1, keepdims=True)
    return np.asarray((values - mean) / np.where(spread > 0, spread, 1.0), dtype=np.float32)


def blend(
    choice: Choice,
    similarity_z: np.ndarray,
    neighbours_z: np.ndarray | None,
    popularity_z: np.ndarray,
) -> np.ndarray:
    """``a * similarity_z + b * neighbours_z + c * popularity_z`` for ``choice = (a, b, c, K)``.

    Signals with no weight are not read (``neighbours_z`` may then be None).
    """
    text, neighbours, popularity, _ = choice
    out = np.zeros(similarity_z.shape, dtype=np.float32)
    if text > 0:
        out += np.float32(text) * similarity_z
    if neighbours > 0:
        if neighbours_z is None:
            raise ValueError("a blend with weight on neighbours needs their scores")
        out += np.float32(neighbours) * neighbours_z
    if popularity > 0:
        out += np.float32(popularity) * popularity_z
    return out


def fit_text_blend(
    histories: Histories,
    user_vectors: UserVectors,
    item_vectors: np.ndarray,
    pool: NeighbourPool,
    *,
    random_state: int = 0,
) -> TextBlend:
    """Choose the weights and K on a retailer's customers with text and interactions.

    ``histories`` and ``user_vectors`` are the retailer's customers (aligned), ``item_vectors`` its
    catalogue's text vectors and ``pool`` its neighbour pool. At most ``MAX_CALIBRATION_CUSTOMERS``
    customers with text and interactions take part (seeded); each one's list from their text alone
    is scored against every item they interacted with. Choices equal at NDCG@10 are told apart by
    NDCG@50, then the simpler wins: more popularity, then less text, then fewer neighbours.
    """
    with_text = user_vectors.rows
    with_text = with_text[histories.lengths[with_text] > 0]
    if len(with_text) < MIN_CALIBRATION_CUSTOMERS:
        text, neighbours, popularity, _ = DEFAULT_CHOICE
        return TextBlend(
            text,
            neighbours,
            popularity,
            DEFAULT_NEIGHBOURS,
            len(with_text),
            reason=(
                f"{len(with_text)} customers have both text and interactions (need "
                f"{MIN_CALIBRATION_CUSTOMERS} to choose); text and popularity count equally"
            ),
        )
    rng = np.random.default_rng(random_state)
    if len(with_text) > MAX_CALIBRATION_CUSTOMERS:
        with_text = np.sort(rng.choice(with_text, MAX_CALIBRATION_CUSTOMERS, replace=False))
    tried = choices()
    totals = dict.fromkeys(tried, 0.0)
    deep_totals = dict.fromkeys(tried, 0.0)
    folds = np.array_split(rng.permutation(with_text), FOLDS)
    # each fold as newcomers: popularity counted, and neighbours drawn, without its customers
    for fold, fold_popularity in zip(folds, popularity_without(histories, folds), strict=True):
        popularity_z = standardise(fold_popularity)
        fold_in_pool = pool.mask(fold)
        for start in range(0, len(fold), BLOCK):
            rows = np.sort(fold[start : start + BLOCK])
            relevant = np.zeros((len(rows), histories.n_items), dtype=bool)
            customer = np.repeat(np.arange(len(rows)), histories.lengths[rows])
            relevant[customer, histories.select(rows).items] = True
            vectors = user_vectors[rows]
            similarity_z = standardise(vectors @ item_vectors.T)
            neighbours_z = {
                k: standardise(scores)
                for k, scores in pool.scores_by_k(vectors, NEIGHBOURS, exclude=fold_in_pool).items()
            }
            for choice in tried:
                scores = blend(choice, similarity_z, neighbours_z.get(choice[3]), popularity_z)
                top, _ = top_k_rows(scores, TIE_BREAK_K)
                totals[choice] += float(set_ndcg(top[:, :METRIC_K], relevant).sum())
                deep_totals[choice] += float(set_ndcg(top, relevant).sum())
    ndcg = {choice: total / len(with_text) for choice, total in totals.items()}
    best = max(
        tried, key=lambda c: (round(ndcg[c], 9), round(deep_totals[c], 6), c[2], -c[0], -c[3])
    )
    best_k = max(NEIGHBOURS, key=lambda k: (round(ndcg[(0.0, 1.0, 0.0, k)], 9), -k))
    text, neighbours, popularity, k = best
    return TextBlend(
        text,
        neighbours,
        popularity,
        k if neighbours > 0 else best_k,
        len(with_text),
        ndcg,
        reason=(
            f"chosen on {len(with_text)} customers with text and interactions: NDCG@{METRIC_K} "
            f"{ndcg[best]:.4f} at text {text}, neighbours {neighbours}"
            + (f" (K {k})" if neighbours > 0 else "")
            + f", popularity {popularity} (text alone {ndcg[TEXT_ALONE]:.4f}, neighbours alone "
            f"{ndcg[(0.0, 1.0, 0.0, best_k)]:.4f} at K {best_k}, popularity "
            f"{ndcg[POPULARITY_ALONE]:.4f})"
        ),
    )
