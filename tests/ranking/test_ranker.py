"""Joining two LightGBM rankers into one booster (the blend the guard may ship)."""

import lightgbm as lgb
import numpy as np
import pytest

from rectransfer.ranking.ranker import predict, sum_of_boosters

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2000, 5))
Y = (X[:, 0] + RNG.normal(size=2000) > 0).astype(int)
GROUPS = [20] * 100


def _ranker(rounds: int, leaves: int, features: int = 5) -> lgb.Booster:
    params = {"objective": "lambdarank", "verbosity": -1, "num_leaves": leaves, "seed": 0}
    return lgb.train(params, lgb.Dataset(X[:, :features], Y, group=GROUPS), rounds)


def test_the_joined_booster_scores_the_sum_and_keeps_every_tree():
    first, second = _ranker(12, 7), _ranker(3, 5)  # tree numbers reach two digits
    joined = sum_of_boosters(first, second, X)
    assert joined.num_trees() == 15
    fresh = RNG.normal(size=(500, 5))  # rows it was not checked on
    assert np.allclose(predict(joined, fresh), predict(first, fresh) + predict(second, fresh))
    # it round-trips through LightGBM's text format like any model
    again = lgb.Booster(model_str=joined.model_to_string())
    assert np.allclose(predict(again, fresh), predict(joined, fresh))


def test_boosters_over_other_features_are_not_joined():
    with pytest.raises(ValueError, match="different features"):
        sum_of_boosters(_ranker(3, 5), _ranker(3, 5, features=4), X)
