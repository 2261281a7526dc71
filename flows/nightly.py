"""Nightly: for every retailer under a root folder, adapt if stale, then export recommendations.

One retailer's failure is recorded in the report and does not stop the others; the flow run ends
failed (after the report is written) when any retailer failed, so schedulers and alerts see it.
With the local runner each retailer's whole work runs in a process of its own
(``rectransfer.orchestration.isolation``), so that a crash that no ``except`` can catch (a
segmentation fault, the out-of-memory killer) is that retailer's failure too, named by its signal.
On Dask the tasks already run in worker processes (see the README on a worker that dies).

The work fans out (see ``rectransfer.orchestration.tasks.export_retailers``): one task per retailer
makes it ready (adapted or loaded, then prepared), one task per chunk of its customers recommends,
one task writes its partition. ``runner`` says where those tasks run: ``"local"`` (one at a time in
this process) or ``"dask"`` (a Dask cluster; see ``rectransfer.orchestration.runners``). ``nightly``
runs ``nightly_run`` as a subflow on that runner; call ``nightly_run.with_options(task_runner=...)``
for any other runner.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, PositiveInt

from rectransfer.data.retailer import retailer_folders
from rectransfer.errors import RecTransferError
from rectransfer.model.recmodel import RecModel
from rectransfer.orchestration.one_retailer import RetailerJob
from rectransfer.orchestration.report import RetailerOutcome, markdown_report
from rectransfer.orchestration.runners import Runner, retailers_in_flight, with_runner
from rectransfer.orchestration.tasks import (
    adapt_or_load_task,
    check_models_root,
    encoder_from,
    export_retailers,
    export_retailers_isolated,
    load_model_task,
)
from rectransfer.serving.fanout import DEFAULT_CHUNK_SIZE
from rectransfer.text.encoder import Encoder


class NightlyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retailers_root: str  # one sub-folder per retailer (the data contract)
    base: str  # broad model directory
    models_root: str  # adapted models live in <models_root>/<retailer>
    export_root: str
    k: int = 20
    run_date: str | None = None  # YYYY-MM-DD, default today (UTC)
    max_model_age_days: float = 7.0
    encoder: str = "default"
    cache_dir: str | None = None
    random_state: int = 0
    runner: Runner = "local"  # where the tasks run: this process, or a Dask cluster
    dask_address: str | None = None  # default $RECTRANSFER_DASK_ADDRESS, else a local cluster
    chunk_size: PositiveInt = DEFAULT_CHUNK_SIZE  # customers per recommend task
    parallel_retailers: PositiveInt = 4  # retailers worked on at once on Dask (locally one)
    # Locally, each retailer in a process of its own, so that its crash (a signal, the
    # out-of-memory killer) fails that retailer only. False: in this process, in fan-out tasks.
    isolate_retailers: bool = True


class RetailersFailed(RecTransferError):
    """Some retailers of a nightly run failed (the others completed)."""


@flow(name="rectransfer-nightly", log_prints=True)
def nightly(params: NightlyParams) -> list[RetailerOutcome]:
    """Run every retailer under ``params.retailers_root`` on ``params.runner``; see nightly_run."""
    return with_runner(nightly_run, params.runner, address=params.dask_address)(params)


@flow(name="rectransfer-nightly-run", log_prints=True)
def nightly_run(params: NightlyParams) -> list[RetailerOutcome]:
    """Adapt-if-stale and export every retailer; report all, fail if any failed."""
    folders = retailer_folders(params.retailers_root)
    check_models_root(params.models_root, params.retailers_root, folders, params.base)
    encoder = encoder_from(params.encoder, params.cache_dir)
    base = load_model_task(params.base, encoder)  # a broken broad model fails the run up front
    if params.runner == "local" and params.isolate_retailers:
        outcomes = export_retailers_isolated(folders, lambda folder: _job(params, folder))
    else:
        outcomes = _fan_out(params, base, encoder, folders)
    create_markdown_artifact(
        key="rectransfer-nightly", markdown=markdown_report("Nightly recommendations", outcomes)
    )
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        raise RetailersFailed(
            f"{len(failed)} of {len(outcomes)} retailers failed: "
            + "; ".join(f"{o.retailer}: {o.reason}" for o in failed)
        )
    return outcomes


def _job(params: NightlyParams, folder: Path) -> RetailerJob:
    return RetailerJob(
        folder=str(folder),
        base=params.base,
        encoder=params.encoder,
        cache_dir=params.cache_dir,
        models_root=params.models_root,
        max_age_days=params.max_model_age_days,
        random_state=params.random_state,
        chunk_size=params.chunk_size,
        k=params.k,
        export_root=params.export_root,
        run_date=params.run_date,
    )


def _fan_out(
    params: NightlyParams, base: RecModel, encoder: Encoder, folders: list[Path]
) -> list[RetailerOutcome]:
    return export_retailers(
        folders,
        lambda folder: adapt_or_load_task.submit(
            folder,
            base,
            encoder,
            params.models_root,
            params.max_model_age_days,
            params.random_state,
        ),
        chunk_size=params.chunk_size,
        k=params.k,
        root=params.export_root,
        run_date=params.run_date,
        in_flight=retailers_in_flight(params.runner, params.parallel_retailers),
    )
