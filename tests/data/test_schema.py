"""The data contract: loading, normalising and rejecting retailer tables."""

from __future__ import annotations

import datetime as dt
import math
import string
from pathlib import Path
from typing import Literal

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from rectransfer.data.columns import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import DataQualityWarning, RecTransferError, SchemaError

Format = Literal["parquet", "csv"]


# ----------------------------------------------------------------------------------------------
# A small valid shop, as a retailer might export it, and what it must normalise to


def raw_items() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": ["007", " B2 ", "C3"],
            "title": ["Tent", "Stove", "Mug"],
            "description": ["2-person", None, "Enamel"],
            "category": ["camping", "camping", None],
            "price": [120.0, None, 8.5],
            "in_stock": [True, None, False],
            "colour": ["green", "black", "white"],  # not in the contract: dropped
        }
    )


def raw_interactions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": ["u2", "u1", "u1", "u2", "u1"],
            "item_id": ["C3", " B2 ", "007", "007", "C3"],
            "timestamp": [300, 200, 100, 100, 200],
            "quantity": [1, 2, None, 3, 1],
            "event": [" Purchase", "VIEW", None, "cart", "view"],
            "rating": [5.0, 4.0, 3.0, 2.0, 1.0],  # not in the contract: dropped
        }
    )


def raw_users() -> pl.DataFrame:
    return pl.DataFrame({"user_id": [" u3", "u1"], "text": ["I camp every weekend", None]})


EXPECTED_ITEMS = pl.DataFrame(
    {
        "item_id": ["007", " B2 ", "C3"],  # ids are kept exactly as given, spaces too
        "title": ["Tent", "Stove", "Mug"],
        "description": ["2-person", None, "Enamel"],
        "category": ["camping", "camping", None],
        "brand": [None, None, None],
        "price": [120.0, None, 8.5],
        "in_stock": [True, True, False],
    },
    schema=ITEMS_SCHEMA,
)
# Sorted by (user, time); u1's two rows at t=200 keep their file order (B2 before C3).
EXPECTED_INTERACTIONS = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
        "item_id": ["007", " B2 ", "C3", "007", "C3"],
        "timestamp": [100, 200, 200, 100, 300],
        "weight": [1.0, 2.0, 1.0, 3.0, 1.0],
        "event": [None, "view", "view", "cart", "purchase"],
    },
    schema=INTERACTIONS_SCHEMA,
)
EXPECTED_USERS = pl.DataFrame(
    {"user_id": [" u3", "u1"], "text": ["I camp every weekend", ""]}, schema=USERS_SCHEMA
)


