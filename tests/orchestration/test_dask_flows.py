"""Fan-out: chunked exports equal single runs row for row, locally and on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rectransfer as rt
from rectransfer.ranking import candidates
from rectransfer.serving.fanout import (
    customer_chunks,
    merge_chunks,
    recommend_chunk,
    recommend_in_chunks,
)
from rectransfer.serving.recommend import TEXT_BLOCK
from tests.conftest import import_extra, make_shop, write_shop

RUN_DATE = "2026-11-23"


def shop_with_every_path(name: str, *, seed: int, n_users: int = 40) -> rt.RetailerData:
    """Customers of all three paths: with history (ranker), text only (text), silent (popular)."""
    shop = make_shop(name, seed=seed, n_users=n_users, text_only_users=3)
    assert shop.users is not None
    prefix = name[:2].upper()
    silent = pl.DataFrame({"user_id": [f"{prefix}-silent{j}" for j in range(12)], "text": "  "})
    users = pl.concat([shop.users, silent.cast(shop.users.schema)])
    return rt.RetailerData.from_frames(shop.items, shop.interactions, users, name=name)


@pytest.fixture
def small_ranker_blocks(monkeypatch):
    """Ranker customers scored 8 at a time (the floor), so tiny shops make many chunks."""
    monkeypatch.setattr(candidates, "BLOCK_BUDGET_BYTES", 1)
    assert candidates.chunk_size(1_000) == 8


@pytest.fixture(scope="module")
def shop() -> rt.RetailerData:
    return shop_with_every_path("delta", seed=5)


def test_chunks_hold_every_customer_once_cut_on_scoring_blocks(broad, shop, small_ranker_blocks):
    prepared = broad.prepare(shop)
    n = len(prepared.index.user_ids)
    lengths = prepared.index.histories.lengths
    for size in (1, 5, 16, n, 10 * n):
        chunks = customer_chunks(prepared, chunk_size=size)
        together = np.concatenate(chunks)
        assert np.array_equal(np.sort(together), np.arange(n))  # everyone, once
        assert all(np.array_equal(rows, np.sort(rows)) for rows in chunks)
        ranker = [c for rows in chunks if (c := int((lengths[rows] > 0).sum()))]
        assert all(count % 8 == 0 for count in ranker[:-1])  # whole ranker blocks but the last
    assert len(customer_chunks(prepared, chunk_size=5)) > 5
    assert len(customer_chunks(prepared, chunk_size=10 * n)) == 1
    assert TEXT_BLOCK > 1
    with pytest.raises(rt.ConfigError, match="chunk_size"):
        customer_chunks(prepared, chunk_size=0)


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 1_000])
def test_recommendations_in_chunks_equal_one_run_row_for_row(
    broad, shop, small_ranker_blocks, chunk_size
):
    one_run = rt.recommend(broad, shop, k=6)
    assert set(one_run["source"]) == {"ranker", "text", "popular"}
    assert_frame_equal(recommend_in_chunks(broad, shop, k=6, chunk_size=chunk_size), one_run)


def test_chunks_merge_in_customer_order_whatever_order_they_finish(broad, shop):
    prepared = broad.prepare(shop)
    parts = [
        recommend_chunk(broad, prepared, rows, k=3)
        for rows in customer_chunks(prepared, chunk_size=9)
    ]
    assert len(parts) > 2
    assert_frame_equal(merge_chunks(parts[::-1]), rt.recommend(broad, shop, k=3))
    assert merge_chunks([]).columns == rt.recommend(broad, shop, k=3).columns


def test_task_runner_choice():
    from prefect.task_runners import ThreadPoolTaskRunner

    from rectransfer.orchestration.runners import retailers_in_flight, task_runner

    assert isinstance(task_runner("local"), ThreadPoolTaskRunner)
    assert retailers_in_flight("local", 8) == 1 and retailers_in_flight("dask", 8) == 8
    with pytest.raises(rt.ConfigError, match="runner must be one of"):
        task_runner("spark")  # type: ignore[arg-type]
    with pytest.raises(rt.ConfigError, match="runner='dask'"):
        task_runner("local", address="tcp://10.0.0.5:8786")


def test_the_dask_runner_connects_to_the_address_given_or_in_the_environment(monkeypatch):
    import_extra("prefect_dask", "dask")
    from rectransfer.orchestration.runners import DASK_ADDRESS_ENV, LOCAL_CLUSTER, task_runner

    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    local = task_runner("dask")
    assert local.address is None and local.cluster_kwargs == LOCAL_CLUSTER
    assert task_runner("dask", address="tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://10.0.0.6:8786")
    assert task_runner("dask").address == "tcp://10.0.0.6:8786"


# --- flows (on the session's temporary Prefect server) ---


@pytest.fixture(scope="module")
def base_dir(broad, tmp_path_factory) -> Path:
    return broad.save(tmp_path_factory.mktemp("models") / "broad")


def read_partitions(root: Path) -> dict[str, pl.DataFrame]:
    return {
        path.parent.parent.name.removeprefix("retailer="): pl.read_parquet(path)
        for path in sorted(root.glob("retailer=*/run_date=*/part-0.parquet"))
    }


@pytest.mark.usefixtures("prefect_harness", "small_ranker_blocks")
def test_a_chunked_export_equals_the_unchunked_export_row_for_row(shop, base_dir, tmp_path):
    from flows.recommend import RecommendParams, recommend

    folder = write_shop(shop, tmp_path / "shops" / "delta")
    paths = {
        size: recommend(
            **RecommendParams(
                model=str(base_dir),
                retailer=str(folder),
                out=str(tmp_path / f"exports-{size}"),
                k=5,
                run_date=RUN_DATE,
                encoder="hashing:64",
                chunk_size=size,
            ).model_dump()
        )
        for size in (4, 1_000_000)
    }
    chunked, whole = (pl.read_parquet(paths[size]) for size in (4, 1_000_000))
    assert whole.height > 0 and set(whole["source"]) == {"ranker", "text", "popular"}
    assert_frame_equal(chunked, whole)

    broken = tmp_path / "shops" / "broken"
    broken.mkdir()
    (broken / "items.parquet").write_bytes(b"not parquet at all")
    (broken / "interactions.parquet").write_bytes(b"nor this")
    with pytest.raises(rt.SchemaError, match=r"items\.parquet"):  # its own error, not "upstream"
        recommend(
            **RecommendParams(
                model=str(base_dir), retailer=str(broken), out=str(tmp_path), encoder="hashing:64"
            ).model_dump()
        )


@pytest.mark.usefixtures("prefect_harness")
def test_nightly_on_a_two_worker_dask_cluster_equals_the_local_run(tmp_path, base_dir):
    """One retailer per task and one task per customer chunk, on separate worker processes."""
    import_extra("prefect_dask", "dask")
    from flows.nightly import NightlyParams, nightly

    retailers = tmp_path / "retailers"
    write_shop(shop_with_every_path("alpha", seed=21), retailers / "alpha")
    write_shop(shop_with_every_path("beta", seed=22, n_users=25), retailers / "beta")
    broken = retailers / "broken"
    broken.mkdir()
    (broken / "items.parquet").write_bytes(b"not parquet at all")
    (broken / "interactions.parquet").write_bytes(b"nor this")

    def run(runner: str) -> tuple[str, dict[str, pl.DataFrame]]:
        params = NightlyParams(
            retailers_root=str(retailers),
            base=str(base_dir),
            models_root=str(tmp_path / runner / "models"),
            export_root=str(tmp_path / runner / "exports"),
            k=4,
            run_date=RUN_DATE,
            encoder="hashing:64",
            runner=runner,  # type: ignore[arg-type]
            chunk_size=10,  # ~6 chunks per retailer: its ranker block, text block, popular slices
            parallel_retailers=3,
        )
        state = nightly(**params.model_dump(), return_state=True)
        assert state.is_failed()  # the broken retailer, reported; the others are written
        return str(state.message), read_partitions(tmp_path / runner / "exports")

    local_message, local = run("local")
    dask_message, on_dask = run("dask")

    assert "1 of 3 retailers failed" in dask_message
    assert "broken: SchemaError: items.parquet" in dask_message
    assert dask_message == local_message
    assert sorted(on_dask) == sorted(local) == ["alpha", "beta"]
    for name, frame in local.items():
        assert frame.height > 0 and set(frame["source"]) == {"ranker", "text", "popular"}
        assert_frame_equal(on_dask[name], frame)


@pytest.mark.usefixtures("prefect_harness")
def test_a_failing_chunk_fails_its_retailer_only_with_its_own_error(
    tmp_path, base_dir, monkeypatch
):
    from flows.nightly import NightlyParams, nightly
    from rectransfer.orchestration import tasks

    def recommend_chunk(model, prepared, rows, *, k, **options):
        if prepared.name == "beta":
            raise RuntimeError("worker ran out of memory")
        return real(model, prepared, rows, k=k, **options)

    real = tasks.recommend_chunk
    monkeypatch.setattr(tasks, "recommend_chunk", recommend_chunk)
    retailers = tmp_path / "retailers"
    for name, seed in (("alpha", 1), ("beta", 2)):
        write_shop(make_shop(name, seed=seed, n_users=20), retailers / name)
    params = NightlyParams(
        retailers_root=str(retailers),
        base=str(base_dir),
        models_root=str(tmp_path / "models"),
        export_root=str(tmp_path / "exports"),
        k=3,
        run_date=RUN_DATE,
        encoder="hashing:64",
        isolate_retailers=False,  # the fan-out tasks in this process, where the patch applies
    )
    state = nightly(**params.model_dump(), return_state=True)
    assert state.is_failed()
    assert "1 of 2 retailers failed: beta: RuntimeError: worker ran out of memory" in state.message
    assert sorted(read_partitions(tmp_path / "exports")) == ["alpha"]


def test_scoring_threads_are_the_worker_s_share_of_the_cores():
    from distributed import Client, LocalCluster

    from rectransfer.orchestration.tasks import worker_threads

    assert worker_threads() is None  # not on a worker: the scoring default applies
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        assert (
            client.gather(client.map(lambda _: worker_threads(), range(4), pure=False)) == [1] * 4
        )
