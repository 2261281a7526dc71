"""The ranker compiled to native code: the same scores as LightGBM, or LightGBM itself."""

import importlib
import logging
import pickle
import sys
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rectransfer as rt
import rectransfer.ranking.compiled as compiled_scoring
from rectransfer.model.recmodel import RecModel
from rectransfer.ranking.compiled import ZERO_SPLIT, compile_booster, probe_rows
from rectransfer.ranking.ranker import predict
from tests.conftest import import_extra

recommend_module = importlib.import_module(
    "rectransfer.serving.recommend"
)  # the package re-exports the function
RNG = np.random.default_rng(0)
CONFIG = SimpleNamespace(kind="broad", rule=None)  # what compiling reads of a model's config
X = RNG.normal(size=(3000, 6))
Y = (X[:, 0] + 0.5 * X[:, 1] + RNG.normal(size=3000) > 0).astype(int)


@pytest.fixture(autouse=True)
def _no_compiled_models_from_other_tests(monkeypatch):
    monkeypatch.setattr(compiled_scoring, "SHARED", compiled_scoring.CompiledModels())


def _ranker(rounds: int = 40) -> lgb.Booster:
    params = {"objective": "lambdarank", "verbosity": -1, "num_leaves": 15, "seed": 0}
    return lgb.train(params, lgb.Dataset(X, Y, group=[30] * 100), rounds)


def _splits(booster: lgb.Booster) -> list[tuple[int, float]]:
    splits = []

    def walk(node: dict) -> None:  # type: ignore[type-arg]
        if "split_feature" in node:
            splits.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return splits


def test_probe_rows_meet_every_split_from_both_sides():
    booster = _ranker()
    probe = probe_rows(booster)
    splits = _splits(booster)
    assert len(splits) > 100
    for feature, threshold in splits:
        column = probe[:, feature]
        assert (column <= threshold).any() and (column > threshold).any()
        if abs(threshold) > ZERO_SPLIT:
            assert (column == threshold).any()  # the edge itself, where <= and < part ways
        else:  # LightGBM's "below zero" split: at zero and on either side
            assert (column == 0).any() and (column < 0).any()


def test_compiled_scores_equal_lightgbm():
    import_extra("lleaves", "compiled")
    booster = _ranker()
    scorer = compile_booster(booster)
    assert scorer is not None
    fresh = RNG.normal(size=(5000, 6))  # rows it was not checked on
    assert np.allclose(scorer(fresh), predict(booster, fresh), rtol=1e-9, atol=1e-9)
    assert scorer(fresh[:0]).shape == (0,)


def test_without_lleaves_scoring_stays_with_lightgbm(monkeypatch):
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import fails as when not installed
    booster = _ranker()
    assert compile_booster(booster) is None
    model = RecModel(booster, config=CONFIG)  # type: ignore[arg-type]
    assert model.compile_scoring() is False
    assert np.array_equal(model.score(X), predict(booster, X))


def test_a_compiled_ranker_that_differs_is_refused(monkeypatch, caplog):
    lleaves = import_extra("lleaves", "compiled")
    real_predict = lleaves.Model.predict
    # a compiler that rounds thresholds differently would be off on some rows only
    monkeypatch.setattr(
        lleaves.Model, "predict", lambda self, rows, **kw: real_predict(self, rows, **kw) + 1e-6
    )
    with caplog.at_level(logging.WARNING, logger="rectransfer.ranking.compiled"):
        assert compile_booster(_ranker()) is None
    assert "differs from LightGBM" in caplog.text


def test_a_failing_compiler_leaves_lightgbm_in_charge(monkeypatch, caplog):
    lleaves = import_extra("lleaves", "compiled")

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("LLVM is unhappy")

    monkeypatch.setattr(lleaves.Model, "compile", broken)
    with caplog.at_level(logging.WARNING, logger="rectransfer.ranking.compiled"):
        assert compile_booster(_ranker()) is None
    assert "LLVM is unhappy" in caplog.text


def test_a_large_batch_is_scored_compiled_with_the_same_lists(broad, target, monkeypatch):
    import_extra("lleaves", "compiled")
    plain = RecModel(broad.booster, broad.config, encoder=broad.encoder)
    expected = rt.recommend(plain, target, k=10)
    assert plain._compiled is None  # a small shop does not pay for compiling

    compiled = RecModel(broad.booster, broad.config, encoder=broad.encoder)
    monkeypatch.setattr(recommend_module, "COMPILE_MIN_CUSTOMERS", 1)
    got = rt.recommend(compiled, target, k=10)
    assert compiled._compiled is not None
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    assert got.filter(pl.col("source") == "ranker").height > 0


def test_a_large_batch_waits_for_the_compiling_thread_and_never_scores_uncompiled(
    broad, target, monkeypatch
):
    import time

    import rectransfer.model.recmodel as recmodel_module

    expected = rt.recommend(RecModel(broad.booster, broad.config, encoder=broad.encoder), target)
    compiled_scores = []

    def slow_compile(booster, key, models=None):
        time.sleep(1.0)  # longer than building the shop's candidates

        def scorer(features):
            compiled_scores.append(len(features))
            return predict(booster, features)

        return scorer

    def uncompiled(booster, features):
        raise AssertionError("a row was scored before the compiled ranker was ready")

    monkeypatch.setattr(recmodel_module, "cached_scorer", slow_compile)
    monkeypatch.setattr(recmodel_module, "predict", uncompiled)
    monkeypatch.setattr(recommend_module, "COMPILE_MIN_CUSTOMERS", 1)
    model = RecModel(broad.booster, broad.config, encoder=broad.encoder)
    got = rt.recommend(model, target, threads=2)
    assert compiled_scores and got.filter(pl.col("source") == "ranker").height > 0
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)


def test_a_compiled_model_pickles_and_compiles_again_where_it_lands():
    import_extra("lleaves", "compiled")
    booster = _ranker()
    model = RecModel(booster, config=CONFIG)  # type: ignore[arg-type]
    assert model.compile_scoring()
    copy = pickle.loads(pickle.dumps(model))
    assert copy._compiled is None
    assert copy.compile_scoring()
    assert np.allclose(copy.score(X), predict(booster, X), rtol=1e-9, atol=1e-9)


def test_a_model_is_compiled_once_per_process_whatever_objects_hold_it(monkeypatch):
    calls = []
    monkeypatch.setattr(
        compiled_scoring, "compile_booster", lambda booster: calls.append(booster) or predict
    )
    monkeypatch.setattr(compiled_scoring, "SHARED", compiled_scoring.CompiledModels(max_models=2))
    first, other = _ranker(), _ranker(rounds=5)
    # the chunks of one export each wrap the same booster in a new RecModel
    for _ in range(3):
        assert RecModel(first, config=CONFIG).compile_scoring()  # type: ignore[arg-type]
    assert len(calls) == 1
    RecModel(other, config=CONFIG).compile_scoring()  # type: ignore[arg-type]
    RecModel(_ranker(rounds=6), config=CONFIG).compile_scoring()  # type: ignore[arg-type]
    assert len(calls) == 3 and len(compiled_scoring.SHARED) == 2  # the oldest went
    RecModel(first, config=CONFIG).compile_scoring()  # type: ignore[arg-type]
    assert len(calls) == 4
