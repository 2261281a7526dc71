"""The console script against a hostile environment (issue 16, section 5): one
``rectransfer: error: ...`` line and exit 2, checked before the long work where it can be, and the
previous output left as it was."""

from __future__ import annotations

import errno
import os

import polars as pl
import pytest

import rectransfer as rt
from rectransfer.cli import main
from tests.conftest import make_shop, one_error_line, write_shop


class Tripwire(Exception):
    """Raised by a stand-in for the long work: reaching it means the check came too late."""


def _tripwire(*args, **kwargs):
    raise Tripwire("the model was loaded before the destination was checked")


@pytest.fixture(scope="module")
def model_and_shop(broad, tmp_path_factory):
    root = tmp_path_factory.mktemp("env")
    return broad.save(root / "model"), write_shop(
        make_shop("shop", seed=5, n_users=25), root / "shop"
    )


def _recommend(model, shop, out, *extra):
    argv = ["recommend", "--model", str(model), "--retailer", str(shop), "--out", str(out)]
    return main([*argv, "--run-date", "2026-01-02", "--encoder", "hashing:64", *extra])


def _one_error_line(capsys) -> str:
    return one_error_line(capsys.readouterr().err)


@pytest.fixture
def no_model_load(monkeypatch):
    monkeypatch.setattr(rt.RecModel, "load", _tripwire)


def test_out_is_an_existing_file(model_and_shop, tmp_path, capsys, no_model_load):
    out = tmp_path / "exports"
    out.write_text("not a folder")
    assert _recommend(*model_and_shop, out) == 2
    assert "is a file" in _one_error_line(capsys)
    assert out.read_text() == "not a folder"


def test_out_under_a_file(model_and_shop, tmp_path, capsys, no_model_load):
    (tmp_path / "file").write_text("x")
    assert _recommend(*model_and_shop, tmp_path / "file" / "exports") == 2
    assert "is a file, not a folder" in _one_error_line(capsys)


def test_out_name_too_long(model_and_shop, tmp_path, capsys, no_model_load):
    assert _recommend(*model_and_shop, tmp_path / ("x" * 300)) == 2
    assert "255" in _one_error_line(capsys)


def test_out_read_only(model_and_shop, tmp_path, capsys, monkeypatch, no_model_load):
    # Tests may run as root, whom chmod does not stop: the file system's answer is simulated.
    real_open, real_mkdir = os.open, os.mkdir

    def read_only(call):
        def refuse(path, *args, **kwargs):
            if str(path).startswith(str(tmp_path)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return call(path, *args, **kwargs)

        return refuse

    monkeypatch.setattr(os, "open", read_only(real_open))
    monkeypatch.setattr(os, "mkdir", read_only(real_mkdir))
    assert _recommend(*model_and_shop, tmp_path / "exports") == 2
    assert "read-only" in _one_error_line(capsys)


def test_k_0_creates_nothing(model_and_shop, tmp_path, capsys):
    out = tmp_path / "exports"
    assert _recommend(*model_and_shop, out, "--k", "0") == 2
    assert "--k" in _one_error_line(capsys)
    assert not out.exists()  # not even an empty .staging


def test_a_full_disk_mid_write_is_one_line_and_keeps_the_old_partition(
    model_and_shop, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "exports"
    assert _recommend(*model_and_shop, out, "--k", "3") == 0
    (part,) = out.glob("retailer=*/run_date=*/part-0.parquet")
    before = part.read_bytes()
    capsys.readouterr()

    def full_disk(filename, *args, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"PAR1 half")
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr("fastparquet.write", full_disk)
    assert _recommend(*model_and_shop, out, "--k", "5") == 2
    err = _one_error_line(capsys)
    assert "No space left on device" in err and "free space" in err
    assert part.read_bytes() == before
    assert pl.read_parquet(part)["rank"].max() == 3
    assert list((out / ".staging").iterdir()) == []


def test_pretrain_out_under_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rt, "pretrain", _tripwire)
    shop = write_shop(make_shop("src", seed=1, n_users=20), tmp_path / "src")
    (tmp_path / "file").write_text("x")
    code = main(["pretrain", "--sources", str(shop), "--out", str(tmp_path / "file" / "m")])
    assert code == 2
    assert "is a file, not a folder" in _one_error_line(capsys)


def test_a_symlinked_staging_folder_is_refused_before_the_model_is_loaded(
    model_and_shop, tmp_path, capsys, no_model_load
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.tmp").write_text("keep")
    out = tmp_path / "exports"
    out.mkdir()
    (out / ".staging").symlink_to(elsewhere)
    assert _recommend(*model_and_shop, out) == 2
    assert "symbolic link" in _one_error_line(capsys)
    assert (elsewhere / "report.tmp").read_text() == "keep"