def write_table(folder: Path, stem: str, frame: pl.DataFrame, fmt: Format = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def write_folder(
    folder: Path,
    *,
    items: pl.DataFrame | None = None,
    interactions: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    fmt: Format = "parquet",
) -> Path:
    """A retailer folder; tables not given are the valid defaults (users: none)."""
    write_table(folder, "items", raw_items() if items is None else items, fmt)
    write_table(
        folder, "interactions", raw_interactions() if interactions is None else interactions, fmt
    )
    if users is not None:
        write_table(folder, "users", users, fmt)
    return folder


def shop(
    items: pl.DataFrame | None = None,
    interactions: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
) -> RetailerData:
    return RetailerData.from_frames(
        raw_items() if items is None else items,
        raw_interactions() if interactions is None else interactions,
        users,
        name="test",
    )


def replaced(
    frame: pl.DataFrame,
    column: str,
    values: list[object],
    dtype: pl.DataType | type[pl.DataType] | None = None,
) -> pl.DataFrame:
    return frame.with_columns(pl.Series(column, values, dtype=dtype))


# ----------------------------------------------------------------------------------------------
# Valid input


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_load_round_trip(tmp_path: Path, fmt: Format) -> None:
    folder = write_folder(tmp_path / "trail_shop", users=raw_users(), fmt=fmt)

    data = RetailerData.load(folder)

    assert data.name == "trail_shop"
    assert_frame_equal(data.items, EXPECTED_ITEMS)
    assert_frame_equal(data.interactions, EXPECTED_INTERACTIONS)
    assert data.users is not None
    assert_frame_equal(data.users, EXPECTED_USERS)
    assert (data.n_items, data.n_users, data.n_interactions) == (3, 2, 5)


def test_from_frames_matches_load(tmp_path: Path) -> None:
    loaded = RetailerData.load(write_folder(tmp_path / "s", users=raw_users()), name="custom")
    built = shop(users=raw_users())

    assert loaded.name == "custom"
    assert_frame_equal(built.items, loaded.items)
    assert_frame_equal(built.interactions, loaded.interactions)
    assert built.users is not None and loaded.users is not None
    assert_frame_equal(built.users, loaded.users)


def test_users_file_is_optional(tmp_path: Path) -> None:
    assert RetailerData.load(write_folder(tmp_path / "s")).users is None


def test_csv_keeps_leading_zeros_and_text_columns(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_table(
        folder, "items", pl.DataFrame({"item_id": ["007", "8"], "title": ["1", "2"]}), "csv"
    )
    write_table(
        folder,
        "interactions",
        pl.DataFrame({"user_id": ["0042"], "item_id": ["007"], "timestamp": [5]}),
        "csv",
    )

    data = RetailerData.load(folder)

    assert data.items["item_id"].to_list() == ["007", "8"]
    assert data.items["title"].to_list() == ["1", "2"]
    assert data.interactions["user_id"].to_list() == ["0042"]


def test_integer_ids_become_strings() -> None:
    data = RetailerData.from_frames(
        pl.DataFrame({"item_id": [7, 8], "title": ["a", "b"]}),
        pl.DataFrame(
            {"user_id": pl.Series([1, 1], dtype=pl.UInt32), "item_id": [8, 7], "timestamp": [2, 1]}
        ),
        name="ints",
    )
    assert data.items["item_id"].to_list() == ["7", "8"]
    assert data.interactions.select("user_id", "item_id").rows() == [("1", "7"), ("1", "8")]


def test_sort_keeps_file_order_for_ties() -> None:
    # Day-resolution timestamps: within a day the file order is the true order.
    items = pl.DataFrame({"item_id": list("abcdef"), "title": list("ABCDEF")})
    interactions = pl.DataFrame(
        {
            "user_id": ["u2", "u1", "u2", "u1", "u1", "u2", "u1"],
            "item_id": ["f", "c", "e", "a", "b", "d", "d"],
            "timestamp": [86_400, 86_400, 86_400, 0, 86_400, 0, 0],
        }
    )

    data = RetailerData.from_frames(items, interactions, name="ties")

    assert data.interactions.select("user_id", "item_id").rows() == [
        ("u1", "a"),
        ("u1", "d"),
        ("u1", "c"),
        ("u1", "b"),
        ("u2", "d"),
        ("u2", "f"),
        ("u2", "e"),
    ]


def test_sort_is_stable_on_many_ties() -> None:
    # Position-only or day-resolution data: many rows share (user, timestamp).
    n = 300
    rows = [(f"u{(i * 7) % 4}", (i * 13) % 3, f"i{i}") for i in range(n)]
    items = pl.DataFrame({"item_id": [r[2] for r in rows], "title": ["t"] * n})
    interactions = pl.DataFrame(rows, schema=["user_id", "timestamp", "item_id"], orient="row")

    data = RetailerData.from_frames(items, interactions, name="ties")

    expected = sorted(rows, key=lambda r: (r[0], r[1]))  # Python's sort is stable
    assert data.interactions["item_id"].to_list() == [r[2] for r in expected]


JAN_5_2024 = 1_704_412_800  # 2024-01-05 00:00:00 UTC


@pytest.mark.parametrize(
    ("timestamps", "expected"),
    [
        pytest.param(
            pl.Series([dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 5, 0, 1, 30)]),
            [JAN_5_2024, JAN_5_2024 + 90],
            id="naive-datetime-is-utc",
        ),
        pytest.param(
            pl.Series([dt.datetime(2024, 1, 5, 1)]).dt.replace_time_zone("Europe/Paris"),
            [JAN_5_2024],
            id="aware-datetime",
        ),
        pytest.param(
            pl.Series([dt.datetime(2024, 1, 5)], dtype=pl.Datetime("ns")),
            [JAN_5_2024],
            id="nanoseconds",
        ),
        pytest.param(
            pl.Series([dt.date(2024, 1, 5), dt.date(2024, 1, 6)]),
            [JAN_5_2024, JAN_5_2024 + 86_400],
            id="date",
        ),
        pytest.param(
            pl.Series(
                [
                    "2024-01-05",
                    "2024-01-05T00:00:10Z",
                    "2024-01-05 01:00:00+01:00",
                    "2024-01-05 00:01",
                ]
            ),
            [JAN_5_2024, JAN_5_2024 + 10, JAN_5_2024, JAN_5_2024 + 60],
            id="iso-text",
        ),
        pytest.param(pl.Series([1.0, 2.0]), [1, 2], id="integral-floats"),
        pytest.param(pl.Series([3, 4], dtype=pl.UInt16), [3, 4], id="unsigned"),
    ],
)
def test_timestamps_become_unix_seconds(timestamps: pl.Series, expected: list[int]) -> None:
    n = len(expected)
    interactions = pl.DataFrame(
        {"user_id": [f"u{i}" for i in range(n)], "item_id": ["C3"] * n}
    ).with_columns(timestamps.alias("timestamp"))

    data = shop(interactions=interactions)

    assert data.interactions["timestamp"].dtype == pl.Int64
    assert data.interactions["timestamp"].to_list() == expected


def test_iso_text_timestamps_from_csv(tmp_path: Path) -> None:
    interactions = pl.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "item_id": ["C3", " B2 "],
            "timestamp": ["2024-01-06", "2024-01-05"],
        }
    )
    data = RetailerData.load(write_folder(tmp_path / "s", interactions=interactions, fmt="csv"))
    assert data.interactions["timestamp"].to_list() == [JAN_5_2024, JAN_5_2024 + 86_400]
    assert data.interactions["item_id"].to_list() == [" B2 ", "C3"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({}, [1.0, 1.0], id="no-column"),
        pytest.param({"quantity": [3, None]}, [3.0, 1.0], id="quantity"),
        pytest.param({"weight": [0.5, None]}, [0.5, 1.0], id="weight"),
        pytest.param({"weight": [0.5, 2.0], "quantity": [7, 7]}, [0.5, 2.0], id="weight-wins"),
    ],
)
def test_weight(extra: dict[str, list[object]], expected: list[float]) -> None:
    interactions = pl.DataFrame(
        {"user_id": ["u1", "u1"], "item_id": ["C3", " B2 "], "timestamp": [1, 2], **extra}
    )
    data = shop(interactions=interactions)
    assert data.interactions["weight"].dtype == pl.Float64
    assert data.interactions["weight"].to_list() == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(pl.Series([True, None, False]), [True, True, False], id="bool"),
        pytest.param(pl.Series([1, None, 0], dtype=pl.Int8), [True, True, False], id="int"),
        pytest.param(pl.Series(["Yes", " no ", None]), [True, False, True], id="yes-no"),
        pytest.param(pl.Series(["TRUE", "false", "1"]), [True, False, True], id="true-false"),
        pytest.param(pl.Series(["0", "1", "0"]), [False, True, False], id="text-digits"),
        pytest.param(pl.Series([None, None, None]), [True, True, True], id="all-null"),
        pytest.param(None, [True, True, True], id="no-column"),
    ],
)
def test_in_stock_variants(values: pl.Series | None, expected: list[bool]) -> None:
    items = raw_items().drop("in_stock")
    if values is not None:
        items = items.with_columns(values.alias("in_stock"))
    assert shop(items=items).items["in_stock"].to_list() == expected


