"""Recommendations to Parquet: one dataset per retailer and run date, published atomically.

Layout under an export root (Hive-style partitions that polars, pandas, Spark and DuckDB read)::

    EXPORT_ROOT/retailer=<name>/run_date=<YYYY-MM-DD>/part-0.parquet

Columns: ``retailer, run_date, user_id, item_id, rank, score, source, model_version``. The file is
written with fastparquet under a hidden temporary name in the same folder and renamed into place,
so readers see the previous run's file or the new one, never a partial one; a rerun for the same
retailer and date replaces that partition instead of adding to it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path

import fastparquet
import numpy as np
import pandas as pd
import polars as pl

from rectransfer.errors import ConfigError
from rectransfer.recommend import OUTPUT_SCHEMA
from rectransfer.schema import Columns

PART_FILE = "part-0.parquet"
RUN_DATE = "run_date"
MODEL_VERSION = "model_version"
EXPORT_COLUMNS = (
    Columns.RETAILER,
    RUN_DATE,
    *OUTPUT_SCHEMA.keys(),
    MODEL_VERSION,
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def partition_path(root: str | Path, retailer: str, run_date: dt.date) -> Path:
    """The folder holding one retailer's recommendations of one run date."""
    return Path(root) / f"retailer={retailer}" / f"{RUN_DATE}={run_date.isoformat()}"


def parse_run_date(value: str | dt.date | None) -> dt.date:
    """A ``YYYY-MM-DD`` string or a date; ``None`` means today (UTC)."""
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise ConfigError(f"run date {value!r} is not a date; write it as YYYY-MM-DD.") from err


def write_recommendations(
    recommendations: pl.DataFrame,
    root: str | Path,
    *,
    retailer: str,
    run_date: str | dt.date | None = None,
    model_version: str,
) -> Path:
    """Write one retailer's recommendations for one run date; returns the Parquet file's path.

    Examples
    --------
    >>> path = write_recommendations(recs, "exports", retailer="shop", run_date="2026-11-23",
    ...                              model_version="adapted-0123abcd")  # doctest: +SKIP
    """
    if not _SAFE_NAME.match(retailer):
        raise ConfigError(
            f"retailer name {retailer!r} cannot name a partition folder; use letters, digits, "
            "'.', '_' and '-' (pass --name to choose one)."
        )
    missing = [c for c in OUTPUT_SCHEMA if c not in recommendations.columns]
    if missing:
        raise ConfigError(
            f"recommendations frame lacks columns {missing!r}; pass the frame recommend() returns."
        )
    date = parse_run_date(run_date)
    folder = partition_path(root, retailer, date)
    folder.mkdir(parents=True, exist_ok=True)
    frame = _to_pandas(recommendations, retailer, date, model_version)
    final = folder / PART_FILE
    staging = folder / f".{PART_FILE}.tmp-{uuid.uuid4().hex}"
    try:
        fastparquet.write(str(staging), frame, compression="SNAPPY", write_index=False)
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, final)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return final


def _to_pandas(
    recommendations: pl.DataFrame, retailer: str, run_date: dt.date, model_version: str
) -> pd.DataFrame:
    """fastparquet writes pandas frames; build one column by column (no pyarrow needed)."""
    n = recommendations.height
    columns = {
        Columns.RETAILER: np.full(n, retailer, dtype=object),
        RUN_DATE: np.full(n, run_date.isoformat(), dtype=object),
        Columns.USER: recommendations[Columns.USER].to_numpy().astype(object),
        Columns.ITEM: recommendations[Columns.ITEM].to_numpy().astype(object),
        Columns.RANK: recommendations[Columns.RANK].to_numpy().astype(np.int32),
        Columns.SCORE: recommendations[Columns.SCORE].to_numpy().astype(np.float64),
        "source": recommendations["source"].to_numpy().astype(object),
        MODEL_VERSION: np.full(n, model_version, dtype=object),
    }
    return pd.DataFrame(columns, columns=list(EXPORT_COLUMNS))


def read_recommendations(
    root: str | Path, *, retailer: str, run_date: str | dt.date
) -> pl.DataFrame:
    """Read one partition back (what a downstream reader would do)."""
    path = partition_path(root, retailer, parse_run_date(run_date)) / PART_FILE
    return pl.read_parquet(path, hive_partitioning=False)
