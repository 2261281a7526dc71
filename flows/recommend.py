"""Export top-K recommendations of one retailer to Parquet.

The retailer is prepared once by one task, its customers are recommended for in chunks of
``chunk_size`` by one task each, and one task writes the partition in customer order (see
``rectransfer.serving.fanout``). ``runner`` says where the tasks run, as for the nightly flow.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from rectransfer.orchestration.report import RetailerOutcome, markdown_report
from rectransfer.orchestration.runners import Runner, with_runner
from rectransfer.orchestration.tasks import (
    encoder_from,
    load_ready_task,
    result_or_cause,
    submit_export,
    submit_plan,
)
from rectransfer.serving.fanout import DEFAULT_CHUNK_SIZE


class RecommendParams(BaseModel):
    """The export's settings; the flow takes them as flat parameters (see :func:`recommend`)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    retailer: str
    out: str
    k: PositiveInt = 20
    run_date: str | None = None
    name: str | None = None
    encoder: str = "default"
    cache_dir: str | None = None
    runner: Runner = "local"
    dask_address: str | None = None
    chunk_size: PositiveInt = DEFAULT_CHUNK_SIZE


@flow(name="rectransfer-recommend", log_prints=True)
def recommend(
    model: str = Field(..., description="the model directory (adapted or broad)"),
    retailer: str = Field(..., description="the retailer's folder"),
    out: str = Field(
        ..., description="export root: retailer=<name>/run_date=<date>/part-0.parquet"
    ),
    k: int = Field(20, description="items per customer", gt=0),
    run_date: str | None = Field(
        None, description="YYYY-MM-DD of the partition; default today (UTC)"
    ),
    name: str | None = Field(None, description="retailer name (default: the folder's name)"),
    encoder: str = Field("default", description="text encoder spec (see docs/CLI.md)"),
    cache_dir: str | None = Field(None, description="embedding cache folder"),
    runner: Runner = Field("local", description="where tasks run: 'local' or 'dask'"),
    dask_address: str | None = Field(
        None, description="Dask scheduler; default $RECTRANSFER_DASK_ADDRESS or a local cluster"
    ),
    chunk_size: int = Field(DEFAULT_CHUNK_SIZE, description="customers per recommend task", gt=0),
) -> str:
    """Recommend for every customer of the retailer, write the Parquet partition and report it."""
    params = RecommendParams(**locals())
    outcome = with_runner(recommend_run, params.runner, address=params.dask_address)(params)
    create_markdown_artifact(
        key="rectransfer-recommend",
        markdown=markdown_report(f"Recommendations for {outcome.retailer}", [outcome])
        + f"\n\nWritten to `{outcome.export}`.",
    )
    return str(outcome.export)


@flow(name="rectransfer-recommend-run", log_prints=True)
def recommend_run(params: RecommendParams) -> RetailerOutcome:
    """The work of :func:`recommend` on the flow's own task runner."""
    encoder = encoder_from(params.encoder, params.cache_dir)
    ready = load_ready_task.submit(params.model, params.retailer, params.name, encoder)
    planned = submit_plan(ready, chunk_size=params.chunk_size, retailer=Path(params.retailer).name)
    plan = result_or_cause(planned, [ready])
    write, chunks = submit_export(
        ready,
        plan,
        chunk_size=params.chunk_size,
        k=params.k,
        root=params.out,
        run_date=params.run_date,
    )
    written = result_or_cause(write, chunks)
    return plan.outcome.model_copy(update={"export": written.path, "rows": written.rows})