def test_zero_interactions_and_text_only_users() -> None:
    empty = pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64})
    data = shop(interactions=empty, users=raw_users())

    assert_frame_equal(data.interactions, pl.DataFrame(schema=INTERACTIONS_SCHEMA))
    assert (data.n_users, data.n_interactions) == (0, 0)
    assert data.users is not None and data.users["user_id"].to_list() == [" u3", "u1"]


def test_events_are_lower_cased_and_stripped() -> None:
    assert shop().interactions["event"].to_list() == [None, "view", "view", "cart", "purchase"]


def test_repr_is_short() -> None:
    assert repr(shop()) == (
        "RetailerData(name='test', n_items=3, n_users=2, n_interactions=5, users=None)"
    )


def test_constructor_rejects_raw_frames() -> None:
    with pytest.raises(SchemaError, match="from_frames"):
        RetailerData("raw", raw_items(), raw_interactions(), None)


def test_rejects_non_polars_input() -> None:
    with pytest.raises(SchemaError, match="items: expected a polars DataFrame, got dict"):
        RetailerData.from_frames({"item_id": ["a"]}, raw_interactions(), name="x")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Malformed tables: each must raise SchemaError naming the table, the column and the value.
# "{items}", "{interactions}", "{users}" stand for the file name (or the table name in memory).

