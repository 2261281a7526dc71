"""Reading a retailer folder's tables (Parquet or CSV) before they are checked.

CSV files are read with their id and text columns as strings (so ``"007"`` stays ``"007"``); a CSV
with another delimiter than the comma, a missing or doubled file and an unreadable file each raise
a :class:`~rectransfer.errors.SchemaError` that names the file and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from rectransfer.data.checks import (
    CSV_TEXT_COLUMNS,
    FORMATS,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    OTHER_DELIMITERS,
    REQUIRED_INTERACTION_COLUMNS,
    REQUIRED_ITEM_COLUMNS,
    REQUIRED_USER_COLUMNS,
    USER_COLUMNS,
    example_list,
    first_line,
    guarded,
    normalise_interactions,
    normalise_items,
    normalise_users,
    require_columns,
)
from rectransfer.errors import SchemaError

__all__ = ["read_folder"]


def read_folder(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """Read and check a retailer folder's items, interactions and (optional) users tables."""
    items_file = _require_file(path, "items")
    items_frame, items_label = _read_table(items_file, ITEM_COLUMNS, REQUIRED_ITEM_COLUMNS)
    items = guarded(items_label, normalise_items, items_frame, items_label)
    interactions_file = _require_file(path, "interactions")
    interactions_frame, interactions_label = _read_table(
        interactions_file, INTERACTION_COLUMNS, REQUIRED_INTERACTION_COLUMNS
    )
    interactions = guarded(
        interactions_label,
        normalise_interactions,
        interactions_frame,
        interactions_label,
        items=items,
        items_label=items_label,
    )
    users_file = _find_file(path, "users")
    users = None
    if users_file is not None:
        users_frame, users_label = _read_table(users_file, USER_COLUMNS, REQUIRED_USER_COLUMNS)
        users = guarded(users_label, normalise_users, users_frame, users_label)
    return items, interactions, users


# ----------------------------------------------------------------------------------------------
# Reading files


def _find_file(folder: Path, stem: str) -> Path | None:
    """The one ``stem.parquet`` or ``stem.csv`` in ``folder``, or None."""
    found = [folder / f"{stem}{suffix}" for suffix in FORMATS]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise SchemaError(
            f"{folder}: found both {found[0].name} and {found[1].name}. Keep only one of them."
        )
    return found[0] if found else None


def _require_file(folder: Path, stem: str) -> Path:
    """Like :func:`_find_file`, for a table the contract requires."""
    path = _find_file(folder, stem)
    if path is None:
        accepted = " or ".join(f"{stem}{suffix}" for suffix in FORMATS)
        present = sorted(p.name for p in folder.iterdir())
        listing = f"files present: {example_list(present)}" if present else "the folder is empty"
        raise SchemaError(
            f"{folder}: no {stem} file; expected {accepted} ({listing}). "
            f"Save the {stem} table under one of those names."
        )
    return path


def _scan(path: Path) -> pl.LazyFrame:
    if path.suffix == ".csv":
        return pl.scan_csv(
            path,
            infer_schema_length=10_000,
            schema_overrides=dict.fromkeys(CSV_TEXT_COLUMNS, pl.String),
        )
    return pl.scan_parquet(path)


def _read_table(
    path: Path, wanted: Sequence[str], required_columns: Sequence[str]
) -> tuple[pl.DataFrame, str]:
    """Read the contract's columns of one table; returns the frame and the file name."""
    label = path.name
    is_csv = path.suffix == ".csv"
    fix = (
        "Save it as comma-separated UTF-8 text with a header row."
        if is_csv
        else "Export it again as Parquet; a damaged file is often a copy that was cut short."
    )
    try:
        lazy = _scan(path)
        present = list(lazy.collect_schema())
        if is_csv:
            _require_comma_separated(present, label)
        # Check before selecting so that the message lists every column of the file.
        require_columns(present, label, required_columns)
        frame = lazy.select([c for c in wanted if c in present]).collect()
    except SchemaError:  # ours (a ValueError too): pass it on unchanged
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError, pl.exceptions.PanicException) as err:
        kind = "CSV" if is_csv else "Parquet"
        raise SchemaError(
            f"{label}: could not be read as a {kind} file ({first_line(err)}). {fix}"
        ) from err
    return frame, label


def _require_comma_separated(present: Sequence[str], label: str) -> None:
    """A CSV read as one column whose name holds another delimiter used that delimiter."""
    if len(present) != 1:
        return
    for delimiter in OTHER_DELIMITERS:
        if delimiter in present[0]:
            shown = "tab" if delimiter == "\t" else repr(delimiter)
            raise SchemaError(
                f"{label}: the header {present[0]!r} was read as one column: the file seems to "
                f"be separated by {shown}, not by commas. Save it comma-separated (e.g. "
                f"pl.read_csv(path, separator={delimiter!r}).write_csv(path))."
            )
