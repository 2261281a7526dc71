"""The checks behind :class:`~rectransfer.data.retailer.RetailerData`: readers, validators and
normalisers of the three tables.

:func:`validate_frames` (in-memory frames) and :func:`rectransfer.data.readers.read_folder` (files)
run the same checks, once, and return frames with the exact schemas of
:mod:`rectransfer.data.columns`. Every broken rule raises :class:`~rectransfer.errors.SchemaError`
naming the file (or table), the column, up to five offending values and the fix. Row numbers in
messages count data rows from 1, header excluded.

Ids are kept exactly as given, never stripped: they are the retailer's keys, and two ids that
differ only in spaces are two customers or products. Blank ids and ids longer than
``MAX_ID_CHARS`` are rejected.

Beyond types, ids and nulls, the checks reject what is almost always a broken export rather than
data: timestamps more than a day in the future (often milliseconds stored as seconds), text cells
longer than ``MAX_TEXT_CHARS`` characters (a whole page or file pasted into one cell; only the first
400 characters of a description are used anyway, so such text is rejected, not cut, to surface the
broken export), CSV files with another delimiter than the comma, and text timestamps that mix unix
seconds with ISO 8601 text. Blank (null or whitespace-only) titles only warn
(:class:`~rectransfer.errors.DataQualityWarning`). Validation never writes anything.

One module for every column and table check: they share the message helpers, so that every error
names the table, the column and the values in the same way.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Final

import polars as pl

from rectransfer.data.columns import (
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    MAX_FUTURE_SECONDS,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    USERS_SCHEMA,
    Columns,
)
from rectransfer.data.ordering import in_customer_order
from rectransfer.errors import DataQualityWarning, SchemaError

__all__ = ["validate_frames"]

_QUANTITY: Final = "quantity"
_MAX_EXAMPLES: Final = 5
OTHER_DELIMITERS: Final = (";", "\t", "|")
FORMATS: Final = (".parquet", ".csv")

# Columns read from each file (others are dropped), the required ones, and those a CSV reader
# must keep as text (so an id like "007" is not turned into the number 7).
ITEM_COLUMNS: Final = tuple(ITEMS_SCHEMA)
INTERACTION_COLUMNS: Final = (*tuple(INTERACTIONS_SCHEMA), _QUANTITY)
USER_COLUMNS: Final = tuple(USERS_SCHEMA)
REQUIRED_ITEM_COLUMNS: Final = (Columns.ITEM, Columns.TITLE)
REQUIRED_INTERACTION_COLUMNS: Final = (Columns.USER, Columns.ITEM, Columns.TIMESTAMP)
REQUIRED_USER_COLUMNS: Final = (Columns.USER, Columns.TEXT)
CSV_TEXT_COLUMNS: Final = (
    Columns.USER,
    Columns.ITEM,
    Columns.TITLE,
    Columns.DESCRIPTION,
    Columns.CATEGORY,
    Columns.BRAND,
    Columns.EVENT,
    Columns.TEXT,
)

_IN_STOCK_WORDS: Final = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}

# ISO 8601 layouts accepted for text timestamps, after "T" became " " and "Z" became "+00:00".
# Explicit formats (no inference) so that "05/01/2024" is never guessed as day- or month-first.
_ISO_NAIVE: Final = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_ISO_AWARE: Final = ("%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z")
_ISO_EXAMPLE: Final = "'2024-01-05 14:30:00' or '2024-01-05T14:30:00+01:00'"


def validate_frames(
    items: pl.DataFrame, interactions: pl.DataFrame, users: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """Check in-memory frames with the folder's rules; tables are called by their names."""
    normalised_items = guarded("items", normalise_items, items, "items")
    normalised_interactions = guarded(
        "interactions",
        normalise_interactions,
        interactions,
        "interactions",
        items=normalised_items,
        items_label="items",
    )
    normalised_users = None if users is None else guarded("users", normalise_users, users, "users")
    return normalised_items, normalised_interactions, normalised_users


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def guarded(
    label: str, normalise: Callable[..., pl.DataFrame], *args: object, **kwargs: object
) -> pl.DataFrame:
    """Run a normaliser; a polars failure the checks did not foresee still names the table."""
    try:
        return normalise(*args, **kwargs)
    except SchemaError:
        raise
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, TypeError) as err:
        raise SchemaError(
            f"{label}: could not be validated ({first_line(err)}). Check the column types "
            "against the data contract (ids and text as strings, numbers as numbers)."
        ) from err


# ----------------------------------------------------------------------------------------------
# Formatting messages


