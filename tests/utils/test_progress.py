import logging

import pytest

from rectransfer.utils import progress as progress_module
from rectransfer.utils.progress import LOGGER, progress, stage, timed


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="rectransfer")
    return caplog


def test_off_a_terminal_progress_is_plain_lines_with_the_share_done_and_time_left(
    lines, monkeypatch
):
    monkeypatch.setattr(progress_module, "LINE_EVERY_SECONDS", 0.0)
    with progress("encoding", total=4, unit="texts") as bar:
        for i in range(4):
            bar.update(note=f"step {i}")
    messages = [r.getMessage() for r in lines.records]
    assert messages[0] == "encoding: 4 texts"
    assert "encoding: 25% (1/4 texts) (step 0), about" in messages[1]
    assert "left" in messages[1]
    assert messages[-1].startswith("encoding: 4 texts in ") and messages[-1].endswith("step 3")


def test_stages_and_timed_steps_say_what_is_happening(lines):
    stage("source 1/2 shop")
    with timed("statistics"):
        pass
    assert [r.getMessage() for r in lines.records][:2] == ["source 1/2 shop", "statistics ..."]
    assert lines.records[-1].getMessage().startswith("statistics: done in ")


def test_nothing_is_said_below_info(caplog):
    caplog.set_level(logging.WARNING, logger="rectransfer")
    with progress("encoding", total=2, unit="texts") as bar:
        bar.update(2)
    stage("quiet")
    assert [r for r in caplog.records if r.name == LOGGER.name] == []
