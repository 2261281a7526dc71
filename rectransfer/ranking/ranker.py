"""The LightGBM LambdaRank ranker: train from scratch, or continue boosting from a broad model.

Continued boosting is the fine-tuning path: the broad model's trees stay as they are and a few
small, strongly shrunk trees learn what is different at this retailer. That, a low learning rate,
larger leaves and L2 on leaf values are how adaptation is kept close to the broad model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np

from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.training_data import LabelledRows
from rectransfer.utils.progress import Progress, progress

NUM_THREADS = 1
BROAD_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
    # One thread: results do not depend on the machine's core count, and LightGBM's OpenMP
    # threads do not fight torch's (in one process they slowed training down tenfold).
    "num_threads": NUM_THREADS,
}
BROAD_ROUNDS = 400

# Fine-tuning: few, shallow, shrunk trees on top of the broad model.
ADAPT_PARAMS: dict[str, Any] = {
    **BROAD_PARAMS,
    "learning_rate": 0.02,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "lambda_l2": 10.0,
}
ADAPT_ROUNDS = 150
# With enough of the retailer's own customers to early-stop on, fine-tuning may go as far as a
# local model would (early stopping is then what keeps it close to the broad model).
ADAPT_PARAMS_RICH: dict[str, Any] = {**BROAD_PARAMS, "num_leaves": 15, "min_data_in_leaf": 30}
ADAPT_ROUNDS_RICH = 300
# A small shop's model from scratch (the "local-only" comparison): the same kind, regularised.
LOCAL_PARAMS: dict[str, Any] = {**BROAD_PARAMS, "num_leaves": 15, "min_data_in_leaf": 30}
LOCAL_ROUNDS = 300

EARLY_STOPPING_ROUNDS = 30
# The broad model waits longer: on the sources its validation NDCG dips for tens of rounds after
# about 30 and climbs again (.3685 at 29 rounds, .3642 at 50, .3737 at 200). Stopping at the dip
# left every target's transfer 2-5% short (docs/BENCHMARKS.md).
BROAD_EARLY_STOPPING_ROUNDS = 100
# Below this many validation groups early stopping follows noise; train a fixed number of rounds.
MIN_EARLY_STOPPING_GROUPS = 150
FIXED_ROUNDS_SHARE = 0.25  # ... namely this share of the maximum


def _dataset(
    rows: LabelledRows,
    reference: lgb.Dataset | None = None,
    weight: Callable[[LabelledRows], np.ndarray] | None = None,
) -> lgb.Dataset:
    return lgb.Dataset(
        rows.rows.features,
        label=rows.rows.label,
        group=rows.group_sizes(),
        weight=None if weight is None else weight(rows),
        feature_name=list(FEATURE_NAMES),
        reference=reference,
        free_raw_data=False,
    )


def train_ranker(
    train: LabelledRows,
    valid: LabelledRows | None,
    *,
    params: dict[str, Any],
    max_rounds: int,
    init_model: lgb.Booster | None = None,
    random_state: int = 0,
    patience: int = EARLY_STOPPING_ROUNDS,
    label: str = "the ranker",
    weight: Callable[[LabelledRows], np.ndarray] | None = None,
) -> tuple[lgb.Booster, int]:
    """Train (or continue training ``init_model``) and return the booster and the rounds added.

    With enough validation groups, rounds are chosen by early stopping on ``valid`` (NDCG@10);
    otherwise a fixed share of ``max_rounds`` is trained, since a handful of customers cannot
    tell good rounds from bad ones. ``patience``: rounds without a better score before stopping;
    ``label`` names the model in progress lines; ``weight`` gives every row of a set its weight
    (the lists of one customer alike), in training and in the early-stopping score.
    """
    train = train.positives_only()
    if train.n_groups == 0:
        raise ValueError("no training customer has their next item among the candidates")
    full_params = {**params, "seed": random_state}
    train_set = _dataset(train, weight=weight)
    valid = valid.positives_only() if valid is not None else None
    use_early_stopping = valid is not None and valid.n_groups >= MIN_EARLY_STOPPING_GROUPS
    if use_early_stopping and valid is not None:
        valid_set = _dataset(valid, reference=train_set, weight=weight)
        with progress(f"training {label}", total=max_rounds, unit="rounds") as bar:
            booster = lgb.train(
                full_params,
                train_set,
                num_boost_round=max_rounds,
                valid_sets=[valid_set],
                valid_names=["valid"],
                init_model=init_model,
                callbacks=[lgb.early_stopping(patience, verbose=False), _reporting(bar)],
            )
        base_rounds = init_model.current_iteration() if init_model is not None else 0
        # best_iteration counts the init model's rounds too
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        return _truncate(booster, best), best - base_rounds
    rounds = max(1, int(max_rounds * FIXED_ROUNDS_SHARE))
    with progress(f"training {label}", total=rounds, unit="rounds") as bar:
        booster = lgb.train(
            full_params,
            train_set,
            num_boost_round=rounds,
            init_model=init_model,
            callbacks=[_reporting(bar)],
        )
    return booster, rounds


def _reporting(bar: Progress) -> Callable[[Any], None]:
    """A LightGBM callback that moves ``bar`` one round on, with the validation score."""

    def callback(env: Any) -> None:
        scores = [f"{metric} {value:.4f}" for _, metric, value, _ in env.evaluation_result_list]
        bar.update(1, note=", ".join(scores[:1]))

    return callback


def _truncate(booster: lgb.Booster, n_rounds: int) -> lgb.Booster:
    """A booster holding only its first ``n_rounds`` rounds."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=n_rounds))


