"""The next-item model over text vectors and its leave-one-source-out probe."""

import json

import numpy as np
import pytest
import torch

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.data.histories import Histories
from rectransfer.evaluation import next_item_probe
from rectransfer.evaluation.next_item_model import (
    WINDOW,
    NextItemTraining,
    training_examples,
    windows,
)
from rectransfer.evaluation.next_item_net import NextItemNet, gather, train_next_item
from rectransfer.evaluation.next_item_probe import (
    PRETRAIN_CUTS,
    ROWS,
    next_item_markdown,
    run_next_item_probe,
)
from rectransfer.prepared.prepare import prepare
from tests.conftest import SAMPLE_DATA

SOURCES = sorted((SAMPLE_DATA / "sources").iterdir())[:3]


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _histories(sequences: list[list[int]], n_items: int) -> Histories:
    indptr = np.r_[0, np.cumsum([len(s) for s in sequences])].astype(np.int64)
    items = np.concatenate(sequences).astype(np.int32)
    return Histories(indptr, items, np.arange(len(items), dtype=np.int64), n_items)


def test_numpy_prediction_is_the_torch_network():
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 50, 16)
    torch.manual_seed(0)
    net = NextItemNet(16, 8)
    for p in net.parameters():  # the correction starts at zero: give every weight a value
        torch.nn.init.normal_(p, std=0.3)
    window = rng.integers(-1, 50, (7, WINDOW))
    window[:, -1] = rng.integers(0, 50, 7)
    window[0, :5] = -1  # a short history: padding in front
    with torch.no_grad():
        w = torch.from_numpy(window)
        v = torch.from_numpy(vectors)
        expected = net(gather(v, w), gather(v, w[:, -1])).numpy()
    got = net.to_model().predict_windows(window, vectors)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_an_untrained_model_is_the_last_items_text_and_an_empty_history_is_zero():
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 30, 16)
    model = NextItemNet(16, 8).to_model()
    context = _histories([[3, 7, 9], [4], []], 30)
    q = model.predict(context, np.array([0, 1, 2]), vectors)
    np.testing.assert_allclose(q[:2], vectors[[9, 4]], atol=1e-6)
    assert not q[2].any()


def test_training_learns_a_successor_that_text_similarity_cannot_see():
    """Items follow a random permutation of unrelated vectors: the last item's text ranks its
    successor by chance, a trained model finds it."""
    rng = np.random.default_rng(2)
    n_items = 60
    vectors = _unit(rng, n_items, 32)
    successor = rng.permutation(n_items)
    sequences = []
    for _ in range(600):
        seq = [int(rng.integers(n_items))]
        for _ in range(5):
            seq.append(int(successor[seq[-1]]))
        sequences.append(seq)
    training = NextItemTraining(
        steps=300, max_epochs=100, uniform_negatives=0, learning_rate=1e-2, hidden=32
    )
    model = train_next_item([(_histories(sequences, n_items), vectors)], training)
    last = np.arange(n_items)
    window = np.full((n_items, WINDOW), -1)
    window[:, -1] = last
    window[:, -2] = np.argsort(successor)[last]  # each item's own predecessor
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    by_text = (sims.argmax(axis=1) == successor).mean()
    learnt = model.predict_windows(window, vectors) @ vectors.T
    learnt[last, last] = -np.inf
    by_model = (learnt.argmax(axis=1) == successor).mean()
    assert by_model > 0.8 > 0.1 > by_text


def test_fine_tuning_starts_from_the_given_model_and_few_examples_take_few_steps():
    rng = np.random.default_rng(3)
    n_items = 40
    vectors = _unit(rng, n_items, 16)
    successor = rng.permutation(n_items)
    shop = _histories([[i, int(successor[i])] for i in range(n_items)] * 5, n_items)
    learnt = train_next_item(
        [(shop, vectors)],
        NextItemTraining(steps=200, max_epochs=1000, uniform_negatives=0, learning_rate=1e-2),
    )
    window = np.full((n_items, WINDOW), -1)
    window[:, -1] = np.arange(n_items)
    before = learnt.predict_windows(window, vectors)
    # one step (max_epochs caps 200 examples at one batch of 512) barely moves the start...
    barely = NextItemTraining(steps=200, max_epochs=1e-6, learning_rate=1e-4)
    tuned = train_next_item([(shop, vectors)], barely, start=learnt, random_state=1)
    np.testing.assert_allclose(tuned.predict_windows(window, vectors), before, atol=0.02)
    # ...while the same step from scratch is the last item's text, far from the learnt model
    fresh = train_next_item([(shop, vectors)], barely, random_state=1)
    assert np.abs(fresh.predict_windows(window, vectors) - before).max() > 0.2


