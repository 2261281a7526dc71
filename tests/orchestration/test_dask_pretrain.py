"""Pretraining on a two-worker Dask cluster: the same model contract as one process, the same
quality within noise, and the refusal that sends too big a one-process run to the Dask runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

import rectransfer as rt
from rectransfer.metrics import ndcg_gains, ndcg_stderr, target_ranks
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.ranker import BROAD_PARAMS, predict
from rectransfer.ranking.training_data import LabelledRows, labelled_rows
from rectransfer.transfer import sizing
from rectransfer.transfer.pretrain import MAX_TRAINING_NEGATIVES
from tests.conftest import import_extra, make_shop, write_shop

MAX_ROUNDS = 120  # small sources: fixed rounds (a share of this) on both runners


@pytest.fixture(scope="module")
def source_folders(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("dask-sources")
    # listed out of name order on purpose: both runners must sort them the same way
    return [
        write_shop(make_shop(f"src{i}", seed=10 + i, n_users=150), root / f"src{i}")
        for i in (2, 0, 1)
    ]


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two single-threaded worker processes on loopback, closed after the module."""
    import_extra("distributed", "dask")
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def models(source_folders, client, encoder) -> tuple[rt.RecModel, rt.RecModel]:
    from rectransfer.transfer.distributed import pretrain_on_dask

    local = rt.pretrain(source_folders, encoder=encoder, max_rounds=MAX_ROUNDS, random_state=3)
    on_dask = pretrain_on_dask(
        source_folders, client=client, encoder=encoder, max_rounds=MAX_ROUNDS, random_state=3
    )
    return local, on_dask


@pytest.fixture(scope="module")
def one_process_on_the_same_rows(source_folders, models, encoder) -> lgb.Booster:
    """Plain one-process LightGBM on the rows the Dask run trained on (every list, as pretrain
    builds them: name order, its keys and seeds), for the Dask run's rounds."""
    rounds = models[1].config.rounds["broad"]
    parts = [
        labelled_rows(
            prepare(rt.RetailerData.load(folder), encoder),
            range(3),
            config=CandidateConfig(),
            customer_key_offset=i << 40,
            max_customers=8_000 // 3,
            max_negatives=MAX_TRAINING_NEGATIVES,
            random_state=3 + i,
        )
        for i, folder in enumerate(sorted(source_folders, key=lambda f: f.name))
    ]
    rows = LabelledRows.concat(parts).positives_only()
    data = lgb.Dataset(rows.rows.features, rows.rows.label, group=rows.group_sizes())
    return lgb.train({**BROAD_PARAMS, "seed": 3}, data, num_boost_round=rounds)


def test_the_dask_model_has_the_one_process_models_contract(models, tmp_path, encoder):
    local, on_dask = models
    assert on_dask.kind == "broad"
    assert on_dask.config.trained_on == local.config.trained_on == ["src0", "src1", "src2"]
    assert on_dask.config.feature_names == list(FEATURE_NAMES)
    assert on_dask.booster.feature_name() == list(FEATURE_NAMES)
    # below 150 held-out lists both take the same fixed share of max_rounds
    assert on_dask.config.rounds == local.config.rounds
    assert on_dask.booster.current_iteration() == on_dask.config.rounds["broad"]
    assert on_dask.config.params["trained_with"] == "lightgbm.dask.DaskLGBMRanker"

    loaded = rt.RecModel.load(on_dask.save(tmp_path / "broad"), encoder=encoder)
    shop = make_shop("target", seed=42, n_users=90)
    features = prepare(shop, encoder)
    rows = labelled_rows(features, range(1), config=CandidateConfig())
    assert np.array_equal(loaded.score(rows.rows.features), on_dask.score(rows.rows.features))

    adapted = rt.adapt(loaded, shop, random_state=0)
    from_local = rt.adapt(local, shop, random_state=0)
    assert adapted.kind in {"broad", "adapted", "blend", "local"}
    ours, theirs = adapted.recommend(shop, k=5), from_local.recommend(shop, k=5)
    assert ours.columns == theirs.columns
    assert ours.height == theirs.height > 0  # every customer served, k items each
    assert set(ours["user_id"]) == set(theirs["user_id"])


