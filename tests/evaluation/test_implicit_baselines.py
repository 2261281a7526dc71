"""The ``implicit`` reference rows: the benchmark's protocol, settings chosen on validation only."""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl
import pytest

import rectransfer.evaluation.implicit_baselines as ib
from rectransfer.data.histories import Histories, RetailerIndex
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.benchmark import markdown_summary, run_benchmark, summary_table
from tests.conftest import import_extra, make_shop

METRICS = {"recall@3", "ndcg@3", "recall@10", "ndcg@10"}
PLAN = {(1.0, 0), (0.5, 0), (0.5, 1)}
BUNDLE_SIZE = 8
BOUGHT = 6  # per customer: 4 to train on, 1 to validate on, 1 to test on


def make_bundle_shop(name: str, *, seed: int, n_users: int = 160, bundles: int = 8) -> RetailerData:
    """Pure co-occurrence: every customer buys ``BOUGHT`` distinct items of one bundle, in random
    order. Titles say nothing and every item is about as popular as any other, so only who bought
    what together can tell the test item: the bundle's items the customer does not have yet."""
    rng = np.random.default_rng(seed)
    n_items = bundles * BUNDLE_SIZE
    items = pl.DataFrame(
        {
            "item_id": [f"i{j:03d}" for j in range(n_items)],
            "title": [f"article {j}" for j in rng.permutation(n_items)],
        }
    )
    rows = []
    for u in range(n_users):
        bundle = u % bundles
        chosen = bundle * BUNDLE_SIZE + rng.choice(BUNDLE_SIZE, BOUGHT, replace=False)
        for step, item in enumerate(chosen):
            rows.append({"user_id": f"u{u:04d}", "item_id": f"i{item:03d}", "timestamp": step})
    return RetailerData.from_frames(items, pl.DataFrame(rows), name=name)


def other_bundle_last_item(shop: RetailerData) -> RetailerData:
    """The same shop with every customer's *test* item swapped for an item of another bundle."""
    order = pl.int_range(pl.len()).over("user_id")
    is_last = order == pl.len().over("user_id") - 1
    number = pl.col("item_id").str.slice(1).cast(pl.Int64)
    moved = (number + BUNDLE_SIZE) % shop.n_items
    interactions = shop.interactions.with_columns(
        pl.when(is_last)
        .then(pl.format("i{}", moved.cast(pl.String).str.zfill(3)))
        .otherwise(pl.col("item_id"))
        .alias("item_id")
    )
    return RetailerData.from_frames(shop.items, interactions, name=shop.name)


def implicit_rows(report, *, slices=False):
    return [
        r
        for r in report["results"]
        if r["model"] in ib.IMPLICIT_MODELS and ("slice" in r) == slices
    ]


@pytest.fixture(scope="module")
def shop():
    return make_bundle_shop("bundles", seed=5)


@pytest.fixture(scope="module")
def report(broad, shop):
    import_extra("implicit", "bench")
    return run_benchmark(broad, shop, fractions=(1.0, 0.5), seeds=2, ks=(3, 10), progress=False)


@pytest.fixture(scope="module")
def known(shop):
    """Every customer's history before their test item, as the benchmark hands it over."""
    return RetailerIndex.build(shop).histories.truncate(1)


def test_rows_exist_for_every_fraction_seed_and_slice_with_every_figure(report):
    rows = implicit_rows(report)
    assert {(r["model"], r["fraction"], r["seed"]) for r in rows} == {
        (m, f, s) for m in ib.IMPLICIT_MODELS for f, s in PLAN
    }
    for r in rows:
        assert set(r) >= METRICS
        assert all(0 <= r[m] <= 1 for m in METRICS)
        assert r["fit_s"] > 0 and r["recommend_s"] >= 0
        assert r["params"] and r["validation"]
    popularity = {
        (r["fraction"], r["seed"]): r["users"]
        for r in report["results"]
        if r["model"] == "popularity" and "slice" not in r
    }
    assert all(r["users"] == popularity[(r["fraction"], r["seed"])] for r in rows)
    slices = implicit_rows(report, slices=True)
    assert {(r["model"], r["fraction"], r["seed"], r["slice"]) for r in slices} == {
        (m, f, s, name)
        for m in ib.IMPLICIT_MODELS
        for f, s in PLAN
        for name in ("cold items", "short histories")
    }
    assert report["notes"] == []
    json.dumps(report)
    # the summary tables still read the report (params/validation are extra columns)
    table = summary_table(report)
    assert set(ib.IMPLICIT_MODELS) <= set(table["model"].to_list())
    assert "implicit-als" in markdown_summary(report)


def test_co_occurrence_is_found_better_than_popularity(report):
    rows = {
        (r["model"], r["fraction"], r["seed"]): r for r in report["results"] if "slice" not in r
    }
    for fraction, seed in PLAN:
        popularity = rows[("popularity", fraction, seed)]["ndcg@10"]
        for model in ib.IMPLICIT_MODELS:
            assert rows[(model, fraction, seed)]["ndcg@10"] > 2 * popularity + 0.1, (
                model,
                fraction,
            )


def test_own_earlier_items_are_not_ranked(report):
    # Five of a customer's bundle items are known at test time; ranked too, they would push the
    # test item below them (recall@3 near 0). Removed, it competes with the bundle's two other
    # items only.
    for r in implicit_rows(report):
        if r["fraction"] == 1.0:
            assert r["recall@3"] > 0.7, r["model"]


