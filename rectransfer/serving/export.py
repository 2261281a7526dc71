"""Recommendations to Parquet: one dataset per retailer and run date, published atomically.

Layout under an export root (Hive-style partitions that polars, pandas, Spark and DuckDB read)::

    EXPORT_ROOT/retailer=<name>/run_date=<YYYY-MM-DD>/part-0.parquet

Columns: ``retailer, run_date, user_id, item_id, rank, score, source, model_version``.

Crash safety: the file is written with fastparquet to ``EXPORT_ROOT/.staging/`` (same file
system, a name ending in ``.tmp``, never ``*.parquet``), fsynced, and renamed into its partition
folder in one step. Readers of a partition see the previous run's complete file or the new
complete file, never a partial one, even when the writer is killed (SIGKILL) at any point; a rerun
for the same retailer and date replaces that partition instead of adding to it. Partition folders
only ever hold ``part-0.parquet``, so readers that glob ``EXPORT_ROOT/**/*.parquet`` (polars,
DuckDB) or that skip hidden folders (pyarrow, Spark) never see a temporary file. (A polars scan of
the bare ``EXPORT_ROOT`` folder lists ``.staging`` too and can fail while a write is running: glob
instead.) Files that killed writers left in ``.staging`` are removed by the next write (see
:mod:`rectransfer.utils.atomic`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from pathlib import Path

import fastparquet
import numpy as np
import pandas as pd
import polars as pl

from rectransfer.data.columns import OUTPUT_SCHEMA, Columns
from rectransfer.errors import ConfigError
from rectransfer.utils import atomic as _atomic

PART_FILE = "part-0.parquet"
STAGING_FOLDER = ".staging"
_STAGING_SUFFIX = ".tmp"
_LEGACY_TEMP_PREFIX = f".{PART_FILE}.tmp-"  # written inside partitions by earlier versions
RUN_DATE = "run_date"
MODEL_VERSION = "model_version"
EXPORT_COLUMNS = (
    Columns.RETAILER,
    RUN_DATE,
    *OUTPUT_SCHEMA.keys(),
    MODEL_VERSION,
)
# A retailer name becomes a folder name (``retailer=<name>``) and part of a staged file's name:
# full match only (``$`` alone would accept a trailing newline), and short enough that both stay
# under the 255 bytes most file systems allow for one name.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_RETAILER_NAME_CHARS = 128


def check_retailer_name(retailer: object) -> str:
    """Refuse a retailer name that cannot name a partition folder; returns it unchanged.

    Call it before the long work: :func:`write_recommendation_chunks` checks again, but only
    when the recommendations are ready to be written.

    Examples
    --------
    >>> check_retailer_name("trail_shop")
    'trail_shop'
    """
    if (
        not isinstance(retailer, str)
        or len(retailer) > MAX_RETAILER_NAME_CHARS
        or not _SAFE_NAME.fullmatch(retailer)
    ):
        shown = repr(retailer) if len(repr(retailer)) <= 60 else f"{repr(retailer)[:57]}..."
        length = f" ({len(retailer)} characters)" if isinstance(retailer, str) else ""
        raise ConfigError(
            f"retailer name {shown}{length} cannot name a partition folder; use 1 to "
            f"{MAX_RETAILER_NAME_CHARS} letters, digits, '.', '_' and '-', starting with a letter "
            "or digit (pass --name to choose one)."
        )
    return retailer


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
    return write_recommendation_chunks(
        [recommendations], root, retailer=retailer, run_date=run_date, model_version=model_version
    )


def write_recommendation_chunks(
    chunks: Iterable[pl.DataFrame],
    root: str | Path,
    *,
    retailer: str,
    run_date: str | dt.date | None = None,
    model_version: str,
) -> Path:
    """Write recommendations that arrive in chunks (e.g. of customers) as one partition file.

    Each chunk becomes a row group of the staged file, so memory holds one chunk at a time; the
    file is published only after the last chunk, atomically, exactly as
    :func:`write_recommendations` does. If the chunks raise or the process dies midway, the
    previous run's partition stays as it was.

    Examples
    --------
    >>> chunks = rt.iter_recommendations(model, shop, k=20)  # doctest: +SKIP
    >>> write_recommendation_chunks(chunks, "exports", retailer="shop",
    ...                             model_version=model.model_version)  # doctest: +SKIP
    """
    check_retailer_name(retailer)
    date = parse_run_date(run_date)
    folder = partition_path(root, retailer, date)
    staging_folder = staging_path(root)
    staging_folder.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(root, folder)
    final = folder / PART_FILE
    token = _atomic.owner_token()
    staging = staging_folder / f"{retailer}_{date.isoformat()}_{token}{_STAGING_SUFFIX}"
    try:
        written = False
        for chunk in chunks:
            missing = [c for c in OUTPUT_SCHEMA if c not in chunk.columns]
            if missing:
                raise ConfigError(
                    f"recommendations frame lacks columns {missing!r}; pass the frame "
                    "recommend() returns."
                )
            if chunk.height == 0 and written:
                continue
            frame = _to_pandas(chunk, retailer, date, model_version)
            fastparquet.write(
                str(staging), frame, compression="SNAPPY", write_index=False, append=written
            )
            written = True
        if not written:  # no chunks at all: an empty partition file with the full schema
            empty = _to_pandas(pl.DataFrame(schema=OUTPUT_SCHEMA), retailer, date, model_version)
            fastparquet.write(str(staging), empty, compression="SNAPPY", write_index=False)
        _atomic.fsync_file(staging)
        # Created only now, so a failed first run leaves no empty partition behind.
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        _atomic.fsync_dir(folder)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return final


def staging_path(root: str | Path) -> Path:
    """The folder under ``root`` where files are written before they are renamed into place."""
    return Path(root) / STAGING_FOLDER


def sweep_leftovers(root: str | Path, partition: Path | None = None) -> list[Path]:
    """Remove temporary files that killed writers left; returns what was removed.

    In ``.staging``, a file is removed once its writer is gone (see
    :mod:`rectransfer.utils.atomic`); hidden temporaries that earlier versions wrote inside
    ``partition`` are always removed.
    """
    removed = []
    try:
        staged = [p for p in staging_path(root).iterdir() if p.name.endswith(_STAGING_SUFFIX)]
    except OSError:
        staged = []
    removed += _atomic.sweep(staged)
    if partition is not None:
        try:
            legacy = [p for p in partition.iterdir() if p.name.startswith(_LEGACY_TEMP_PREFIX)]
        except OSError:
            legacy = []
        for path in legacy:
            _atomic.remove(path)
            removed.append(path)
    return removed


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
