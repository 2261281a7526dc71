"""Recommendations to Parquet: one dataset per retailer and run date, published atomically.

Layout under an export root (Hive-style partitions that polars, pandas, Spark and DuckDB read)::

    EXPORT_ROOT/retailer=<name>/run_date=<YYYY-MM-DD>/part-0.parquet

Columns in the file: ``user_id, item_id, rank, score, source, model_version``. The retailer and
the run date are partition keys and are stored once, in the path, so every reader types them the
same way: with Hive partitioning on, DuckDB, Spark and polars read ``run_date`` as a date (pyarrow
reads partition values as strings unless given a partitioning schema; see ``docs/DATA.md``).
:func:`read_recommendations` returns both, ``run_date`` as a date. Strings are dictionary-encoded
and every column has min/max statistics, so readers skip row groups and read fewer bytes.

Only local (or mounted) folders are written: an object-store URL such as ``s3://...`` is refused
with a clear error rather than written to a local folder of that name.

Crash safety: the file is written with fastparquet to ``EXPORT_ROOT/.staging/`` (same file
system, a name ending in ``.tmp``, never ``*.parquet``), fsynced, and renamed into its partition
folder in one step. Readers of a partition see the previous run's complete file or the new
complete file, never a partial one, even when the writer is killed (SIGKILL) at any point; a rerun
for the same retailer and date replaces that partition instead of adding to it. Partition folders
only ever hold ``part-0.parquet``, so readers that glob ``EXPORT_ROOT/**/*.parquet`` (polars,
DuckDB) or that skip hidden folders (pyarrow, Spark) never see a temporary file. (A polars scan of
the bare ``EXPORT_ROOT`` folder lists ``.staging`` too and can fail while a write is running: glob
instead.) Files that killed writers left in ``.staging`` are removed by the next write (see
:mod:`rectransfer.utils.atomic`): only regular files named as this module stages them, never
through a link. A ``.staging`` or partition folder that is a symbolic link is refused: sweeping or
publishing through it would delete or write files wherever it points.

Atomic is per file, not per read: polars opens a file twice (metadata, then data), so a reader
globbing while the same partition is rewritten can rarely fail; reading again sees the new file.
"""

from __future__ import annotations

