"""Markdown reports of flow runs: each retailer's guard figures, decision and export."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def markdown_report(title: str, outcomes: list[RetailerOutcome]) -> str:
    """A table with one line per retailer: guard NDCG@10 figures, decision, export, errors."""
    failed = [o for o in outcomes if o.status != "ok"]
    lines = [
        f"# {title}",
        "",
        f"{len(outcomes) - len(failed)} of {len(outcomes)} retailers succeeded.",
        "",
        "| retailer | status | popularity | local-only | broad | adapted | ships | model | rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        ndcg = o.guard.ndcg if o.guard else {}
        lines.append(
            f"| {o.retailer} | {o.status} | {_fmt(ndcg.get('popularity'))} | "
            f"{_fmt(ndcg.get('local'))} | {_fmt(ndcg.get('broad'))} | {_fmt(ndcg.get('adapted'))} "
            f"| {o.guard.decision if o.guard else ''} | {o.model_version or ''} | {o.rows} |"
        )
    notes = [f"- **{o.retailer}**: {o.reason}" for o in outcomes if o.reason]
    if notes:
        lines += ["", "Figures are NDCG@10 on each retailer's validation customers.", "", *notes]
    return "\n".join(lines)
