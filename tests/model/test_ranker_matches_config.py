"""A model directory whose ranker does not match its config.json is refused on load."""

import hashlib
import json

import lightgbm as lgb
import numpy as np
import pytest

import rectransfer as rt
from rectransfer.model.artifacts import CHECKSUM_FILE, RANKER_FILE


def _ranker_with(n_features: int) -> str:
    """A real LambdaRank model, as rectransfer trains them, over ``n_features`` features."""
    rng = np.random.default_rng(0)
    x = rng.random((200, n_features))
    y = (x[:, 0] > 0.5).astype(int)
    names = [*rt.FEATURE_NAMES, *(f"extra_{i}" for i in range(n_features))][:n_features]
    params = {"objective": "lambdarank", "verbose": -1, "num_leaves": 4, "seed": 0}
    data = lgb.Dataset(x, y, group=[20] * 10, feature_name=names)
    return lgb.train(params, data, num_boost_round=3).model_to_string()


def _replace_ranker(path, text: str) -> None:
    """Swap ranker.txt consistently: its checksum recomputed, as a careless copy would do."""
    (path / RANKER_FILE).write_text(text)
    sums = json.loads((path / CHECKSUM_FILE).read_text())
    sums[RANKER_FILE] = hashlib.sha256((path / RANKER_FILE).read_bytes()).hexdigest()
    (path / CHECKSUM_FILE).write_text(json.dumps(sums))


@pytest.mark.parametrize("n_features", [3, len(rt.FEATURE_NAMES) - 1])
def test_a_ranker_with_another_feature_count_is_refused(broad, tmp_path, n_features):
    path = broad.save(tmp_path / "model")
    _replace_ranker(path, _ranker_with(n_features))
    # refused by the model-text check (max_feature_idx) before LightGBM reads it, and by the
    # feature-count check after it: either names the features
    expected = "max_feature_idx|feature_names|features but config.json lists"
    with pytest.raises(rt.IncompatibleArtifactError, match=expected):
        rt.RecModel.load(path)


def test_a_ranker_with_the_right_feature_count_loads(broad, tmp_path):
    # the same swap with the config's feature count loads: the refusal above is about the count
    path = broad.save(tmp_path / "model")
    _replace_ranker(path, _ranker_with(len(rt.FEATURE_NAMES)))
    assert rt.RecModel.load(path).booster.num_feature() == len(rt.FEATURE_NAMES)
