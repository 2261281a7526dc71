"""Export top-K recommendations of one retailer to Parquet.

The retailer is prepared once by one task, its customers are recommended for in chunks of
``chunk_size`` by one task each, and one task writes the partition in customer order (see
``rectransfer.serving.fanout``). ``runner`` says where the tasks run, as for the nightly flow.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, PositiveInt

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
    model_config = ConfigDict(extra="forbid")

    model: str  # model directory (adapted or broad)
    retailer: str  # retailer folder
    out: str  # export root
    k: int = 20
    run_date: str | None = None  # YYYY-MM-DD, default today (UTC)
    name: str | None = None
    encoder: str = "default"
    cache_dir: str | None = None
    runner: Runner = "local"  # where the tasks run: this process, or a Dask cluster
    dask_address: str | None = None  # default $RECTRANSFER_DASK_ADDRESS, else a local cluster
    chunk_size: PositiveInt = DEFAULT_CHUNK_SIZE  # customers per recommend task


@flow(name="rectransfer-recommend", log_prints=True)
def recommend(params: RecommendParams) -> str:
    """Recommend for every customer of the retailer, write the Parquet partition and report it."""
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
    plan = result_or_cause(submit_plan(ready, chunk_size=params.chunk_size), [ready])
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