ITEMS = raw_items()
EVENTS = raw_interactions()
USERS = raw_users()

BROKEN = [
    pytest.param(
        {"items": ITEMS.rename({"title": "name"})},
        ["{items}", "'title'", "'name'", "columns present"],
        id="items-missing-title",
    ),
    pytest.param(
        {"items": ITEMS.rename({"item_id": "Item_ID"})},
        ["{items}", "'item_id'", "Rename 'Item_ID'"],
        id="items-id-wrong-case",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "item_id", ["007", None, "C3"])},
        ["{items}", "'item_id'", "None at data row 2", "1 null, empty or blank value"],
        id="items-null-id",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "item_id", ["007", "  ", "C3"])},
        ["{items}", "'item_id'", "'  ' at data row 2"],
        id="items-blank-id",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "item_id", [1.5, 2.0, 3.0])},
        ["{items}", "'item_id'", "1.5", "as strings"],
        id="items-float-id",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "item_id", ["A1", "C3", "A1"])},
        ["{items}", "'item_id'", "'A1'", "one row per item"],
        id="items-duplicate-id",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "title", [1.5, 2.0, 3.0])},
        ["{items}", "'title'", "1.5", "as strings"],
        id="items-float-title",
    ),
    pytest.param(
        {"items": ITEMS.clear()},
        ["{items}", "'item_id'", "catalogue is empty"],
        id="items-empty",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "price", [1.0, -1.0, 2.0])},
        ["{items}", "'price'", "-1.0 at data row 2"],
        id="items-negative-price",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "price", [math.nan, 1.0, 2.0])},
        ["{items}", "'price'", "nan at data row 1"],
        id="items-nan-price",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "price", [1.0, 2.0, math.inf])},
        ["{items}", "'price'", "inf at data row 3"],
        id="items-inf-price",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "price", ["12 USD", "3", None])},
        ["{items}", "'price'", "'12 USD'", "numeric"],
        id="items-text-price",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "in_stock", ["yes", "maybe", None])},
        ["{items}", "'in_stock'", "'maybe' at data row 2"],
        id="items-in-stock-word",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "in_stock", [1, 2, 0])},
        ["{items}", "'in_stock'", "2 at data row 2"],
        id="items-in-stock-int",
    ),
    pytest.param(
        {"items": replaced(ITEMS, "in_stock", [1.0, 0.5, 0.0])},
        ["{items}", "'in_stock'", "0.5", "booleans"],
        id="items-in-stock-float",
    ),
    pytest.param(
        {"interactions": EVENTS.drop("timestamp")},
        ["{interactions}", "'timestamp'", "'quantity'", "columns present"],
        id="interactions-missing-timestamp",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "user_id", ["u2", "u1", None, "u2", ""])},
        ["{interactions}", "'user_id'", "None at data row 3", "'' at data row 5"],
        id="interactions-null-user",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "user_id", [True, False, True, True, False])},
        ["{interactions}", "'user_id'", "True", "as strings"],
        id="interactions-bool-user",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "item_id", ["C3", "X9", "007", "Z0", "X9"])},
        ["{interactions}", "'item_id'", "2 items", "'X9', 'Z0'", "3 rows", "Add them to {items}"],
        id="interactions-unknown-items",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "timestamp", [1, None, 3, 4, 5])},
        ["{interactions}", "'timestamp'", "None at data row 2"],
        id="interactions-null-timestamp",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "timestamp", [1, 2, -5, 4, 5])},
        ["{interactions}", "'timestamp'", "-5 at data row 3", "negative"],
        id="interactions-negative-timestamp",
    ),
    pytest.param(
        {
            "interactions": replaced(
                EVENTS, "timestamp", [dt.datetime(1969, 12, 31)] + [dt.datetime(2024, 1, 1)] * 4
            )
        },
        ["{interactions}", "'timestamp'", "1969", "before 1970"],
        id="interactions-datetime-before-1970",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "timestamp", [1.0, 2.5, 3.0, 4.0, 5.0])},
        ["{interactions}", "'timestamp'", "2.5 at data row 2", "whole seconds"],
        id="interactions-fractional-timestamp",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "timestamp", [1.0, 2.0, math.nan, 4.0, 5.0])},
        ["{interactions}", "'timestamp'", "nan at data row 3"],
        id="interactions-nan-timestamp",
    ),
    pytest.param(
        {
            "interactions": replaced(
                EVENTS, "timestamp", ["2024-01-05", "yesterday", "05/01/2024", "2024-01-06", "x"]
            )
        },
        ["{interactions}", "'timestamp'", "'yesterday' at data row 2", "'05/01/2024'", "ISO 8601"],
        id="interactions-text-timestamp",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "timestamp", [True, False, True, True, False])},
        ["{interactions}", "'timestamp'", "True", "unix seconds"],
        id="interactions-bool-timestamp",
    ),
    pytest.param(
        {"interactions": replaced(EVENTS, "quantity", [1, 2, -2, 3, 1])},
        ["{interactions}", "'quantity'", "-2.0 at data row 3"],
        id="interactions-negative-quantity",
    ),
    pytest.param(
        {"interactions": EVENTS.with_columns(weight=pl.Series([1.0, math.nan, 1, 1, 1]))},
        ["{interactions}", "'weight'", "nan at data row 2"],
        id="interactions-nan-weight",
    ),
    pytest.param(
        {"interactions": EVENTS.with_columns(weight=pl.lit("heavy"))},
        ["{interactions}", "'weight'", "'heavy'", "numeric"],
        id="interactions-text-weight",
    ),
    pytest.param(
        {"users": replaced(USERS, "user_id", ["u1", "u1"])},
        ["{users}", "'user_id'", "'u1'", "one row per customer"],
        id="users-duplicate-id",
    ),
    pytest.param(
        {"users": USERS.drop("text")},
        ["{users}", "'text'", "'user_id'", "columns present"],
        id="users-missing-text",
    ),
    pytest.param(
        {"users": replaced(USERS, "user_id", [None, "u1"], pl.String)},
        ["{users}", "'user_id'", "None at data row 1"],
        id="users-null-id",
    ),
]


