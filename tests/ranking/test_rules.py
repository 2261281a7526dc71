import numpy as np
import pytest
from pydantic import ValidationError

import rectransfer as rt
from rectransfer.evaluation.markov import markov_scorer
from rectransfer.model.config import ModelConfig
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import CandidateRows
from rectransfer.ranking.rules import (
    check_rule,
    choose_markov_weight,
    markov_rule,
    popularity_rule,
    rule_scores,
)
from rectransfer.ranking.training_data import LabelledRows, cut_queries, labelled_rows
from tests.conftest import make_shop

F = {name: i for i, name in enumerate(rt.FEATURE_NAMES)}


def test_the_markov_rule_on_candidate_rows_is_the_benchmarks_markov_row_at_decay_one_half(encoder):
    prepared = prepare(make_shop("m", seed=3, n_users=60), encoder)
    rows = labelled_rows(prepared, range(1), config=CandidateConfig())
    cut = cut_queries(prepared, 0)
    weight = 2.0
    dense = markov_scorer(
        cut.queries.context, prepared.catalogue.vectors, cut.stats, weight=weight, decay=0.5
    )
    customers = np.unique(rows.rows.query)
    expected = dense(customers)[np.searchsorted(customers, rows.rows.query), rows.rows.item]
    got = rule_scores(markov_rule(weight), rows.rows.features)
    assert np.abs(rows.rows.features[:, F["trans_fwd"]]).sum() > 0  # transitions do take part
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _lists(signal: str, n_lists: int = 60, size: int = 20, seed: int = 0) -> LabelledRows:
    """Labelled lists where only ``signal`` (text or transitions) points at the label."""
    rng = np.random.default_rng(seed)
    n = n_lists * size
    features = rng.random((n, len(rt.FEATURE_NAMES))).astype(np.float32) * 0.1
    label = np.zeros(n, dtype=np.int8)
    label[np.arange(n_lists) * size + rng.integers(0, size, n_lists)] = 1
    if signal == "transitions":
        features[:, F["sim_last"]] = rng.random(n)  # text is noise
        features[:, F["trans_fwd"]] = np.where(label == 1, 0.3, 0.0)
    else:
        features[:, F["sim_last"]] += np.where(label == 1, 0.5, 0.0)
        features[:, F["trans_fwd"]] = rng.random(n) * 0.3  # transitions are noise
    rows = CandidateRows(
        np.repeat(np.arange(n_lists), size), np.zeros(n, np.int32), features, label
    )
    return LabelledRows(rows, np.repeat(np.arange(n_lists), size), np.arange(n_lists), n_lists)


def test_the_markov_weight_follows_the_signal_of_the_training_lists():
    assert choose_markov_weight(_lists("transitions")) >= 4.0
    assert choose_markov_weight(_lists("text")) == 0.0


def test_no_list_with_its_label_leaves_nothing_to_choose_the_weight_on():
    lists = _lists("text")
    lists.rows.label[:] = 0
    assert choose_markov_weight(lists) is None


def test_the_popularity_rule_orders_candidates_as_the_shops_popular_lists_do(encoder):
    prepared = prepare(make_shop("p", seed=4, n_users=60), encoder)
    rows = labelled_rows(prepared, range(1), config=CandidateConfig())
    popular = cut_queries(prepared, 0).stats.popular  # what popular lists sort by
    np.testing.assert_allclose(
        rule_scores(popularity_rule(), rows.rows.features), popular[rows.rows.item], atol=1e-6
    )
    assert np.unique(popular[rows.rows.item]).size > 5  # popularity does vary among them


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({}, "at least one"),
        ({"price": 1.0}, "'price' is not one"),
        ({"pop_pct": float("nan")}, "finite number"),
    ],
)
def test_a_bad_rule_is_refused_with_what_is_wrong(rule, message):
    with pytest.raises(ValueError, match=message):
        check_rule(rule)


def test_a_model_config_ties_the_rule_to_its_kind(broad):
    fields = broad.config.model_dump()
    with pytest.raises(ValidationError, match="needs the rule's weights"):
        ModelConfig(**{**fields, "kind": "markov"})
    with pytest.raises(ValidationError, match="is not scored by a rule"):
        ModelConfig(**{**fields, "rule": popularity_rule()})
    with pytest.raises(ValidationError, match="'price' is not one"):
        ModelConfig(**{**fields, "kind": "popularity", "rule": {"price": 1.0}})
    assert ModelConfig(**{**fields, "kind": "markov", "rule": markov_rule(1.0)}).rule == {
        "sim_last": 1.0,
        "trans_fwd": 1.0,
        "trans_bwd": 1.0,
    }
