"""Monthly: train the broad model on many retailers' folders.

``runner`` says where: ``"local"`` loads the sources and trains in this process (refused, with a
pointer to the Dask runner, when the training rows would not fit one process); ``"dask"`` builds
each source's rows on a Dask cluster's workers and trains there with LightGBM's Dask interface
(``rectransfer.orchestration.pretraining``), at ``dask_address`` (default
``$RECTRANSFER_DASK_ADDRESS``) or on a temporary local cluster. Both save an ordinary broad model.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from rectransfer.orchestration.pretraining import check_runner, pretrain_on_dask_task
from rectransfer.orchestration.runners import Runner
from rectransfer.orchestration.tasks import (
    encoder_from,
    load_retailer,
    pretrain_task,
    save_model_task,
)
from rectransfer.utils.destinations import check_model_destination


class PretrainParams(BaseModel):
    """The pretraining settings; the flow takes them as flat parameters (see :func:`pretrain`)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str]
    out: str
    encoder: str = "default"
    cache_dir: str | None = None
    random_state: int = 0
    runner: Runner = "local"  # where the training rows are built and trained: here, or on Dask
    dask_address: str | None = None  # default $RECTRANSFER_DASK_ADDRESS, else a local cluster


@flow(name="rectransfer-pretrain", log_prints=True)
def pretrain(
    sources: list[str] = Field(..., description="the source retailers' folders"),
    out: str = Field(..., description="the broad model directory to write"),
    encoder: str = Field("default", description="text encoder spec (see docs/CLI.md)"),
    cache_dir: str | None = Field(None, description="embedding cache folder"),
    random_state: int = Field(0, description="seed of sampling and training"),
    runner: Runner = Field(
        "local", description="'local' (one process) or 'dask' (each source on a worker)"
    ),
    dask_address: str | None = Field(
        None, description="Dask scheduler; default $RECTRANSFER_DASK_ADDRESS or a local cluster"
    ),
) -> str:
    """Pretrain the broad ranker on ``sources`` and save it to ``out``."""
    params = PretrainParams(**locals())
    check_runner(params.runner, params.dask_address)
    check_model_destination(params.out, inputs=params.sources, option="out")  # before training
    encoder = encoder_from(params.encoder, params.cache_dir)
    if params.runner == "dask":
        model = pretrain_on_dask_task(
            params.sources, encoder, params.random_state, params.dask_address
        )
    else:
        sources = [load_retailer(folder) for folder in params.sources]
        model = pretrain_task(sources, encoder, params.random_state)
    path = save_model_task(model, params.out)
    create_markdown_artifact(
        key="rectransfer-pretrain",
        markdown=(
            f"# Broad model {model.model_version}\n\n"
            f"trained on {', '.join(model.config.trained_on)} "
            f"({model.config.rounds.get('broad')} rounds) -> `{Path(path).name}`"
        ),
    )
    return path
