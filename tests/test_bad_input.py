"""Bad input: every malformed retailer folder or model directory gets one clear error, and nothing
is written (no export file, no model directory, no cache entry that is not a complete shard).

Each case starts from a valid retailer folder and model directory, breaks one thing, and runs the
whole pipeline a nightly run does (load the model, load the folder, adapt, save, recommend,
export) both through the API (for the exception type) and through the console script (exit code 2
and one line). The message must name the file, the column and the offending values and say how to
fix them. ``tests/data/test_schema.py`` holds the finer-grained unit cases of the data contract.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
import string
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.data.columns import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, MAX_TEXT_CHARS, USERS_SCHEMA
from rectransfer.errors import DataQualityWarning, IncompatibleArtifactError, SchemaError
from rectransfer.model.artifacts import CHECKSUM_FILE, CONFIG_FILE, RANKER_FILE
from rectransfer.model.config import EncoderInfo
from rectransfer.model.recmodel import RecModel
from rectransfer.text.encoder import HashingEncoder
from rectransfer.text.load import load_encoder
from tests.conftest import make_shop, one_error_line, write_shop

ENCODER = "hashing:64"  # the `encoder` fixture's encoder, as the console script names it
RUN_DATE = "2026-11-23"
MEGABYTE = 1_048_576


# ----------------------------------------------------------------------------------------------
# A valid workspace, and the pipeline a nightly run goes through


@pytest.fixture(scope="module")
def model_dir(broad, tmp_path_factory) -> Path:
    return broad.save(tmp_path_factory.mktemp("bad_input") / "broad")


@dataclass
class Workspace:
    retailer: Path  # a valid retailer folder, to be broken by a case
    model: Path  # a copy of the broad model directory, to be broken by a case
    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def exports(self) -> Path:
        return self.root / "exports"


@pytest.fixture
def workspace(tmp_path, model_dir) -> Workspace:
    shop = make_shop("shop", seed=5, n_users=12, variants=1)
    ws = Workspace(write_shop(shop, tmp_path / "shop"), tmp_path / "model", tmp_path / "work")
    shutil.copytree(model_dir, ws.model)
    ws.root.mkdir()
    return ws


def run_pipeline(retailer: Path, model: Path, ws: Workspace) -> Path:
    """Load, adapt, save, recommend and export: what a nightly run does for one retailer."""
    encoder = load_encoder(ENCODER, cache_dir=ws.cache)
    base = RecModel.load(model, encoder=encoder)
    data = rt.RetailerData.load(retailer)
    adapted = rt.adapt(base, data)
    adapted.save(ws.models / data.name)
    recs = rt.recommend(adapted, data, k=5)
    return rt.write_recommendations(
        recs, ws.exports, retailer=data.name, run_date=RUN_DATE, model_version=adapted.model_version
    )


def run_cli(retailer: Path, model: Path, ws: Workspace) -> int:
    return main(
        [
            "recommend",
            "--model",
            str(model),
            "--retailer",
            str(retailer),
            "--out",
            str(ws.exports),
            "--run-date",
            RUN_DATE,
            "--encoder",
            ENCODER,
            "--cache-dir",
            str(ws.cache),
        ]
    )


def digest(folder: Path) -> str:
    """A digest of every file name and content under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def assert_nothing_written(ws: Workspace) -> None:
    """No export file, no model directory, and only complete, readable cache shards."""
    assert not [p for p in ws.exports.rglob("*") if p.is_file()], "an export file was written"
    assert not ws.models.exists() or not list(ws.models.iterdir()), "a model was written"
    for path in (p for p in ws.cache.rglob("*") if p.is_file()):
        assert path.name.startswith("shard-") and path.suffix == ".npz", path
        with np.load(path, allow_pickle=False) as npz:
            assert set(npz.files) == {"keys", "vectors"}
            assert np.isfinite(npz["vectors"]).all()


# ----------------------------------------------------------------------------------------------
# Ways to break a folder


Build = Callable[[Workspace], Path | None]  # may return another retailer path to use


def edit(stem: str, change: Callable[[pl.DataFrame], pl.DataFrame], fmt: str = "parquet") -> Build:
    """Rewrite one table of the valid folder, changed, as Parquet or CSV."""

    def build(ws: Workspace) -> None:
        source = ws.retailer / f"{stem}.parquet"
        frame = change(pl.read_parquet(source))
        source.unlink()
        if fmt == "csv":
            frame.write_csv(ws.retailer / f"{stem}.csv")
        else:
            frame.write_parquet(source)

    return build


