import json

import pytest

import rectransfer as rt
from rectransfer.model.artifacts import CHECKSUM_FILE, CONFIG_FILE, RANKER_FILE
from tests.conftest import make_shop


def test_save_load_round_trip_gives_identical_recommendations(broad, encoder, tmp_path):
    shop = make_shop("roundtrip", seed=8, n_users=30)
    path = broad.save(tmp_path / "model")
    loaded = rt.RecModel.load(path, encoder=encoder)
    assert loaded.model_version == broad.model_version
    assert loaded.config == broad.config
    assert loaded.recommend(shop, k=5).equals(broad.recommend(shop, k=5))


def test_save_replaces_an_existing_model_and_leaves_no_temporary_folders(broad, tmp_path):
    target = tmp_path / "model"
    broad.save(target)
    broad.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [CONFIG_FILE, RANKER_FILE, CHECKSUM_FILE]
    )


def test_a_failed_save_leaves_the_previous_model_intact(broad, tmp_path, monkeypatch):
    target = tmp_path / "model"
    broad.save(target)
    before = (target / RANKER_FILE).read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rectransfer.model.artifacts._sha256", broken)
    with pytest.raises(OSError, match="disk full"):
        broad.save(target)
    assert (target / RANKER_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / RANKER_FILE).unlink(), "missing 'ranker.txt'"),
        (lambda d: (d / CONFIG_FILE).write_text("{}"), "checksum does not match"),
        (lambda d: (d / RANKER_FILE).write_text("tree\n"), "checksum does not match"),
    ],
)
def test_damaged_model_directories_raise_a_clear_error(broad, tmp_path, damage, message):
    path = broad.save(tmp_path / "model")
    damage(path)
    with pytest.raises(rt.IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def _rewrite_config(path, change):
    from rectransfer.model.artifacts import _sha256

    config = json.loads((path / CONFIG_FILE).read_text())
    change(config)
    (path / CONFIG_FILE).write_text(json.dumps(config))
    sums = json.loads((path / CHECKSUM_FILE).read_text())
    sums[CONFIG_FILE] = _sha256(path / CONFIG_FILE)
    (path / CHECKSUM_FILE).write_text(json.dumps(sums))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(format_version=99), "format_version 99"),
        (lambda c: c.update(feature_names=["a", "b"]), "features"),
        (lambda c: c.update(unexpected=1), "unexpected"),
        (lambda c: c.pop("encoder"), "encoder"),
    ],
)
def test_incompatible_configs_raise_a_clear_error(broad, tmp_path, change, message):
    path = broad.save(tmp_path / "model")
    _rewrite_config(path, change)
    with pytest.raises(rt.IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def test_another_encoder_is_refused(broad, tmp_path):
    path = broad.save(tmp_path / "model")
    with pytest.raises(rt.IncompatibleArtifactError, match="encoder"):
        rt.RecModel.load(path, encoder=rt.HashingEncoder(32))


def test_missing_directory(tmp_path):
    with pytest.raises(rt.IncompatibleArtifactError, match="no model directory"):
        rt.RecModel.load(tmp_path / "nope")


def test_a_loaded_model_rebuilds_its_encoder_from_the_saved_spec(broad, tmp_path):
    path = broad.save(tmp_path / "model")
    loaded = rt.RecModel.load(path)  # no encoder given
    assert loaded.config.encoder.spec == "hashing:64"
    assert loaded.encoder.fingerprint == broad.config.encoder.fingerprint
