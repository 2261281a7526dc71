"""Destinations: a save replaces only what rectransfer wrote, never an input (issue 16, section 1).

Every writer goes through ``rectransfer.utils.destinations``; these tests try each writer with a
folder of the user's files, an input folder and look-alikes, and check that the files survive and
that the refusal comes before any training (the training calls are replaced by tripwires).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.errors import ConfigError
from rectransfer.model import artifacts
from rectransfer.model.config import ModelConfig
from rectransfer.text import training, tuning
from rectransfer.utils import destinations
from rectransfer.utils.destinations import (
    check_model_destination,
    check_outside_inputs,
    check_writable_parent,
)
from tests.conftest import make_shop, one_error_line, write_shop


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("keep")
    return path


class Tripwire(Exception):
    """Raised by a stand-in for training: reaching it means the refusal came too late."""


def _tripwire(*args, **kwargs):
    raise Tripwire("long work started before the destination was checked")


@pytest.fixture(scope="module")
def saved_model(broad, tmp_path_factory) -> Path:
    return broad.save(tmp_path_factory.mktemp("models") / "broad")


@pytest.fixture(scope="module")
def shop_folder(tmp_path_factory) -> Path:
    return write_shop(make_shop("shop", seed=3, n_users=30), tmp_path_factory.mktemp("d") / "shop")


# --- the rule ---


def test_the_marker_names_are_the_ones_the_writers_write():
    assert destinations.MODEL_FILES == artifacts.MODEL_FILES
    assert destinations.MODEL_CONFIG_FILE == artifacts.CONFIG_FILE
    assert ModelConfig.model_fields["model_type"].default == destinations.MODEL_TYPE
    assert training.METADATA_FILE == destinations.ENCODER_METADATA_FILE


def test_new_and_empty_folders_and_own_models_are_accepted(tmp_path, saved_model):
    assert check_model_destination(tmp_path / "new" / "model") == tmp_path / "new" / "model"
    (tmp_path / "empty").mkdir()
    check_model_destination(tmp_path / "empty")
    check_model_destination(saved_model)
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "model.safetensors").write_bytes(b"weights")
    (encoder / destinations.ENCODER_METADATA_FILE).write_text("{}")
    check_model_destination(encoder, kind="encoder")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: _user_folder(p), id="folder-of-other-files"),
        pytest.param(lambda p: p.write_text("a file"), id="a-file"),
        pytest.param(lambda p: p.symlink_to(p.parent), id="a-symlink"),
    ],
)
@pytest.mark.parametrize("kind", ["model", "encoder"])
def test_anything_else_is_refused_in_one_line(tmp_path, make, kind):
    target = tmp_path / "out"
    make(target)
    with pytest.raises(ConfigError, match="--out") as caught:
        check_model_destination(target, kind=kind)
    assert "\n" not in str(caught.value) and str(target) in str(caught.value)


def test_a_model_directory_with_a_file_of_the_users_is_refused(tmp_path, saved_model):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"notes\.txt"):
        check_model_destination(folder)


def test_a_look_alike_model_directory_is_refused(tmp_path, saved_model):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ConfigError, match="rectransfer-ranker"):
        check_model_destination(folder)
    # An encoder folder is not a model directory, nor a model directory an encoder folder.
    with pytest.raises(ConfigError, match=r"rectransfer_encoder\.json"):
        check_model_destination(saved_model, kind="encoder")


@pytest.mark.parametrize(
    ("output", "relation"),
    [("shop", "is"), ("shop/models/a", "is inside"), (".", "contains")],
)
def test_an_output_overlapping_an_input_is_refused(tmp_path, output, relation, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop").mkdir()
    with pytest.raises(ConfigError, match=f"{relation} the input"):
        check_model_destination(output, inputs=[tmp_path / "shop"])
    # Another spelling of the same folder is the same folder.
    (tmp_path / "alias").symlink_to(tmp_path / "shop")
    with pytest.raises(ConfigError, match="is inside the input"):
        check_outside_inputs(tmp_path / "alias" / "m", inputs=["shop"])


# --- every writer follows it ---


def test_save_refuses_a_folder_of_the_users_files_and_keeps_them(broad, tmp_path):
    important = _user_folder(tmp_path / "important")
    with pytest.raises(ConfigError, match=r"notes\.txt"):
        broad.save(important)
    assert _files(important) == {"notes.txt": b"keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["important"]  # nothing staged left


def test_save_refuses_a_retailer_folder(broad, tmp_path, shop_folder):
    import shutil

    shop = shutil.copytree(shop_folder, tmp_path / "shop")
    before = _files(shop)
    with pytest.raises(ConfigError):
        broad.save(shop)
    assert _files(shop) == before


def test_save_still_replaces_its_own_model(broad, tmp_path, saved_model):
    import shutil

    folder = shutil.copytree(saved_model, tmp_path / "model")
    broad.save(folder)
    assert rt.RecModel.load(folder).model_version == broad.model_version


def test_pretrain_encoder_refuses_an_output_inside_a_source_before_training(
    tmp_path, shop_folder, monkeypatch
):
    monkeypatch.setattr(training, "training_pairs", _tripwire)
    with pytest.raises(ConfigError, match="is inside the input"):
        training.pretrain_encoder([shop_folder], shop_folder / "encoder")
    assert not (shop_folder / "encoder").exists()


def test_adapt_refuses_a_tune_folder_with_files_before_adapting(
    broad, target, tmp_path, monkeypatch
):
    from rectransfer.transfer import adapt as adapt_module

    monkeypatch.setattr(adapt_module, "fit_adaptation", _tripwire)
    folder = _user_folder(tmp_path / "enc")
    with pytest.raises(ConfigError, match="already holds files"):
        rt.adapt(broad, target, tune_encoder_to=folder)
    assert _files(folder) == {"notes.txt": b"keep"}


def test_discarding_a_tuned_encoder_keeps_the_users_files_beside_it(tmp_path):
    out = tmp_path / "enc"
    out.mkdir()
    (out / destinations.ENCODER_METADATA_FILE).write_text("{}")
    work = _user_folder(tmp_path / "enc.work")  # the user's folder, by its name only
    (work / training.CHECKPOINT_FILE).write_text("checkpoint")
    tuning.discard(out)
    assert not out.exists()
    assert _files(work) == {"notes.txt": b"keep"}


def test_nightly_models_root_may_not_be_the_retailers_root(tmp_path, shop_folder):
    from rectransfer.orchestration.tasks import check_models_root

    folders = [shop_folder]
    for root in (shop_folder.parent, shop_folder.parent / "models", shop_folder):
        with pytest.raises(ConfigError, match="models_root"):
            check_models_root(root, shop_folder.parent, folders, tmp_path / "broad")
    # A retailer whose model would land on the broad model is refused too.
    with pytest.raises(ConfigError, match="adapted model of 'shop'"):
        check_models_root(tmp_path, shop_folder.parent, folders, tmp_path / "shop")
    check_models_root(tmp_path / "models", shop_folder.parent, folders, tmp_path / "broad")


def test_nightly_flow_refuses_before_any_retailer_is_touched(tmp_path, shop_folder, monkeypatch):
    import shutil

    from flows import nightly

    root = tmp_path / "shops"
    shop = shutil.copytree(shop_folder, root / "shop")
    before = _files(shop)
    monkeypatch.setattr(nightly, "encoder_from", _tripwire)
    params = nightly.NightlyParams(
        retailers_root=str(root),
        base=str(tmp_path / "broad"),
        models_root=str(root),
        export_root=str(tmp_path / "exports"),
    )
    with pytest.raises(ConfigError, match="models_root"):
        nightly.nightly_run.fn(params)
    assert _files(shop) == before


# --- the console script: one line, exit 2, before any work ---


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr(rt, "adapt", _tripwire)
    monkeypatch.setattr(rt, "pretrain", _tripwire)
    monkeypatch.setattr(training, "training_pairs", _tripwire)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    err = one_error_line(err)
    return err


def test_cli_adapt_into_a_folder_of_the_users_files(
    saved_model, shop_folder, tmp_path, capsys, no_training
):
    important = _user_folder(tmp_path / "important")
    argv = ["adapt", "--base", str(saved_model), "--retailer", str(shop_folder)]
    assert main([*argv, "--out", str(important), "--encoder", "hashing"]) == 2
    assert "notes.txt" in _one_error_line(capsys)
    assert _files(important) == {"notes.txt": b"keep"}


def test_cli_adapt_into_the_retailer_or_the_base_folder(
    saved_model, shop_folder, tmp_path, capsys, no_training
):
    shop_before, model_before = _files(shop_folder), _files(saved_model)
    argv = ["adapt", "--base", str(saved_model), "--retailer", str(shop_folder)]
    for out in (shop_folder, saved_model, shop_folder / "model"):
        assert main([*argv, "--out", str(out), "--encoder", "hashing"]) == 2
        assert "the input" in _one_error_line(capsys)
    assert _files(shop_folder) == shop_before and _files(saved_model) == model_before


def test_cli_adapt_tune_encoder_overlapping_the_output(
    saved_model, shop_folder, tmp_path, capsys, no_training
):
    argv = ["adapt", "--base", str(saved_model), "--retailer", str(shop_folder)]
    out = tmp_path / "model"
    for tune in (out, out / "encoder", shop_folder / "encoder"):
        code = main([*argv, "--out", str(out), "--tune-encoder", str(tune), "--encoder", "hashing"])
        assert code == 2
        assert "the input" in _one_error_line(capsys)
    assert not out.exists() and not (shop_folder / "encoder").exists()


def test_cli_pretrain_into_a_source(shop_folder, tmp_path, capsys, no_training):
    before = _files(shop_folder)
    code = main(["pretrain", "--sources", str(shop_folder), "--out", str(shop_folder)])
    assert code == 2
    assert "is the input" in _one_error_line(capsys)
    assert _files(shop_folder) == before


def test_cli_pretrain_encoder_into_a_source(shop_folder, capsys, no_training):
    out = shop_folder / "encoder"
    assert main(["pretrain-encoder", "--sources", str(shop_folder), "--out", str(out)]) == 2
    assert "is inside the input" in _one_error_line(capsys)
    assert not out.exists()


# --- the writability probe ---


def test_probe_refuses_a_file_in_the_way_and_a_name_too_long(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_writable_parent(tmp_path / "file")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_writable_parent(tmp_path / "file" / "below")
    with pytest.raises(ConfigError, match="255"):
        check_writable_parent(tmp_path / ("x" * 300))
    check_writable_parent(tmp_path / "file", folder=False)  # a results file may be replaced
    check_writable_parent(tmp_path / "new" / "deeper")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe left nothing


def test_probe_reports_a_read_only_folder(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ConfigError, match=r"cannot create files in .*read-only"):
        check_writable_parent(tmp_path / "exports")


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_nightly_a_models_folder_of_the_users_fails_that_retailer_only(
    saved_model, tmp_path, monkeypatch, isolate
):
    from flows.nightly import NightlyParams, RetailersFailed, nightly
    from rectransfer.orchestration import tasks

    adapted: list[str] = []
    real_adapt = tasks.adapt

    def counting_adapt(base, data, **kwargs):
        adapted.append(data.name)
        return real_adapt(base, data, **kwargs)

    monkeypatch.setattr(tasks, "adapt", counting_adapt)
    retailers = tmp_path / "retailers"
    for i, name in enumerate(("alpha", "beta")):
        write_shop(make_shop(name, seed=40 + i, n_users=30), retailers / name)
    models = tmp_path / "models"
    squatter = _user_folder(models / "alpha")  # not a model: the user's files
    params = NightlyParams(
        retailers_root=str(retailers),
        base=str(saved_model),
        models_root=str(models),
        export_root=str(tmp_path / "exports"),
        k=3,
        run_date="2026-01-02",
        encoder="hashing:64",
        isolate_retailers=isolate,
    )
    with pytest.raises(RetailersFailed, match=r"alpha: ConfigError: .*notes\.txt"):
        nightly(**params.model_dump())
    assert _files(squatter) == {"notes.txt": b"keep"}
    assert (models / "beta" / "config.json").is_file()  # the other retailer still ran
    if not isolate:  # a child process does not see this process's patch
        assert adapted == ["beta"]  # refused before adapting
    assert (tmp_path / "exports" / "retailer=beta").is_dir()
    assert not (tmp_path / "exports" / "retailer=alpha").exists()