def _expect(err: pytest.ExceptionInfo[SchemaError], fragments: list[str], ext: str) -> None:
    labels = {stem: f"{stem}{ext}" for stem in ("items", "interactions", "users")}
    message = str(err.value)
    for fragment in fragments:
        assert fragment.format(**labels) in message
    assert len(message) < 400  # one or two sentences, not a dump of the table


@pytest.mark.parametrize(("tables", "fragments"), BROKEN)
def test_broken_files_are_rejected(
    tmp_path: Path, tables: dict[str, pl.DataFrame], fragments: list[str]
) -> None:
    folder = write_folder(tmp_path / "s", **tables)
    with pytest.raises(SchemaError) as err:
        RetailerData.load(folder)
    _expect(err, fragments, ".parquet")


@pytest.mark.parametrize(("tables", "fragments"), BROKEN)
def test_broken_frames_are_rejected(tables: dict[str, pl.DataFrame], fragments: list[str]) -> None:
    with pytest.raises(SchemaError) as err:
        shop(**tables)
    _expect(err, fragments, "")


def test_error_lists_at_most_five_examples() -> None:
    interactions = pl.DataFrame(
        {"user_id": ["u"] * 8, "item_id": [f"X{i}" for i in range(8)], "timestamp": range(8)}
    )
    with pytest.raises(SchemaError) as err:
        shop(interactions=interactions)
    assert "8 items" in str(err.value)
    assert "'X4', ..." in str(err.value)
    assert "'X5'" not in str(err.value)


