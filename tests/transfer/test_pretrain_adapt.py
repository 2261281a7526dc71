import importlib

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from rectransfer.metrics import ndcg_at, target_ranks
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.ranker import EARLY_STOPPING_ROUNDS
from rectransfer.ranking.training_data import labelled_rows
from rectransfer.transfer.adapt import adapt
from tests.conftest import make_shop

# the module: rt.adapt is the function
ADAPT = importlib.import_module("rectransfer.transfer.adapt")


def test_broad_model_learns_the_planted_sequences_on_an_unseen_shop(broad, encoder):
    # a shop it never saw: different ids, same behaviour
    unseen = prepare(make_shop("unseen", seed=99, n_users=80), encoder)
    rows = labelled_rows(unseen, range(1), config=CandidateConfig())

    def ndcg(scores: np.ndarray) -> float:
        return ndcg_at(target_ranks(rows.group, rows.rows.label, scores, rows.n_groups), 10)

    trained = ndcg(broad.score(rows.rows.features))
    # untrained baselines on the same candidates: each single feature as a scorer, either way
    # round (last-item text similarity, the customer's own text, co-occurrence, popularity, ...);
    # on this shop the best of them reaches about 0.42, the trained ranker about 0.72
    features = rows.rows.features.astype(np.float64)
    untrained = {
        f"{sign}{name}": ndcg(sign_value * features[:, j])
        for j, name in enumerate(rt.FEATURE_NAMES)
        for sign, sign_value in (("+", 1.0), ("-", -1.0))
    }
    best = max(untrained, key=untrained.__getitem__)
    assert untrained["+sim_last"] > 0.3  # the planted text signal alone goes some way
    assert trained > untrained[best] + 0.15, (trained, best, untrained[best])
    assert trained > 5 * untrained["+pop_pct"]


def test_broad_config_records_what_it_was_trained_on(broad, sources):
    assert broad.kind == "broad"
    assert broad.config.trained_on == [s.name for s in sources]
    assert broad.config.encoder.dim == 64
    assert broad.config.feature_names == list(rt.FEATURE_NAMES)
    assert broad.config.rounds["broad"] >= 1


def test_adapt_reports_all_figures_and_ships_what_the_rule_says_of_them(broad, target, monkeypatch):
    seen = []
    real = ADAPT.decide

    def spy(gains):
        seen.append({name: g.copy() for name, g in gains.items()})
        return real(gains)

    monkeypatch.setattr(ADAPT, "decide", spy)
    model = adapt(broad, target, random_state=0)
    guard = model.guard
    assert guard is not None
    assert set(guard.ndcg) == {"popularity", "markov", "broad", "local", "adapted", "blend"}
    assert guard.markov_weight is not None
    assert guard.validation_customers == 90
    (gains,) = seen
    # the report's figures are the means of the per-customer gains the guard decided on
    for name, per_customer in gains.items():
        assert len(per_customer) == 90
        assert guard.ndcg[name] == pytest.approx(per_customer.mean(), abs=1e-12)
    # the rules are measured for scale but, by default, not offered to the guard
    assert set(gains) == {"broad", "local", "adapted", "blend"}
    # the rule, restated from the figures: the best transferred model (the simpler on a tie) is
    # the incumbent; local-only ships only when its lead over it is more than one standard error
    # of the paired per-customer difference
    order = ("broad", "adapted", "blend")
    incumbent = max(order, key=lambda n: (gains[n].mean(), -order.index(n)))
    difference = gains["local"] - gains[incumbent]
    stderr = difference.std(ddof=1) / np.sqrt(len(difference))
    expected = "local" if difference.mean() > stderr else incumbent
    assert guard.decision == expected
    assert model.kind == expected
    assert model.config.retailer == "target"
    assert model.config.base_model_version == broad.model_version
    assert guard.ndcg[expected] > guard.ndcg["popularity"]