def _short(value: object) -> object:
    """A value for a message: long text is cut (the message stays one or two lines)."""
    if isinstance(value, str) and len(value) > 40:
        return value[:37] + "..."
    if isinstance(value, bytes) and len(value) > 40:
        return value[:37] + b"..."
    return value


def example_list(values: Sequence[object]) -> str:
    """Up to five values, shown with ``repr``."""
    shown = ", ".join(repr(v) for v in values[:_MAX_EXAMPLES])
    return shown + (", ..." if len(values) > _MAX_EXAMPLES else "")


def _located(values: pl.Series, mask: pl.Series) -> str:
    """Up to five ``value at data row n`` examples where ``mask`` holds."""
    rows = mask.arg_true().head(_MAX_EXAMPLES).to_list()
    return ", ".join(f"{_short(values[r])!r} at data row {r + 1}" for r in rows)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ----------------------------------------------------------------------------------------------
# Column checks


def _require_frame(frame: object, label: str) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        hint = (
            " (convert with pl.from_pandas)" if type(frame).__module__.startswith("pandas") else ""
        )
        raise SchemaError(
            f"{label}: expected a polars DataFrame, got {type(frame).__name__}. "
            f"Pass a polars.DataFrame{hint}."
        )
    return frame


def require_columns(present: Sequence[str], label: str, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in present]
    if not missing:
        return
    column = missing[0]
    near = [c for c in present if c.strip().lower() == column]
    hint = f"Rename {near[0]!r} to {column!r}." if near else f"Add a {column!r} column."
    raise SchemaError(
        f"{label}: required column {column!r} is missing; columns present: {list(present)}. {hint}"
    )


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def _wrong_type(label: str, column: str, values: pl.Series, expected: str, fix: str) -> SchemaError:
    try:
        shown = values.drop_nulls().unique(maintain_order=True).to_list()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, TypeError):
        shown = [v for v in values.head(100).to_list() if v is not None]
    examples = example_list([_short(v) for v in shown])
    return SchemaError(
        f"{label}: column {column!r} holds {values.dtype} values (e.g. {examples}) but must "
        f"hold {expected}. {fix}"
    )


def _id_column(frame: pl.DataFrame, label: str, column: str) -> pl.Series:
    """Ids exactly as given (strings; integer ids become their decimal text), none blank.

    Ids are external keys: they are never stripped or otherwise changed, so ``" c1 "`` and
    ``"c1"`` stay two customers and an id comes out of every list byte for byte as it went in.
    A null, empty or whitespace-only id is an error, and so is one longer than ``MAX_ID_CHARS``.
    """
    raw = frame.get_column(column)
    dtype = raw.dtype
    if dtype == pl.Null or _is_text(dtype) or dtype.is_integer():
        ids = raw.cast(pl.String)
    else:
        raise _wrong_type(
            label,
            column,
            raw,
            "text ids",
            f"Store {column} as strings (float or boolean ids lose their meaning), e.g. "
            f"pl.col({column!r}).cast(pl.String) before saving.",
        )
    # Blank means only whitespace: the regex's \s is strip_chars' whitespace (Unicode White_Space),
    # matched in place instead of building a stripped copy of every id.
    bad = (ids.is_null() | ids.str.contains(r"^\s*$")).fill_null(True)
    if bad.any():
        raise SchemaError(
            f"{label}: column {column!r} has "
            f"{_plural(int(bad.sum()), 'null, empty or blank value')}, "
            f"e.g. {_located(ids, bad)}. Every row needs an id; fill them in or drop those rows."
        )
    lengths = ids.str.len_chars()
    long = lengths > MAX_ID_CHARS
    if long.any():
        rows = long.arg_true().head(_MAX_EXAMPLES).to_list()
        shown = ", ".join(f"{lengths[r]} characters at data row {r + 1}" for r in rows)
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(int(long.sum()), 'id')} longer than "
            f"{MAX_ID_CHARS} characters ({shown}, e.g. {_short(ids[rows[0]])!r}). Ids are kept "
            "exactly as given and repeated in every list; map such ids to short keys (e.g. a "
            "hash) before exporting, or drop those rows."
        )
    return ids.alias(column)


def _require_short(text: pl.Series, label: str, column: str) -> None:
    """Reject cells longer than ``MAX_TEXT_CHARS`` (a broken export, not product data)."""
    lengths = text.str.len_chars()
    long = (lengths > MAX_TEXT_CHARS).fill_null(False)
    if long.any():
        rows = long.arg_true().head(_MAX_EXAMPLES).to_list()
        shown = ", ".join(f"{lengths[r]} characters at data row {r + 1}" for r in rows)
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(int(long.sum()), 'value')} longer than "
            f"{MAX_TEXT_CHARS} characters ({shown}), which is a broken export rather than text. "
            "Keep what customers see (only the first 400 characters of a description are used) "
            "or drop those rows."
        )


