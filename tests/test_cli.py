import subprocess
import sys
import warnings

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.errors import DataQualityWarning
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
    frame = pl.read_parquet(
        exports / "retailer=shop-x" / "run_date=2026-11-23" / "part-0.parquet",
        hive_partitioning=True,
    )
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
    # stages may come first; the error itself is one line, the last, with no traceback
    errors = [line for line in err.splitlines() if line.startswith("rectransfer: error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err
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
    warned = [line for line in err.splitlines() if line.startswith("rectransfer: warning:")]
    assert len(warned) == 1 and warned[0].startswith("rectransfer: warning: closed: no item")
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


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("rectransfer ")


def test_check_validates_a_folder_without_training(shops, tmp_path, capsys):
    _, target = shops
    assert main(["check", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tgt: valid") and "customers" in out
    assert list(tmp_path.iterdir()) == []  # wrote nothing
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "items.csv").write_text("item_id,title\na,Tent\na,Stove\n")
    assert main(["check", str(broken)]) == 2
    assert "item_id" in capsys.readouterr().err


def test_help_shows_defaults_once_and_none_for_required_options(capsys):
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "items per customer (default: 20)" in text
    assert "(default: None)" not in text and "default: default: " not in text
    assert "an adapted or broad model" in text  # required options have help too


def test_commands_given_a_model_use_the_model_s_own_encoder(shops, tmp_path, capsys):
    sources, target = shops
    broad = tmp_path / "broad"
    argv = ["pretrain", "--sources", *map(str, sources), "--out", str(broad)]
    assert main([*argv, "--encoder", "hashing:32"]) == 0
    # no --encoder: the model's hashing:32, not the packaged MiniLM default
    adapted = tmp_path / "adapted"
    assert (
        main(["adapt", "--base", str(broad), "--retailer", str(target), "--out", str(adapted)]) == 0
    )
    exports = tmp_path / "exports"
    code = main(
        ["recommend", "--model", str(adapted), "--retailer", str(target), "--out", str(exports)]
    )
    assert code == 0
    assert list(exports.glob("retailer=tgt/run_date=*/part-0.parquet"))


def test_data_quality_warnings_are_one_readable_line(shops, tmp_path, capsys):
    _, target = shops
    shop = tmp_path / "blank_title"
    shop.mkdir()
    items = pl.read_parquet(target / "items.parquet")
    items = items.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(" "))
        .otherwise(pl.col("title"))
        .alias("title")
    )
    items.write_parquet(shop / "items.parquet")
    pl.read_parquet(target / "interactions.parquet").write_parquet(shop / "interactions.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataQualityWarning)  # the suite turns warnings into errors
        assert main(["check", str(shop)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("rectransfer: warning:") and err.count("\n") == 1
    assert "rectransfer/" not in err  # no source path of the package


def test_long_commands_say_what_they_do_unless_quiet(shops, tmp_path, capsys):
    sources, _ = shops
    argv = ["pretrain", "--sources", *map(str, sources), "--encoder", "hashing"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "rectransfer: source 1/2 src0" in err
    assert "rectransfer: training the broad model:" in err and "rounds" in err
    assert main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "broad model" in captured.out  # the result still prints


def test_ship_rules_reaches_the_guard_from_each_command_that_adapts(monkeypatch):
    import rectransfer.cli as cli

    seen = {}

    def record(name):
        def fake(*args, **kwargs):
            seen[name] = kwargs["ship_rules"]
            raise SystemExit(0)

        return fake

    monkeypatch.setattr(cli, "_load_model", lambda *a, **k: None)
    monkeypatch.setattr(rt, "adapt", record("adapt"))
    monkeypatch.setattr("rectransfer.evaluation.benchmark.run_benchmark", record("benchmark"))
    monkeypatch.setattr("rectransfer.evaluation.loso.run_loso", record("loso"))
    monkeypatch.setattr(rt.RetailerData, "load", lambda *a, **k: None)
    for argv in (
        ["adapt", "--base", "b", "--retailer", "r", "--out", "o", "--ship-rules"],
        ["benchmark", "--base", "b", "--target", "t", "--out", "o.json", "--ship-rules"],
        ["loso", "--sources", "a", "b", "--out", "o.json", "--ship-rules"],
    ):
        with pytest.raises(SystemExit):
            main(argv)
    assert seen == {"adapt": True, "benchmark": True, "loso": True}
