import subprocess
import sys

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.cli import main
from tests.conftest import make_shop, write_shop


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    root = tmp_path_factory.mktemp("shops")
    sources = [
        write_shop(make_shop(f"src{i}", seed=i, n_users=80), root / f"src{i}") for i in range(2)
    ]
    target = write_shop(make_shop("tgt", seed=9, n_users=40), root / "tgt")
    return sources, target


def test_pretrain_adapt_recommend(shops, tmp_path, capsys):
    sources, target = shops
    broad = tmp_path / "broad"
    assert (
        main(
            [
                "pretrain",
                "--sources",
                *map(str, sources),
                "--out",
                str(broad),
                "--encoder",
                "hashing",
            ]
        )
        == 0
    )
    assert (broad / "config.json").is_file()
    adapted = tmp_path / "adapted"
    code = main(
        [
            "adapt",
            "--base",
            str(broad),
            "--retailer",
            str(target),
            "--out",
            str(adapted),
            "--encoder",
            "hashing",
            "--name",
            "shop-x",
        ]
    )
    assert code == 0
    assert "decision:" in capsys.readouterr().out
    exports = tmp_path / "exports"
    code = main(
        [
            "recommend",
            "--model",
            str(adapted),
            "--retailer",
            str(target),
            "--out",
            str(exports),
            "--k",
            "4",
            "--run-date",
            "2026-11-23",
            "--name",
            "shop-x",
            "--encoder",
            "hashing",
        ]
    )
    assert code == 0
    frame = pl.read_parquet(exports / "retailer=shop-x" / "run_date=2026-11-23" / "part-0.parquet")
    assert frame["rank"].max() == 4
    assert frame["retailer"].unique().to_list() == ["shop-x"]


def test_bad_input_exits_2_with_one_line(shops, tmp_path, capsys):
    sources, _ = shops
    empty = tmp_path / "empty_shop"
    empty.mkdir()
    code = main(
        [
            "pretrain",
            "--sources",
            str(sources[0]),
            str(empty),
            "--out",
            str(tmp_path / "m"),
            "--encoder",
            "hashing",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rectransfer: error:") and err.count("\n") == 1
    assert "items" in err
    assert not (tmp_path / "m").exists()


def test_model_from_another_encoder_exits_2(shops, tmp_path, capsys):
    sources, target = shops
    broad = tmp_path / "broad"
    assert (
        main(
            [
                "pretrain",
                "--sources",
                *map(str, sources),
                "--out",
                str(broad),
                "--encoder",
                "hashing:32",
            ]
        )
        == 0
    )
    code = main(
        [
            "adapt",
            "--base",
            str(broad),
            "--retailer",
            str(target),
            "--out",
            str(tmp_path / "a"),
            "--encoder",
            "hashing:64",
        ]
    )
    assert code == 2
    assert "encoder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["shop\n", "x" * 300], ids=["newline", "300-chars"])
def test_recommend_refuses_a_name_that_cannot_name_a_partition(
    broad, shops, tmp_path, capsys, monkeypatch, name
):
    _, target = shops
    broad.save(tmp_path / "broad")
    scored = []
    monkeypatch.setattr(
        "rectransfer.serving.recommend.recommend_prepared", lambda *a, **kw: scored.append(1)
    )
    exports = tmp_path / "exports"
    code = main(
        [
            "recommend",
            "--model",
            str(tmp_path / "broad"),
            "--retailer",
            str(target),
            "--out",
            str(exports),
            "--name",
            name,
            "--encoder",
            "hashing:64",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rectransfer: error: retailer name") and err.count("\n") == 1
    assert "cannot name a partition folder" in err
    assert scored == [] and not exports.exists()


def test_recommend_warns_when_nothing_is_in_stock(broad, tmp_path, capsys):
    shop = make_shop("closed", seed=4, n_users=12)
    items = shop.items.with_columns(pl.lit(False).alias("in_stock"))
    folder = write_shop(
        rt.RetailerData.from_frames(items, shop.interactions, shop.users, name="closed"),
        tmp_path / "closed",
    )
    broad.save(tmp_path / "broad")
    exports = tmp_path / "exports"
    code = main(
        [
            "recommend",
            "--model",
            str(tmp_path / "broad"),
            "--retailer",
            str(folder),
            "--out",
            str(exports),
            "--run-date",
            "2026-11-23",
            "--encoder",
            "hashing:64",
        ]
    )
    assert code == 0  # valid data: written, but not as an ordinary night
    out, err = capsys.readouterr()
    assert out.startswith("0 recommendations for 0 customers of closed")
    assert (
        err.startswith("rectransfer: warning: closed: no item is in stock") and err.count("\n") == 1
    )
    written = exports / "retailer=closed" / "run_date=2026-11-23" / "part-0.parquet"
    assert pl.read_parquet(written).height == 0


@pytest.mark.parametrize("command", ["pretrain", "adapt", "recommend", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rectransfer" in capsys.readouterr().out


def test_console_process_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rectransfer.cli",
            "recommend",
            "--model",
            str(tmp_path / "none"),
            "--retailer",
            str(tmp_path),
            "--out",
            str(tmp_path / "x"),
            "--encoder",
            "hashing",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("rectransfer: error:")