def _require_unique(
    ids: pl.Series, label: str, column: str, what: str, frame: pl.DataFrame | None = None
) -> None:
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    if repeated.len():
        detail = "" if frame is None else _repeat_detail(frame, ids, repeated[0])
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(repeated.len(), 'id')} on more than one row, "
            f"e.g. {example_list(repeated.to_list())}{detail}. Keep one row per {what} "
            "(merge or drop the repeats)."
        )


def _same(a: object, b: object) -> bool:
    """Equal, counting NaN as equal to NaN."""
    return a == b or (a != a and b != b)  # NaN is the one value not equal to itself


def _repeat_detail(frame: pl.DataFrame, ids: pl.Series, repeated_id: str) -> str:
    """Where one repeated id sits, and whether its rows agree (repeats) or conflict (two items)."""
    rows = (ids == repeated_id).arg_true().to_list()
    where = ", ".join(str(r + 1) for r in rows[:_MAX_EXAMPLES])
    first = frame.row(rows[0], named=True)
    for column in frame.columns:
        if column == Columns.ITEM:
            continue
        values = [frame.row(r, named=True)[column] for r in rows]
        if not all(_same(v, first[column]) for v in values):
            shown = " vs ".join(repr(_short(v)) for v in list(dict.fromkeys(values))[:2])
            return (
                f" ({repeated_id!r} is on data rows {where} with different {column!r}: {shown}; "
                "if they are different products, give each its own id)"
            )
    return f" ({repeated_id!r} is on data rows {where}, identical: drop the repeats)"


def _text_column(frame: pl.DataFrame, label: str, column: str) -> pl.Series:
    """Text as Utf8 (nulls kept, all null when the column is absent); integers become text."""
    if column not in frame.columns:
        return pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(column)
    raw = frame.get_column(column)
    if raw.dtype == pl.Null or _is_text(raw.dtype) or raw.dtype.is_integer():
        text = raw.cast(pl.String).alias(column)
        _require_short(text, label, column)
        return text
    raise _wrong_type(
        label, column, raw, "text", f"Store {column} as strings (Utf8) before saving."
    )


def _numeric_column(frame: pl.DataFrame, label: str, column: str, what: str) -> pl.Series:
    """A non-negative, finite Float64 column (nulls kept)."""
    raw = frame.get_column(column)
    if not (raw.dtype == pl.Null or raw.dtype.is_numeric()):
        raise _wrong_type(
            label, column, raw, f"numbers ({what})", f"Store {column} as a numeric column."
        )
    values = raw.cast(pl.Float64, strict=False)
    bad = (values.is_nan() | values.is_infinite() | (values < 0)).fill_null(False)
    if bad.any():
        raise SchemaError(
            f"{label}: column {column!r} has "
            f"{_plural(int(bad.sum()), 'NaN, infinite or negative value')}, "
            f"e.g. {_located(values, bad)}. {what.capitalize()} must be finite and >= 0; "
            "fix or drop those rows."
        )
    return values.alias(column)


def _in_stock_column(frame: pl.DataFrame, label: str) -> pl.Series:
    """Booleans from bool, 0/1 or yes/no/true/false text; null (or no column) means in stock."""
    column = Columns.IN_STOCK
    if column not in frame.columns:
        return pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True).alias(column)
    raw = frame.get_column(column)
    dtype = raw.dtype
    if dtype == pl.Null or dtype == pl.Boolean:
        flags = raw.cast(pl.Boolean)
    elif dtype.is_integer():
        flags = raw.replace_strict({0: False, 1: True}, default=None, return_dtype=pl.Boolean)
    elif _is_text(dtype):
        words = raw.cast(pl.String).str.strip_chars().str.to_lowercase()
        flags = words.replace_strict(_IN_STOCK_WORDS, default=None, return_dtype=pl.Boolean)
    else:
        raise _wrong_type(
            label, column, raw, "booleans", "Store in_stock as true/false (or 1/0, yes/no)."
        )
    bad = raw.is_not_null() & flags.is_null()
    if bad.any():
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(int(bad.sum()), 'unrecognised value')}, "
            f"e.g. {_located(raw, bad)}. Use true/false, 1/0 or yes/no (empty means in stock)."
        )
    return flags.fill_null(True).alias(column)


