"""The Prefect flows, run for real against a temporary local Prefect server."""

import polars as pl
import pytest

from tests.conftest import make_shop, write_shop

pytestmark = pytest.mark.usefixtures("prefect_harness")  # see conftest.py


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("flows")
    sources = [
        write_shop(make_shop(f"src{i}", seed=i, n_users=80), root / "sources" / f"src{i}")
        for i in range(2)
    ]
    write_shop(make_shop("alpha", seed=21, n_users=40), root / "retailers" / "alpha")
    write_shop(make_shop("beta", seed=22, n_users=40), root / "retailers" / "beta")
    return root, sources


def test_pretrain_then_nightly_then_nightly_reuses_fresh_models(workspace):
    from flows.nightly import NightlyParams, nightly
    from flows.pretrain import PretrainParams, pretrain

    root, sources = workspace
    base = pretrain(
        **PretrainParams(
            sources=[str(s) for s in sources], out=str(root / "broad"), encoder="hashing"
        ).model_dump()
    )
    assert (root / "broad" / "config.json").is_file() and base.endswith("broad")

    params = NightlyParams(
        retailers_root=str(root / "retailers"),
        base=str(root / "broad"),
        models_root=str(root / "models"),
        export_root=str(root / "exports"),
        k=5,
        run_date="2026-11-23",
        encoder="hashing",
    )
    outcomes = nightly(**params.model_dump())
    assert [o.retailer for o in outcomes] == ["alpha", "beta"]
    assert all(o.status == "ok" and o.adapted for o in outcomes)
    assert all(o.guard is not None for o in outcomes)
    for o in outcomes:
        frame = pl.read_parquet(o.export)
        assert frame.height == o.rows and frame["rank"].max() == 5

    again = nightly(**params.model_dump())
    assert [o.adapted for o in again] == [False, False]  # fresh models are reused
    assert [o.model_version for o in again] == [o.model_version for o in outcomes]
    # the rerun replaced the partition instead of adding rows
    assert pl.read_parquet(again[0].export).height == outcomes[0].rows


def test_one_broken_retailer_does_not_stop_the_others(workspace, tmp_path):
    from flows.nightly import NightlyParams, nightly
    from flows.pretrain import PretrainParams, pretrain

    _, sources = workspace
    pretrain(
        **PretrainParams(
            sources=[str(s) for s in sources], out=str(tmp_path / "broad"), encoder="hashing"
        ).model_dump()
    )
    retailers = tmp_path / "retailers"
    write_shop(make_shop("good", seed=31, n_users=40), retailers / "good")
    broken = retailers / "broken"
    broken.mkdir(parents=True)
    (broken / "items.parquet").write_bytes(b"not parquet at all")
    (broken / "interactions.parquet").write_bytes(b"nor this")

    params = NightlyParams(
        retailers_root=str(retailers),
        base=str(tmp_path / "broad"),
        models_root=str(tmp_path / "models"),
        export_root=str(tmp_path / "exports"),
        k=3,
        run_date="2026-11-23",
        encoder="hashing",
    )
    state = nightly(**params.model_dump(), return_state=True)
    assert state.is_failed()
    assert "1 of 2 retailers failed" in state.message or "broken" in str(state.message)
    good = tmp_path / "exports" / "retailer=good" / "run_date=2026-11-23" / "part-0.parquet"
    assert pl.read_parquet(good).height > 0
    assert not (tmp_path / "exports" / "retailer=broken").exists()


def test_adapt_and_recommend_flows(workspace, tmp_path):
    from flows.adapt import AdaptParams, adapt
    from flows.pretrain import PretrainParams, pretrain
    from flows.recommend import RecommendParams, recommend

    root, sources = workspace
    pretrain(
        **PretrainParams(
            sources=[str(s) for s in sources], out=str(tmp_path / "broad"), encoder="hashing"
        ).model_dump()
    )
    outcome = adapt(
        **AdaptParams(
            base=str(tmp_path / "broad"),
            retailer=str(root / "retailers" / "alpha"),
            out=str(tmp_path / "alpha"),
            encoder="hashing",
        ).model_dump()
    )
    assert outcome.guard is not None and outcome.guard.decision in {"adapted", "broad", "local"}
    path = recommend(
        **RecommendParams(
            model=str(tmp_path / "alpha"),
            retailer=str(root / "retailers" / "alpha"),
            out=str(tmp_path / "exports"),
            k=2,
            run_date="2026-11-23",
            encoder="hashing",
        ).model_dump()
    )
    assert pl.read_parquet(path)["rank"].max() == 2


def test_io_tasks_retry_and_compute_tasks_do_not():
    from rectransfer.orchestration import tasks

    assert tasks.load_retailer.retries == tasks.IO_RETRIES
    assert tasks.export_task.retries == tasks.IO_RETRIES
    assert tasks.save_model_task.retries == tasks.IO_RETRIES
    assert tasks.adapt_task.retries == 0
    assert tasks.recommend_task.retries == 0
