"""Tests of an optional extra skip where it is not installed, and fail in CI, where every extra is
installed: a skip there would hide a test that no longer runs anywhere."""

import re
import sys

import pytest

from tests.conftest import ROOT, import_extra, in_ci

TESTS = ROOT / "tests"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("TRUE", True), ("", False), ("false", False), ("0", False)],
)
def test_ci_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected
    monkeypatch.delenv("CI")
    assert in_ci() is False


def test_a_missing_extra_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import fails as when not installed
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="lleaves"):
        import_extra("lleaves", "compiled")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI='true'.*pip install -e '\.\[compiled\]'"):
        import_extra("lleaves", "compiled")


def test_an_installed_extra_is_imported_in_ci_and_outside(monkeypatch):
    for ci in ("true", ""):
        monkeypatch.setenv("CI", ci)
        assert import_extra("json", "none").dumps([]) == "[]"


def test_no_test_skips_on_a_missing_import_without_import_extra():
    # pytest.importorskip (or a skip on ImportError) would skip in CI too, silently
    pattern = re.compile(
        r"importorskip\(|except (ModuleNotFoundError|ImportError)[^\n]*\n\s*pytest\.skip"
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in ("conftest.py", "test_extras.py") and pattern.search(path.read_text())
    ]
    assert offenders == []
