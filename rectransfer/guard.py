"""The negative-transfer guard: ship the adapted model only when validation says it is better.

On the retailer's own validation split (each customer's last item, never used in training) the
guard compares the broad model as it is, the adapted model and a model of the same kind trained on
the retailer alone, with popularity alongside for scale. The adapted model ships only if it is
strictly ahead of both alternatives; otherwise the better alternative ships and the report says why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Choice = Literal["adapted", "broad", "local"]
CANDIDATES: tuple[Choice, ...] = ("adapted", "broad", "local")
MIN_VALIDATION_CUSTOMERS = 20


class GuardReport(BaseModel):
    """What the guard measured on validation and what it decided."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "ndcg@10"
    validation_customers: int
    ndcg: dict[str, float]  # popularity, broad, local, adapted
    recall: dict[str, float]
    stderr: dict[str, float]  # standard error of each NDCG over customers
    decision: Choice
    reason: str

    def table(self) -> str:
        """A small plain-text table of the figures, the shipped model marked with '*'."""
        lines = [f"{'model':<12}{'NDCG@10':>10}{'Recall@10':>11}{'+/- se':>9}"]
        for name in ("popularity", "local", "broad", "adapted"):
            if name not in self.ndcg:
                continue
            mark = " *" if name == self.decision else ""
            lines.append(
                f"{name:<12}{self.ndcg[name]:>10.4f}{self.recall[name]:>11.4f}"
                f"{self.stderr.get(name, float('nan')):>9.4f}{mark}"
            )
        lines.append(f"decision: {self.decision} ({self.reason})")
        return "\n".join(lines)


def decide(ndcg: dict[str, float]) -> tuple[Choice, str]:
    """Pick what ships from validation NDCG of ``adapted``, ``broad`` and ``local``.

    Examples
    --------
    >>> decide({"adapted": 0.12, "broad": 0.10, "local": 0.08})[0]
    'adapted'
    >>> decide({"adapted": 0.09, "broad": 0.10, "local": 0.08})[0]
    'broad'
    """
    adapted, broad, local = ndcg["adapted"], ndcg["broad"], ndcg["local"]
    if adapted > broad and adapted > local:
        return "adapted", (
            f"adapted {adapted:.4f} beats broad {broad:.4f} and local-only {local:.4f}"
        )
    fallback: Choice = "broad" if broad >= local else "local"
    return fallback, (
        f"negative transfer: adapted {adapted:.4f} is not above "
        f"{'broad' if fallback == 'broad' else 'local-only'} {ndcg[fallback]:.4f}; "
        f"shipping {fallback}"
    )
