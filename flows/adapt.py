"""Weekly: adapt the broad model to one retailer; the negative-transfer guard decides what ships."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from rectransfer.orchestration.report import RetailerOutcome, markdown_report
from rectransfer.orchestration.tasks import (
    adapt_task,
    encoder_from,
    load_model_task,
    load_retailer,
    save_model_task,
)
from rectransfer.utils.destinations import check_model_destination


class AdaptParams(BaseModel):
    """The adaptation settings; the flow takes them as flat parameters (see :func:`adapt`)."""

    model_config = ConfigDict(extra="forbid")

    base: str
    retailer: str
    out: str
    name: str | None = None
    encoder: str = "default"
    cache_dir: str | None = None
    random_state: int = 0


@flow(name="rectransfer-adapt", log_prints=True)
def adapt(
    base: str = Field(..., description="the broad model directory"),
    retailer: str = Field(..., description="the retailer's folder"),
    out: str = Field(..., description="the adapted model directory to write"),
    name: str | None = Field(None, description="retailer name (default: the folder's name)"),
    encoder: str = Field("default", description="text encoder spec (see docs/CLI.md)"),
    cache_dir: str | None = Field(None, description="embedding cache folder"),
    random_state: int = Field(0, description="seed of adaptation"),
) -> RetailerOutcome:
    """Fine-tune ``base`` to ``retailer`` and save what the guard ships."""
    params = AdaptParams(**locals())
    # Before adapting: never the retailer's or the base model's folder, nor a folder of other files.
    check_model_destination(params.out, inputs=[params.retailer, params.base], option="out")
    encoder = encoder_from(params.encoder, params.cache_dir)
    base = load_model_task(params.base, encoder)
    data = load_retailer(params.retailer, params.name)
    model = adapt_task(base, data, params.random_state)
    save_model_task(model, params.out)
    outcome = RetailerOutcome(
        retailer=data.name,
        status="ok",
        adapted=True,
        reason=model.guard.reason if model.guard else None,
        model_version=model.model_version,
        guard=model.guard,
    )
    create_markdown_artifact(
        key="rectransfer-adapt", markdown=markdown_report(f"Adaptation of {data.name}", [outcome])
    )
    return outcome
