"""Nightly: for every retailer under a root folder, adapt if stale, then export recommendations.

One retailer's failure is recorded in the report and does not stop the others; the flow run ends
failed (after the report is written) when any retailer failed, so schedulers and alerts see it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from rectransfer.encoder import Encoder
from rectransfer.errors import RecTransferError
from rectransfer.model import RecModel
from rectransfer.report import RetailerOutcome, markdown_report
from rectransfer.schema import retailer_folders
from rectransfer.tasks import (
    adapt_task,
    encoder_from,
    export_task,
    load_model_task,
    load_retailer,
    recommend_task,
    save_model_task,
    staleness_task,
)


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


class RetailersFailed(RecTransferError):
    """Some retailers of a nightly run failed (the others completed)."""


def run_retailer(
    folder: Path, base: RecModel, encoder: Encoder, params: NightlyParams
) -> RetailerOutcome:
    """Adapt-if-stale + recommend + export for one retailer; errors become a failed outcome."""
    model_dir = Path(params.models_root) / folder.name
    try:
        data = load_retailer(folder)
        reason = staleness_task(model_dir, base, params.max_model_age_days)
        if reason is not None:
            model = adapt_task(base, data, params.random_state)
            save_model_task(model, model_dir)
        else:
            model = load_model_task(model_dir, encoder)
        recs = recommend_task(model, data, params.k)
        path = export_task(
            recs, params.export_root, data.name, params.run_date, model.model_version
        )
    except Exception as err:  # one retailer must not stop the others; the error is reported
        get_run_logger().error("retailer %s failed: %s", folder.name, err)
        return RetailerOutcome(
            retailer=folder.name, status="failed", reason=f"{type(err).__name__}: {err}"
        )
    return RetailerOutcome(
        retailer=data.name,
        status="ok",
        adapted=reason is not None,
        reason=reason,
        model_version=model.model_version,
        guard=model.guard,
        export=path,
        rows=recs.height,
    )


@flow(name="rectransfer-nightly", log_prints=True)
def nightly(params: NightlyParams) -> list[RetailerOutcome]:
    """Run every retailer under ``params.retailers_root``; report all, fail if any failed."""
    encoder = encoder_from(params.encoder, params.cache_dir)
    base = load_model_task(params.base, encoder)
    outcomes = [
        run_retailer(folder, base, encoder, params)
        for folder in retailer_folders(params.retailers_root)
    ]
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
