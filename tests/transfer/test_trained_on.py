"""What a shipped model says it was trained on: the sources only for what carries them."""

import importlib
import json

import pytest

import rectransfer as rt
from rectransfer.transfer.adapt import adapt

ADAPT = importlib.import_module("rectransfer.transfer.adapt")  # the module: rt.adapt is a function


@pytest.mark.parametrize(
    ("decision", "trained_on"),
    [
        ("local", ["target"]),  # trained on the retailer alone: no source went into it
        ("adapted", ["source0", "source1", "source2", "target"]),
        ("blend", ["source0", "source1", "source2", "target"]),
        ("broad", ["source0", "source1", "source2"]),  # shipped untouched
    ],
)
def test_a_shipped_model_names_what_its_ranker_was_trained_on(
    broad, target, monkeypatch, tmp_path, decision, trained_on
):
    assert broad.config.trained_on == ["source0", "source1", "source2"]
    monkeypatch.setattr(ADAPT, "decide", lambda gains: (decision, "forced for the test"))
    model = adapt(broad, target, random_state=0)
    assert model.kind == decision
    assert model.config.trained_on == trained_on
    saved = json.loads((model.save(tmp_path / "model") / "config.json").read_text())
    assert saved["trained_on"] == trained_on
    assert rt.RecModel.load(tmp_path / "model").config.trained_on == trained_on
