from rectransfer.guard import GuardReport, decide


def test_adapted_ships_only_when_strictly_ahead_of_both():
    assert decide({"adapted": 0.20, "broad": 0.10, "local": 0.15})[0] == "adapted"
    choice, reason = decide({"adapted": 0.10, "broad": 0.10, "local": 0.05})
    assert choice == "broad" and "negative transfer" in reason
    assert decide({"adapted": 0.10, "broad": 0.05, "local": 0.12})[0] == "local"


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
