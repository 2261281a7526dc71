"""Rule rankers: popularity and the order-aware ``markov`` heuristic as weighted sums of the
ranker's own feature columns.

Some shops follow simple habits that a learnt ranker trained on a few hundred customers does not
beat: "what is popular" or "what resembles, and what usually follows, the last few items". The
guard measures these rules beside the learnt rankers and, when ``adapt(..., ship_rules=True)``
asks, ships one where it wins on validation (:func:`rectransfer.transfer.guard.decide`). A rule
reads the same candidate rows and features as a LightGBM ranker, so it is served by the same code
with no other path:

* ``popularity``: the order the shop's popular lists use, the candidate's percentiles of recent
  and of all-time popularity summed (``recent_pct + pop_pct``);
* ``markov``: ``sim_last + w * (trans_fwd + trans_bwd)``, the text similarity to the last item plus
  ``w`` times the transitions (both directions) from the last three items, newest weighing 1 and
  each older one half as much: the ``markov`` row of ``rectransfer benchmark``
  (:mod:`rectransfer.evaluation.markov`) with its decay 0.5, restricted to the candidates. ``w`` is
  chosen on the training lists (:func:`choose_markov_weight`), never on the validation items the
  guard compares it on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rectransfer.errors import ConfigError
from rectransfer.metrics import ndcg_at, target_ranks
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.training_data import LabelledRows

RULE_NAMES = ("markov", "popularity")
MARKOV_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
MARKOV_METRIC_K = 10  # weights are compared by NDCG@10 on the training lists

Rule = dict[str, float]  # feature name -> weight


def popularity_rule() -> Rule:
    """Rank candidates as popular lists do: recent plus all-time popularity percentile."""
    return {"recent_pct": 1.0, "pop_pct": 1.0}


def markov_rule(weight: float) -> Rule:
    """Last-item text similarity plus ``weight`` times the transitions from the last items.

    Examples
    --------
    >>> markov_rule(2.0)
    {'sim_last': 1.0, 'trans_fwd': 2.0, 'trans_bwd': 2.0}
    """
    return {"sim_last": 1.0, "trans_fwd": float(weight), "trans_bwd": float(weight)}


def check_rule(rule: Mapping[str, float]) -> Rule:
    """The rule as a plain dict, or ValueError naming the unknown feature or bad weight.

    Examples
    --------
    >>> check_rule({"pop_pct": 1})
    {'pop_pct': 1.0}
    >>> check_rule({"price": 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a rule may weigh only the ranker's features (...); 'price' is not one
    """
    if not rule:
        raise ValueError("a rule needs at least one weighted feature")
    for name, weight in rule.items():
        if name not in FEATURE_NAMES:
            raise ValueError(
                f"a rule may weigh only the ranker's features ({', '.join(FEATURE_NAMES)}); "
                f"{name!r} is not one"
            )
        if not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ValueError(f"the weight of {name!r} must be a finite number, got {weight!r}")
    return {name: float(weight) for name, weight in rule.items()}


def rule_scores(rule: Mapping[str, float], features: np.ndarray) -> np.ndarray:
    """Scores of candidate feature rows (columns in ``FEATURE_NAMES`` order) under ``rule``.

    Examples
    --------
    >>> x = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    >>> x[:, FEATURE_NAMES.index("pop_pct")] = [0.25, 0.75]
    >>> rule_scores({"pop_pct": 2.0}, x).tolist()
    [0.5, 1.5]
    """
    scores = np.zeros(len(features), dtype=np.float64)
    for name, weight in rule.items():  # only the weighted columns: rows can number millions
        scores += weight * features[:, FEATURE_NAMES.index(name)].astype(np.float64)
    return scores


def choose_markov_weight(
    rows: LabelledRows, weights: Sequence[float] = MARKOV_WEIGHTS
) -> float | None:
    """The markov weight with the best NDCG@10 on labelled lists (ties: the smaller weight).

    ``rows`` are training lists (labels from earlier cuts than the validation items). None when
    no list holds its label, so there is nothing to choose on.
    """
    if not weights or min(weights) < 0:
        raise ConfigError(f"weights must be non-empty and >= 0, got {list(weights)!r}.")
    if not np.any(rows.rows.label == 1):
        return None
    text = rule_scores({"sim_last": 1.0}, rows.rows.features)
    moves = rule_scores({"trans_fwd": 1.0, "trans_bwd": 1.0}, rows.rows.features)
    figures = {
        float(w): ndcg_at(
            target_ranks(rows.group, rows.rows.label, text + w * moves, rows.n_groups),
            MARKOV_METRIC_K,
        )
        for w in sorted(weights)
    }
    return max(figures, key=lambda w: (figures[w], -w))
