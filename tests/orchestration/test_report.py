"""The flows' markdown report: a valid shop that exports nothing useful is flagged, not hidden."""

from __future__ import annotations

import polars as pl

import rectransfer as rt
from rectransfer.orchestration.report import markdown_report, stock_warning
from rectransfer.orchestration.tasks import _ready, plan_task
from tests.conftest import make_shop


def _sold_out(shop: rt.RetailerData) -> rt.RetailerData:
    items = shop.items.with_columns(pl.lit(False).alias("in_stock"))
    return rt.RetailerData.from_frames(items, shop.interactions, shop.users, name=shop.name)


def test_a_shop_with_nothing_in_stock_gets_a_warning_row_in_the_report(broad) -> None:
    shop = make_shop("closed", seed=4, n_users=12)
    sold_out = _sold_out(shop)

    plan = plan_task.fn(_ready(broad, sold_out, None), chunk_size=1_000)
    fine = plan_task.fn(_ready(broad, shop, None), chunk_size=1_000)
    report = markdown_report("Nightly recommendations", [fine.outcome, plan.outcome])

    assert rt.recommend(broad, sold_out, k=3).height == 0  # what the export then holds
    assert plan.outcome.status == "ok" and fine.outcome.warning is None
    assert plan.outcome.warning is not None
    assert "no item is in stock (in_stock is false for all 48 items)" in plan.outcome.warning
    assert "2 of 2 retailers succeeded. 1 with a warning (see below)." in report
    rows = [line for line in report.splitlines() if line.startswith("| closed | no item")]
    assert len(rows) == 1 and plan.outcome.warning in rows[0]


def test_one_item_in_stock_is_no_warning() -> None:
    shop = make_shop("open", seed=4, n_users=12)
    first = shop.items["item_id"][0]
    items = shop.items.with_columns(in_stock=pl.col("item_id") == first)
    one_left = rt.RetailerData.from_frames(items, shop.interactions, name="open")
    assert stock_warning(one_left) is None
    assert stock_warning(_sold_out(shop)) is not None


def test_the_report_has_a_column_for_every_candidate_and_marks_what_ships():
    from rectransfer.model.config import GuardReport
    from rectransfer.orchestration.report import RetailerOutcome, markdown_report

    figures = {"popularity": 0.01, "local": 0.2, "broad": 0.25, "adapted": 0.26, "blend": 0.3}
    guard = GuardReport(
        validation_customers=50,
        ndcg=figures,
        recall=figures,
        stderr=dict.fromkeys(figures, 0.01),
        decision="blend",
        reason="blend beats the others",
    )
    first_run = "first run for this retailer: no adapted model yet"
    outcomes = [
        RetailerOutcome(retailer="a", status="ok", adapted=True, reason=first_run, guard=guard),
        RetailerOutcome(retailer="b", status="failed", reason="SchemaError: items: bad"),
    ]
    text = markdown_report("Nightly", outcomes)
    header = next(line for line in text.splitlines() if line.startswith("| retailer"))
    assert header.split(" | ")[2:7] == ["popularity", "local-only", "broad", "adapted", "blend"]
    row = next(line for line in text.splitlines() if line.startswith("| a |"))
    assert "0.3000 *" in row and row.count("*") == 1 and "| blend |" in row
    adapted, failed = text.split("## Adapted in this run")[1].split("## Failed")
    assert first_run in adapted and "SchemaError" not in adapted  # a first run is no failure
    assert "SchemaError: items: bad" in failed and first_run not in failed


def test_a_missing_model_reads_as_a_first_run(tmp_path, broad):
    from rectransfer.orchestration.staleness import adaptation_reason

    reason = adaptation_reason(tmp_path / "no-model-yet", broad, max_age_days=7)
    assert reason == "first run for this retailer: no adapted model yet"
