"""The README's examples work as written: its commands parse, its backend lines run."""

import re
import shlex

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.cli import build_parser
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_every_rectransfer_command_in_the_readme_is_a_valid_invocation():
    commands = [
        line.split("#")[0].strip()
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.strip().startswith(".venv/bin/rectransfer")
    ]
    assert len(commands) >= 4
    parser = build_parser()
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])  # exits on an unknown option


def test_the_backend_lines_run_on_the_sample_shop(tmp_path, monkeypatch):
    (block,) = [b for b in _blocks("python") if "rt.recommend_for" in b]
    broad = rt.pretrain(
        [ROOT / "sample_data" / "sources" / name for name in ("harbor_home", "summit_supply")],
        encoder=rt.load_encoder("hashing:64"),
        max_rounds=10,
    )
    broad.save(tmp_path / "demo_output" / "models" / "broad")  # what `make demo` leaves there
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    names: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), names)
    recs, online = names["recs"], names["online"]
    assert isinstance(recs, pl.DataFrame) and isinstance(online, pl.DataFrame)
    assert set(recs["user_id"]) == {"tm-0551", "tm-7389"} and recs.height == 20
    assert (recs["source"] == "ranker").all()  # real customers of the sample shop
    assert online.height == 10
    assert (tmp_path / "demo_output" / "models" / "trailhead_market" / "config.json").is_file()


@pytest.mark.parametrize("page", sorted(re.findall(r"`(docs/[A-Z]+\.md)`", README)))
def test_every_page_the_readme_points_to_exists(page):
    assert (ROOT / page).is_file()