def sum_of_boosters(first: lgb.Booster, second: lgb.Booster, probe: np.ndarray) -> lgb.Booster:
    """One booster whose score is the sum of the two: their trees, one list after the other.

    Within a customer's candidates a sum ranks as the average of the two models does. LightGBM
    has no call that joins models, so the text format is joined: the first model's header (with
    ``tree_sizes`` recomputed), the trees of both renumbered, the first model's trailer. The result
    must score ``probe`` rows as the sum of the two, or it is refused (``ValueError``).
    """
    first_text, second_text = first.model_to_string(), second.model_to_string()
    if first.feature_name() != second.feature_name():
        raise ValueError("the two boosters use different features")
    trees = [
        re.sub(r"^Tree=\d+", f"Tree={i}", block)
        for i, block in enumerate(_tree_blocks(first_text) + _tree_blocks(second_text))
    ]
    header = first_text[: first_text.index("Tree=0\n")]
    sizes = " ".join(str(len(block.encode())) for block in trees)
    header = re.sub(r"(?m)^tree_sizes=.*$", f"tree_sizes={sizes}", header)
    joined = lgb.Booster(
        model_str=header + "".join(trees) + first_text[first_text.index(_END_OF_TREES) :]
    )
    expected = predict(first, probe) + predict(second, probe)
    if not np.allclose(predict(joined, probe), expected, rtol=1e-9, atol=1e-9):
        raise ValueError("the joined booster does not score as the sum of the two")
    return joined


_END_OF_TREES = "end of trees"


def _tree_blocks(model_text: str) -> list[str]:
    """The ``Tree=<i>`` blocks of a LightGBM text model, each with its trailing blank lines."""
    body = model_text[model_text.index("Tree=0\n") : model_text.index(_END_OF_TREES)]
    return [block for block in re.split(r"(?m)^(?=Tree=\d+$)", body) if block.strip()]


def predict(booster: lgb.Booster, features: np.ndarray) -> np.ndarray:
    """Scores of candidate rows (higher is better)."""
    if len(features) == 0:
        return np.zeros(0, dtype=np.float64)
    scores = booster.predict(features, num_iteration=-1, num_threads=NUM_THREADS)
    return np.asarray(scores, dtype=np.float64)
