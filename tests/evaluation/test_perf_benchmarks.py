"""Smoke tests of the performance benchmark commands on tiny sizes (figures are not checked)."""

import json

import polars as pl
import pytest

from rectransfer.cli import main
from rectransfer.evaluation.synthetic import make_retailer, write_retailer


def test_scale_generator_is_seeded_valid_and_sized():
    a = make_retailer(300, 400, seed=3)
    b = make_retailer(300, 400, seed=3)
    assert a.items.equals(b.items) and a.interactions.equals(b.interactions)
    assert not a.interactions.equals(make_retailer(300, 400, seed=4).interactions)
    assert a.items.height == 400
    assert a.interactions["user_id"].n_unique() == 300
    per_customer = a.interactions.height / 300
    assert 20 < per_customer < 30
    # the catalogue depends on its size and seed only (benchmarks embed it once)
    assert make_retailer(5, 400, seed=3).items.equals(a.items)
    # histories follow the planted chains: consecutive items are often of neighbouring kinds
    assert a.users is not None and 0.2 < a.users.height / 300 < 0.4
    assert (~a.items["in_stock"]).sum() > 0
    with pytest.raises(ValueError, match="at least"):
        make_retailer(0, 400)


def test_generated_retailer_round_trips_through_a_folder(tmp_path):
    from rectransfer.data.retailer import RetailerData

    shop = make_retailer(50, 100, seed=1)
    folder = write_retailer(shop, tmp_path / "shop")
    back = RetailerData.load(folder)
    assert back.interactions.height == shop.interactions.height
    assert not list(folder.glob(".*"))


@pytest.fixture(scope="module")
def model_dir(broad, tmp_path_factory):
    return str(broad.save(tmp_path_factory.mktemp("bench") / "broad"))


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (
            ["export", "--customers", "150,300", "--items", "400", "--k", "5", "--model"],
            {
                "customers",
                "items",
                "seconds",
                "peak_rss_gb",
                "limit_seconds",
                "limit_ratio",
                "fast_limit_seconds",
                "fast_limit_ratio",
            },
        ),
        (
            ["online", "--items", "400", "--customers", "100", "--requests", "12", "--model"],
            {"p50_ms", "p99_ms", "requests"},
        ),
        (
            ["adapt", "--interactions", "2000", "--items", "300", "--base"],
            {"interactions", "seconds"},
        ),
    ],
)
def test_bench_commands_write_their_json(tmp_path, model_dir, argv, keys):
    out = tmp_path / "bench.json"
    command = ["bench", *argv, model_dir, "--encoder", "hashing:64", "--out", str(out)]
    assert main(command) == 0
    result = json.loads(out.read_text())
    assert keys <= set(result)
    if argv[0] == "export":
        assert [run["customers"] for run in result["runs"]] == [150, 300]
        assert result["rows"] == 300 * 5
        assert result["fast_limit_seconds"] > 0 and result["limit_seconds"] > 0
    if argv[0] == "online":
        assert result["requests"] == 12 and result["p99_ms"] >= result["p50_ms"] > 0
    if argv[0] == "adapt":
        assert abs(result["interactions"] - 2000) < 300


def test_bench_export_from_files_without_the_limit(tmp_path, model_dir):
    out = tmp_path / "load.json"
    argv = ["bench", "export", "--customers", "200", "--items", "300", "--k", "4", "--from-files"]
    argv += ["--skip-limit", "--model", model_dir, "--encoder", "hashing:64", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == 200 * 4 and result["load_seconds"] > 0
    assert "generate_seconds" not in result
    assert result["limit_seconds"] is None and result["limit_ratio"] is None
    assert result["fast_limit_seconds"] is None and result["fast_limit_ratio"] is None
    assert 0 < result["peak_rss_gb_before_export"] <= result["peak_rss_gb"]


def test_bench_pretrain_reports_cold_and_warm_runs(tmp_path):
    sources = []
    for i in range(2):
        shop = make_retailer(120, 150, seed=10 + i, name=f"s{i}")
        sources.append(str(write_retailer(shop, tmp_path / f"s{i}")))
    out = tmp_path / "pretrain.json"
    argv = ["bench", "pretrain", "--sources", *sources, "--encoder", "hashing:32"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["seconds_cold"] > 0 and result["seconds_warm"] > 0
    assert result["sources"] == ["s0", "s1"]
    assert pl.DataFrame([result]).height == 1

    warm_cache = tmp_path / "warm"
    warm_cache.mkdir()
    (warm_cache / "vectors").write_text("")  # a cache holding anything cannot give a cold run
    argv += ["--cache-dir", str(warm_cache), "--save-model", str(tmp_path / "kept")]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["seconds_cold"] is None and result["seconds_warm"] > 0
    assert json.loads((tmp_path / "kept" / "config.json").read_text())["kind"] == "broad"


def test_bench_report_rewrites_only_its_table(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "adapt.json").write_text(json.dumps({"interactions": 50_000, "seconds": 75.0}))
    (results / "online.json").write_text(
        json.dumps({"p50_ms": 12.0, "p99_ms": 40.0, "requests": 600, "items": 50_000})
    )
    doc = tmp_path / "BENCH.md"
    doc.write_text("# Benchmarks\n\nkept above\n")
    argv = ["bench", "report", "--results", str(results), "--doc", str(doc)]
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    first = doc.read_text()
    assert first.startswith("# Benchmarks\n\nkept above\n")
    assert "| adapt | 50,000 interactions, warm cache | 75.0 s | <= 60 s | **not met** |" in first
    assert "| online | p99 | 40.0 ms | <= 100 ms | met |" in first
    doc.write_text(first + "\nkept below\n")
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    second = doc.read_text()
    assert second.count("<!-- perf-table -->") == 1 and second.endswith("kept below\n")


def test_bench_report_shows_load_runs_and_pretraining_without_a_cold_run(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    load = {"customers": 1_000_000, "items": 20_000, "seconds": 1200.0, "peak_rss_gb": 6.5}
    load.update(peak_rss_gb_before_export=3.0, k=20, rows=20_000_000)
    (results / "load.json").write_text(json.dumps(load))
    pretrain = {"seconds_cold": None, "seconds_warm": 120.0, "peak_rss_gb": 3.0}
    (results / "pretrain.json").write_text(json.dumps(pretrain))
    doc = tmp_path / "BENCH.md"
    argv = ["bench", "report", "--results", str(results), "--doc", str(doc)]
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    text = doc.read_text()
    time_row = "| load | 1,000,000 x 20,000: time | 20.0 min | <= 8 min, k rows per customer |"
    assert f"{time_row} **not met** |" in text
    assert "(loading alone: 3.00 GB) | 6.50 GB | <= 4 GB | **not met** |" in text
    assert "| pretrain | cold cache | not measured in this run | <= 15 min | - |" in text
    assert "| pretrain | warm cache | 2.0 min | <= 3 min | met |" in text

    fast = {**load, "seconds": 420.0, "peak_rss_gb": 3.5}
    (results / "load.json").write_text(json.dumps(fast))
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    text = doc.read_text()
    assert "| 7.0 min | <= 8 min, k rows per customer | met |" in text
    assert "| 3.50 GB | <= 4 GB | met |" in text
    (results / "load.json").write_text(json.dumps({**fast, "rows": 19_999_980}))  # a short export
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    assert "| <= 8 min, k rows per customer | **not met** |" in doc.read_text()
