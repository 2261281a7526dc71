"""The negative-transfer guard: ship the adapted model only when validation says it is better.

On the retailer's own validation split (each customer's last item, never used in training) the
guard compares the broad model as it is, the adapted model, a model of the same kind trained on
the retailer alone, and the blend of the adapted and the local-only model (their scores summed),
with popularity alongside for scale (see :func:`decide` for the rule); the report keeps every
figure and the reason.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Choice = Literal["adapted", "broad", "local", "blend"]
CANDIDATES: tuple[Choice, ...] = ("adapted", "broad", "local", "blend")
# The models that carry what was learnt at other retailers; on a tie the simpler one ships.
TRANSFERRED: tuple[Choice, ...] = ("broad", "adapted", "blend")
MIN_VALIDATION_CUSTOMERS = 20


class GuardReport(BaseModel):
    """What the guard measured on validation and what it decided."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "ndcg@10"
    validation_customers: int
    ndcg: dict[str, float]  # popularity, broad, local, adapted, blend
    recall: dict[str, float]
    stderr: dict[str, float]  # standard error of each NDCG over customers
    decision: Choice
    reason: str

    def table(self) -> str:
        """A small plain-text table of the figures, the shipped model marked with '*'."""
        lines = [f"{'model':<12}{'NDCG@10':>10}{'Recall@10':>11}{'+/- se':>9}"]
        for name in ("popularity", "local", "broad", "adapted", "blend"):
            if name not in self.ndcg:
                continue
            mark = " *" if name == self.decision else ""
            lines.append(
                f"{name:<12}{self.ndcg[name]:>10.4f}{self.recall[name]:>11.4f}"
                f"{self.stderr.get(name, float('nan')):>9.4f}{mark}"
            )
        lines.append(f"decision: {self.decision} ({self.reason})")
        return "\n".join(lines)


def decide(gains: dict[str, np.ndarray]) -> tuple[Choice, str]:
    """Pick what ships from per-customer validation gains (NDCG@10) of the rankers.

    The transferred models (``adapted``, ``blend``: adapted plus local-only, ``broad``) are the
    prior: the one with the highest mean is the candidate (on a tie the simpler: ``broad``, then
    ``adapted``, then ``blend``). The local-only model ships only when it beats that candidate by
    more than one standard error of the paired difference; a smaller lead on a few hundred
    customers is noise, and the transferred models rest on far more data. ``blend`` may be
    absent.

    Examples
    --------
    >>> import numpy as np
    >>> ones = np.ones(100)
    >>> decide({"adapted": 0.3 * ones, "broad": 0.2 * ones, "local": 0.1 * ones})[0]
    'adapted'
    >>> decide({"adapted": 0.1 * ones, "broad": 0.2 * ones, "local": 0.1 * ones})[0]
    'broad'
    >>> decide({"adapted": 0.2 * ones, "broad": 0.1 * ones, "local": 0.2 * ones,
    ...         "blend": 0.25 * ones})[0]
    'blend'
    """
    mean = {name: float(np.mean(g)) for name, g in gains.items()}
    present = [name for name in TRANSFERRED if name in gains]
    transfer = max(present, key=lambda name: (mean[name], -present.index(name)))
    local = mean["local"]
    difference = gains["local"] - gains[transfer]
    margin = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0
    if local - mean[transfer] > margin:
        return "local", (
            f"negative transfer: local-only {local:.4f} beats {transfer} {mean[transfer]:.4f} "
            f"by more than one standard error ({margin:.4f}); shipping local"
        )
    rivals = [f"{_LABELS[n]} {mean[n]:.4f}" for n in present if n != transfer]
    if local > mean[transfer]:
        tail = f"; local-only {local:.4f} is within one standard error ({margin:.4f})"
    else:
        tail = ""
        rivals.append(f"local-only {local:.4f}")
    if transfer == "broad":
        return "broad", (
            f"negative transfer: broad {mean['broad']:.4f} is at least {', '.join(rivals)}"
            f"{tail}; shipping broad"
        )
    return transfer, f"{_LABELS[transfer]} {mean[transfer]:.4f} beats {', '.join(rivals)}{tail}"


_LABELS = {
    "adapted": "adapted",
    "blend": "blend (adapted + local-only)",
    "broad": "broad",
    "local": "local-only",
}