def _parse_iso(text: pl.Series) -> pl.Series:
    """Epoch seconds from ISO 8601 text (naive times are UTC); null where it does not parse."""
    cleaned = (
        text.str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt]", "$1 ")
        .str.replace(r"[Zz]$", "+00:00")
    )
    col = pl.col(Columns.TIMESTAMP)
    parsed = [col.str.to_datetime(f, strict=False).dt.epoch("s") for f in _ISO_NAIVE]
    parsed += [
        col.str.to_datetime(f, strict=False, time_zone="UTC").dt.epoch("s") for f in _ISO_AWARE
    ]
    frame = pl.DataFrame({Columns.TIMESTAMP: cleaned})
    return frame.select(pl.coalesce(parsed).alias(Columns.TIMESTAMP)).to_series()


def _timestamp_column(frame: pl.DataFrame, label: str) -> pl.Series:
    """Unix seconds as Int64 from integers, integral floats, dates, datetimes or ISO text."""
    column = Columns.TIMESTAMP
    raw = frame.get_column(column)
    dtype = raw.dtype
    fix = f"Store unix seconds (integers), datetimes, or ISO 8601 text such as {_ISO_EXAMPLE}."
    if _is_text(dtype):
        text = raw.cast(pl.String)
        seconds = _parse_iso(text)
        unparsed = raw.is_not_null() & seconds.is_null()
        digits = text.str.strip_chars().str.contains(r"^\d+$").fill_null(False)
        if (unparsed & digits).any() and seconds.is_not_null().any():
            raise SchemaError(
                f"{label}: column {column!r} mixes unix seconds "
                f"({_located(text, unparsed & digits)}) with ISO 8601 text "
                f"({_located(text, seconds.is_not_null())}). Use one form for the whole column: "
                "integers (unix seconds) or ISO 8601 text."
            )
        if unparsed.any():
            raise SchemaError(
                f"{label}: column {column!r} has "
                f"{_plural(int(unparsed.sum()), 'value')} not in ISO 8601 date or time form, "
                f"e.g. {_located(raw.cast(pl.String), unparsed)}. {fix}"
            )
    elif isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        seconds = raw.dt.epoch("s")
    elif dtype == pl.Null or dtype.is_integer():
        seconds = raw.cast(pl.Int64, strict=False)
        too_large = raw.is_not_null() & seconds.is_null()
        if too_large.any():
            raise SchemaError(
                f"{label}: column {column!r} has values too large for unix seconds, e.g. "
                f"{_located(raw, too_large)}. {fix}"
            )
    elif dtype.is_float():
        floats = raw.cast(pl.Float64)
        seconds = floats.cast(pl.Int64, strict=False)
        fractional = (
            floats.is_nan() | floats.is_infinite() | (floats != floats.floor()) | seconds.is_null()
        ) & floats.is_not_null()
        if fractional.any():
            raise SchemaError(
                f"{label}: column {column!r} has "
                f"{_plural(int(fractional.sum()), 'value')} not in whole seconds, "
                f"e.g. {_located(floats, fractional)}. {fix}"
            )
    else:
        raise _wrong_type(label, column, raw, "unix seconds, dates or datetimes", fix)
    missing = seconds.is_null()
    if missing.any():
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(int(missing.sum()), 'null value')}, "
            f"e.g. {_located(raw, missing)}. Every interaction needs a time; fill them in or drop "
            "those rows."
        )
    negative = seconds < 0
    if negative.any():
        raise SchemaError(
            f"{label}: column {column!r} has "
            f"{_plural(int(negative.sum()), 'negative value')} (before 1970), "
            f"e.g. {_located(raw, negative)}. {fix}"
        )
    limit = int(time.time()) + MAX_FUTURE_SECONDS
    future = seconds > limit
    if future.any():
        hint = (
            "They look like milliseconds: divide by 1000."
            if min(seconds.filter(future).to_list()) > 100_000_000_000  # year 5138 in seconds
            else "Fix the clock or the time zone of the exporting system, or drop those rows."
        )
        raise SchemaError(
            f"{label}: column {column!r} has {_plural(int(future.sum()), 'value')} more than a "
            f"day in the future (after unix second {limit}), e.g. {_located(raw, future)}. {hint}"
        )
    return seconds.alias(column)


def _weight_column(frame: pl.DataFrame, label: str) -> pl.Series:
    """Weights from ``weight``, else ``quantity``, else 1.0; nulls become 1.0."""
    for source, what in ((Columns.WEIGHT, "weights"), (_QUANTITY, "quantities")):
        if source in frame.columns:
            values = _numeric_column(frame, label, source, what)
            return values.fill_null(1.0).alias(Columns.WEIGHT)
    return pl.repeat(1.0, frame.height, dtype=pl.Float64, eager=True).alias(Columns.WEIGHT)


