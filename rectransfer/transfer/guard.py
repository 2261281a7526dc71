"""The negative-transfer guard: every decision to ship or keep something learnt is made here.

* :func:`decide`: which ranker a retailer's adapted model ships (broad, adapted, blend,
  local-only, or, where adapt is asked to offer them, a rule: markov or popularity);
* :func:`keep_tuned`: whether adapt's per-retailer encoder step keeps the tuned encoder;
* :func:`lead_beyond_noise`: the one rule both use: a challenger wins only when it beats the
  incumbent by more than one standard error of the paired difference over the same customers.
* :func:`too_little_to_adapt`: a retailer with too few customers to fine-tune and validate on
  keeps the broad model as it is.

On the retailer's own validation split (each customer's last item, never used in training) the
guard compares the broad model as it is, the adapted model, a model of the same kind trained on
the retailer alone, and the blend of the adapted and the local-only model (their scores
summed); two rules that need no training, popularity and markov (last-item text similarity plus
transitions; :mod:`rectransfer.ranking.rules`), are measured alongside for scale and compete only
when ``adapt(..., ship_rules=True)`` asks. See :func:`decide` for the rule; the report keeps every
figure and the reason.
"""

from __future__ import annotations

import numpy as np

from rectransfer.model.config import CANDIDATES, Choice, GuardReport

__all__ = [
    "CANDIDATES",
    "GuardReport",
    "decide",
    "keep_tuned",
    "lead_beyond_noise",
    "too_little_to_adapt",
]

# The models that carry what was learnt at other retailers; on a tie the simpler one ships.
TRANSFERRED: tuple[Choice, ...] = ("broad", "adapted", "blend")
# What may replace them on a clear win: the ranker trained on the shop alone, then the rules.
CHALLENGERS: tuple[Choice, ...] = ("local", "markov", "popularity")
MIN_VALIDATION_CUSTOMERS = 20


def too_little_to_adapt(validation_customers: int, training_lists: int) -> str | None:
    """Why the broad model ships untouched when a retailer has too few customers to fine-tune and
    validate on (fewer than ``MIN_VALIDATION_CUSTOMERS`` of either); None when there are enough.

    A shop where no customer has come back yet (every customer has at most one interaction) has
    no validation customer at all: it is served by the broad model as it is, like a shop with a
    handful of returning customers, and adapting again once customers return can change that.

    Examples
    --------
    >>> too_little_to_adapt(500, 900) is None
    True
    >>> too_little_to_adapt(3, 900)
    'too little data to fine-tune and validate (3 validation customers, need 20); shipping broad'
    >>> too_little_to_adapt(0, 0)  # doctest: +ELLIPSIS
    'no customer has two or more interactions yet (0 validation customers, ...; shipping broad'
    """
    if validation_customers == 0:
        return (
            "no customer has two or more interactions yet (0 validation customers, need "
            f"{MIN_VALIDATION_CUSTOMERS}): nothing to fine-tune or validate on until customers "
            "come back; shipping broad"
        )
    if validation_customers < MIN_VALIDATION_CUSTOMERS or training_lists < MIN_VALIDATION_CUSTOMERS:
        return (
            f"too little data to fine-tune and validate ({validation_customers} validation "
            f"customers, need {MIN_VALIDATION_CUSTOMERS}); shipping broad"
        )
    return None


def decide(gains: dict[str, np.ndarray]) -> tuple[Choice, str]:
    """Pick what ships from per-customer validation gains (NDCG@10) of the rankers.

    The transferred models (``adapted``, ``blend``: adapted plus local-only, ``broad``) are the
    prior: the one with the highest mean is the candidate (on a tie the simpler: ``broad``, then
    ``adapted``, then ``blend``). A challenger learnt or set without transfer (``local``, and the
    rules ``markov`` and ``popularity`` where present) ships only when it beats that candidate by
    more than one standard error of the paired difference (of those that do, the one with the
    highest mean); a smaller lead on a few hundred customers is noise, and the transferred
    models rest on far more data. ``blend`` and the rules may be absent.

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
    >>> decide({"adapted": 0.2 * ones, "broad": 0.1 * ones, "local": 0.2 * ones,
    ...         "markov": 0.3 * ones})[0]
    'markov'
    """
    mean = {name: float(np.mean(g)) for name, g in gains.items()}
    present = [name for name in TRANSFERRED if name in gains]
    transfer = max(present, key=lambda name: (mean[name], -present.index(name)))
    margins = {
        name: lead_beyond_noise(gains[name], gains[transfer])
        for name in CHALLENGERS
        if name in gains
    }
    winners = [name for name, (wins, _) in margins.items() if wins]
    if winners:
        best = max(winners, key=lambda name: (mean[name], -winners.index(name)))
        return best, (
            f"negative transfer: {_LABELS[best]} {mean[best]:.4f} beats {transfer} "
            f"{mean[transfer]:.4f} by more than one standard error ({margins[best][1]:.4f}); "
            f"shipping {best}"
        )
    rivals = [f"{_LABELS[n]} {mean[n]:.4f}" for n in present if n != transfer]
    tails = []
    for name in margins:
        if mean[name] > mean[transfer]:
            tails.append(
                f"{_LABELS[name]} {mean[name]:.4f} is within one standard error "
                f"({margins[name][1]:.4f})"
            )
        else:
            rivals.append(f"{_LABELS[name]} {mean[name]:.4f}")
    tail = "".join(f"; {t}" for t in tails)
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
    "markov": "markov (last-item text + transitions)",
    "popularity": "popularity",
}


def paired_stderr(difference: np.ndarray) -> float:
    """Standard error of the mean of paired per-customer differences (0 for one customer)."""
    return float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0


def lead_beyond_noise(challenger: np.ndarray, incumbent: np.ndarray) -> tuple[bool, float]:
    """Whether ``challenger`` beats ``incumbent`` on the same customers by more than one standard
    error of their paired difference; returns the decision and that standard error.

    Examples
    --------
    >>> import numpy as np
    >>> lead_beyond_noise(np.array([0.5, 0.6, 0.6, 0.7]), np.array([0.1, 0.2, 0.3, 0.2]))[0]
    True
    >>> lead_beyond_noise(np.array([0.2, 0.2]), np.array([0.2, 0.2]))
    (False, 0.0)
    """
    margin = paired_stderr(challenger - incumbent)
    return bool(float(np.mean(challenger)) - float(np.mean(incumbent)) > margin), margin


def keep_tuned(base_gains: np.ndarray, tuned_gains: np.ndarray) -> tuple[bool, float | None]:
    """Keep the tuned encoder only if the same customers' validation gains (NDCG@10 of what the
    guard ships) rise by more than one standard error of the paired difference.

    Examples
    --------
    >>> import numpy as np
    >>> keep_tuned(np.array([0.1, 0.2, 0.3, 0.2]), np.array([0.5, 0.6, 0.6, 0.7]))[0]
    True
    >>> keep_tuned(np.array([0.1, 0.2, 0.3, 0.2]), np.array([0.1, 0.3, 0.2, 0.2]))[0]
    False
    """
    if len(base_gains) != len(tuned_gains) or len(base_gains) < 2:
        return False, None
    return lead_beyond_noise(tuned_gains, base_gains)
