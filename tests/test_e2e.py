"""End to end with the real packaged all-MiniLM-L6-v2 on the bundled sample data."""

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.demo import bundled_sample_data, run_demo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    encoder = rt.load_encoder("default", cache_dir=workdir / "cache")
    result = run_demo(workdir, encoder=encoder, run_date="2026-11-23", echo=False)
    return workdir, encoder, result


def test_demo_transfers_beyond_popularity_and_target_only(demo):
    _, _, result = demo
    guard = result.guards["trailhead_market"]
    assert guard.ndcg["adapted"] > guard.ndcg["popularity"]
    assert guard.ndcg["adapted"] > guard.ndcg["local"]
    assert guard.decision != "local"  # transfer pays on the small sample shop


def test_demo_export_has_the_schema(demo):
    _, _, result = demo
    frame = pl.read_parquet(result.exports["trailhead_market"], hive_partitioning=True)
    assert frame.columns == [
        "user_id",
        "item_id",
        "rank",
        "score",
        "source",
        "model_version",
        "retailer",  # the partition keys, from the path
        "run_date",
    ]
    assert frame.schema["run_date"] == pl.Date
    shop = rt.RetailerData.load(bundled_sample_data() / "targets" / "trailhead_market")
    customers = set(shop.interactions["user_id"].to_list()) | set(shop.users["user_id"].to_list())
    assert set(frame["user_id"].to_list()) == customers
    assert set(frame["item_id"].to_list()) <= set(shop.items["item_id"].to_list())
    assert frame.group_by("user_id").agg(pl.col("rank").max())["rank"].max() == 20


def test_saved_model_gives_identical_recommendations_with_the_real_encoder(demo):
    _, encoder, result = demo
    shop = rt.RetailerData.load(bundled_sample_data() / "targets" / "trailhead_market")
    loaded = rt.RecModel.load(result.adapted_dirs["trailhead_market"], encoder=encoder)
    exported = pl.read_parquet(result.exports["trailhead_market"])
    again = rt.recommend(loaded, shop, k=20)
    assert again.select("user_id", "item_id", "rank").equals(
        exported.select("user_id", "item_id", "rank")
    )
    assert (again["score"] - exported["score"]).abs().max() < 1e-9


def test_warm_cache_encodes_nothing_new(demo):
    _, encoder, _ = demo
    shop = rt.RetailerData.load(bundled_sample_data() / "targets" / "trailhead_market")
    from rectransfer.text.texts import item_texts

    encoder.encode(item_texts(shop.items))
    assert encoder.last_encoded == 0
