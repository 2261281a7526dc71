"""The source-count curve: zero-shot transfer against the number of sources pretrained on."""

import json

import pytest

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.evaluation.benchmark import run_benchmark
from rectransfer.evaluation.source_curve import curve_markdown, run_source_curve
from tests.conftest import SAMPLE_DATA

SOURCES = sorted((SAMPLE_DATA / "sources").iterdir())
TARGET = SAMPLE_DATA / "targets" / "trailhead_market"
OPTIONS = {"max_customers_per_retailer": 200, "virtual_shops": ()}
# the small curve every test here runs or resumes (orders vary)
SMALL = dict(counts=(1, 4), fractions=(1.0, 0.5), seeds=2, pretrain_options=OPTIONS, progress=False)


@pytest.fixture(scope="module")
def curve(encoder):
    points = []
    doc = run_source_curve(
        SOURCES,
        [TARGET],
        orders=2,
        encoder=encoder,
        on_point=lambda d: points.append(len(d["points"])),
        **SMALL,
    )
    doc["_calls"] = points
    return doc


def test_each_source_set_is_the_first_n_of_an_order_and_pretrained_once(curve):
    expected = {tuple(sorted(order[:n])) for order in curve["orders"] for n in (1, 4)}
    got = [tuple(p["sources"]) for p in curve["points"]]
    assert sorted(got) == sorted(expected)  # every set once: all four sources are one set
    assert len(got) == len(set(got)) and len(got) < 2 * 2
    assert curve["_calls"] == list(range(1, len(got) + 1))
    for point in curve["points"]:
        assert len(point["sources"]) == point["count"] and point["rounds"] >= 1
        figures = point["targets"]["trailhead_market"]
        assert figures["1"]["n"] == 1 and figures["0.5"]["n"] == 2
        assert 0 < figures["1"]["mean"] <= 1
    json.dumps({k: v for k, v in curve.items() if k != "_calls"})


def test_a_point_is_the_benchmarks_broad_row_of_a_model_pretrained_on_its_sources(curve, encoder):
    point = next(p for p in curve["points"] if p["count"] == 1)
    broad = rt.pretrain(
        [s for s in SOURCES if s.name in point["sources"]], encoder=encoder, **OPTIONS
    )
    report = run_benchmark(
        broad,
        rt.RetailerData.load(TARGET),
        fractions=(1.0,),
        progress=False,
        implicit_references=False,
        rows=["broad"],
    )
    full = next(r for r in report["results"] if "slice" not in r and r["model"] == "broad")
    assert point["targets"]["trailhead_market"]["1"]["mean"] == pytest.approx(full["ndcg@10"])


def test_the_table_has_a_line_per_count_and_a_column_per_target_and_fraction(curve):
    table = curve_markdown(curve)
    lines = table.splitlines()
    assert "trailhead_market f = 1" in lines[0] and "trailhead_market f = 0.5" in lines[0]
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1", "4"]


def test_a_target_among_the_sources_and_a_count_too_large_are_refused(encoder):
    with pytest.raises(rt.ConfigError, match="are also sources"):
        run_source_curve(SOURCES, [SOURCES[0]], counts=(1,), encoder=encoder)
    with pytest.raises(rt.ConfigError, match=r"counts must lie in 1\.\.4"):
        run_source_curve(SOURCES, [TARGET], counts=(5,), encoder=encoder)


def test_cli_writes_the_json_and_the_table(tmp_path, capsys):
    out, table = tmp_path / "curve.json", tmp_path / "curve.md"
    argv = ["source-curve", "--sources", str(SOURCES[0]), "--targets", str(TARGET)]
    argv += ["--counts", "1", "--fractions", "1.0", "--max-customers", "200"]
    argv += ["--virtual-shops", "none", "--encoder", "hashing", "--out", str(out)]
    argv += ["--table", str(table), "--quiet"]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert [p["sources"] for p in doc["points"]] == [[SOURCES[0].name]]
    assert table.read_text().startswith("| sources | rounds |")
    assert "results ->" in capsys.readouterr().out


def test_resume_keeps_the_points_and_more_orders_extend_the_curve(curve, encoder):
    earlier = json.loads(json.dumps({k: v for k, v in curve.items() if k != "_calls"}))
    pretrained = []
    doc = run_source_curve(
        SOURCES,
        [TARGET],
        orders=3,
        encoder=encoder,
        resume=earlier,
        on_point=lambda d: pretrained.append(d["points"][-1]["sources"]),
        **SMALL,
    )
    assert doc["orders"][:2] == earlier["orders"]  # the first orders of a seed do not change
    assert doc["points"][: len(earlier["points"])] == earlier["points"]
    kept = {tuple(p["sources"]) for p in earlier["points"]}
    assert all(tuple(sources) not in kept for sources in pretrained)
    with pytest.raises(rt.ConfigError, match="resume: the earlier run had seeds"):
        run_source_curve(
            SOURCES, [TARGET], encoder=encoder, resume=earlier, **{**SMALL, "seeds": 1}
        )