def test_with_ship_rules_the_guard_weighs_the_rules_too(broad, target, monkeypatch):
    seen = []
    real = ADAPT.decide

    def spy(gains):
        seen.append(set(gains))
        return real(gains)

    monkeypatch.setattr(ADAPT, "decide", spy)
    model = adapt(broad, target, ship_rules=True, random_state=0)
    assert seen == [{"broad", "local", "adapted", "blend", "markov", "popularity"}]
    assert model.guard is not None and model.kind == model.guard.decision


def test_adapt_falls_back_when_too_few_customers(broad):
    tiny = make_shop("tiny", seed=5, n_users=8)
    model = adapt(broad, tiny)
    assert model.kind == "broad"
    assert model.guard is not None and "too little data" in model.guard.reason
    assert model.model_version == broad.model_version


def test_a_shop_without_returning_customers_keeps_the_broad_model(broad, tmp_path):
    shop = make_shop("once", seed=1, n_users=10)
    first = shop.interactions.group_by("user_id", maintain_order=True).head(1)
    once = rt.RetailerData.from_frames(shop.items, first, name="once")
    model = adapt(broad, once, tune_encoder_to=tmp_path / "tuned")
    assert model.kind == "broad" and model.model_version == broad.model_version
    assert model.guard is not None and model.guard.validation_customers == 0
    assert model.guard.reason.startswith("no customer has two or more interactions yet")
    assert model.config.encoder_tuning is not None and not model.config.encoder_tuning.kept
    assert not (tmp_path / "tuned").exists()
    # The report survives the model directory's round trip (a valid config.json).
    assert rt.RecModel.load(model.save(tmp_path / "m")).guard == model.guard
    assert rt.recommend(model, once, k=3)["user_id"].n_unique() == 10


def test_pretraining_is_deterministic(sources, encoder, broad):
    again = rt.pretrain(sources, encoder=encoder, random_state=0)
    assert again.model_version == broad.model_version


def test_the_broad_model_does_not_depend_on_the_order_of_its_sources(sources, encoder, broad):
    # the fixture's sources are in name order; given the other way round, the same model
    shuffled = [sources[2], sources[0], sources[1]]
    again = rt.pretrain(shuffled, encoder=encoder, random_state=0)
    assert again.booster.model_to_string() == broad.booster.model_to_string()
    assert again.config.trained_on == broad.config.trained_on == sorted(s.name for s in sources)


def test_pretraining_on_sources_too_small_to_learn_from_is_a_clear_error(encoder):
    tiny = make_shop("tinysrc", seed=2, n_users=3)
    with pytest.raises(rt.SchemaError, match="training lists"):
        rt.pretrain([tiny], encoder=encoder)


def test_a_blend_ships_as_one_booster_scoring_adapted_plus_local(
    broad, target, tmp_path, monkeypatch
):
    fitted = ADAPT.fit_adaptation(broad, target, random_state=0)
    blend, adapted, local = (fitted.rankers[n] for n in ("blend", "adapted", "local"))
    assert blend.num_trees() == adapted.num_trees() + local.num_trees()
    config = CandidateConfig(**broad.config.candidates)
    rows = labelled_rows(fitted.prepared, range(1), config=config)
    features = rows.rows.features
    assert np.allclose(
        blend.predict(features), adapted.predict(features) + local.predict(features), atol=1e-9
    )
    # shipped as such, it saves, loads and serves like any model
    monkeypatch.setattr(ADAPT, "decide", lambda gains: ("blend", "forced for the test"))
    model = adapt(broad, target, random_state=0)
    assert model.kind == "blend" and model.config.trained_on[-1] == "target"
    loaded = rt.RecModel.load(model.save(tmp_path / "blend"))
    assert loaded.kind == "blend" and loaded.model_version == model.model_version
    assert rt.recommend(loaded, target, k=5).equals(rt.recommend(model, target, k=5))