def _require_known_items(
    interactions: pl.DataFrame, label: str, items: pl.DataFrame, items_label: str
) -> None:
    # A set lookup per row; the anti-join below only runs to name the unknown ids.
    known = interactions[Columns.ITEM].is_in(items[Columns.ITEM].implode())
    if bool(known.all()):
        return
    unknown_rows = interactions.select(Columns.ITEM).join(
        items.select(Columns.ITEM), on=Columns.ITEM, how="anti"
    )
    if unknown_rows.height == 0:
        return
    unknown = unknown_rows[Columns.ITEM].unique(maintain_order=True)
    raise SchemaError(
        f"{label}: column {Columns.ITEM!r} names {_plural(unknown.len(), 'item')} not in "
        f"{items_label} ({_plural(unknown_rows.height, 'row')}), "
        f"e.g. {example_list(unknown.to_list())}. "
        f"Add them to {items_label} or drop those rows."
    )


# ----------------------------------------------------------------------------------------------
# Tables


def normalise_items(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    frame = _require_frame(frame, label)
    require_columns(frame.columns, label, REQUIRED_ITEM_COLUMNS)
    if frame.height == 0:
        raise SchemaError(
            f"{label}: the catalogue is empty (column {Columns.ITEM!r} has no rows). "
            "Add at least one product."
        )
    item_ids = _id_column(frame, label, Columns.ITEM)
    present = [c for c in ITEM_COLUMNS if c in frame.columns]
    _require_unique(item_ids, label, Columns.ITEM, "item", frame.select(present))
    title = _text_column(frame, label, Columns.TITLE)
    untitled = title.is_null() | (title.str.strip_chars() == "")
    if untitled.any():
        # Real catalogues have the odd product without a title; its other text and its
        # behaviour still carry it, so this is worth a warning, not a failed run.
        warnings.warn(
            f"{label}: column {Columns.TITLE!r} has "
            f"{_plural(int(untitled.sum()), 'null or blank value')}, "
            f"e.g. {_located(title, untitled)} "
            f"(items {example_list(item_ids.filter(untitled).to_list())}); they are read as empty "
            "titles. Give every item a title (its name as customers see it).",
            DataQualityWarning,
            stacklevel=5,
        )
        title = title.fill_null("")
    price = (
        _numeric_column(frame, label, Columns.PRICE, "prices")
        if Columns.PRICE in frame.columns
        else pl.Series(Columns.PRICE, [None] * frame.height, dtype=pl.Float64)
    )
    return pl.DataFrame(
        [
            item_ids,
            title,
            _text_column(frame, label, Columns.DESCRIPTION),
            _text_column(frame, label, Columns.CATEGORY),
            _text_column(frame, label, Columns.BRAND),
            price,
            _in_stock_column(frame, label),
        ]
    )


def normalise_interactions(
    frame: pl.DataFrame, label: str, *, items: pl.DataFrame, items_label: str
) -> pl.DataFrame:
    frame = _require_frame(frame, label)
    require_columns(frame.columns, label, REQUIRED_INTERACTION_COLUMNS)
    user_ids = _id_column(frame, label, Columns.USER)
    item_ids = _id_column(frame, label, Columns.ITEM)
    timestamps = _timestamp_column(frame, label)
    weights = _weight_column(frame, label)
    events = _text_column(frame, label, Columns.EVENT)
    if events.null_count() < events.len():
        events = events.str.strip_chars().str.to_lowercase()
    else:  # nothing to clean; a null column read from a file holds a 16-byte slot per row
        events = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(Columns.EVENT)
    # One buffer, which the index's time array then shares instead of copying.
    timestamps = timestamps.rechunk()
    normalised = pl.DataFrame([user_ids, item_ids, timestamps, weights, events])
    _require_known_items(normalised, label, items, items_label)
    # Stable: ties (day-resolution or position-only timestamps) keep the file's order.
    return in_customer_order(normalised)


def normalise_users(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    frame = _require_frame(frame, label)
    require_columns(frame.columns, label, REQUIRED_USER_COLUMNS)
    user_ids = _id_column(frame, label, Columns.USER)
    _require_unique(user_ids, label, Columns.USER, "customer")
    text = _text_column(frame, label, Columns.TEXT).fill_null("")
    return pl.DataFrame([user_ids, text])
