"""A retailer's process that dies (a real signal) fails that retailer only, not the night."""

from __future__ import annotations

import functools
import os
import signal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rectransfer as rt
from rectransfer.orchestration import isolation
from rectransfer.orchestration.isolation import ProcessDied, run_isolated
from tests.conftest import import_extra, make_shop, write_shop
from tests.orchestration import crash_hooks

RUN_DATE = "2026-11-23"


def test_the_work_runs_in_another_process_and_its_result_comes_back():
    assert run_isolated(crash_hooks.add, 2, 3, name="shop") == 5
    assert run_isolated(crash_hooks.pid, name="shop") != os.getpid()


def test_the_works_own_error_comes_back_with_its_type_and_message():
    with pytest.raises(rt.SchemaError, match=r"^items\.parquet: column 'item_id' is missing"):
        run_isolated(crash_hooks.refuse, "items.parquet", name="shop")


@pytest.mark.parametrize(
    ("signum", "words"),
    [
        (signal.SIGSEGV, "died of signal SIGSEGV (exit code -11)"),
        (signal.SIGABRT, "died of signal SIGABRT (exit code -6)"),
        (signal.SIGKILL, "died of signal SIGKILL (killed: out of memory?) (exit code -9)"),
    ],
)
def test_a_process_killed_by_a_signal_is_an_error_naming_the_signal(signum, words):
    with pytest.raises(ProcessDied) as died:
        run_isolated(crash_hooks.die_of, signum, name="shop")
    assert str(died.value).startswith(f"the process working on 'shop' {words}; nothing was")


def test_the_child_hook_crashes_only_the_named_work(monkeypatch):
    monkeypatch.setattr(isolation, "CHILD_HOOK", functools.partial(crash_hooks.segfault_on, "b"))
    assert run_isolated(crash_hooks.add, 1, 1, name="a") == 2
    with pytest.raises(ProcessDied, match="'b' died of signal SIGSEGV"):
        run_isolated(crash_hooks.add, 1, 1, name="b")


# --- the nightly flow (on the session's temporary Prefect server) ---


def read_partitions(root) -> dict[str, pl.DataFrame]:
    return {
        path.parent.parent.name.removeprefix("retailer="): pl.read_parquet(path)
        for path in sorted(root.glob("retailer=*/run_date=*/part-0.parquet"))
    }


@pytest.mark.usefixtures("prefect_harness")
def test_a_retailer_whose_process_segfaults_fails_alone_and_the_others_export_as_before(
    broad, tmp_path, monkeypatch
):
    import flows.nightly as module

    reports: list[str] = []
    monkeypatch.setattr(
        module, "create_markdown_artifact", lambda **kwargs: reports.append(kwargs["markdown"])
    )
    retailers = tmp_path / "retailers"
    for seed, name in enumerate(["alpha", "beta", "gamma"]):
        write_shop(make_shop(name, seed=40 + seed, n_users=25), retailers / name)
    # beta's process kills itself with SIGSEGV, as LightGBM did on a damaged model
    monkeypatch.setattr(isolation, "CHILD_HOOK", functools.partial(crash_hooks.segfault_on, "beta"))

    base = broad.save(tmp_path / "broad")

    def params(run: str, *, isolate: bool) -> module.NightlyParams:
        return module.NightlyParams(
            retailers_root=str(retailers),
            base=str(base),
            models_root=str(tmp_path / run / "models"),
            export_root=str(tmp_path / run / "exports"),
            k=4,
            run_date=RUN_DATE,
            encoder="hashing:64",
            chunk_size=7,
            isolate_retailers=isolate,
        )

    state = module.nightly(**params("isolated", isolate=True).model_dump(), return_state=True)
    assert state.is_failed()  # the run ends failed, after the report
    assert state.message.startswith(
        "Flow run encountered an exception: RetailersFailed: 1 of 3 retailers failed: beta: "
        "ProcessDied: the process working on 'beta' died of signal SIGSEGV (exit code -11)"
    )
    (report,) = reports
    assert "2 of 3 retailers succeeded" in report and "| beta | failed |" in report
    assert "**beta**: ProcessDied: the process working on 'beta' died of signal SIGSEGV" in report
    isolated = read_partitions(tmp_path / "isolated" / "exports")
    assert sorted(isolated) == ["alpha", "gamma"]

    # The same night in this process, as before isolation (the hook acts only in a child):
    # the healthy retailers' partitions are the same, row for row.
    in_process = module.nightly(**params("in-process", isolate=False).model_dump())
    assert [o.status for o in in_process] == ["ok", "ok", "ok"]
    before = read_partitions(tmp_path / "in-process" / "exports")
    for name in ("alpha", "gamma"):
        assert isolated[name].height == 4 * 25
        assert_frame_equal(isolated[name], before[name])


@pytest.mark.slow  # ~1 minute: a Dask cluster whose worker dies four times
@pytest.mark.usefixtures("prefect_harness")
def test_on_dask_a_worker_that_dies_fails_its_retailer_and_the_run_ends(
    broad, tmp_path, monkeypatch
):
    """The nanny restarts the dead worker, Dask tries the task on other workers, and after
    ``distributed.scheduler.allowed-failures`` + 1 deaths it gives up with KilledWorker."""
    import_extra("prefect_dask", "dask")
    import dask

    from flows.nightly import NightlyParams, nightly

    crashing = "crashing-shop"  # dask_crash_preload.CRASHING (not imported here: it patches)
    # What the cluster's nannies hand their workers to import first
    monkeypatch.setitem(
        dask.config.config["distributed"]["worker"],
        "preload",
        ["tests.orchestration.dask_crash_preload"],
    )
    retailers = tmp_path / "retailers"
    for seed, name in enumerate(["alpha", crashing, "gamma"]):
        write_shop(make_shop(name, seed=60 + seed, n_users=20), retailers / name)
    params = NightlyParams(
        retailers_root=str(retailers),
        base=str(broad.save(tmp_path / "broad")),
        models_root=str(tmp_path / "models"),
        export_root=str(tmp_path / "exports"),
        k=3,
        run_date=RUN_DATE,
        encoder="hashing:64",
        runner="dask",
    )
    state = nightly(**params.model_dump(), return_state=True)
    assert state.is_failed()
    assert f"1 of 3 retailers failed: {crashing}: KilledWorker" in state.message
    assert sorted(read_partitions(tmp_path / "exports")) == ["alpha", "gamma"]


def test_a_retailer_with_bad_data_is_one_failed_outcome_not_a_raised_error(tmp_path, broad):
    from rectransfer.orchestration.one_retailer import RetailerJob
    from rectransfer.orchestration.tasks import isolated_retailer_task

    shop = tmp_path / "retailers" / "broken"
    shop.mkdir(parents=True)
    (shop / "items.parquet").write_bytes(b"not parquet")
    (shop / "interactions.parquet").write_bytes(b"nor this")
    job = RetailerJob(
        folder=str(shop),
        base=str(broad.save(tmp_path / "broad")),
        encoder="hashing:64",
        cache_dir=None,
        models_root=str(tmp_path / "models"),
        max_age_days=7,
        random_state=0,
        chunk_size=1000,
        k=3,
        export_root=str(tmp_path / "exports"),
        run_date="2026-01-02",
    )
    outcome = isolated_retailer_task.fn(job)  # returns: the flow logs it once, no traceback
    assert outcome.status == "failed" and outcome.retailer == "broken"
    assert outcome.reason is not None and outcome.reason.startswith("SchemaError: ")
    assert "\n" not in outcome.reason
