"""Sources weighted by how close their catalogues are to the retailer pretrained for."""

import importlib

import numpy as np
import pytest

import rectransfer as rt
from rectransfer.errors import ConfigError
from rectransfer.ranking.features import CandidateRows
from rectransfer.ranking.training_data import LabelledRows
from rectransfer.transfer.source_weights import (
    SOURCE_KEY_SHIFT,
    neighbour_shares,
    row_weighting,
    weights_from_shares,
)

PRETRAIN = importlib.import_module("rectransfer.transfer.pretrain")
RNG = np.random.default_rng(0)


def _region(centre: float, n: int) -> np.ndarray:
    vectors = RNG.normal(size=(n, 8)).astype(np.float32)
    vectors[:, 0] += centre
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_source_whose_products_resemble_the_retailers_gets_the_largest_share():
    target = _region(4.0, 300)
    near, middle, far = _region(4.0, 400), _region(0.0, 400), _region(-4.0, 400)
    shares = neighbour_shares(target, [far, near, middle])
    assert shares.sum() == pytest.approx(1.0)
    assert shares[1] > shares[2] > shares[0]


def test_a_big_catalogue_does_not_win_by_size():
    target = _region(0.0, 300)
    # the same region, one with ten times the products: equal shares up to sampling noise
    shares = neighbour_shares(target, [_region(0.0, 4_000), _region(0.0, 400)])
    assert shares[0] == pytest.approx(0.5, abs=0.08)


def test_weights_average_one_and_keep_every_source():
    weights = weights_from_shares(np.array([0.7, 0.3, 0.0, 0.0]))
    assert weights.mean() == pytest.approx(1.0)
    assert weights.min() == pytest.approx(0.5)  # a source nobody resembles still counts half
    assert weights[0] > weights[1] > weights[2]


def test_every_row_takes_the_weight_of_the_source_its_customer_came_from():
    rows = CandidateRows(
        query=np.array([0, 0, 1, 2, 2, 2]),
        item=np.zeros(6, np.int32),
        features=np.zeros((6, len(rt.FEATURE_NAMES)), np.float32),
        label=np.array([1, 0, 1, 0, 1, 0], np.int8),
    )
    keys = np.array([(2 << SOURCE_KEY_SHIFT) + 5, 7, (1 << SOURCE_KEY_SHIFT) + 5])
    lists = LabelledRows(rows, rows.query.copy(), keys, 3)
    weigh = row_weighting(np.array([0.5, 1.0, 2.0]))
    assert weigh(lists).tolist() == [2.0, 2.0, 0.5, 1.0, 1.0, 1.0]


def test_pretraining_for_a_retailer_weighs_its_close_sources_rows(
    sources, target, encoder, monkeypatch
):
    seen = {}
    real = PRETRAIN.train_ranker

    def recording(train, valid, **kwargs):
        weigh = kwargs["weight"]
        seen["weights"] = None if weigh is None else weigh(train)
        seen["sources"] = train.group_customer[train.group] >> SOURCE_KEY_SHIFT
        return real(train, valid, **kwargs)

    monkeypatch.setattr(PRETRAIN, "train_ranker", recording)
    model = rt.pretrain(sources, encoder=encoder, max_rounds=5, weight_towards=target)
    recorded = model.config.params["source_weights"]
    assert list(recorded) == sorted(s.name for s in sources)
    assert np.mean(list(recorded.values())) == pytest.approx(1.0, abs=1e-3)
    expected = np.array(list(recorded.values()))[seen["sources"]]
    assert np.allclose(seen["weights"], expected, atol=1e-4)
    # and without a retailer to weigh for, every source alike (LightGBM gets no weights)
    rt.pretrain(sources, encoder=encoder, max_rounds=5)
    assert seen["weights"] is None


def test_pretraining_for_one_of_the_sources_is_refused_before_any_is_prepared(
    sources, encoder, monkeypatch
):
    def not_yet(*args, **kwargs):
        raise AssertionError("a source was prepared before the refusal")

    monkeypatch.setattr(PRETRAIN, "prepare", not_yet)
    with pytest.raises(ConfigError, match="is one of the sources"):
        rt.pretrain(sources, encoder=encoder, max_rounds=5, weight_towards=sources[0])
