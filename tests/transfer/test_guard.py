import numpy as np
import pytest

from rectransfer.model.config import GuardReport
from rectransfer.transfer.guard import decide, keep_tuned, lead_beyond_noise, too_little_to_adapt

RNG = np.random.default_rng(0)


def _gains(mean: float, n: int = 400) -> np.ndarray:
    return (RNG.random(n) < mean).astype(float)


def test_adapted_ships_when_ahead_of_both():
    base = _gains(0.2)
    choice, _ = decide({"adapted": base + 0.05, "broad": base, "local": base - 0.05})
    assert choice == "adapted"


def test_broad_ships_when_adapting_did_not_help():
    base = _gains(0.2)
    choice, reason = decide({"adapted": base - 0.01, "broad": base, "local": base - 0.02})
    assert choice == "broad" and "negative transfer" in reason


def test_local_ships_only_when_clearly_ahead():
    broad = _gains(0.2)
    # a lead far beyond the paired standard error: local ships
    clearly = np.clip(broad + _gains(0.5), 0, 1)
    assert decide({"adapted": broad, "broad": broad, "local": clearly})[0] == "local"
    # a net lead of 2 customers among 38 that disagree is noise: the transferred model ships
    noisy = broad.copy()
    noisy[np.flatnonzero(broad == 0)[:20]] = 1.0
    noisy[np.flatnonzero(broad == 1)[:18]] = 0.0
    assert noisy.mean() > broad.mean()
    choice, reason = decide({"adapted": broad, "broad": broad, "local": noisy})
    assert choice == "broad" and "within one standard error" in reason


def test_report_table_marks_the_shipped_model():
    report = GuardReport(
        validation_customers=50,
        ndcg={"popularity": 0.01, "broad": 0.1, "local": 0.05, "adapted": 0.2},
        recall={"popularity": 0.02, "broad": 0.2, "local": 0.1, "adapted": 0.3},
        stderr={"popularity": 0.0, "broad": 0.01, "local": 0.01, "adapted": 0.01},
        decision="adapted",
        reason="r",
    )
    table = report.table()
    assert "adapted" in table.splitlines()[-2] and table.splitlines()[-2].endswith("*")
    assert GuardReport.model_validate_json(report.model_dump_json()) == report


def test_the_blend_ships_when_the_best_transferred_model_and_local_cannot_beat_it():
    base = _gains(0.2)
    gains = {"adapted": base, "broad": base - 0.02, "local": base, "blend": base + 0.03}
    choice, reason = decide(gains)
    assert choice == "blend" and "blend (adapted + local-only) 0.2" in reason
    # local still needs a clear lead over the best transferred model, the blend included
    gains["local"] = np.clip(gains["blend"] + _gains(0.5), 0, 1)
    assert decide(gains)[0] == "local"
    # without a blend (too little data to train one), the rule is the three-way one
    del gains["blend"]
    gains["local"] = base - 0.05
    assert decide(gains)[0] == "adapted"


# Boundary cases of the one-standard-error rule. Each builds the local-only gains as the
# transferred model's plus a paired difference whose mean is an exact multiple of the paired
# standard error, so a rule off by a factor (two standard errors), a comparison off by equality
# (>= for >) or an unpaired standard error changes the decision.


def _difference(lead_in_stderrs: float, *, n: int = 400, spread: float = 0.05) -> np.ndarray:
    """Per-customer differences with mean ``lead_in_stderrs`` paired standard errors."""
    z = np.random.default_rng(7).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)  # mean 0, sample standard deviation 1, exactly
    stderr = spread / np.sqrt(n)
    return lead_in_stderrs * stderr + spread * z


def _paired_stderr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.std(a - b, ddof=1) / np.sqrt(len(a)))


def _unpaired_stderr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


@pytest.mark.parametrize(("lead", "ships"), [(0.9, "broad"), (1.1, "local"), (1.9, "local")])
def test_local_ships_just_beyond_one_paired_standard_error_and_not_just_within(lead, ships):
    broad = 0.3 + 0.1 * np.random.default_rng(3).random(400)
    local = broad + _difference(lead)
    assert np.mean(local - broad) / _paired_stderr(local, broad) == pytest.approx(lead)
    choice, reason = decide({"adapted": broad - 0.01, "broad": broad, "local": local})
    assert choice == ships
    assert ("by more than one standard error" in reason) == (ships == "local")
    wins, margin = lead_beyond_noise(local, broad)
    assert wins == (ships == "local")
    assert margin == pytest.approx(_paired_stderr(local, broad), rel=1e-12)
    # keep_tuned follows the same rule for the tuned encoder
    assert keep_tuned(broad, local)[0] == (ships == "local")


