"""Reference rows from the ``implicit`` library (ALS and item-item), tuned on validation only.

Optional: ``implicit`` comes with the ``bench`` extra and is imported only when a reference is
fitted, so the package and the benchmark work without it (the benchmark then has no such rows
and says so in its ``notes``).

Protocol, the same as every other benchmark row: ``known`` holds every customer's interactions
before their test item. Its last item per customer is the validation target and the rest the
training part. Each setting of a small grid is fitted on the training part of all customers and
scored by NDCG@10 on the validation targets (whole catalogue, own earlier items removed); the best
one (the first in grid order on a tie) is kept *without refitting*, and the test is scored from
the customer's whole known history, validation item included: ALS solves the customer's factors
from that history against the fixed item factors, item-item sums the fixed similarities over it.
The test item never reaches this module.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from rectransfer.data.histories import Histories
from rectransfer.errors import ConfigError
from rectransfer.evaluation.baselines import Scorer, dense_target_ranks
from rectransfer.metrics import ndcg_at

IMPLICIT_MODELS = ("implicit-als", "implicit-item-knn")
IMPLICIT_MISSING_NOTE = (
    "implicit is not installed: no implicit-als / implicit-item-knn reference rows "
    "(pip install -e '.[bench]')"
)
SELECTION_K = 10  # settings are compared by validation NDCG@10, the headline metric

# Small grids on purpose: every fraction and seed of the benchmark runs them in full.
ALS_FACTORS = (32, 64, 128)
ALS_REGULARIZATION = (0.01, 0.1)
ALS_ITERATIONS = 15
# implicit weighs a bought item ``alpha`` against 1 for every item not bought; with a few items
# per customer among thousands, alpha = 1 lets the missing ones drown them. Fixed rather than
# searched to keep the grid small; 10 had the best validation NDCG@10 on amazon-office at f = 1
# (best of the grid .0406, against .0246 at alpha = 1 and .0358 at 40).
ALS_ALPHA = 10.0
KNN_SIMILARITIES = ("cosine", "bm25")
KNN_NEIGHBOURS = (20, 100, 200)


def implicit_available() -> bool:
    """Whether the optional ``implicit`` library can be imported (the ``bench`` extra)."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class TunedReference:
    """One ``implicit`` model with its setting chosen on validation, ready to score the test.

    ``scorer`` scores rows of the ``known`` histories it was tuned on, from each customer's whole
    known history; ``validation`` maps every setting tried (in grid order) to its validation
    NDCG@10; ``fit_seconds`` is the whole search: every fit and every validation ranking.
    """

    name: str
    params: dict[str, Any]
    validation: dict[str, float]
    scorer: Scorer
    fit_seconds: float

    def report(self) -> dict[str, Any]:
        """What a benchmark row records about the choice (JSON-serialisable)."""
        return {
            "params": dict(self.params),
            f"validation_ndcg@{SELECTION_K}": self.validation[_label(self.params)],
            "validation": dict(self.validation),
        }


def tune_references(
    known: Histories,
    *,
    random_state: int = 0,
) -> list[TunedReference]:
    """Fit ``implicit`` ALS and item-item on the training part of ``known``, choose each one's
    setting on the validation item, and return scorers for the test.

    Parameters
    ----------
    known : Histories
        Every customer's interactions before their test item, in time order; the last one is the
        validation target.
    random_state : int
        Seeds ALS's initial factors; the same seed gives the same rows.

    Returns
    -------
    list of TunedReference
        ``implicit-als`` and ``implicit-item-knn``, in that order.

    Raises
    ------
    ConfigError
        When no customer has both a training and a validation item.

    Examples
    --------
    >>> import numpy as np
    >>> from rectransfer.data.histories import Histories
    >>> known = Histories(np.array([0, 3, 6]), np.array([0, 1, 2, 1, 2, 3], dtype=np.int32),
    ...                   np.zeros(6, dtype=np.int64), 5)
    >>> [r.name for r in tune_references(known)]  # doctest: +SKIP
    ['implicit-als', 'implicit-item-knn']
    """
    train = known.truncate(1)
    targets = known.last(0)
    rows = np.flatnonzero((train.lengths > 0) & (targets >= 0))
    if len(rows) == 0:
        raise ConfigError(
            "the implicit references need customers with at least two interactions before their "
            f"test item (one to train on, one to validate on); none of the {known.n_users!r} "
            "customers has them. Give the benchmark customers with three or more interactions."
        )
    train_items = _user_items(train)
    known_items = _user_items(known)
    excluded = train.select(rows)

    def validation_ndcg(scorer: Scorer) -> float:
        return ndcg_at(dense_target_ranks(scorer, rows, targets[rows], excluded), SELECTION_K)

    return [
        _search(
            "implicit-als", _als_settings(random_state), train_items, known_items, validation_ndcg
        ),
        _search("implicit-item-knn", _knn_settings(), train_items, known_items, validation_ndcg),
    ]