import datetime as dt
import itertools
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
EXPORT_COLUMNS = (*OUTPUT_SCHEMA.keys(), MODEL_VERSION)  # in the file; the keys are in the path
PARTITION_KEYS = (Columns.RETAILER, RUN_DATE)
# Columns whose few distinct values are stored once per row group (dictionary encoding).
_DICTIONARY_COLUMNS = (Columns.ITEM, "source", MODEL_VERSION)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What write_recommendation_chunks stages: <retailer>_<YYYY-MM-DD>_<owner token>.tmp
_STAGED_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*_\d{4}-\d{2}-\d{2}_"
    + _atomic.TOKEN_PATTERN
    + re.escape(_STAGING_SUFFIX)
)
_LEGACY_NAME = re.compile(re.escape(_LEGACY_TEMP_PREFIX) + r".+")
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
    >>> recs = rt.recommend(model, shop, k=5)
    >>> path = write_recommendations(recs, workdir / "exports", retailer="shop",
    ...                              run_date="2026-11-23", model_version=model.model_version)
    >>> path.relative_to(workdir).as_posix()
    'exports/retailer=shop/run_date=2026-11-23/part-0.parquet'
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
    >>> chunks = rt.iter_recommendations(model, shop, k=20)
    >>> path = write_recommendation_chunks(chunks, workdir / "exports", retailer="shop",
    ...                                    model_version=model.model_version)
    """
    check_retailer_name(retailer)
    date = parse_run_date(run_date)
    check_export_root(root)
    folder = partition_path(root, retailer, date)
    _refuse_links(root, _links_of(root, folder))
    # The first chunk before anything is created: a generator checks its arguments (k, say) when
    # first asked, and a refused call must leave no folder behind.
    iterator = iter(chunks)
    first = next(iterator, None)
    staging_folder = staging_path(root)
    staging_folder.mkdir(parents=True, exist_ok=True)
    _refuse_links(root, _links_of(root, folder))  # again: a link may have been made meanwhile
    sweep_leftovers(root, folder)
    final = folder / PART_FILE
    token = _atomic.owner_token()
    staging = staging_folder / f"{retailer}_{date.isoformat()}_{token}{_STAGING_SUFFIX}"
    try:
        written = False
        for chunk in itertools.chain([] if first is None else [first], iterator):
            missing = [c for c in OUTPUT_SCHEMA if c not in chunk.columns]
            if missing:
                raise ConfigError(
                    f"recommendations frame lacks columns {missing!r}; pass the frame "
                    "recommend() returns."
                )
            if chunk.height == 0 and written:
                continue
            frame = _to_pandas(chunk, model_version)
            _write(staging, frame, append=written)
            written = True
        if not written:  # no chunks at all: an empty partition file with the full schema
            _write(staging, _to_pandas(pl.DataFrame(schema=OUTPUT_SCHEMA), model_version))
        _atomic.fsync_file(staging)
        # Created only now, so a failed first run leaves no empty partition behind.
        folder.mkdir(parents=True, exist_ok=True)
        _refuse_links(root, _links_of(root, folder))
        os.replace(staging, final)
        _atomic.fsync_dir(folder)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return final


def check_export_root(root: str | Path) -> None:
    """Refuse an export root that is a URL, or whose ``.staging`` folder is a symbolic link
    (before any work).

    Raises
    ------
    ConfigError
        Naming the root or the link and how to fix it.
    """
    if _URL.match(str(root)):
        raise ConfigError(
            f"export root {str(root)!r} is a URL; rectransfer writes to local or mounted folders "
            "only. Write to a local folder and copy it to the object store (or mount the store)."
        )
    _refuse_links(root, [staging_path(root)])


def _refuse_links(root: str | Path, paths: Iterable[Path]) -> None:
    """Refuse a ``.staging`` or partition folder that is a symbolic link.

    Sweeping or publishing through a link would delete or write files wherever it points. The
    export root itself may be a link (a mount elsewhere); what rectransfer creates under it may
    not.
    """
    for path in paths:
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link; rectransfer never writes or sweeps through links "
                f"under the export root {str(root)!r}. Remove the link (and let rectransfer "
                "create a real folder there) or pass another export root."
            )


def _links_of(root: str | Path, partition: Path) -> list[Path]:
    """What a write goes through under ``root``: the staging folder and the partition folders."""
    return [staging_path(root), partition.parent, partition]


def staging_path(root: str | Path) -> Path:
    """The folder under ``root`` where files are written before they are renamed into place."""
    return Path(root) / STAGING_FOLDER


def sweep_leftovers(root: str | Path, partition: Path | None = None) -> list[Path]:
    """Remove temporary files that killed writers left; returns what was removed.

    In ``.staging``, a file is removed once its writer is gone (see
    :mod:`rectransfer.utils.atomic`); hidden temporaries that earlier versions wrote inside
    ``partition`` are always removed.
    """
    removed: list[Path] = []
    staging = staging_path(root)
    # Never through a link, and only regular files named as this module names what it stages:
    # another program's files in a folder called .staging are not ours to delete.
    staged = [
        p for p in _regular_files(staging) if _STAGED_NAME.fullmatch(p.name) and not p.is_symlink()
    ]
    removed += _atomic.sweep(staged)
    if partition is not None:
        legacy = [p for p in _regular_files(partition) if _LEGACY_NAME.fullmatch(p.name)]
        for path in legacy:
            _atomic.remove(path)
            removed.append(path)
    return removed


def _regular_files(folder: Path) -> list[Path]:
    """The regular files (not links, not folders) directly in ``folder``; none if it is a link."""
    if folder.is_symlink():
        return []
    try:
        with os.scandir(folder) as entries:
            return [Path(entry.path) for entry in entries if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _to_pandas(recommendations: pl.DataFrame, model_version: str) -> pd.DataFrame:
    """fastparquet writes pandas frames; build one column by column (no pyarrow needed).

    Columns with few distinct values become pandas categoricals, which fastparquet writes
    dictionary-encoded; they read back as plain strings."""
    n = recommendations.height
    columns = {
        Columns.USER: recommendations[Columns.USER].to_numpy().astype(object),
        Columns.ITEM: recommendations[Columns.ITEM].to_numpy().astype(object),
        Columns.RANK: recommendations[Columns.RANK].to_numpy().astype(np.int32),
        Columns.SCORE: recommendations[Columns.SCORE].to_numpy().astype(np.float64),
        "source": recommendations["source"].to_numpy().astype(object),
        MODEL_VERSION: np.full(n, model_version, dtype=object),
    }
    frame = pd.DataFrame(columns, columns=list(EXPORT_COLUMNS))
    for column in _DICTIONARY_COLUMNS:
        frame[column] = frame[column].astype("category")
    return frame


def _write(path: Path, frame: pd.DataFrame, *, append: bool = False) -> None:
    fastparquet.write(
        str(path),
        frame,
        compression="SNAPPY",
        write_index=False,
        append=append,
        object_encoding="utf8",
        stats=True,  # min/max of every column, strings included
    )


def read_recommendations(
    root: str | Path, *, retailer: str, run_date: str | dt.date
) -> pl.DataFrame:
    """Read one partition back, its keys as columns: ``retailer`` (string), ``run_date`` (date).

    Examples
    --------
    >>> path = write_recommendations(rt.recommend(model, shop, k=2), workdir, retailer="shop",
    ...                              run_date="2026-11-23", model_version=model.model_version)
    >>> read_recommendations(workdir, retailer="shop", run_date="2026-11-23").columns[:3]
    ['retailer', 'run_date', 'user_id']
    """
    date = parse_run_date(run_date)
    path = partition_path(root, retailer, date) / PART_FILE
    frame = pl.read_parquet(path, hive_partitioning=False)
    return frame.select(
        pl.lit(retailer, dtype=pl.String).alias(Columns.RETAILER),
        pl.lit(date, dtype=pl.Date).alias(RUN_DATE),
        *[
            pl.col(c).cast(pl.String) if c in _DICTIONARY_COLUMNS else pl.col(c)
            for c in frame.columns
        ],
    )
