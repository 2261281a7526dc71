"""Markdown reports of flow runs: each retailer's guard figures, decision and export."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.model.config import GuardReport


class RetailerOutcome(BaseModel):
    """What a flow did for one retailer."""

    model_config = ConfigDict(extra="forbid")

    retailer: str
    status: str  # "ok" or "failed"
    adapted: bool = False  # adapted in this run (False: an existing fresh model was reused)
    reason: str | None = None  # why it was (re)adapted, or the error when failed
    model_version: str | None = None
    guard: GuardReport | None = None
    export: str | None = None
    rows: int = 0
    warning: str | None = None  # valid data that made a poor export (e.g. nothing in stock)


def stock_warning(data: RetailerData) -> str | None:
    """What to tell the people who run the export when no item of ``data`` is in stock.

    Such data is valid (a shop closed for stocktaking), but every list is empty, and the empty
    partition becomes the latest one readers see: it must not pass as an ordinary night.

    Examples
    --------
    >>> stock_warning(shop) is None  # doctest: +SKIP
    True
    """
    in_stock = int(data.items[Columns.IN_STOCK].sum())
    if in_stock:
        return None
    return (
        f"no item is in stock (in_stock is false for all {data.n_items} items), so every list is "
        "empty and the partition written has no recommendations; as the latest partition it "
        "replaces the previous run's lists for readers. Check the catalogue export's in_stock "
        "column."
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


# The guard's figures in this order, then any others it reports; labels as in the guard's table.
_FIGURE_ORDER = ("popularity", "markov", "local", "broad", "adapted", "blend")
_LABELS = {"local": "local-only"}


def _figure_columns(outcomes: list[RetailerOutcome]) -> list[str]:
    """Every figure any retailer's guard reported, so every candidate has a column."""
    reported = {name for o in outcomes if o.guard for name in o.guard.ndcg}
    known = [name for name in _FIGURE_ORDER if name in reported]
    return known + sorted(reported - set(_FIGURE_ORDER))


def markdown_report(title: str, outcomes: list[RetailerOutcome]) -> str:
    """A table with one line per retailer: every guard figure (NDCG@10 on validation, the shipped
    one marked), what ships, the model and the rows; then what was adapted and why, failures and
    warnings.

    Examples
    --------
    >>> print(markdown_report("Nightly", [RetailerOutcome(retailer="a", status="ok", rows=3)]))
    # Nightly
    <BLANKLINE>
    1 of 1 retailers succeeded.
    <BLANKLINE>
    | retailer | status | ships | model | rows |
    |---|---|---|---|---|
    | a | ok |  |  | 3 |
    """
    failed = [o for o in outcomes if o.status != "ok"]
    n_warned = sum(1 for o in outcomes if o.warning)
    warned_note = f" {n_warned} with a warning (see below)." if n_warned else ""
    figures = _figure_columns(outcomes)
    header = ["retailer", "status", *(_LABELS.get(f, f) for f in figures), "ships", "model", "rows"]
    lines = [
        f"# {title}",
        "",
        f"{len(outcomes) - len(failed)} of {len(outcomes)} retailers succeeded.{warned_note}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for o in outcomes:
        ndcg = o.guard.ndcg if o.guard else {}
        shipped = o.guard.decision if o.guard else ""
        cells = [_fmt(ndcg.get(f)) + (" *" if f == shipped and f in ndcg else "") for f in figures]
        ships = _LABELS.get(shipped, shipped)
        row = [o.retailer, o.status, *cells, ships, o.model_version or "", str(o.rows)]
        lines.append("| " + " | ".join(row) + " |")
    if figures:
        lines += ["", "Figures are NDCG@10 on each retailer's validation customers; * ships."]
    adapted = [f"- **{o.retailer}**: {o.reason}" for o in outcomes if o.reason and o.status == "ok"]
    if adapted:
        lines += ["", "## Adapted in this run", "", *adapted]
    failures = [f"- **{o.retailer}**: {o.reason}" for o in failed]
    if failures:
        lines += ["", "## Failed", "", *failures]
    warned = [o for o in outcomes if o.warning]
    if warned:
        lines += ["", "## Warnings", "", "| retailer | warning |", "|---|---|"]
        lines += [f"| {o.retailer} | {o.warning} |" for o in warned]
    return "\n".join(lines)
