"""The per-retailer encoder step of adapt: tuned on training pairs only, kept only when it helps."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
import rectransfer.text.training
import rectransfer.text.tuning
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.text.encoder import SentenceTransformerEncoder
from rectransfer.transfer.guard import keep_tuned
from tests.conftest import make_shop

# the module: rt.adapt is the function
ADAPT = importlib.import_module("rectransfer.transfer.adapt")


# torch with one thread: on a shared 2-core box, two spinning OpenMP threads run ~15x slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_broad(tiny_model: Path) -> rt.RecModel:
    shops = [make_shop(f"src{i}", seed=30 + i, n_users=60) for i in range(2)]
    return rt.pretrain(shops, encoder=SentenceTransformerEncoder(tiny_model), random_state=0)


@pytest.fixture(scope="module")
def shop() -> RetailerData:
    return make_shop("tuned", seed=8, n_users=80)


@pytest.fixture
def few_pairs_suffice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted shops are small; let them count as enough to tune on, in one quick step."""
    monkeypatch.setattr(rectransfer.text.tuning, "MIN_RETAILER_PAIRS", 10)
    monkeypatch.setattr(rectransfer.text.tuning, "MAX_RETAILER_PAIRS", 32)


def test_keep_tuned_needs_more_than_one_standard_error_on_the_same_customers() -> None:
    base = np.array([0.2, 0.3, 0.1, 0.4, 0.3])
    kept, stderr = keep_tuned(base, base + 0.1)
    assert kept and stderr == pytest.approx(0.0, abs=1e-12)
    kept, stderr = keep_tuned(base, base + np.array([0.1, -0.1, 0.1, -0.1, 0.05]))
    assert not kept and stderr is not None and stderr > 0.01
    assert keep_tuned(base, base[:4] + 1) == (False, None)  # not the same customers


@pytest.mark.parametrize("kept", [True, False])
def test_adapt_tunes_the_encoder_and_keeps_it_only_when_the_guard_says_so(
    tiny_broad: rt.RecModel,
    shop: RetailerData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    few_pairs_suffice: None,
    kept: bool,
) -> None:
    real_keep = ADAPT.keep_tuned
    compared: list[tuple[np.ndarray, np.ndarray]] = []

    def decide(base: np.ndarray, tuned: np.ndarray) -> tuple[bool, float | None]:
        compared.append((base, tuned))
        return kept, real_keep(base, tuned)[1]

    monkeypatch.setattr(ADAPT, "keep_tuned", decide)
    out = tmp_path / "tuned-encoder"
    model = rt.adapt(tiny_broad, shop, tune_encoder_to=out)

    tuning = model.config.encoder_tuning
    assert tuning is not None and tuning.kept is kept and tuning.pairs >= 10
    assert set(tuning.validation_ndcg) == {"model encoder", "tuned encoder"}
    ((base_gains, tuned_gains),) = compared
    assert len(base_gains) == len(tuned_gains) == model.guard.validation_customers
    assert tuning.validation_ndcg["tuned encoder"] == pytest.approx(tuned_gains.mean())
    if kept:
        assert model.config.encoder.spec == str(out.resolve())
        assert model.config.encoder.fingerprint != tiny_broad.config.encoder.fingerprint
        assert model.guard.ndcg[model.kind] == pytest.approx(tuned_gains.mean())
        # saved and loaded elsewhere, the model finds its tuned encoder by the spec
        loaded = rt.RecModel.load(model.save(tmp_path / "model"))
        assert loaded.encoder.fingerprint == model.config.encoder.fingerprint
        recs = rt.recommend(loaded, shop, k=5)
        assert recs["user_id"].n_unique() == shop.interactions["user_id"].n_unique()
    else:
        assert not out.exists() and not (tmp_path / "tuned-encoder.work").exists()
        assert model.config.encoder == tiny_broad.config.encoder
        assert model.guard.ndcg[model.kind] == pytest.approx(base_gains.mean())
        assert "removed" in tuning.reason


def test_the_tuning_pairs_never_hold_a_customers_validation_item(
    tiny_broad: rt.RecModel,
    shop: RetailerData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    few_pairs_suffice: None,
) -> None:
    seen: list[RetailerData] = []

    class Stop(Exception):
        pass

    def spy(sources: list[RetailerData], *args: object, **kwargs: object) -> Path:
        seen.extend(sources)
        raise Stop

    monkeypatch.setattr(rectransfer.text.training, "pretrain_encoder", spy)
    with pytest.raises(Stop):
        rt.adapt(tiny_broad, shop, tune_encoder_to=tmp_path / "enc")
    (trained,) = seen
    last = shop.interactions.group_by("user_id").agg(pl.col("item_id").last(), pl.len())
    kept = trained.interactions.group_by("user_id").agg(pl.len())
    joined = last.join(kept, on="user_id", suffix="_kept")
    assert (joined["len_kept"] == joined["len"] - 1).all()
    assert trained.interactions.height == shop.interactions.height - last.height


def test_a_retailer_with_too_few_pairs_is_not_tuned(
    tiny_broad: rt.RecModel, shop: RetailerData, tmp_path: Path
) -> None:
    out = tmp_path / "enc"
    model = rt.adapt(tiny_broad, shop, tune_encoder_to=out)
    tuning = model.config.encoder_tuning
    assert tuning is not None and not tuning.kept and tuning.stderr is None
    assert "fewer than 500" in tuning.reason
    assert not out.exists()
    assert model.config.encoder == tiny_broad.config.encoder


def test_tuning_refuses_an_encoder_without_weights_and_a_used_folder(
    broad: rt.RecModel, tiny_broad: rt.RecModel, shop: RetailerData, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="no weights to tune"):
        rt.adapt(broad, shop, tune_encoder_to=tmp_path / "enc")  # the hashing encoder
    used = tmp_path / "used"
    used.mkdir()
    (used / "model.safetensors").write_text("an earlier model's encoder")
    with pytest.raises(ConfigError, match="already holds files"):
        rt.adapt(tiny_broad, shop, tune_encoder_to=used)
    assert (used / "model.safetensors").read_text() == "an earlier model's encoder"


def test_the_benchmark_rows_of_the_step_follow_the_keep_decision(
    tiny_broad: rt.RecModel, shop: RetailerData, few_pairs_suffice: None
) -> None:
    from rectransfer.evaluation.benchmark import run_benchmark

    report = run_benchmark(
        tiny_broad,
        shop,
        fractions=(1.0,),
        seeds=1,
        ks=(10,),
        progress=False,
        implicit_references=False,
        tune_encoder=True,
    )
    rows = {r["model"]: r for r in report["results"] if "slice" not in r}
    shipped, tuned, guarded = rows["guarded+tuning"], rows["tuned-encoder"], rows["guarded"]
    tuning = shipped["tuning"]
    assert tuning["pairs"] >= 10 and set(tuning["validation_ndcg"]) == {
        "model encoder",
        "tuned encoder",
    }
    assert shipped["ndcg@10"] == (tuned if tuning["kept"] else guarded)["ndcg@10"]
    assert tuned["users"] == guarded["users"]