def test_the_dask_model_ranks_an_unseen_shop_within_a_standard_error_of_one_process(
    models, one_process_on_the_same_rows, encoder
):
    local, on_dask = models
    unseen = prepare(make_shop("unseen", seed=99, n_users=120), encoder)
    rows = labelled_rows(unseen, range(1), config=CandidateConfig())

    def ranks(scores: np.ndarray) -> np.ndarray:
        return target_ranks(rows.group, rows.rows.label, scores, rows.n_groups)

    same_rows_ranks = ranks(predict(one_process_on_the_same_rows, rows.rows.features))
    dask_ndcg = float(ndcg_gains(ranks(on_dask.score(rows.rows.features)), 10).mean())
    same_rows_ndcg = float(ndcg_gains(same_rows_ranks, 10).mean())
    margin = ndcg_stderr(same_rows_ranks, 10)  # the one-process model's own noise on this shop
    # data-parallel trees differ from one-process ones, by less than that noise either way
    assert abs(dask_ndcg - same_rows_ndcg) <= margin, (dask_ndcg, same_rows_ndcg, margin)
    # and no worse than rt.pretrain, which also holds 10% of the customers out to pick rounds
    local_ranks = ranks(local.score(rows.rows.features))
    local_ndcg = float(ndcg_gains(local_ranks, 10).mean())
    assert dask_ndcg >= local_ndcg - ndcg_stderr(local_ranks, 10), (dask_ndcg, local_ndcg)
    # and it learnt the planted sequences: well above the best untrained single-feature scorer
    features = rows.rows.features.astype(np.float64)
    untrained = max(
        float(ndcg_gains(ranks(sign * features[:, j]), 10).mean())
        for j in range(len(FEATURE_NAMES))
        for sign in (1.0, -1.0)
    )
    assert dask_ndcg > untrained + 2 * margin, (dask_ndcg, untrained, margin)


def test_the_rows_estimate_bounds_the_rows_built(encoder):
    shop = make_shop("sized", seed=5, n_users=200)
    for cap, cuts in ((60, 3), (None, 2)):
        rows = labelled_rows(
            prepare(shop, encoder),
            range(cuts),
            config=CandidateConfig(),
            max_customers=None if cap is None else cap // cuts,
            max_negatives=MAX_TRAINING_NEGATIVES,
        )
        estimate = sizing.training_matrix_bytes(
            [shop.n_users],
            max_customers_per_retailer=cap,
            cuts=cuts,
            max_negatives=MAX_TRAINING_NEGATIVES,
        )
        assert estimate is not None and rows.rows.features.nbytes <= estimate
        assert rows.n_queries <= estimate // (
            (1 + MAX_TRAINING_NEGATIVES) * len(FEATURE_NAMES) * sizing.BYTES_PER_VALUE
        )


def test_one_process_pretraining_too_big_is_refused_before_loading(monkeypatch, tmp_path):
    # 100 sources at the default cap: ~9 GB of features, over the limit, refused at once (the
    # folders do not even exist, so nothing was read)
    folders = [tmp_path / f"missing{i}" for i in range(100)]
    with pytest.raises(rt.ConfigError, match=r"9\.05 GB.*runner='dask'"):
        rt.pretrain(folders, encoder=rt.load_encoder("hashing"))
    # uncapped folders are checked once loaded, with their real customer counts
    small = [write_shop(make_shop(f"s{i}", seed=i, n_users=40), tmp_path / f"s{i}") for i in (0, 1)]
    per_source = sizing.training_matrix_bytes(
        [40], max_customers_per_retailer=None, cuts=3, max_negatives=MAX_TRAINING_NEGATIVES
    )
    assert per_source is not None
    monkeypatch.setattr(sizing, "MAX_ONE_PROCESS_TRAINING_BYTES", 2 * per_source - 1)
    with pytest.raises(rt.ConfigError, match="2 sources"):
        rt.pretrain(small, encoder=rt.load_encoder("hashing"), max_customers_per_retailer=None)
    monkeypatch.setattr(sizing, "MAX_ONE_PROCESS_TRAINING_BYTES", 2 * per_source)
    model = rt.pretrain(
        small, encoder=rt.load_encoder("hashing"), max_customers_per_retailer=None, max_rounds=8
    )
    assert model.config.trained_on == ["s0", "s1"]


@pytest.mark.usefixtures("prefect_harness")
def test_the_pretrain_flow_runs_on_the_dask_cluster_at_an_address(source_folders, client, tmp_path):
    from flows.pretrain import PretrainParams, pretrain

    address = client.scheduler.address  # type: ignore[attr-defined]
    path = pretrain(
        PretrainParams(
            sources=[str(s) for s in source_folders],
            out=str(tmp_path / "broad"),
            encoder="hashing:64",
            runner="dask",
            dask_address=address,
        )
    )
    model = rt.RecModel.load(path)
    assert model.kind == "broad" and model.config.trained_on == ["src0", "src1", "src2"]
    assert model.config.params["trained_with"] == "lightgbm.dask.DaskLGBMRanker"
    with pytest.raises(rt.ConfigError, match="runner='dask'"):
        pretrain(
            PretrainParams(
                sources=[str(s) for s in source_folders],
                out=str(tmp_path / "other"),
                encoder="hashing:64",
                dask_address=address,
            )
        )
