"""The ``sasrec`` reference row: the benchmark's protocol, settings chosen on validation only."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

import rectransfer.evaluation.sequential as sq
from rectransfer.cli import main
from rectransfer.data.histories import Histories, RetailerIndex
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.benchmark import KEPT_SUFFIX, run_benchmark
from tests.conftest import histories_of, make_shop, write_shop

KEPT = "sasrec" + KEPT_SUFFIX
ONE_SETTING = ({"blocks": 1, "dropout": 0.1},)
CHAIN_ITEMS = 40


def make_quick(patch: pytest.MonkeyPatch) -> None:
    """One small setting, a quick learning rate and an epoch cap: seconds per fit, and a budget
    no fit reaches (so the same seed gives the same fit)."""
    patch.setattr(sq, "SETTINGS", ONE_SETTING)
    patch.setattr(sq, "LEARNING_RATE", 0.01)
    patch.setattr(sq, "MAX_EPOCHS", 60)
    patch.setattr(sq, "PATIENCE", 10)
    patch.setattr(sq, "BUDGET_SECONDS", 60.0)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    make_quick(monkeypatch)


def make_chain_shop(name: str, *, seed: int, n_users: int = 200) -> RetailerData:
    """Pure order: item ``i`` is always followed by item ``i + 1`` (mod the catalogue). Every
    customer starts anywhere and walks on for 4 to 7 steps; titles say nothing and every item is
    about as popular as any other, so only the last item tells the next one."""
    rng = np.random.default_rng(seed)
    items = pl.DataFrame(
        {
            "item_id": [f"i{j:03d}" for j in range(CHAIN_ITEMS)],
            "title": [f"article {j}" for j in rng.permutation(CHAIN_ITEMS)],
        }
    )
    rows = []
    for u in range(n_users):
        start = int(rng.integers(CHAIN_ITEMS))
        for step in range(int(rng.integers(4, 8))):
            item = (start + step) % CHAIN_ITEMS
            rows.append({"user_id": f"u{u:04d}", "item_id": f"i{item:03d}", "timestamp": step})
    return RetailerData.from_frames(items, pl.DataFrame(rows), name=name)


def other_last_item(shop: RetailerData) -> RetailerData:
    """The same shop with every customer's *test* item moved half the catalogue away."""
    order = pl.int_range(pl.len()).over("user_id")
    is_last = order == pl.len().over("user_id") - 1
    moved = (pl.col("item_id").str.slice(1).cast(pl.Int64) + CHAIN_ITEMS // 2) % CHAIN_ITEMS
    interactions = shop.interactions.with_columns(
        pl.when(is_last)
        .then(pl.format("i{}", moved.cast(pl.String).str.zfill(3)))
        .otherwise(pl.col("item_id"))
        .alias("item_id")
    )
    return RetailerData.from_frames(shop.items, interactions, name=shop.name)


def training(record):
    """A setting's training record without its wall-clock seconds (which no seed fixes)."""
    return {
        label: {key: value for key, value in run.items() if key != "seconds"}
        for label, run in record["training"].items()
    }


def figures(report, model):
    return {
        (r["fraction"], r["seed"]): r
        for r in report["results"]
        if r["model"] == model and "slice" not in r
    }


def benchmark(broad, shop):
    # popularity alone of the usual rows: the optional sasrec rows come with their own flag
    return run_benchmark(
        broad, shop, fractions=(1.0, 0.5), seeds=1, ks=(3, 10), progress=False,
        implicit_references=False, sequential_references=True, own_history_kept=True,
        rows=["popularity"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def chain_shop():
    return make_chain_shop("chains", seed=3)


@pytest.fixture(scope="module")
def report(broad, chain_shop):
    with pytest.MonkeyPatch.context() as patch:  # a module fixture runs before `quick`
        make_quick(patch)
        return benchmark(broad, chain_shop)


def test_the_rows_appear_for_every_fraction_with_every_figure(report):
    sasrec, kept = figures(report, "sasrec"), figures(report, KEPT)
    popularity = figures(report, "popularity")
    assert sasrec.keys() == kept.keys() == popularity.keys() == {(1.0, 0), (0.5, 0)}
    for key, row in sasrec.items():
        assert row["users"] == kept[key]["users"] == popularity[key]["users"]
        for r in (row, kept[key]):
            assert 0 <= r["ndcg@3"] <= r["recall@10"] <= 1
            assert r["fit_s"] > 0 and r["recommend_s"] >= 0
        # one fitted model for both rows
        assert row["params"] == kept[key]["params"] and row["fit_s"] == kept[key]["fit_s"]
        assert row["params"]["blocks"] == 1 and row["params"]["max_length"] == sq.MAX_LENGTH
        (run,) = row["training"].values()
        assert run["stopped"] in ("patience", "max_epochs")
        assert run["best_epoch"] <= run["epochs"] <= sq.MAX_EPOCHS
        best = run["validation_ndcg@10_by_epoch"][run["best_epoch"] - 1]
        assert row["validation_ndcg@10"] == pytest.approx(best, abs=1e-5)
        assert best == max(run["validation_ndcg@10_by_epoch"])
        assert row["budget_s_per_setting"] == 60.0 and row["threads"] == sq.THREADS
    slices = {(r["model"], r["slice"]) for r in report["results"] if "slice" in r}
    assert {("sasrec", "cold items"), (KEPT, "short histories")} <= slices
    json.dumps(report)


def test_planted_order_is_learnt_far_better_than_popularity(report):
    popularity, sasrec, kept = (
        figures(report, m) for m in ("popularity", "sasrec", KEPT)
    )  # fmt: skip
    for key in sasrec:
        assert popularity[key]["ndcg@10"] < 0.2
        assert sasrec[key]["ndcg@10"] > popularity[key]["ndcg@10"] + 0.5, key
        # the next item is never one already bought here: leaving them in costs little
        assert kept[key]["ndcg@10"] > popularity[key]["ndcg@10"] + 0.5, key
        assert kept[key]["ndcg@10"] <= sasrec[key]["ndcg@10"] + 1e-9


def test_the_test_item_plays_no_part_in_the_fit(broad, chain_shop, report):
    altered = benchmark(broad, other_last_item(chain_shop))
    before, after = figures(report, "sasrec"), figures(altered, "sasrec")
    for key, row in before.items():
        # the same training, epoch by epoch, whatever the test items are ...
        assert training(after[key]) == training(row)
        assert after[key]["validation"] == row["validation"]
        # ... while the test figures do see them: the new ones are half the catalogue away
        assert after[key]["ndcg@10"] < row["ndcg@10"] - 0.5


def test_the_fit_sees_only_histories_before_the_validation_item(monkeypatch):
    from rectransfer.evaluation import sasrec

    known = histories_of([[0, 1, 2, 3], [4, 5, 6], [7, 8]], 10)
    seen: list[Histories] = []
    windows = sasrec.training_windows

    def recording(histories, max_length):
        seen.append(histories)
        return windows(histories, max_length)

    monkeypatch.setattr(sasrec, "training_windows", recording)
    monkeypatch.setattr(sq, "MAX_EPOCHS", 2)
    sq.tune_sequential(known)
    (trained,) = seen
    assert [trained.sequence(u).tolist() for u in range(3)] == [[0, 1, 2], [4, 5], [7]]


def test_same_seed_same_model_other_seed_another(chain_shop):
    known = RetailerIndex.build(chain_shop).histories.truncate(1)
    rows = np.arange(known.n_users)
    first = sq.tune_sequential(known, random_state=1)
    again = sq.tune_sequential(known, random_state=1)
    other = sq.tune_sequential(known, random_state=2)
    assert training(first.report()) == training(again.report())
    assert first.report()["validation"] == again.report()["validation"]
    np.testing.assert_array_equal(first.scorer(rows), again.scorer(rows))
    assert not np.array_equal(first.scorer(rows), other.scorer(rows))


def test_validation_chooses_the_setting_and_the_caller_keeps_its_torch_state(chain_shop):
    known = RetailerIndex.build(chain_shop).histories.truncate(1)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    # full dropout leaves the network nothing to learn from: it must lose on validation
    reference = sq.tune_sequential(
        known, settings=({"blocks": 1, "dropout": 0.99}, {"blocks": 1, "dropout": 0.1}), threads=2
    )
    assert reference.params["dropout"] == 0.1
    scores = reference.report()["validation"]
    assert list(scores) == ["blocks=1, dropout=0.99", "blocks=1, dropout=0.1"]
    assert scores["blocks=1, dropout=0.99"] < scores["blocks=1, dropout=0.1"]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_the_budget_stops_a_setting_after_one_epoch(chain_shop):
    known = RetailerIndex.build(chain_shop).histories.truncate(1)
    reference = sq.tune_sequential(known, budget_seconds=1e-6)
    (run,) = reference.report()["training"].values()
    assert (run["epochs"], run["best_epoch"], run["stopped"]) == (1, 1, "budget")
    assert reference.report()["budget_s_per_setting"] == 1e-6


def test_customers_need_a_training_and_a_validation_item():
    one_each = histories_of([[0], [1]], 3)
    with pytest.raises(ConfigError, match="at least two interactions"):
        sq.tune_sequential(one_each)
    with pytest.raises(ConfigError, match="budget_seconds"):
        sq.tune_sequential(histories_of([[0, 1]], 3), budget_seconds=0)


def test_sasrec_is_turned_on_by_its_option_not_by_rows(broad):
    with pytest.raises(ConfigError, match="sequential_references"):
        run_benchmark(broad, make_shop("rows", seed=1, n_users=30), rows=["sasrec"])


def test_cli_sequential_adds_the_row(broad, tmp_path):
    folder = write_shop(make_shop("clishop", seed=8, n_users=60), tmp_path / "clishop")
    out = tmp_path / "results.json"
    code = main(
        [
            "benchmark", "--base", str(broad.save(tmp_path / "broad")), "--target", str(folder),
            "--fractions", "1.0", "--k", "10", "--out", str(out), "--encoder", "hashing",
            "--rows", "popularity", "--sequential",
        ]
    )  # fmt: skip
    assert code == 0
    models = {r["model"] for r in json.loads(out.read_text())["results"]}
    assert {"popularity", "sasrec"} <= models  # the implicit rows too, where installed
    assert models.isdisjoint({"markov", "broad", KEPT})


def test_the_full_softmax_loss_is_cross_entropy_with_its_gradients():
    from rectransfer.evaluation.sasrec import full_softmax_loss

    generator = torch.Generator().manual_seed(0)
    states = torch.randn(7, 5, generator=generator, requires_grad=True)
    weights = torch.randn(11, 5, generator=generator, requires_grad=True)
    targets = torch.tensor([0, 10, 3, 3, 7, 1, 0])
    expected = torch.nn.functional.cross_entropy(states @ weights.T, targets)
    want = torch.autograd.grad(expected, (states, weights))
    loss = full_softmax_loss(states * 1.0, weights * 1.0, targets)
    got = torch.autograd.grad(loss, (states, weights))
    assert torch.isclose(loss, expected)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    # a target far below the best item costs a finite, exact loss
    far = full_softmax_loss(torch.tensor([[100.0]]), torch.tensor([[1.0], [-1.0]]), targets[:1] + 1)
    assert torch.isclose(far, torch.tensor(200.0))
