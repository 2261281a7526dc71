import datetime as dt
import os
import time

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.errors import ConfigError
from rectransfer.serving.export import PART_FILE, STAGING_FOLDER, partition_path, sweep_leftovers
from rectransfer.utils.atomic import owner_token
from tests.conftest import make_shop


@pytest.fixture(scope="module")
def recs(broad):
    return rt.recommend(broad, make_shop("exp", seed=4, n_users=20), k=3)


def test_written_partition_has_the_schema_and_rows(recs, tmp_path):
    path = rt.write_recommendations(
        recs, tmp_path, retailer="exp", run_date="2026-11-23", model_version="broad-abc"
    )
    assert path == tmp_path / "retailer=exp" / "run_date=2026-11-23" / PART_FILE
    back = pl.read_parquet(path, hive_partitioning=True)  # the keys come from the path
    assert back.columns == [
        "user_id",
        "item_id",
        "rank",
        "score",
        "source",
        "model_version",
        "retailer",  # the partition keys, from the path
        "run_date",
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
    assert pl.read_parquet(path, hive_partitioning=True)["retailer"].unique().to_list() == [name]


def test_chunked_export_writes_the_same_rows_as_one_frame(broad, tmp_path):
    from polars.testing import assert_frame_equal

    shop = make_shop("chunky", seed=8, n_users=40, text_only_users=2)
    whole = rt.recommend(broad, shop, k=5)
    chunks = list(rt.iter_recommendations(broad, shop, k=5, chunk_size=7))
    assert len(chunks) == -(-whole["user_id"].n_unique() // 7)
    rt.write_recommendation_chunks(
        iter(chunks), tmp_path, retailer="chunky", run_date="2026-11-01", model_version="m-1"
    )
    back = rt.read_recommendations(tmp_path, retailer="chunky", run_date="2026-11-01")
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
        yield from rt.iter_recommendations(broad, shop, k=3, chunk_size=5)
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        rt.write_recommendation_chunks(
            broken(), tmp_path, retailer="chunky", run_date="2026-11-01", model_version="m-2"
        )
    assert first.read_bytes() == before
    assert not [p for p in (tmp_path / ".staging").iterdir()]
    with pytest.raises(rt.ConfigError, match="chunk_size"):
        next(rt.iter_recommendations(broad, shop, chunk_size=0))


# --- links and sweeps: never through a link, only what rectransfer staged (issue 16) ---


def _age(path, hours=2.0):
    old = time.time() - hours * 3600
    os.utime(path, (old, old), follow_symlinks=False)


def test_a_symlinked_staging_folder_is_refused_and_its_target_untouched(recs, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "report.tmp"  # a *.tmp file of someone else's, old enough to sweep
    victim.write_text("keep")
    (elsewhere / "old-folder.tmp").mkdir()
    _age(victim), _age(elsewhere / "old-folder.tmp")
    root = tmp_path / "exports"
    root.mkdir()
    (root / STAGING_FOLDER).symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"\.staging is a symbolic link"):
        rt.write_recommendations(
            recs, root, retailer="exp", run_date="2026-01-02", model_version="v"
        )
    assert victim.read_text() == "keep" and (elsewhere / "old-folder.tmp").is_dir()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["old-folder.tmp", "report.tmp"]
    assert sweep_leftovers(root) == []  # the sweep on its own does not follow it either
    assert victim.exists()


@pytest.mark.parametrize("level", ["retailer", "run_date"])
def test_a_symlinked_partition_folder_is_refused(recs, tmp_path, level):
    root = tmp_path / "exports"
    partition = partition_path(root, "exp", dt.date(2026, 1, 2))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = partition.parent if level == "retailer" else partition
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        rt.write_recommendations(
            recs, root, retailer="exp", run_date="2026-01-02", model_version="v"
        )
    assert list(elsewhere.iterdir()) == []
    assert not (root / STAGING_FOLDER).exists()  # refused before anything was created


def test_the_sweep_removes_only_what_rectransfer_staged(recs, tmp_path):
    root = tmp_path / "exports"
    staging = root / STAGING_FOLDER
    staging.mkdir(parents=True)
    ours = staging / f"exp_2026-01-01_{owner_token()}.tmp"  # a killed writer's, long ago
    ours.write_bytes(b"PAR1 half")
    foreign = staging / "notes.tmp"  # not a name rectransfer stages
    foreign.write_text("keep")
    folder = staging / f"exp_2026-01-01_{owner_token()}.tmp"  # our name, but a folder
    folder.mkdir()
    (folder / "inside").write_text("keep")
    target = tmp_path / "target.txt"
    target.write_text("keep")
    link = staging / f"exp_2026-01-01_{owner_token()}.tmp"  # our name, but a link
    link.symlink_to(target)
    for path in (ours, foreign, folder, link):
        _age(path)
    rt.write_recommendations(recs, root, retailer="exp", run_date="2026-01-02", model_version="v")
    assert not ours.exists()
    assert foreign.read_text() == "keep" and (folder / "inside").read_text() == "keep"
    assert link.is_symlink() and target.read_text() == "keep"


def test_a_refused_stream_creates_nothing(broad, tmp_path):
    shop = make_shop("exp", seed=4, n_users=20)
    root = tmp_path / "exports"
    with pytest.raises(ConfigError, match="k must"):
        rt.write_recommendation_chunks(
            rt.iter_recommendations(broad, shop, k=0), root, retailer="exp", model_version="v"
        )
    assert not root.exists()  # not even an empty .staging


def test_model_save_leftovers_are_swept_only_by_their_own_names(broad, tmp_path):
    from rectransfer.utils.atomic import leftovers

    model = tmp_path / "model"
    ours = tmp_path / f".model.tmp-{owner_token()}"
    mine = tmp_path / ".model.tmp-my-notes"  # the user's, with a similar name
    for path in (ours, mine):
        path.mkdir()
        _age(path)
    assert leftovers(model) == [ours]
    broad.save(model)
    assert not ours.exists() and mine.is_dir()


def test_the_partition_keys_are_stored_once_and_read_as_a_string_and_a_date(recs, tmp_path):
    for day in ("2026-11-23", "2026-11-24"):
        rt.write_recommendations(
            recs, tmp_path, retailer="exp", run_date=day, model_version="broad-abc"
        )
    part = tmp_path / "retailer=exp" / "run_date=2026-11-23" / PART_FILE
    assert "run_date" not in pl.read_parquet(part).columns  # in the path only, typed by readers
    assert "retailer" not in pl.read_parquet(part).columns
    scanned = pl.scan_parquet(tmp_path / "**" / "*.parquet", hive_partitioning=True).collect()
    assert scanned.schema["run_date"] == pl.Date and scanned.schema["retailer"] == pl.String
    assert sorted(scanned["run_date"].unique().to_list()) == [
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 24),
    ]
    back = rt.read_recommendations(tmp_path, retailer="exp", run_date="2026-11-24")
    assert back.schema["run_date"] == pl.Date and back["run_date"][0] == dt.date(2026, 11, 24)


def test_strings_are_dictionary_encoded_and_every_column_has_statistics(recs, tmp_path):
    import fastparquet

    path = rt.write_recommendations(
        recs, tmp_path, retailer="exp", run_date="2026-11-23", model_version="broad-abc"
    )
    parquet = fastparquet.ParquetFile(str(path))
    stats = parquet.statistics
    for column in ("user_id", "item_id", "rank", "score", "source", "model_version"):
        assert stats["min"][column][0] is not None and stats["max"][column][0] is not None
    assert stats["min"]["item_id"][0] == min(recs["item_id"])
    chunks = {c.meta_data.path_in_schema[0]: c for c in parquet.row_groups[0].columns}
    for column in ("item_id", "source", "model_version"):
        encodings = chunks[column].meta_data.encodings
        assert fastparquet.parquet_thrift.Encoding.RLE_DICTIONARY in encodings or (
            fastparquet.parquet_thrift.Encoding.PLAIN_DICTIONARY in encodings
        )
    assert pl.read_parquet(path)["item_id"].dtype == pl.String  # read back as plain strings


@pytest.mark.parametrize("url", ["s3://bucket/exports", "gs://b/x", "file:///tmp/x"])
def test_an_object_store_url_is_refused_not_written_as_a_local_folder(
    recs, tmp_path, url, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rt.ConfigError, match="is a URL"):
        rt.write_recommendations(
            recs, url, retailer="exp", run_date="2026-11-23", model_version="v"
        )
    assert list(tmp_path.iterdir()) == []