def test_an_exact_tie_keeps_the_transferred_model():
    gains = _gains(0.3)
    # identical gains: no lead, a zero standard error; "not more than" must hold at equality
    assert lead_beyond_noise(gains, gains.copy()) == (False, 0.0)
    assert decide({"adapted": gains, "broad": gains, "local": gains.copy()})[0] == "broad"
    assert decide({"adapted": gains + 0.1, "broad": gains, "local": gains + 0.1})[0] == "adapted"
    # a constant lead has a zero paired standard error: any lead at all then wins
    assert decide({"adapted": gains, "broad": gains, "local": gains + 1e-6})[0] == "local"
    assert keep_tuned(gains, gains.copy())[0] is False


def test_the_standard_error_is_of_the_paired_difference_not_of_two_samples():
    rng = np.random.default_rng(11)
    hardness = rng.random(400)  # how easy each customer is, shared by both models
    broad = hardness
    # correlated rivals: the paired standard error is far below the unpaired one, and a lead of
    # 1.5 paired standard errors is well within one unpaired standard error
    local = broad + _difference(1.5, spread=0.02)
    assert np.mean(local - broad) > _paired_stderr(local, broad)
    assert np.mean(local - broad) < 0.5 * _unpaired_stderr(local, broad)
    assert decide({"adapted": broad, "broad": broad, "local": local})[0] == "local"
    # anti-correlated rivals: the paired standard error is above the unpaired one; a lead
    # between the two is noise
    noise = 0.05 * rng.standard_normal(400)
    noise -= noise.mean()
    broad = 0.5 + noise
    local = 0.5 - noise + 0.004
    paired, unpaired = _paired_stderr(local, broad), _unpaired_stderr(local, broad)
    assert unpaired < np.mean(local - broad) < paired
    assert decide({"adapted": broad, "broad": broad, "local": local})[0] == "broad"
    assert keep_tuned(broad, local)[0] is False


def test_on_a_tie_among_the_transferred_models_the_simpler_ships():
    gains = _gains(0.3)
    worse = gains - 0.1
    assert decide({"adapted": gains, "broad": gains.copy(), "local": worse})[0] == "broad"
    tie = {"adapted": gains, "broad": worse, "local": worse, "blend": gains.copy()}
    assert decide(tie)[0] == "adapted"
    everyone = {"adapted": gains, "broad": gains.copy(), "local": worse, "blend": gains.copy()}
    assert decide(everyone)[0] == "broad"


@pytest.mark.parametrize(
    ("validation", "training", "too_little"),
    [(19, 500, True), (20, 500, False), (500, 19, True), (500, 20, False)],
)
def test_too_little_to_adapt_below_twenty_customers_or_training_lists(
    validation, training, too_little
):
    assert (too_little_to_adapt(validation, training) is not None) == too_little


@pytest.mark.parametrize("rule", ["markov", "popularity"])
def test_a_rule_ships_when_clearly_ahead_of_the_transferred_models_and_of_local(rule):
    base = _gains(0.2)
    clearly = np.clip(base + _gains(0.5), 0, 1)
    gains = {"adapted": base, "broad": base, "local": np.clip(base + _gains(0.1), 0, 1)}
    choice, reason = decide({**gains, rule: clearly})
    assert (
        choice == rule and reason.startswith("negative transfer") and f"shipping {rule}" in reason
    )
    # of two clear winners the one with the higher mean ships
    assert decide({**gains, rule: clearly, "local": np.clip(clearly + _gains(0.3), 0, 1)})[0] == (
        "local"
    )


def test_a_rule_within_noise_of_the_transferred_model_does_not_ship():
    broad = _gains(0.2)
    noisy = broad.copy()
    noisy[np.flatnonzero(broad == 0)[:20]] = 1.0
    noisy[np.flatnonzero(broad == 1)[:18]] = 0.0
    choice, reason = decide({"adapted": broad, "broad": broad, "local": broad, "markov": noisy})
    assert choice == "broad"
    assert (
        "markov (last-item text + transitions)" in reason and "within one standard error" in reason
    )
