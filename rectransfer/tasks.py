"""Prefect tasks: thin wrappers of package calls, shared by the flows in ``flows/``.

I/O tasks (reading a retailer, reading or saving a model, writing Parquet) retry with backoff, since
a file share or object store can fail for a moment; pure compute (pretrain, adapt, recommend) does
not, since running it again would fail the same way. Import this module only where Prefect is
wanted: the rest of the package does not need it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.states import State

from rectransfer.adapt import adapt
from rectransfer.artifacts import load_model, save_model
from rectransfer.encoder import Encoder, load_encoder
from rectransfer.errors import RecTransferError
from rectransfer.export import write_recommendations
from rectransfer.model import RecModel
from rectransfer.pretrain import pretrain
from rectransfer.schema import RetailerData
from rectransfer.staleness import adaptation_reason

IO_RETRIES = 3
IO_RETRY_DELAYS: list[float] = [2.0, 10.0, 30.0]  # seconds: backoff between attempts


def _transient(task: object, task_run: object, state: State) -> bool:
    """Retry only failures that may pass (I/O, timeouts), never bad input or bad models."""
    try:
        state.result()
    except RecTransferError:
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


io_task = task(
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS, retry_condition_fn=_transient
)


def encoder_from(spec: str, cache_dir: str | None) -> Encoder:
    return load_encoder(spec, cache_dir=cache_dir)


@io_task
def load_retailer(folder: str | Path, name: str | None = None) -> RetailerData:
    """Read and validate one retailer's folder."""
    return RetailerData.load(folder, name=name)


@io_task
def load_model_task(path: str | Path, encoder: Encoder) -> RecModel:
    return load_model(path).with_encoder(encoder)


@io_task
def save_model_task(model: RecModel, path: str | Path) -> str:
    return str(save_model(model, path))


@task
def pretrain_task(sources: list[RetailerData], encoder: Encoder, random_state: int) -> RecModel:
    return pretrain(sources, encoder=encoder, random_state=random_state)


@task
def adapt_task(base: RecModel, data: RetailerData, random_state: int) -> RecModel:
    return adapt(base, data, random_state=random_state)


@task
def staleness_task(model_dir: str | Path, base: RecModel, max_age_days: float) -> str | None:
    return adaptation_reason(model_dir, base, max_age_days=max_age_days)


@task
def recommend_task(model: RecModel, data: RetailerData, k: int) -> pl.DataFrame:
    return model.recommend(data, k=k)


@io_task
def export_task(
    recommendations: pl.DataFrame,
    root: str | Path,
    retailer: str,
    run_date: str | None,
    version: str,
) -> str:
    path = write_recommendations(
        recommendations, root, retailer=retailer, run_date=run_date, model_version=version
    )
    return str(path)
