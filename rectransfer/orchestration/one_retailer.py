"""One retailer's nightly work as one plain function, for a process of its own.

:func:`export_one_retailer` does what the nightly flow's fan-out tasks do for one retailer (see
:mod:`rectransfer.orchestration.tasks`): load the retailer, adapt the broad model if the retailer's
model is stale (and save it) or load it, score its customers chunk by chunk and write the merged
chunks as its partition. It gives the same rows, and returns the same outcome, as the fan-out; it
only takes paths and settings, so it can be pickled to a child process
(:func:`rectransfer.orchestration.isolation.run_isolated`). It does not import Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rectransfer.data.retailer import RetailerData
from rectransfer.model.recmodel import RecModel
from rectransfer.orchestration.report import RetailerOutcome, stock_warning
from rectransfer.orchestration.staleness import adaptation_reason
from rectransfer.serving.export import check_retailer_name, write_recommendations
from rectransfer.serving.fanout import customer_chunks, merge_chunks, recommend_chunk
from rectransfer.text.load import load_encoder
from rectransfer.transfer.adapt import adapt
from rectransfer.utils.destinations import check_model_destination

__all__ = ["RetailerJob", "export_one_retailer"]


@dataclass(frozen=True)
class RetailerJob:
    """Everything one retailer's nightly work needs: paths and settings only."""

    folder: str  # the retailer's folder (the data contract)
    base: str  # the broad model directory
    encoder: str  # encoder spec (see rectransfer.text.load.load_encoder)
    cache_dir: str | None
    models_root: str  # its adapted model lives in <models_root>/<folder name>
    max_age_days: float
    random_state: int
    chunk_size: int
    k: int
    export_root: str
    run_date: str | None


def export_one_retailer(job: RetailerJob) -> RetailerOutcome:
    """Adapt-if-stale, score and export one retailer; its outcome (status ``"ok"``).

    Raises what the steps raise (a ``SchemaError`` for bad data, ...); the caller reports it.
    """
    encoder = load_encoder(job.encoder, cache_dir=job.cache_dir)
    base = RecModel.load(job.base).with_encoder(encoder)
    folder = Path(job.folder)
    data = RetailerData.load(folder)
    check_retailer_name(data.name)  # before adapting and scoring: it names the partition
    model_dir = Path(job.models_root) / folder.name
    reason = adaptation_reason(model_dir, base, max_age_days=job.max_age_days)
    if reason is not None:
        # as the fan-out does: a folder there that rectransfer did not write fails this retailer
        check_model_destination(model_dir, inputs=[folder], option="models_root/<retailer>")
        model = adapt(base, data, random_state=job.random_state)
        model.save(model_dir)
    else:
        model = RecModel.load(model_dir).with_encoder(encoder)
    prepared = model.prepare(data)
    # Chunk by chunk as the fan-out does, so that the rows are the fan-out's, row for row.
    recommendations = merge_chunks(
        [
            recommend_chunk(model, prepared, rows, k=job.k)
            for rows in customer_chunks(prepared, chunk_size=job.chunk_size)
        ]
    )
    path = write_recommendations(
        recommendations,
        job.export_root,
        retailer=prepared.name,
        run_date=job.run_date,
        model_version=model.model_version,
    )
    return RetailerOutcome(
        retailer=prepared.name,
        status="ok",
        adapted=reason is not None,
        reason=reason,
        model_version=model.model_version,
        guard=model.guard,
        export=str(path),
        rows=recommendations.height,
        warning=stock_warning(data),
    )