def test_csv_errors_name_the_csv_file(tmp_path: Path) -> None:
    interactions = replaced(EVENTS, "timestamp", ["2024-01-05", "soon", None, None, None])
    folder = write_folder(tmp_path / "s", interactions=interactions, fmt="csv")
    with pytest.raises(SchemaError, match=r"interactions\.csv: column 'timestamp'.*'soon'"):
        RetailerData.load(folder)


# ----------------------------------------------------------------------------------------------
# Broken folders and files


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="nowhere: retailer folder not found"):
        RetailerData.load(tmp_path / "nowhere")


def test_folder_is_a_file(tmp_path: Path) -> None:
    path = write_table(tmp_path, "items", raw_items())
    with pytest.raises(SchemaError, match="is a file, not a retailer folder"):
        RetailerData.load(path)


@pytest.mark.parametrize("stem", ["items", "interactions"])
def test_missing_required_file(tmp_path: Path, stem: str) -> None:
    folder = write_folder(tmp_path / "s")
    (folder / f"{stem}.parquet").unlink()
    with pytest.raises(SchemaError, match=f"no {stem} file; expected {stem}.parquet or {stem}.csv"):
        RetailerData.load(folder)


def test_null_titles_are_read_as_empty_with_a_warning(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "s")
    write_table(folder, "items", replaced(ITEMS, "title", ["Tent", None, "Mug"]))
    with pytest.warns(DataQualityWarning, match=r"items\.parquet: column 'title'.*' B2 '"):
        data = RetailerData.load(folder)
    assert data.items["title"].to_list() == ["Tent", "", "Mug"]