def test_training_examples_skip_first_items_and_repeats_and_respect_the_cap():
    context = _histories([[1, 2, 1, 3], [5], [6, 7]], 10)
    window, target = training_examples(
        context, max_examples=100, rng=np.random.default_rng(0), width=3
    )
    assert target.tolist() == [2, 3, 7]  # 1 again is a repeat; 5 and 6 have nothing before them
    assert window.tolist() == [[-1, -1, 1], [1, 2, 1], [-1, -1, 6]]
    _, capped = training_examples(context, max_examples=2, rng=np.random.default_rng(0), width=3)
    assert len(capped) <= 2
    assert windows(context, np.array([1]), 3).tolist() == [[-1, -1, 5]]


def test_bad_training_options_are_refused():
    with pytest.raises(rt.ConfigError, match=r"NextItemTraining\.steps must be >= 1"):
        NextItemTraining(steps=0)
    with pytest.raises(rt.ConfigError, match=r"NextItemTraining\.uniform_negatives"):
        NextItemTraining(uniform_negatives=-1)
    with pytest.raises(rt.ConfigError, match=r"NextItemTraining\.max_epochs must be > 0"):
        NextItemTraining(max_epochs=0)
    vectors = _unit(np.random.default_rng(4), 5, 8)
    with pytest.raises(rt.ConfigError, match="nothing to learn from"):
        train_next_item([(_histories([[1], [2]], 5), vectors)])


@pytest.fixture(scope="module")
def probe(encoder):
    folds, trained = [], []

    def spy(shops, training, **kw):  # what each model is trained on, as (customers, events)
        trained.append(([(h.n_users, len(h.items)) for h, _ in shops], kw.get("start") is not None))
        return train_next_item(shops, training, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(next_item_probe, "train_next_item", spy)
        doc = run_next_item_probe(
            SOURCES,
            encoder=encoder,
            customers=50,
            fractions=(1.0, 0.5),
            training=NextItemTraining(steps=20, hard_negatives=4, in_batch_negatives=True),
            on_fold=lambda d: folds.append(len(d["folds"])),
        )
    doc["_calls"], doc["_trained"] = folds, trained
    return doc


def test_probe_holds_each_source_out_of_its_own_training(probe, encoder):
    names = [s.name for s in SOURCES]
    histories = [prepare(rt.RetailerData.load(s), encoder).index.histories for s in SOURCES]
    assert [f["held_out"] for f in probe["folds"]] == names
    per_fold = len(probe["_trained"]) // len(SOURCES)
    assert per_fold == 1 + 2 * 2  # the other shops' model, then two per fraction
    for i, fold in enumerate(probe["folds"]):
        calls = probe["_trained"][i * per_fold : (i + 1) * per_fold]
        # the other shops' model: every source but the held-out one, without the last three items
        others = [h.truncate(PRETRAIN_CUTS) for j, h in enumerate(histories) if j != i]
        assert calls[0] == ([(h.n_users, len(h.items)) for h in others], False)
        # the shop's own models: at f = 1 every customer with an item before the last, less it
        lengths = histories[i].lengths
        own = [(int((lengths >= 2).sum()), int((lengths[lengths >= 2] - 1).sum()))]
        assert calls[1:3] == [(own, False), (own, True)]
        assert [c[1] for c in calls[3:]] == [False, True]  # f = 0.5: from scratch, then fine-tuned
        assert calls[3][0][0][0] == round(0.5 * own[0][0])
        assert fold["trained_on"] == [n for n in names if n != fold["held_out"]]
        assert [r["fraction"] for r in fold["results"]] == [1.0, 0.5]
        for result in fold["results"]:
            assert 0 < result["n_customers"] <= 50
            assert set(result["rows"]) == set(ROWS)
            for metrics in result["rows"].values():
                assert 0 <= metrics["ndcg@10"] <= metrics["recall@10"] <= metrics["recall@100"] <= 1
    assert probe["_calls"] == [1, 2, 3]
    assert probe["summary"][f"f = 0.5, {ROWS[3]}: ndcg@10 / last item"]["of"] <= 3
    table = next_item_markdown(probe)
    assert all(n in table for n in [*ROWS, *(s.name for s in SOURCES)])


def test_probe_refuses_one_source_and_bad_fractions(encoder):
    with pytest.raises(rt.ConfigError, match="two or more sources"):
        run_next_item_probe(SOURCES[:1], encoder=encoder)
    with pytest.raises(rt.ConfigError, match=r"fractions must lie in \(0, 1\]"):
        run_next_item_probe(SOURCES, encoder=encoder, fractions=(0.0,))


def test_cli_writes_the_probe_json_and_table(tmp_path, capsys):
    out, table = tmp_path / "probe.json", tmp_path / "probe.md"
    argv = ["next-item-probe", "--sources", *map(str, SOURCES[:2]), "--customers", "30"]
    argv += ["--fractions", "1.0", "--steps", "5", "--negatives", "0", "--no-in-shop"]
    argv += ["--encoder", "hashing", "--out", str(out), "--table", str(table), "--quiet"]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["training"]["uniform_negatives"] == 0 and doc["in_shop"] is False
    assert [[set(r["rows"]) for r in f["results"]] for f in doc["folds"]] == [[set(ROWS[:2])]] * 2
    assert table.read_text().startswith("| held out | f | customers |")
    assert "results ->" in capsys.readouterr().out
