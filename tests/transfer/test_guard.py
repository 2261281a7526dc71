import numpy as np

from rectransfer.model.config import GuardReport
from rectransfer.transfer.guard import decide

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