def test_items_are_checked_before_interactions(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_table(folder, "items", replaced(ITEMS, "item_id", ["A1", "A1", "C3"]))
    with pytest.raises(SchemaError, match=r"items\.parquet: column 'item_id'"):
        RetailerData.load(folder)  # no interactions file at all: the items error comes first


@pytest.mark.parametrize(
    ("stem", "ext", "content"),
    [
        pytest.param("items", "parquet", b"item_id,title\nA,Tent\n", id="csv-named-parquet"),
        pytest.param("interactions", "parquet", b"PAR1\x00\x01garbagePAR1", id="corrupt-parquet"),
        pytest.param("users", "parquet", b"", id="empty-parquet"),
        pytest.param("items", "csv", b"", id="empty-csv"),
        pytest.param(
            "interactions", "csv", b"user_id,item_id,timestamp\n\xff\xfe,A,1\n", id="not-utf8"
        ),
    ],
)
def test_unreadable_file(tmp_path: Path, stem: str, ext: str, content: bytes) -> None:
    folder = write_folder(tmp_path / "s", users=raw_users())
    (folder / f"{stem}.parquet").unlink()
    (folder / f"{stem}.{ext}").write_bytes(content)
    with pytest.raises(SchemaError, match=rf"{stem}\.{ext}: could not be read") as err:
        RetailerData.load(folder)
    assert err.value.__cause__ is not None


def test_both_formats_present(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "s")
    write_table(folder, "items", raw_items(), "csv")
    with pytest.raises(SchemaError, match=r"found both items\.parquet and items\.csv"):
        RetailerData.load(folder)


def test_columns_name_the_normalised_frames() -> None:
    assert list(ITEMS_SCHEMA) == [
        Columns.ITEM,
        Columns.TITLE,
        Columns.DESCRIPTION,
        Columns.CATEGORY,
        Columns.BRAND,
        Columns.PRICE,
        Columns.IN_STOCK,
    ]
    assert list(INTERACTIONS_SCHEMA) == [
        Columns.USER,
        Columns.ITEM,
        Columns.TIMESTAMP,
        Columns.WEIGHT,
        Columns.EVENT,
    ]
    assert list(USERS_SCHEMA) == [Columns.USER, Columns.TEXT]


def test_schema_error_is_in_the_tree() -> None:
    assert issubclass(SchemaError, RecTransferError)
    assert issubclass(SchemaError, ValueError)


# ----------------------------------------------------------------------------------------------
# Properties

ID_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=6)
# Blank titles are accepted with a DataQualityWarning (tested above); these are never blank.
TITLE_TEXT = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=10)
# Timestamps are rejected more than a day after the current time; these are never that late.
LAST_VALID_SECOND = 1_767_225_600  # 2026-01-01 UTC
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """Random frames that honour the contract, in the many shapes a retailer may send."""
    n_items = draw(st.integers(1, 8))
    if draw(st.booleans()):
        item_ids: list[object] = draw(
            st.lists(st.integers(0, 10**12), min_size=n_items, max_size=n_items, unique=True)
        )
    else:
        names = draw(st.lists(ID_TEXT, min_size=n_items, max_size=n_items, unique=True))
        item_ids = [draw(st.sampled_from(["", " ", "  "])) + name for name in names]
    items: dict[str, object] = {
        "item_id": item_ids,
        "title": draw(st.lists(TITLE_TEXT, min_size=n_items, max_size=n_items)),
    }
    for column in ("description", "category", "brand"):
        if draw(st.booleans()):
            items[column] = draw(
                st.lists(st.none() | st.text(max_size=5), min_size=n_items, max_size=n_items)
            )
    if draw(st.booleans()):
        items["price"] = draw(
            st.lists(
                st.none() | st.floats(0, 1e6, allow_nan=False), min_size=n_items, max_size=n_items
            )
        )
    if draw(st.booleans()):
        stock = st.sampled_from([True, False, None, "yes", "No", "TRUE", "false", "1", "0"])
        values = draw(st.lists(stock, min_size=n_items, max_size=n_items))
        kinds = {type(v) for v in values if v is not None}
        items["in_stock"] = [
            str(v) if kinds == {bool, str} and v is not None else v for v in values
        ]

    n_rows = draw(st.integers(0, 12))
    users = draw(st.lists(ID_TEXT, min_size=n_rows, max_size=n_rows))
    interactions: dict[str, object] = {
        "user_id": users,
        "item_id": draw(st.lists(st.sampled_from(item_ids), min_size=n_rows, max_size=n_rows)),
    }
    if draw(st.booleans()):
        interactions["timestamp"] = draw(
            st.lists(st.integers(0, LAST_VALID_SECOND), min_size=n_rows, max_size=n_rows)
        )
    else:
        interactions["timestamp"] = pl.Series(
            draw(
                st.lists(
                    st.datetimes(dt.datetime(1970, 1, 2), dt.datetime(2026, 1, 1)),
                    min_size=n_rows,
                    max_size=n_rows,
                )
            ),
            dtype=pl.Datetime("us"),
        )
    weight_column = draw(st.sampled_from([None, "weight", "quantity"]))
    if weight_column is not None:
        interactions[weight_column] = draw(
            st.lists(
                st.none() | st.floats(0, 1e3, allow_nan=False), min_size=n_rows, max_size=n_rows
            )
        )
    if draw(st.booleans()):
        interactions["event"] = draw(
            st.lists(
                st.sampled_from([None, "view", " Cart ", "PURCHASE"]),
                min_size=n_rows,
                max_size=n_rows,
            )
        )
    user_frame = None
    if draw(st.booleans()):
        user_ids = draw(st.lists(ID_TEXT, max_size=5, unique=True))
        texts = draw(
            st.lists(
                st.none() | st.text(max_size=8), min_size=len(user_ids), max_size=len(user_ids)
            )
        )
        user_frame = pl.DataFrame(
            {"user_id": user_ids, "text": texts}, schema={"user_id": pl.String, "text": pl.String}
        )
    interaction_frame = pl.DataFrame(interactions).with_columns(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(item_dtype(item_ids))
    )
    return pl.DataFrame(items, strict=False), interaction_frame, user_frame


def item_dtype(item_ids: list[object]) -> type[pl.DataType]:
    return pl.Int64 if isinstance(item_ids[0], int) else pl.String


@PROPERTY_SETTINGS
@given(valid_frames())
def test_valid_frames_are_accepted(
    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None],
) -> None:
    items, interactions, users = frames

    data = RetailerData.from_frames(items, interactions, users, name="prop")

    assert data.items.schema == ITEMS_SCHEMA
    assert data.interactions.schema == INTERACTIONS_SCHEMA
    assert data.items["item_id"].to_list() == [str(v) for v in items["item_id"]]
    assert data.items["in_stock"].null_count() == 0
    assert data.interactions.height == interactions.height
    assert data.interactions["weight"].null_count() == 0
    assert data.interactions.equals(
        data.interactions.sort(["user_id", "timestamp"], maintain_order=True)
    )
    if users is None:
        assert data.users is None
    else:
        assert data.users is not None and data.users.schema == USERS_SCHEMA
        assert data.users["text"].null_count() == 0


