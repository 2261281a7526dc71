import datetime as dt

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.serving.export import PART_FILE, partition_path
from tests.conftest import make_shop


@pytest.fixture(scope="module")
def recs(broad):
    return broad.recommend(make_shop("exp", seed=4, n_users=20), k=3)


def test_written_partition_has_the_schema_and_rows(recs, tmp_path):
    path = rt.write_recommendations(
        recs, tmp_path, retailer="exp", run_date="2026-11-23", model_version="broad-abc"
    )
    assert path == tmp_path / "retailer=exp" / "run_date=2026-11-23" / PART_FILE
    back = pl.read_parquet(path)
    assert back.columns == [
        "retailer",
        "run_date",
        "user_id",
        "item_id",
        "rank",
        "score",
        "source",
        "model_version",
    ]
    assert back.height == recs.height
    assert back["rank"].dtype == pl.Int32
    assert back["retailer"].unique().to_list() == ["exp"]
    assert back["model_version"].unique().to_list() == ["broad-abc"]
    assert back.select(recs.columns).equals(recs)
    # hive-style readers see the partition columns too
    scanned = pl.scan_parquet(tmp_path / "**" / "*.parquet", hive_partitioning=True).collect()
    assert scanned.height == recs.height


def test_rerun_replaces_the_partition(recs, tmp_path):
    for _ in range(2):
        rt.write_recommendations(
            recs, tmp_path, retailer="exp", run_date=dt.date(2026, 1, 2), model_version="v"
        )
    folder = partition_path(tmp_path, "exp", dt.date(2026, 1, 2))
    assert [p.name for p in folder.iterdir()] == [PART_FILE]
    assert pl.read_parquet(folder / PART_FILE).height == recs.height


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(
    recs, tmp_path, monkeypatch
):
    path = rt.write_recommendations(
        recs, tmp_path, retailer="exp", run_date="2026-01-02", model_version="old"
    )

    def broken(filename, *args, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr("fastparquet.write", broken)
    with pytest.raises(OSError, match="disk full"):
        rt.write_recommendations(
            recs, tmp_path, retailer="exp", run_date="2026-01-02", model_version="new"
        )
    assert [p.name for p in path.parent.iterdir()] == [PART_FILE]
    assert pl.read_parquet(path)["model_version"].unique().to_list() == ["old"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retailer": "../escape", "run_date": "2026-01-01"}, "cannot name a partition"),
        ({"retailer": "ok", "run_date": "23/11/2026"}, "YYYY-MM-DD"),
    ],
)
def test_bad_export_options(recs, tmp_path, kwargs, message):
    with pytest.raises(rt.ConfigError, match=message):
        rt.write_recommendations(recs, tmp_path, model_version="v", **kwargs)


@pytest.mark.parametrize(
    "name",
    ["shop\n", "x" * 129, "x" * 300, "", "-shop", "a/b", "shop\x00", "caf\u00e9", 7],
    ids=[
        "newline",
        "129-chars",
        "300-chars",
        "empty",
        "dash-first",
        "slash",
        "nul",
        "accent",
        "int",
    ],
)
def test_a_name_that_cannot_name_a_partition_is_refused_before_anything_is_written(
    recs, tmp_path, name
):
    def never_scored():
        raise AssertionError("the chunks were consumed before the name was checked")
        yield recs  # pragma: no cover

    with pytest.raises(
        rt.ConfigError, match=r"cannot name a partition folder; use 1 to 128"
    ) as err:
        rt.write_recommendation_chunks(
            never_scored(), tmp_path, retailer=name, run_date="2026-01-01", model_version="v"
        )
    assert "\n" not in str(err.value)  # one line, the bad name shown by its repr
    assert list(tmp_path.iterdir()) == []


def test_the_longest_name_allowed_names_a_partition(recs, tmp_path):
    name = "s" * 128
    path = rt.write_recommendations(
        recs, tmp_path, retailer=name, run_date="2026-01-01", model_version="v"
    )
    assert path.parent.parent.name == f"retailer={name}"
    assert pl.read_parquet(path)["retailer"].unique().to_list() == [name]


def test_chunked_export_writes_the_same_rows_as_one_frame(broad, tmp_path):
    from polars.testing import assert_frame_equal

    shop = make_shop("chunky", seed=8, n_users=40, text_only_users=2)
    whole = rt.recommend(broad, shop, k=5)
    chunks = list(rt.iter_recommendations(broad, shop, k=5, chunk_customers=7))
    assert len(chunks) == -(-whole["user_id"].n_unique() // 7)
    path = rt.write_recommendation_chunks(
        iter(chunks), tmp_path, retailer="chunky", run_date="2026-11-01", model_version="m-1"
    )
    back = pl.read_parquet(path)
    assert_frame_equal(back.select(whole.columns), whole, check_exact=False, rtol=1e-5)
    assert back["retailer"].unique().to_list() == ["chunky"]


def test_a_failing_chunk_stream_keeps_the_previous_partition(broad, tmp_path):
    shop = make_shop("chunky", seed=8, n_users=40)
    first = rt.write_recommendation_chunks(
        rt.iter_recommendations(broad, shop, k=3),
        tmp_path,
        retailer="chunky",
        run_date="2026-11-01",
        model_version="m-1",
    )
    before = first.read_bytes()

    def broken():
        yield from rt.iter_recommendations(broad, shop, k=3, chunk_customers=5)
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        rt.write_recommendation_chunks(
            broken(), tmp_path, retailer="chunky", run_date="2026-11-01", model_version="m-2"
        )
    assert first.read_bytes() == before
    assert not [p for p in (tmp_path / ".staging").iterdir()]
    with pytest.raises(rt.ConfigError, match="chunk_customers"):
        next(rt.iter_recommendations(broad, shop, chunk_customers=0))
