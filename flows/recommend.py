"""Export top-K recommendations of one retailer to Parquet."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict

from rectransfer.tasks import (
    encoder_from,
    export_task,
    load_model_task,
    load_retailer,
    recommend_task,
)


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


@flow(name="rectransfer-recommend", log_prints=True)
def recommend(params: RecommendParams) -> str:
    """Recommend for every customer of the retailer and write the Parquet partition."""
    encoder = encoder_from(params.encoder, params.cache_dir)
    model = load_model_task(params.model, encoder)
    data = load_retailer(params.retailer, params.name)
    recs = recommend_task(model, data, params.k)
    return export_task(recs, params.out, data.name, params.run_date, model.model_version)
