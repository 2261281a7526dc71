"""Pretraining on a two-worker Dask cluster: the same model contract as one process, the same
quality within noise, and the refusal that sends too big a one-process run to the Dask runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

import rectransfer as rt
from rectransfer.metrics import ndcg_gains, target_ranks
from rectransfer.model.config import CANDIDATES
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.ranker import BROAD_PARAMS, MIN_EARLY_STOPPING_GROUPS, predict
from rectransfer.ranking.training_data import LabelledRows, labelled_rows
from rectransfer.transfer import sizing
from rectransfer.transfer.guard import paired_stderr
from rectransfer.transfer.pretrain import (
    EARLY_STOPPING_SHARE,
    MAX_TRAINING_NEGATIVES,
    split_by_customer,
)
from tests.conftest import import_extra, make_shop, write_shop

MAX_ROUNDS = 120
USERS = 300  # per source: enough held-out lists (>= 150) for early stopping to choose the rounds


@pytest.fixture(scope="module")
def source_folders(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("dask-sources")
    # listed out of name order on purpose: both runners must sort them the same way
    return [
        write_shop(make_shop(f"src{i}", seed=10 + i, n_users=USERS), root / f"src{i}")
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
    every_list = LabelledRows.concat(parts)
    _, held_out = split_by_customer(every_list, test_size=EARLY_STOPPING_SHARE, random_state=3)
    assert held_out.positives_only().n_groups >= MIN_EARLY_STOPPING_GROUPS  # rounds were chosen
    rows = every_list.positives_only()
    data = lgb.Dataset(rows.rows.features, rows.rows.label, group=rows.group_sizes())
    return lgb.train({**BROAD_PARAMS, "seed": 3}, data, num_boost_round=rounds)


def test_the_dask_model_has_the_one_process_models_contract(
    models, one_process_on_the_same_rows, tmp_path, encoder
):
    local, on_dask = models
    assert on_dask.kind == "broad"
    assert on_dask.config.trained_on == local.config.trained_on == ["src0", "src1", "src2"]
    assert on_dask.config.feature_names == list(FEATURE_NAMES)
    assert on_dask.booster.feature_name() == list(FEATURE_NAMES)
    # the rounds sample holds every list: the same split by customer (name order, keys, seeds)
    # and the same early stopping as one process, so the same rounds
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
    assert adapted.kind in set(CANDIDATES)
    ours, theirs = rt.recommend(adapted, shop, k=5), rt.recommend(from_local, shop, k=5)
    assert ours.columns == theirs.columns
    assert ours.height == theirs.height > 0  # every customer served, k items each
    assert set(ours["user_id"]) == set(theirs["user_id"])


def test_the_dask_model_ranks_an_unseen_shop_as_one_process_does_within_noise(
    models, one_process_on_the_same_rows, encoder
):
    """Against plain one-process LightGBM on the same rows and rounds (``rt.pretrain`` is not the
    reference: it trains on 90% of these lists, holding the rest out to pick the rounds)."""
    _, on_dask = models
    unseen = prepare(make_shop("unseen", seed=99, n_users=240), encoder)
    rows = labelled_rows(unseen, range(1), config=CandidateConfig())

    def gains(scores: np.ndarray) -> np.ndarray:
        return ndcg_gains(target_ranks(rows.group, rows.rows.label, scores, rows.n_groups), 10)

    dask_gains = gains(on_dask.score(rows.rows.features))
    same_rows_gains = gains(predict(one_process_on_the_same_rows, rows.rows.features))
    # Data-parallel trees differ from one-process ones (each worker bins and bags its own
    # partitions, and which worker holds which source varies from run to run): the same
    # customers' NDCG@10 may differ by no more than two standard errors of the paired
    # difference (a 95% band, the guard's own noise measure), either way.
    difference = dask_gains - same_rows_gains
    margin = 2 * paired_stderr(difference)
    assert abs(float(difference.mean())) <= margin, (dask_gains.mean(), same_rows_gains.mean())
    # and it learnt the planted sequences: well above the best untrained single-feature scorer
    features = rows.rows.features.astype(np.float64)
    untrained = max(
        float(gains(sign * features[:, j]).mean())
        for j in range(len(FEATURE_NAMES))
        for sign in (1.0, -1.0)
    )
    assert float(dask_gains.mean()) > untrained + 0.1, (dask_gains.mean(), untrained)


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


def test_one_process_pretraining_too_big_is_refused_before_any_row_is_built(monkeypatch, tmp_path):
    from rectransfer.transfer import pretrain as one_process

    shops = [write_shop(make_shop(f"s{i}", seed=i, n_users=40), tmp_path / f"s{i}") for i in (0, 1)]
    per_source = sizing.training_matrix_bytes(
        [40], max_customers_per_retailer=None, cuts=3, max_negatives=MAX_TRAINING_NEGATIVES
    )
    assert per_source is not None
    monkeypatch.setattr(sizing, "MAX_ONE_PROCESS_TRAINING_BYTES", 2 * per_source - 1)
    real_prepare = one_process.prepare

    def no_preparing(*args, **kwargs):
        raise AssertionError("a source was prepared before the size was checked")

    monkeypatch.setattr(one_process, "prepare", no_preparing)
    hashing = rt.load_encoder("hashing")
    with pytest.raises(rt.ConfigError, match=r"2 sources .* runner='dask'"):
        rt.pretrain(shops, encoder=hashing, max_customers_per_retailer=None, virtual_shops=())
    monkeypatch.setattr(sizing, "MAX_ONE_PROCESS_TRAINING_BYTES", 2 * per_source)
    # each virtual shop may add as many lists again: counted, so refused at this limit
    with pytest.raises(rt.ConfigError, match=r"2 sources .* runner='dask'"):
        rt.pretrain(shops, encoder=hashing, max_customers_per_retailer=None, virtual_shops=(0.1,))
    # at the limit it fits, and trains
    monkeypatch.setattr(one_process, "prepare", real_prepare)
    model = rt.pretrain(
        shops, encoder=hashing, max_customers_per_retailer=None, max_rounds=8, virtual_shops=()
    )
    assert model.config.trained_on == ["s0", "s1"]


@pytest.mark.usefixtures("prefect_harness")
def test_the_pretrain_flow_runs_on_the_dask_cluster_at_an_address(source_folders, client, tmp_path):
    from flows.pretrain import PretrainParams, pretrain

    address = client.scheduler.address  # type: ignore[attr-defined]
    path = pretrain(
        **PretrainParams(
            sources=[str(s) for s in source_folders],
            out=str(tmp_path / "broad"),
            encoder="hashing:64",
            runner="dask",
            dask_address=address,
        ).model_dump()
    )
    model = rt.RecModel.load(path)
    assert model.kind == "broad" and model.config.trained_on == ["src0", "src1", "src2"]
    assert model.config.params["trained_with"] == "lightgbm.dask.DaskLGBMRanker"
    with pytest.raises(rt.ConfigError, match="runner='dask'"):
        pretrain(
            **PretrainParams(
                sources=[str(s) for s in source_folders],
                out=str(tmp_path / "other"),
                encoder="hashing:64",
                dask_address=address,
            ).model_dump()
        )