def _null_at(frame: pl.DataFrame, column: str, row: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(None).otherwise(pl.col(column)).alias(column)
    )


CORRUPTIONS = [
    "null item id",
    "null user id",
    "null interaction item",
    "null timestamp",
    "future timestamp",
    "unknown item",
    "duplicate item",
    "negative price",
    "bad in_stock",
    "negative weight",
    "float item ids",
]


@PROPERTY_SETTINGS
@given(valid_frames(), st.sampled_from(CORRUPTIONS), st.data())
def test_invalid_frames_raise_schema_error(
    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None],
    corruption: str,
    data: st.DataObject,
) -> None:
    items, interactions, users = frames
    n_rows = interactions.height
    item_row = data.draw(st.integers(0, items.height - 1))
    if corruption.startswith("null") and corruption != "null item id":
        if n_rows == 0:
            interactions = interactions.clear(1)  # a row of nulls: every id is missing
        column = {
            "null user id": "user_id",
            "null interaction item": "item_id",
            "null timestamp": "timestamp",
        }[corruption]
        interactions = _null_at(
            interactions, column, data.draw(st.integers(0, interactions.height - 1))
        )
    elif corruption == "null item id":
        items = _null_at(items, "item_id", item_row)
    elif corruption == "future timestamp":
        year_3000 = 32_503_680_000
        extra = pl.DataFrame(
            {"user_id": ["u"], "item_id": items["item_id"].head(1), "timestamp": [year_3000]}
        )
        interactions = pl.concat(
            [interactions.with_columns(pl.col("timestamp").cast(pl.Int64)), extra],
            how="diagonal_relaxed",
        )
    elif corruption == "unknown item":
        int_ids = interactions["item_id"].dtype == pl.Int64
        time_dtype = interactions["timestamp"].dtype
        extra = pl.DataFrame(
            {
                "user_id": ["u"],
                "item_id": [-1] if int_ids else ["no such item!"],
                "timestamp": pl.Series([0]).cast(pl.Int64 if time_dtype == pl.Null else time_dtype),
            }
        )
        interactions = pl.concat([interactions, extra], how="diagonal_relaxed")
    elif corruption == "duplicate item":
        items = pl.concat([items, items.slice(item_row, 1)])
    elif corruption == "negative price":
        items = items.with_columns(price=pl.lit(-0.01))
    elif corruption == "bad in_stock":
        items = items.with_columns(in_stock=pl.lit("perhaps"))
    elif corruption == "negative weight":
        interactions = interactions.drop("weight", "quantity", strict=False).with_columns(
            weight=pl.lit(-1.0)
        )
        if n_rows == 0:
            return  # no row to hold the bad weight: nothing to reject
    elif corruption == "float item ids":
        items = items.with_columns(pl.int_range(pl.len()).cast(pl.Float64).alias("item_id"))

    with pytest.raises(SchemaError):
        RetailerData.from_frames(items, interactions, users, name="prop")


def test_weights_of_one_read_the_same_whether_given_absent_or_constant():
    items = pl.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]})
    base = {"user_id": ["u", "u", "v"], "item_id": ["a", "b", "a"], "timestamp": [1, 2, 3]}
    absent = RetailerData.from_frames(items, pl.DataFrame(base), name="s")
    ones = RetailerData.from_frames(
        items, pl.DataFrame({**base, "weight": [1.0, 1.0, None]}), name="s"
    )
    mixed = RetailerData.from_frames(items, pl.DataFrame({**base, "quantity": [1, 3, 1]}), name="s")
    for shop in (absent, ones):
        assert shop.interactions.schema == INTERACTIONS_SCHEMA
        assert shop.interactions["weight"].to_list() == [1.0, 1.0, 1.0]
    assert_frame_equal(absent.interactions, ones.interactions)
    assert mixed.interactions["weight"].to_list() == [1.0, 3.0, 1.0]