def test_the_chosen_setting_is_the_best_on_validation(report):
    for r in implicit_rows(report):
        scores = r["validation"]
        best = max(scores.values())
        first_best = next(label for label, score in scores.items() if score == best)
        assert first_best == ib._label(r["params"])
        assert r["validation_ndcg@10"] == best
    als = implicit_rows(report)[0]
    assert len(als["validation"]) == len(ib.ALS_FACTORS) * len(ib.ALS_REGULARIZATION)


def test_the_test_item_plays_no_part_in_the_choice(broad, shop, report):
    altered = run_benchmark(
        broad, other_bundle_last_item(shop), fractions=(1.0, 0.5), seeds=2, ks=(3, 10),
        progress=False,
    )  # fmt: skip
    before = {(r["model"], r["fraction"], r["seed"]): r for r in implicit_rows(report)}
    after = {(r["model"], r["fraction"], r["seed"]): r for r in implicit_rows(altered)}
    assert before.keys() == after.keys()
    for key, row in before.items():
        assert after[key]["params"] == row["params"]
        assert after[key]["validation"] == row["validation"]
        # ... while the test figures do see the swap: the new test items are off-bundle
        assert after[key]["ndcg@10"] < row["ndcg@10"] - 0.3


def test_validation_picks_a_later_setting_when_it_is_better(known, monkeypatch):
    import_extra("implicit", "bench")
    # K = 1 keeps only an item's similarity to itself, and one factor is popularity by another
    # name: both are first in their grids and both must lose on validation.
    monkeypatch.setattr(ib, "KNN_SIMILARITIES", ("cosine",))
    monkeypatch.setattr(ib, "KNN_NEIGHBOURS", (1, 50))
    monkeypatch.setattr(ib, "ALS_FACTORS", (1, 16))
    monkeypatch.setattr(ib, "ALS_REGULARIZATION", (0.1,))
    als, knn = ib.tune_references(known, random_state=0)
    assert knn.params == {"similarity": "cosine", "K": 50}
    assert als.params["factors"] == 16
    assert (
        knn.validation["similarity=cosine, K=1"] < 0.1 < knn.validation["similarity=cosine, K=50"]
    )


def test_scores_are_implicits_own_from_training_data_and_the_whole_known_history(known):
    import_extra("implicit", "bench")
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    als, knn = ib.tune_references(known, random_state=3)
    rows = np.arange(0, known.n_users, 7)
    train, whole = ib._user_items(known.truncate(1)), ib._user_items(known)
    with ib._single_threaded():
        model = AlternatingLeastSquares(
            factors=als.params["factors"],
            regularization=als.params["regularization"],
            alpha=als.params["alpha"],
            iterations=als.params["iterations"],
            num_threads=1,
            random_state=3,
        )
        model.fit(train, show_progress=False)  # the training part only: no refit with validation
        ids, scores = model.recommend(
            rows, whole[rows], N=known.n_items, recalculate_user=True,
            filter_already_liked_items=False,
        )  # fmt: skip
    expected = np.zeros((len(rows), known.n_items))
    np.put_along_axis(expected, ids, scores, axis=1)
    np.testing.assert_allclose(als.scorer(rows), expected, rtol=1e-4, atol=1e-5)

    kind = {"cosine": CosineRecommender, "bm25": BM25Recommender}[knn.params["similarity"]]
    neighbours = kind(K=knn.params["K"], num_threads=1)
    with pytest.warns(Warning, match="CSR"):  # implicit's own fit converts COO -> CSR
        neighbours.fit(train, show_progress=False)
    ids, scores = neighbours.recommend(
        rows, whole[rows], N=known.n_items, filter_already_liked_items=False
    )
    expected = np.zeros((len(rows), known.n_items))
    found = ids >= 0  # implicit lists only items that score at all
    expected[np.nonzero(found)[0], ids[found]] = scores[found]
    np.testing.assert_allclose(knn.scorer(rows), expected, rtol=1e-6)


def test_same_seed_same_rows(known):
    import_extra("implicit", "bench")
    first = ib.tune_references(known, random_state=1)
    again = ib.tune_references(known, random_state=1)
    rows = np.arange(known.n_users)
    for a, b in zip(first, again, strict=True):
        assert a.validation == b.validation and a.params == b.params
        np.testing.assert_array_equal(a.scorer(rows), b.scorer(rows))


def test_customers_need_a_training_and_a_validation_item():
    import_extra("implicit", "bench")
    one_each = Histories(np.array([0, 1, 2]), np.array([0, 1], dtype=np.int32), np.zeros(2), 3)
    with pytest.raises(ConfigError, match="at least two interactions"):
        ib.tune_references(one_each)


def test_the_benchmark_runs_and_says_so_without_implicit(broad, monkeypatch):
    monkeypatch.setitem(sys.modules, "implicit", None)  # import implicit -> ImportError
    assert not ib.implicit_available()
    planted = make_shop("noimplicit", seed=3, n_users=60)
    report = run_benchmark(broad, planted, fractions=(1.0,), seeds=1, ks=(10,), progress=False)
    models = {r["model"] for r in report["results"]}
    assert models.isdisjoint(ib.IMPLICIT_MODELS)
    assert {"popularity", "item-knn", "guarded"} <= models
    assert report["notes"] == [ib.IMPLICIT_MISSING_NOTE]
    assert "implicit is not installed" in report["notes"][0]


def test_the_rows_can_be_switched_off(broad):
    planted = make_shop("nooption", seed=4, n_users=60)
    report = run_benchmark(
        broad, planted, fractions=(1.0,), seeds=1, ks=(10,), progress=False,
        implicit_references=False,
    )  # fmt: skip
    assert {r["model"] for r in report["results"]}.isdisjoint(ib.IMPLICIT_MODELS)
    assert report["notes"] == []
