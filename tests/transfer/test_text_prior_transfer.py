"""The text prior from pretraining to serving: learnt without a source's own transitions, carried
by transferred models only, saved and checked with the model."""

import hashlib
import importlib
import io
import json

import numpy as np
import pytest

import rectransfer as rt
from rectransfer.errors import IncompatibleArtifactError
from rectransfer.model.artifacts import CHECKSUM_FILE, PRIOR_FILE
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.transfer.adapt import fit_adaptation
from rectransfer.transfer.pretrain import prior_counts
from tests.conftest import make_shop

PRETRAIN = importlib.import_module("rectransfer.transfer.pretrain")
ADAPT = importlib.import_module("rectransfer.transfer.adapt")
PRIOR_COLUMN = FEATURE_NAMES.index("trans_prior")


@pytest.fixture(scope="module")
def prior_broad(sources, encoder):
    return rt.pretrain(sources, encoder=encoder, max_rounds=30, text_prior=True)


def _splits_on(booster, column: int) -> int:
    return int(booster.feature_importance("split")[column])


def test_each_source_trains_on_the_prior_of_the_others(sources, encoder, monkeypatch):
    seen = {}
    real = PRETRAIN.source_rows

    def recording(prepared, index, **kwargs):
        seen[prepared.name] = kwargs["prior"].digest
        return real(prepared, index, **kwargs)

    monkeypatch.setattr(PRETRAIN, "source_rows", recording)
    model = rt.pretrain(sources, encoder=encoder, max_rounds=5, text_prior=True)
    counts = prior_counts([prepare(s, encoder) for s in sources], random_state=0)
    assert seen == {s.name: counts.leaving_out(s.name).digest for s in sources}
    assert model.prior is not None and model.prior.digest == counts.leaving_out(None).digest
    assert model.prior.digest not in seen.values()  # no source saw the prior with itself in it
    assert model.config.text_prior is not None
    assert model.config.text_prior.sha256 == model.prior.digest


def test_without_the_option_no_prior_is_learnt_or_read(broad):
    assert broad.prior is None and broad.config.text_prior is None
    assert _splits_on(broad.booster, PRIOR_COLUMN) == 0


def test_the_broad_ranker_reads_the_prior(prior_broad):
    assert _splits_on(prior_broad.booster, PRIOR_COLUMN) > 0


def test_the_shop_alone_ranker_never_reads_it_and_the_transferred_ones_keep_it(prior_broad):
    shop = make_shop("prior-target", seed=42, n_users=90)
    adaptation = fit_adaptation(prior_broad, shop)
    assert _splits_on(adaptation.rankers["local"], PRIOR_COLUMN) == 0
    adapted = rt.adapt(prior_broad, shop)
    if adapted.kind != "local":
        assert adapted.prior is prior_broad.prior
        assert adapted.config.text_prior == prior_broad.config.text_prior


def test_a_model_shipping_the_local_ranker_carries_no_prior(prior_broad, monkeypatch, tmp_path):
    monkeypatch.setattr(ADAPT, "decide", lambda gains: ("local", "forced by the test"))
    model = rt.adapt(prior_broad, make_shop("prior-local", seed=7, n_users=90))
    assert model.kind == "local" and model.prior is None and model.config.text_prior is None
    path = model.save(tmp_path / "local")
    assert not (path / PRIOR_FILE).exists()
    assert rt.RecModel.load(path).prior is None


def test_the_prior_is_saved_and_loaded_with_the_model(prior_broad, encoder, tmp_path):
    path = prior_broad.save(tmp_path / "model")
    loaded = rt.RecModel.load(path, encoder=encoder)
    assert loaded.prior is not None
    assert np.array_equal(loaded.prior.centroids, prior_broad.prior.centroids)
    assert np.array_equal(loaded.prior.lift, prior_broad.prior.lift)
    assert loaded.model_version == prior_broad.model_version
    shop = make_shop("prior-roundtrip", seed=8, n_users=30)
    assert rt.recommend(loaded, shop, k=5).equals(rt.recommend(prior_broad, shop, k=5))
    prior_broad.save(path)  # a model directory with a prior is one rectransfer may replace


def test_the_prior_changes_the_model_version(prior_broad):
    without = rt.RecModel(
        prior_broad.booster, prior_broad.config.model_copy(update={"text_prior": None})
    )
    assert without.model_version != prior_broad.model_version


def test_a_prior_that_is_not_the_one_the_config_names_is_refused_in_memory(prior_broad, broad):
    with pytest.raises(ValueError, match="text prior"):
        rt.RecModel(prior_broad.booster, prior_broad.config)  # the config names one
    with pytest.raises(ValueError, match="text prior"):
        rt.RecModel(broad.booster, broad.config, prior=prior_broad.prior)  # it names none


def _rewrite(path, name, content: bytes):
    (path / name).write_bytes(content)
    checksums = json.loads((path / CHECKSUM_FILE).read_text())
    checksums[name] = hashlib.sha256(content).hexdigest()
    (path / CHECKSUM_FILE).write_text(json.dumps(checksums))


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p, prior: (p / PRIOR_FILE).unlink(), "text_prior.npz' is missing"),
        (
            lambda p, prior: (p / PRIOR_FILE).write_bytes(b"x" + (p / PRIOR_FILE).read_bytes()),
            "checksum does not match",
        ),
        (lambda p, prior: _rewrite(p, PRIOR_FILE, b"not a zip"), "not a text prior"),
        (
            lambda p, prior: _rewrite(
                p, PRIOR_FILE, _npz(centroids=prior.centroids, lift=prior.lift + 1)
            ),
            "not the text prior config.json names",
        ),
        (
            lambda p, prior: _rewrite(
                p, PRIOR_FILE, _npz(centroids=prior.centroids[:2], lift=prior.lift[:2, :2])
            ),
            "expected float32",
        ),
        (
            lambda p, prior: _rewrite(
                p,
                PRIOR_FILE,
                _npz(centroids=prior.centroids, lift=prior.lift, extra=prior.lift),
            ),
            "not a text prior",
        ),
    ],
)
def test_a_damaged_prior_is_refused_with_a_clear_error(prior_broad, tmp_path, damage, message):
    path = prior_broad.save(tmp_path / "model")
    damage(path, prior_broad.prior)
    with pytest.raises(IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def test_a_prior_file_the_config_does_not_name_is_refused(prior_broad, broad, tmp_path):
    path = broad.save(tmp_path / "model")
    _rewrite(
        path, PRIOR_FILE, _npz(centroids=prior_broad.prior.centroids, lift=prior_broad.prior.lift)
    )
    with pytest.raises(IncompatibleArtifactError, match="does not belong here"):
        rt.RecModel.load(path)