def test_pretraining_waits_as_long_as_asked_before_it_stops_early(sources, encoder, monkeypatch):
    pretrain_module = importlib.import_module("rectransfer.transfer.pretrain")
    seen = []
    real = pretrain_module.train_ranker

    def spy(*args, **kwargs):
        seen.append(kwargs["patience"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "train_ranker", spy)
    model = rt.pretrain(sources[:2], encoder=encoder, random_state=0, early_stopping_rounds=7)
    rt.pretrain(sources[:2], encoder=encoder, random_state=0)
    # the broad model waits longer by default than adaptation does
    assert seen == [7, 100] and EARLY_STOPPING_ROUNDS == 30
    assert model.config.params["early_stopping_rounds"] == 7
    with pytest.raises(rt.ConfigError, match="early_stopping_rounds"):
        rt.pretrain(sources[:2], encoder=encoder, early_stopping_rounds=0)


def test_pretraining_keeps_as_many_negatives_per_list_as_asked(sources, encoder, monkeypatch):
    pretrain_module = importlib.import_module("rectransfer.transfer.pretrain")
    seen = []
    real = pretrain_module.train_ranker

    def spy(train, valid, **kwargs):
        seen.append(int(train.group_sizes().max()))
        return real(train, valid, **kwargs)

    monkeypatch.setattr(pretrain_module, "train_ranker", spy)
    few = rt.pretrain(sources[:2], encoder=encoder, random_state=0, max_negatives=3)
    rt.pretrain(sources[:2], encoder=encoder, random_state=0)
    # a list holds its labelled item and at most that many others
    assert seen[0] <= 1 + 3 < seen[1]
    assert few.config.params["max_negatives"] == 3
    with pytest.raises(rt.ConfigError, match="max_negatives"):
        rt.pretrain(sources[:2], encoder=encoder, max_negatives=0)


def test_a_source_shops_quantities_do_not_change_the_broad_model(encoder):
    """Weights count in popular lists only: the ranker's inputs count events, the scale the broad
    ranker learns at shops that mostly have no weights."""
    plain = make_shop("qtysrc", seed=6, n_users=60)
    rng = np.random.default_rng(0)
    interactions = plain.interactions.drop("weight").with_columns(
        quantity=pl.Series(rng.integers(1, 50, plain.n_interactions))
    )
    weighted = rt.RetailerData.from_frames(plain.items, interactions, plain.users, name="qtysrc")
    assert weighted.interactions["weight"].n_unique() > 1
    one = rt.pretrain([plain], encoder=encoder, random_state=0)
    other = rt.pretrain([weighted], encoder=encoder, random_state=0)
    assert other.model_version == one.model_version


@pytest.mark.parametrize("rule", ["markov", "popularity"])
def test_a_shipped_rule_is_served_saved_and_loaded_like_any_model(
    broad, target, monkeypatch, tmp_path, rule
):
    monkeypatch.setattr(ADAPT, "decide", lambda gains: (rule, "forced by the test"))
    model = adapt(broad, target, ship_rules=True, random_state=0)
    assert model.kind == rule and model.config.rule is not None
    assert model.config.trained_on == ["target"]
    assert model.model_version.startswith(f"{rule}-")
    assert model.model_version != broad.model_version
    assert not model.compile_scoring()  # a weighted sum of columns: nothing to compile
    loaded = rt.RecModel.load(model.save(tmp_path / "m"))
    assert loaded.config == model.config and loaded.model_version == model.model_version
    # recommending scores with the rule, not with the broad trees it carries
    recs = rt.recommend(loaded, target, k=5)
    assert recs.height > 0
    assert not recs.equals(rt.recommend(broad, target, k=5))
    features = np.zeros((1, len(rt.FEATURE_NAMES)), dtype=np.float32)
    features[0, rt.FEATURE_NAMES.index("pop_pct")] = 0.7
    features[0, rt.FEATURE_NAMES.index("sim_last")] = 0.2
    expected = sum(
        w * features[0, rt.FEATURE_NAMES.index(name)] for name, w in model.config.rule.items()
    )
    assert loaded.score(features)[0] == pytest.approx(expected)