# A fit takes the training matrix and returns a builder: a scorer from any customers' histories.
Fit = Callable[[sp.csr_matrix], Callable[[sp.csr_matrix], Scorer]]


def _search(
    name: str,
    settings: list[tuple[dict[str, Any], Fit]],
    train_items: sp.csr_matrix,
    known_items: sp.csr_matrix,
    validation_ndcg: Callable[[Scorer], float],
) -> TunedReference:
    started = time.perf_counter()
    validation: dict[str, float] = {}

    def tried(
        params: dict[str, Any], fit: Fit
    ) -> tuple[float, dict[str, Any], Callable[[sp.csr_matrix], Scorer]]:
        with _single_threaded():
            build = fit(train_items)
            score = validation_ndcg(build(train_items))
        validation[_label(params)] = score
        return score, params, build

    # max keeps the first of equal scores: a tie goes to the earlier (smaller) setting
    _, params, build = max((tried(*setting) for setting in settings), key=lambda t: t[0])
    return TunedReference(
        name=name,
        params=params,
        validation=validation,
        scorer=build(known_items),
        fit_seconds=time.perf_counter() - started,
    )


def _als_settings(random_state: int) -> list[tuple[dict[str, Any], Fit]]:
    from implicit.cpu.als import AlternatingLeastSquares

    def setting(factors: int, regularization: float) -> Fit:
        def fit(matrix: sp.csr_matrix) -> Callable[[sp.csr_matrix], Scorer]:
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=ALS_ALPHA,
                iterations=ALS_ITERATIONS,
                num_threads=1,
                random_state=random_state,
            )
            model.fit(matrix, show_progress=False)

            def build(histories: sp.csr_matrix) -> Scorer:
                def score(rows: np.ndarray) -> np.ndarray:
                    # the customer's factors solved from their history, item factors fixed
                    with _single_threaded():
                        users = model.recalculate_user(np.arange(len(rows)), histories[rows])
                        return np.asarray(users @ model.item_factors.T, dtype=np.float64)

                return score

            return build

        return fit

    return [
        (
            {
                "factors": factors,
                "regularization": regularization,
                "alpha": ALS_ALPHA,
                "iterations": ALS_ITERATIONS,
            },
            setting(factors, regularization),
        )
        for factors in ALS_FACTORS
        for regularization in ALS_REGULARIZATION
    ]


def _knn_settings() -> list[tuple[dict[str, Any], Fit]]:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
    from implicit.utils import ParameterWarning

    kinds = {"cosine": CosineRecommender, "bm25": BM25Recommender}

    def setting(similarity: str, neighbours: int) -> Fit:
        def fit(matrix: sp.csr_matrix) -> Callable[[sp.csr_matrix], Scorer]:
            model = kinds[similarity](K=neighbours, num_threads=1)
            with warnings.catch_warnings():
                # implicit 0.7's own Cosine/BM25 fit hands a COO matrix to its k-NN routine and
                # warns about it; our input is CSR already.
                warnings.filterwarnings(
                    "ignore", message="Method expects CSR input", category=ParameterWarning
                )
                model.fit(matrix, show_progress=False)
            similarity_matrix = model.similarity.tocsr()

            def build(histories: sp.csr_matrix) -> Scorer:
                def score(rows: np.ndarray) -> np.ndarray:
                    # what implicit's recommend sums, for every item: similarities over the history
                    block = histories[rows] @ similarity_matrix
                    return np.asarray(block.todense(), dtype=np.float64)

                return score

            return build

        return fit

    return [
        ({"similarity": similarity, "K": neighbours}, setting(similarity, neighbours))
        for similarity in KNN_SIMILARITIES
        for neighbours in KNN_NEIGHBOURS
    ]


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def _user_items(histories: Histories) -> sp.csr_matrix:
    """Customers x items, 1 where bought (repeat purchases count once, as in ``item-knn``)."""
    user = histories.user_of_event()
    matrix = sp.csr_matrix(
        (np.ones(len(user), dtype=np.float32), (user, histories.items)),
        shape=(histories.n_users, histories.n_items),
    )
    matrix.data[:] = 1.0
    return matrix


@contextmanager
def _single_threaded() -> Iterator[None]:
    """BLAS on one thread: the machine is shared, and implicit warns (and slows) otherwise."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
