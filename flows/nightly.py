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
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

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
    """The nightly run's settings; the flow takes them as flat parameters (see :func:`nightly`)."""

    model_config = ConfigDict(extra="forbid")

    retailers_root: str
    base: str
    models_root: str
    export_root: str
    k: PositiveInt = 20
    run_date: str | None = None
    max_model_age_days: float = 7.0
    encoder: str = "default"
    cache_dir: str | None = None
    random_state: int = 0
    runner: Runner = "local"
    dask_address: str | None = None
    chunk_size: PositiveInt = DEFAULT_CHUNK_SIZE
    parallel_retailers: PositiveInt = 4
    isolate_retailers: bool = True


class RetailersFailed(RecTransferError):
    """Some retailers of a nightly run failed (the others completed)."""


@flow(name="rectransfer-nightly", log_prints=True)
def nightly(
    retailers_root: str = Field(
        ..., description="folder with one sub-folder per retailer (the data contract)"
    ),
    base: str = Field(..., description="the broad model directory that pretrain wrote"),
    models_root: str = Field(..., description="adapted models live in <models_root>/<retailer>"),
    export_root: str = Field(
        ..., description="export root: retailer=<name>/run_date=<date>/part-0.parquet"
    ),
    k: int = Field(20, description="items per customer", gt=0),
    run_date: str | None = Field(
        None, description="YYYY-MM-DD of the partition (a backfill); default today"
    ),
    max_model_age_days: float = Field(
        7.0, description="adapt again when a retailer's model is older than this"
    ),
    encoder: str = Field("default", description="text encoder spec, as the broad model's"),
    cache_dir: str | None = Field(None, description="embedding cache folder"),
    random_state: int = Field(0, description="seed of adaptation"),
    runner: Runner = Field("local", description="where tasks run: 'local' or 'dask'"),
    dask_address: str | None = Field(
        None, description="Dask scheduler; default $RECTRANSFER_DASK_ADDRESS or a local cluster"
    ),
    chunk_size: int = Field(DEFAULT_CHUNK_SIZE, description="customers per recommend task", gt=0),
    parallel_retailers: int = Field(
        4, description="retailers worked on at once on Dask (locally one)", gt=0
    ),
    isolate_retailers: bool = Field(
        True,
        description="locally, each retailer in a process of its own: its crash fails it alone",
    ),
) -> list[RetailerOutcome]:
    """Adapt-if-stale and export every retailer under ``retailers_root``; report all in this flow
    run's markdown artifact, and end failed if any retailer failed."""
    params = NightlyParams(**locals())
    outcomes = with_runner(nightly_run, params.runner, address=params.dask_address)(
        params, report=False
    )
    return report_outcomes(outcomes)


def report_outcomes(outcomes: list[RetailerOutcome]) -> list[RetailerOutcome]:
    """The markdown artifact of the running flow, then fail when any retailer failed."""
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


@flow(name="rectransfer-nightly-run", log_prints=True)
def nightly_run(params: NightlyParams, report: bool = True) -> list[RetailerOutcome]:
    """Adapt-if-stale and export every retailer; with ``report``, write this run's artifact and
    fail if any retailer failed (:func:`nightly` reports on its own run instead)."""
    folders = retailer_folders(params.retailers_root)
    check_models_root(params.models_root, params.retailers_root, folders, params.base)
    encoder = encoder_from(params.encoder, params.cache_dir)
    base = load_model_task(params.base, encoder)  # a broken broad model fails the run up front
    if params.runner == "local" and params.isolate_retailers:
        outcomes = export_retailers_isolated(folders, lambda folder: _job(params, folder))
    else:
        outcomes = _fan_out(params, base, encoder, folders)
    return report_outcomes(outcomes) if report else outcomes


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