def as_csv(stem: str, text: str | bytes) -> Build:
    """Replace one table by a CSV file with this content."""

    def build(ws: Workspace) -> None:
        (ws.retailer / f"{stem}.parquet").unlink()
        data = text.encode() if isinstance(text, str) else text
        (ws.retailer / f"{stem}.csv").write_bytes(data)

    return build


def raw_bytes(stem: str, content: Callable[[bytes], bytes]) -> Build:
    """Replace a Parquet file's bytes (e.g. cut it short)."""

    def build(ws: Workspace) -> None:
        path = ws.retailer / f"{stem}.parquet"
        path.write_bytes(content(path.read_bytes()))

    return build


def delete(*names: str) -> Build:
    def build(ws: Workspace) -> None:
        for name in names:
            (ws.retailer / name).unlink()

    return build


def at(
    frame: pl.DataFrame, column: str, row: int, value: object, dtype: object = None
) -> pl.DataFrame:
    """``frame`` with one cell replaced (the column is rebuilt with ``dtype`` if given)."""
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=dtype, strict=False))


def damage_model(change: Callable[[Path], None]) -> Build:
    def build(ws: Workspace) -> None:
        change(ws.model)

    return build


def rewrite_config(change: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    """Edit config.json and update checksums.json, as a careful tamperer would."""

    def apply(model: Path) -> None:
        config = json.loads((model / CONFIG_FILE).read_text())
        result = change(config)
        text = result if isinstance(result, str) else json.dumps(config)
        (model / CONFIG_FILE).write_text(text)
        update_checksum(model, CONFIG_FILE)

    return apply


def update_checksum(model: Path, name: str) -> None:
    sums = json.loads((model / CHECKSUM_FILE).read_text())
    sums[name] = hashlib.sha256((model / name).read_bytes()).hexdigest()
    (model / CHECKSUM_FILE).write_text(json.dumps(sums))


def replace_ranker(content: bytes) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        (model / RANKER_FILE).write_bytes(content)
        update_checksum(model, RANKER_FILE)

    return apply


def other_encoder(ws: Workspace) -> None:
    """A complete, valid model directory whose ranker was trained on another encoder's vectors."""
    model = RecModel.load(ws.model)
    info = EncoderInfo.of(HashingEncoder(32), "hashing:32")
    shutil.rmtree(ws.model)
    RecModel(model.booster, model.config.model_copy(update={"encoder": info})).save(ws.model)


def folder_is_a_file(ws: Workspace) -> Path:
    path = ws.root / "shop.zip"
    path.write_bytes(b"PK\x03\x04 not a folder")
    return path


def one_interaction_each(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique("user_id", keep="first", maintain_order=True)


# ----------------------------------------------------------------------------------------------
# The cases


@dataclass
class Case:
    id: str
    build: Build
    error: type[Exception]
    fragments: list[str] = field(default_factory=list)  # file, column, values, the fix


SCHEMA = SchemaError
ARTIFACT = IncompatibleArtifactError
T = "timestamp"
YEAR_2090 = int(dt.datetime(2090, 1, 1, tzinfo=dt.UTC).timestamp())

CASES = [
    # --- missing files, folders and columns ---
    Case(
        "no-items-file",
        delete("items.parquet"),
        SCHEMA,
        ["no items file", "items.parquet or items.csv", "'interactions.parquet'", "Save the items"],
    ),
    Case(
        "no-interactions-file",
        delete("interactions.parquet"),
        SCHEMA,
        ["no interactions file", "interactions.csv", "'items.parquet'", "Save the interactions"],
    ),
    Case(
        "empty-folder",
        delete("items.parquet", "interactions.parquet", "users.parquet"),
        SCHEMA,
        ["no items file", "the folder is empty", "Save the items table"],
    ),
    Case(
        "folder-is-a-file",
        folder_is_a_file,
        SCHEMA,
        ["shop.zip", "is a file, not a retailer folder", "Pass the folder"],
    ),
    Case(
        "items-in-two-formats",
        lambda ws: pl.read_parquet(ws.retailer / "items.parquet").write_csv(
            ws.retailer / "items.csv"
        ),
        SCHEMA,
        ["found both items.parquet and items.csv", "Keep only one"],
    ),
    Case(
        "items-missing-title",
        edit("items", lambda f: f.drop("title")),
        SCHEMA,
        ["items.parquet", "'title'", "columns present", "'item_id'", "Add a 'title' column"],
    ),
    Case(
        "items-id-column-misnamed",
        edit("items", lambda f: f.rename({"item_id": " Item_ID"})),
        SCHEMA,
        ["items.parquet", "'item_id'", "Rename ' Item_ID' to 'item_id'"],
    ),
    Case(
        "interactions-missing-timestamp",
        edit("interactions", lambda f: f.drop(T)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", "columns present", "Add a 'timestamp' column"],
    ),
    Case(
        "users-missing-text",
        edit("users", lambda f: f.rename({"text": "bio"})),
        SCHEMA,
        ["users.parquet", "'text'", "'bio'", "Add a 'text' column"],
    ),
    # --- wrong types ---
    Case(
        "float-item-ids",
        edit(
            "items", lambda f: f.with_columns(item_id=pl.int_range(pl.len()).cast(pl.Float64) + 0.5)
        ),
        SCHEMA,
        ["items.parquet", "'item_id'", "0.5", "Store item_id as strings"],
    ),
    Case(
        "bool-user-ids",
        edit("interactions", lambda f: f.with_columns(user_id=pl.col(T) % 2 == 0)),
        SCHEMA,
        ["interactions.parquet", "'user_id'", "True", "Store user_id as strings"],
    ),
    Case(
        "text-prices",
        edit("items", lambda f: f.with_columns(price=pl.lit("12 USD"))),
        SCHEMA,
        ["items.parquet", "'price'", "'12 USD'", "Store price as a numeric column"],
    ),
    Case(
        "binary-titles",
        edit("items", lambda f: f.with_columns(pl.col("title").cast(pl.Binary))),
        SCHEMA,
        ["items.parquet", "'title'", "Binary", "b'tent model 1'", "Store title as strings"],
    ),
    Case(
        "bool-timestamps",
        edit("interactions", lambda f: f.with_columns(pl.col(T) % 2 == 0)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", "True", "Store unix seconds"],
    ),
    Case(
        "in-stock-maybe",
        edit("items", lambda f: at(f, "in_stock", 2, "maybe", pl.String)),
        SCHEMA,
        ["items.parquet", "'in_stock'", "'maybe' at data row 3", "Use true/false"],
    ),
    # --- null, empty and duplicate ids ---
    Case(
        "null-item-id",
        edit("items", lambda f: at(f, "item_id", 1, None)),
        SCHEMA,
        ["items.parquet", "'item_id'", "None at data row 2", "fill them in or drop those rows"],
    ),
    Case(
        "empty-user-id",
        edit("interactions", lambda f: at(f, "user_id", 3, "")),
        SCHEMA,
        ["interactions.parquet", "'user_id'", "'' at data row 4", "Every row needs an id"],
    ),
    Case(
        "blank-item-id",
        edit("items", lambda f: at(f, "item_id", 0, "   ")),
        SCHEMA,
        ["items.parquet", "'item_id'", "'   ' at data row 1", "Every row needs an id"],
    ),
    Case(
        "null-item-in-interactions",
        edit("interactions", lambda f: at(f, "item_id", 0, None)),
        SCHEMA,
        ["interactions.parquet", "'item_id'", "None at data row 1", "drop those rows"],
    ),
    Case(
        "duplicate-item-rows",
        edit("items", lambda f: pl.concat([f, f.head(1)])),
        SCHEMA,
        ["items.parquet", "'item_id'", "'SH-0000'", "rows 1, 17, identical", "drop the repeats"],
    ),
    Case(
        "duplicate-item-ids-with-different-text",
        edit("items", lambda f: pl.concat([f, f.head(1).with_columns(title=pl.lit("tent XL"))])),
        SCHEMA,
        [
            "items.parquet",
            "'item_id'",
            "'SH-0000'",
            "different 'title': 'tent model 1' vs 'tent XL'",
            "give each its own id",
        ],
    ),
    Case(
        "duplicate-customers-in-users",
        edit("users", lambda f: pl.concat([f, f.tail(1)])),
        SCHEMA,
        ["users.parquet", "'user_id'", "'SH-u0011'", "Keep one row per customer"],
    ),
    # --- interactions naming what the shop does not know ---
    Case(
        "unknown-items",
        edit("interactions", lambda f: at(at(f, "item_id", 0, "GHOST-1"), "item_id", 5, "GHOST-2")),
        SCHEMA,
        ["interactions.parquet", "'item_id'", "'GHOST-1', 'GHOST-2'", "Add them to items.parquet"],
    ),
    # --- timestamps ---
    Case(
        "null-timestamp",
        edit("interactions", lambda f: at(f, T, 2, None)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", "None at data row 3", "fill them in"],
    ),
    Case(
        "negative-timestamp",
        edit("interactions", lambda f: at(f, T, 0, -86_400)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", "-86400 at data row 1", "before 1970"],
    ),
    Case(
        "millisecond-timestamps",
        edit("interactions", lambda f: f.with_columns(pl.col(T) * 1000)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", "in the future", "at data row 1", "divide by 1000"],
    ),
    Case(
        "timestamp-in-2090",
        edit("interactions", lambda f: at(f, T, 1, YEAR_2090)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", f"{YEAR_2090} at data row 2", "Fix the clock"],
    ),
    Case(
        "mixed-type-timestamps",
        edit(
            "interactions",
            lambda f: at(f.with_columns(pl.col(T).cast(pl.String)), T, 0, "2024-01-05 10:00:00"),
            "csv",
        ),
        SCHEMA,
        [
            "interactions.csv",
            "'timestamp'",
            "mixes unix seconds",
            "at data row 2",
            "'2024-01-05 10:00:00' at data row 1",
            "Use one form",
        ],
    ),
    Case(
        "day-first-text-timestamps",
        edit("interactions", lambda f: f.with_columns(pl.lit("05/01/2024").alias(T)), "csv"),
        SCHEMA,
        ["interactions.csv", "'timestamp'", "'05/01/2024' at data row 1", "ISO 8601"],
    ),
    Case(
        "fractional-timestamps",
        edit("interactions", lambda f: f.with_columns(pl.col(T) + 0.25)),
        SCHEMA,
        ["interactions.parquet", "'timestamp'", ".25 at data row 1", "whole seconds"],
    ),
    # --- the catalogue ---
    Case(
        "empty-catalogue",
        edit("items", lambda f: f.clear()),
        SCHEMA,
        ["items.parquet", "'item_id'", "catalogue is empty", "Add at least one product"],
    ),
    # --- numbers ---
    Case(
        "nan-price",
        edit("items", lambda f: at(f, "price", 3, math.nan)),
        SCHEMA,
        ["items.parquet", "'price'", "nan at data row 4", "must be finite and >= 0"],
    ),
    Case(
        "infinite-price",
        edit("items", lambda f: at(f, "price", 0, math.inf)),
        SCHEMA,
        ["items.parquet", "'price'", "inf at data row 1", "must be finite and >= 0"],
    ),
    Case(
        "negative-price",
        edit("items", lambda f: at(f, "price", 5, -3.0)),
        SCHEMA,
        ["items.parquet", "'price'", "-3.0 at data row 6", "fix or drop those rows"],
    ),
    Case(
        "negative-quantity",
        edit(
            "interactions",
            lambda f: f.drop("weight").with_columns(quantity=pl.int_range(pl.len()) - 1),
        ),
        SCHEMA,
        ["interactions.parquet", "'quantity'", "-1.0 at data row 1", "Quantities must be finite"],
    ),
    Case(
        "nan-weight",
        edit("interactions", lambda f: at(f, "weight", 4, math.nan)),
        SCHEMA,
        ["interactions.parquet", "'weight'", "nan at data row 5", "Weights must be finite"],
    ),
    # --- text ---
    Case(
        "latin-1-csv",
        as_csv("items", "item_id,title\nSH-0000,caf\u00e9 cr\u00e8me\n".encode("latin-1")),
        SCHEMA,
        ["items.csv", "could not be read as a CSV file", "utf-8", "UTF-8 text"],
    ),
    Case(
        "megabyte-description",
        edit("items", lambda f: at(f, "description", 2, "tent " * (MEGABYTE // 5))),
        SCHEMA,
        ["items.parquet", "'description'", "1048575 characters at data row 3", "drop those rows"],
    ),
    Case(
        "megabyte-customer-text",
        edit("users", lambda f: at(f, "text", 0, "x" * MEGABYTE)),
        SCHEMA,
        ["users.parquet", "'text'", f"{MEGABYTE} characters at data row 1", "longer than"],
    ),
    Case(
        "megabyte-item-id",
        edit("items", lambda f: at(f, "item_id", 0, "A" * MEGABYTE)),
        SCHEMA,
        [
            "items.parquet",
            "'item_id'",
            f"{MEGABYTE} characters at data row 1",
            "longer than 1000 characters",
        ],
    ),
    # --- CSV dialects ---
    Case(
        "semicolon-csv",
        as_csv("items", "item_id;title\nSH-0000;tent\n"),
        SCHEMA,
        ["items.csv", "'item_id;title'", "separated by ';'", "Save it comma-separated"],
    ),
    Case(
        "tab-separated-csv",
        as_csv("interactions", "user_id\titem_id\ttimestamp\nu1\tSH-0000\t1700000000\n"),
        SCHEMA,
        ["interactions.csv", "separated by tab", "Save it comma-separated"],
    ),
    # --- damaged Parquet ---
    Case(
        "truncated-parquet",
        raw_bytes("items", lambda b: b[: len(b) // 2]),
        SCHEMA,
        ["items.parquet", "could not be read as a Parquet file", "cut short"],
    ),
    Case(
        "parquet-missing-its-last-bytes",
        raw_bytes("interactions", lambda b: b[:-3]),
        SCHEMA,
        ["interactions.parquet", "could not be read as a Parquet file", "Export it again"],
    ),
    Case(
        "csv-named-parquet",
        raw_bytes("items", lambda b: b"item_id,title\nSH-0000,tent\n"),
        SCHEMA,
        ["items.parquet", "could not be read as a Parquet file", "Export it again"],
    ),
    Case(
        "empty-parquet-file",
        raw_bytes("users", lambda b: b""),
        SCHEMA,
        ["users.parquet", "could not be read as a Parquet file", "Export it again"],
    ),
    # --- model directories ---
    Case(
        "model-missing-ranker",
        damage_model(lambda m: (m / RANKER_FILE).unlink()),
        ARTIFACT,
        ["model", "missing 'ranker.txt'", "Save or train the model again"],
    ),
    Case(
        "model-missing-checksums",
        damage_model(lambda m: (m / CHECKSUM_FILE).unlink()),
        ARTIFACT,
        ["missing 'checksums.json'", "Save or train the model again"],
    ),
    Case(
        "model-missing-config",
        damage_model(lambda m: (m / CONFIG_FILE).unlink()),
        ARTIFACT,
        ["missing 'config.json'", "Save or train the model again"],
    ),
    Case(
        "model-directory-empty",
        damage_model(lambda m: [p.unlink() for p in m.iterdir()]),
        ARTIFACT,
        ["model directory is missing", "Save or train the model again"],
    ),
    Case(
        "model-directory-absent",
        damage_model(shutil.rmtree),
        ARTIFACT,
        ["model: no model directory here", "Pass the directory written by"],
    ),
    Case(
        "model-from-another-encoder",
        other_encoder,
        ARTIFACT,
        ["trained with encoder 'hashing-32'", "'hashing-64'", "Use the same encoder"],
    ),
    Case(
        "model-config-edited",
        damage_model(
            lambda m: (m / CONFIG_FILE).write_text(
                (m / CONFIG_FILE).read_text().replace('"broad"', '"adapted"', 1)
            )
        ),
        ARTIFACT,
        ["config.json", "checksum does not match checksums.json", "save the model again"],
    ),
    Case(
        "model-ranker-truncated",
        damage_model(lambda m: (m / RANKER_FILE).write_bytes((m / RANKER_FILE).read_bytes()[:500])),
        ARTIFACT,
        ["ranker.txt", "checksum does not match", "Restore it"],
    ),
    Case(
        "model-config-other-format-version",
        damage_model(rewrite_config(lambda c: c.update(format_version=2))),
        ARTIFACT,
        ["config.json", "format_version 2", "Train the model again"],
    ),
    Case(
        "model-config-unknown-field",
        damage_model(rewrite_config(lambda c: c.update(__reduce__="os.system"))),
        ARTIFACT,
        ["config.json", "'__reduce__'", "save the model again"],
    ),
    Case(
        "model-config-not-json",
        damage_model(rewrite_config(lambda c: "{'kind': 'broad'}")),
        ARTIFACT,
        ["config.json", "not valid JSON", "save the model again"],
    ),
    Case(
        "model-ranker-not-lightgbm",
        damage_model(replace_ranker(b"\x80\x04\x95 a pickle, not a LightGBM model")),
        ARTIFACT,
        ["ranker.txt", "not a LightGBM model", "save the model again"],
    ),
]


def check_message(message: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert len(message) < 600, "one or two sentences, not a dump of the data"


def test_there_are_at_least_thirty_distinct_cases():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_one_clear_error_and_writes_nothing(case: Case, workspace: Workspace):
    retailer = case.build(workspace) or workspace.retailer
    model_before = digest(workspace.model) if workspace.model.exists() else None

    with pytest.raises(Exception) as raised:  # the exact type is checked below
        run_pipeline(retailer, workspace.model, workspace)

    assert type(raised.value) is case.error, raised.value
    check_message(str(raised.value), case.fragments)
    assert_nothing_written(workspace)
    if model_before is not None:
        assert digest(workspace.model) == model_before  # the input model is never touched


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_console_script_exits_2_with_the_same_one_line_message(
    case: Case, workspace: Workspace, capsys
):
    retailer = case.build(workspace) or workspace.retailer

    assert run_cli(retailer, workspace.model, workspace) == 2

    err = capsys.readouterr().err
    err = one_error_line(err)
    assert "Traceback" not in err
    check_message(" ".join(err.split()), [" ".join(f.split()) for f in case.fragments])
    assert_nothing_written(workspace)


def test_the_valid_folder_goes_through_and_writes_everything(workspace: Workspace):
    """The control: without a break, the same pipeline writes a model, an export and a cache."""
    path = run_pipeline(workspace.retailer, workspace.model, workspace)
    assert pl.read_parquet(path).height > 0
    assert (workspace.models / "shop" / CONFIG_FILE).is_file()
    assert list(workspace.cache.rglob("shard-*.npz"))
    with pytest.raises(AssertionError, match="export file was written"):
        assert_nothing_written(workspace)


# ----------------------------------------------------------------------------------------------
# Unusual but valid input: accepted, and served without a crash


def test_one_customer_loads_adapts_by_falling_back_and_is_served(workspace: Workspace):
    write_shop(make_shop("solo", seed=3, n_users=1), workspace.root / "solo")
    path = run_pipeline(workspace.root / "solo", workspace.model, workspace)
    recs = pl.read_parquet(path)
    assert recs["user_id"].unique().to_list() == ["SO-u0000"]
    model = RecModel.load(workspace.models / "solo")
    assert model.guard is not None and model.guard.decision == "broad"
    assert "too little data" in model.guard.reason


def test_a_shop_where_no_customer_came_back_adapts_by_falling_back_and_is_served(
    workspace: Workspace,
):
    """A new shop where every customer has one interaction: the broad model serves it, and the
    guard says why, with a valid report of zero validation customers."""
    interactions = pl.read_parquet(workspace.retailer / "interactions.parquet")
    once = one_interaction_each(interactions)
    assert once["user_id"].n_unique() == once.height > 1
    once.write_parquet(workspace.retailer / "interactions.parquet")

    path = run_pipeline(workspace.retailer, workspace.model, workspace)

    recs = pl.read_parquet(path)
    assert set(recs["user_id"]) == set(once["user_id"])
    model = RecModel.load(workspace.models / "shop")
    broad = RecModel.load(workspace.model)
    assert model.kind == "broad" and model.model_version == broad.model_version
    guard = model.guard
    assert guard is not None and guard.decision == "broad" and guard.validation_customers == 0
    assert "no customer has two or more interactions yet" in guard.reason
    assert guard.ndcg == guard.recall == guard.stderr == {}
    assert guard.reason in guard.table()
    # The console script adapts it too (exit 0) and prints the same reason.
    code = main(
        [
            "adapt",
            "--base",
            str(workspace.model),
            "--retailer",
            str(workspace.retailer),
            "--out",
            str(workspace.root / "cli-model"),
            "--encoder",
            ENCODER,
            "--cache-dir",
            str(workspace.cache),
        ]
    )
    assert code == 0
    assert RecModel.load(workspace.root / "cli-model").guard == guard


def test_one_item_loads_adapts_by_falling_back_and_is_served(workspace: Workspace):
    folder = workspace.root / "single"
    folder.mkdir()
    pl.DataFrame({"item_id": ["only"], "title": ["the one product"]}).write_parquet(
        folder / "items.parquet"
    )
    pl.DataFrame(
        {"user_id": ["a", "a", "b", "b"], "item_id": ["only"] * 4, "timestamp": [1, 2, 3, 4]}
    ).write_parquet(folder / "interactions.parquet")
    data = rt.RetailerData.load(folder)
    assert (data.n_items, data.n_users) == (1, 2)
    path = run_pipeline(folder, workspace.model, workspace)
    assert pl.read_parquet(path).height == 0  # everyone already bought the only product


def test_whitespace_and_emoji_only_text_warns_or_passes_and_never_breaks_encoding(
    workspace: Workspace,
):
    folder = workspace.root / "odd_text"
    folder.mkdir()
    items = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["\U0001f3d5\ufe0f\U0001f525", "   ", "\t\n\u3000", "camp stove"],
            "description": ["\u2728" * 50, None, " ", "\U0001f525 hot"],
        }
    )
    items.write_parquet(folder / "items.parquet")
    pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "item_id": ["a", "b", "c", "d", "d"],
            "timestamp": [1, 2, 3, 4, 5],
        }
    ).write_parquet(folder / "interactions.parquet")
    pl.DataFrame({"user_id": ["u1", "u4"], "text": ["\U0001f600\U0001f600", " \n "]}).write_parquet(
        folder / "users.parquet"
    )
    with pytest.warns(DataQualityWarning, match=r"items\.parquet: column 'title' has 2 null or"):
        path = run_pipeline(folder, workspace.model, workspace)
    recs = pl.read_parquet(path)
    assert set(recs["user_id"]) == {"u1", "u2", "u3", "u4"}
    assert recs["score"].is_finite().all()
    # with real vectors for emoji (a sentence-transformer gives them), nothing is NaN either
    encoder = HashingEncoder(64)
    assert np.isfinite(encoder.encode(items["title"].to_list())).all()


def test_customers_without_text_and_text_without_interactions_are_both_valid(
    workspace: Workspace,
):
    """Interactions may name customers that users.parquet does not (it only holds those with
    text), and users.parquet may name customers with no interactions yet (they get the text
    path). Neither is an "unknown user" error."""
    users = pl.read_parquet(workspace.retailer / "users.parquet")
    users.head(3).vstack(
        pl.DataFrame({"user_id": ["newcomer"], "text": ["I love coffee"]})
    ).write_parquet(workspace.retailer / "users.parquet")
    path = run_pipeline(workspace.retailer, workspace.model, workspace)
    recs = pl.read_parquet(path)
    assert recs.filter(pl.col("user_id") == "newcomer")["source"].unique().to_list() == ["text"]
    assert recs.filter(pl.col("user_id") == "SH-u0011")["source"].unique().to_list() == ["ranker"]


# ----------------------------------------------------------------------------------------------
# Loaders under generated frames: valid ones load, everything else is a RecTransferError


ID = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=5)
ANY_TEXT = st.text(max_size=6)  # any unicode, blank, whitespace-only and emoji included


def _values(kind: str, n: int) -> st.SearchStrategy[pl.Series]:
    """A column of ``n`` values of one kind, with some nulls."""
    elements: dict[str, st.SearchStrategy[object]] = {
        "int": st.integers(-(2**63), 2**63 - 1),
        "small_int": st.integers(-5, 5),
        "float": st.floats(allow_nan=True, allow_infinity=True),
        "text": ANY_TEXT,
        "id_text": ID,
        "bool": st.booleans(),
        "datetime": st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2300, 1, 1)),
        "date": st.dates(dt.date(1900, 1, 1), dt.date(2300, 1, 1)),
        "binary": st.binary(max_size=4),
        "null": st.none(),
    }
    dtypes = {"int": pl.Int64, "small_int": pl.Int64, "binary": pl.Binary, "null": pl.Null}
    return st.lists(st.none() | elements[kind], min_size=n, max_size=n).map(
        lambda values: pl.Series(values, dtype=dtypes.get(kind), strict=False)
    )


KINDS = [
    "int",
    "small_int",
    "float",
    "text",
    "id_text",
    "bool",
    "datetime",
    "date",
    "binary",
    "null",
]
COLUMNS = {
    "items": [*ITEMS_SCHEMA, "colour"],
    "interactions": [*INTERACTIONS_SCHEMA, "quantity", "rating"],
    "users": list(USERS_SCHEMA),
}


@st.composite
def messy_shop(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    """A plausible shop with a few columns swapped for values of a random kind, or dropped."""
    n_items = draw(st.integers(0, 4))
    item_ids = draw(st.lists(ID, min_size=n_items, max_size=n_items, unique=True))
    n_rows = draw(st.integers(0, 6))
    tables = {
        "items": pl.DataFrame(
            {
                "item_id": item_ids,
                "title": draw(st.lists(ANY_TEXT, min_size=n_items, max_size=n_items)),
                "price": draw(st.lists(st.floats(0, 100), min_size=n_items, max_size=n_items)),
            },
            schema={"item_id": pl.String, "title": pl.String, "price": pl.Float64},
        ),
        "interactions": pl.DataFrame(
            {
                "user_id": draw(st.lists(ID, min_size=n_rows, max_size=n_rows)),
                "item_id": draw(
                    st.lists(
                        st.sampled_from([*item_ids, "ghost"]), min_size=n_rows, max_size=n_rows
                    )
                ),
                "timestamp": draw(
                    st.lists(st.integers(0, 1_700_000_000), min_size=n_rows, max_size=n_rows)
                ),
            },
            schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64},
        ),
    }
    if draw(st.booleans()):
        n_users = draw(st.integers(0, 3))
        tables["users"] = pl.DataFrame(
            {
                "user_id": draw(st.lists(ID, min_size=n_users, max_size=n_users)),
                "text": draw(st.lists(ANY_TEXT, min_size=n_users, max_size=n_users)),
            },
            schema={"user_id": pl.String, "text": pl.String},
        )
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(sorted(tables)))
        column = draw(st.sampled_from(COLUMNS[table]))
        frame = tables[table]
        if draw(st.integers(0, 5)) == 0:
            tables[table] = frame.drop(column, strict=False)
        else:
            values = draw(_values(draw(st.sampled_from(KINDS)), frame.height))
            tables[table] = frame.with_columns(values.alias(column))
    return tables


def _check_outcome(load: Callable[[], rt.RetailerData]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # blank titles: accepted with a warning
        try:
            data = load()
        except rt.RecTransferError as err:
            assert str(err) and len(str(err)) < 1000
            return
    assert data.items.schema == ITEMS_SCHEMA and data.items.height > 0
    assert data.interactions.schema == INTERACTIONS_SCHEMA
    assert data.users is None or data.users.schema == USERS_SCHEMA
    assert set(data.interactions["item_id"]) <= set(data.items["item_id"])


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(messy_shop())
def test_from_frames_accepts_or_raises_a_rectransfer_error(tables: dict[str, pl.DataFrame]):
    _check_outcome(
        lambda: rt.RetailerData.from_frames(
            tables["items"], tables["interactions"], tables.get("users"), name="fuzz"
        )
    )


@FUZZ
@given(messy_shop(), st.sampled_from(["parquet", "csv"]))
def test_loading_files_accepts_or_raises_a_rectransfer_error(
    tmp_path_factory, tables: dict[str, pl.DataFrame], fmt: str
):
    folder = tmp_path_factory.mktemp("fuzz")
    for stem, frame in tables.items():
        if frame.width == 0:  # every column dropped: an empty file
            (folder / f"{stem}.{fmt}").write_bytes(b"")
        elif fmt == "csv" and not any(dtype == pl.Binary for dtype in frame.dtypes):
            frame.write_csv(folder / f"{stem}.csv")
        else:
            frame.write_parquet(folder / f"{stem}.parquet")
    _check_outcome(lambda: rt.RetailerData.load(folder))


def test_the_text_limit_is_generous_for_real_text():
    assert MAX_TEXT_CHARS >= 50_000  # a long product description is a few thousand characters
