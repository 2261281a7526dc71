"""The ``markov`` peer: planted transitions and text come out on top; weights from validation."""

import numpy as np
import pytest

import rectransfer as rt
from rectransfer.data.histories import Histories
from rectransfer.evaluation.benchmark import run_benchmark
from rectransfer.evaluation.markov import choose_markov, markov_scorer
from rectransfer.prepared.stats import BehaviourStats
from tests.conftest import make_shop


def histories(sequences, n_items):
    lengths = [len(s) for s in sequences]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.array([i for s in sequences for i in s], dtype=np.int32)
    return Histories(indptr, items, np.arange(len(items), dtype=np.int64), n_items)


def orthogonal(n):
    """Text that says nothing: every product's vector is orthogonal to every other's."""
    return np.eye(n, dtype=np.float32)


def test_a_planted_follower_ranks_first():
    # many customers bought 0 then 1, and 2 then 3; text is no help
    train = histories([[0, 1]] * 20 + [[2, 3]] * 20, 6)
    stats = BehaviourStats.build(train)
    query = histories([[0], [2, 0]], 6)
    scores = markov_scorer(query, orthogonal(6), stats, weight=1.0, decay=0.5)(np.array([0, 1]))
    scores[0, 0] = scores[1, [0, 2]] = -np.inf  # own items
    assert scores.argmax(axis=1).tolist() == [1, 1]  # "0 is followed by 1", from the LAST item
    # without transitions nothing points at 1: it ties with every other unseen item
    text_only = markov_scorer(query, orthogonal(6), stats, weight=0.0)(np.array([0]))
    assert text_only[0, 1] == text_only[0, 4] == 0


def test_the_last_items_text_counts_not_an_older_one():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = histories([[2, 0]], 4)  # last item 0: its text neighbour 1 beats 2's neighbour 3
    empty = BehaviourStats.build(histories([[]], 4))
    scores = markov_scorer(query, vectors, empty, weight=0.0)(np.array([0]))
    assert scores[0, 1] > scores[0, 3]


def test_the_weight_is_chosen_on_the_validation_items():
    transitions = histories([[0, 1]] * 20 + [[2, 3]] * 20, 6)
    stats = BehaviourStats.build(transitions)
    # validation customers whose next item follows the planted transition: weight > 0
    context = histories([[0], [2]], 6)
    rows, follow = np.array([0, 1]), np.array([1, 3])
    chosen = choose_markov(context, rows, follow, orthogonal(6), stats)
    assert chosen.weight > 0 and chosen.ndcg[(0.0, 1.0)] < chosen.ndcg[(chosen.weight, 1.0)]
    # next items that the text predicts and the transitions do not: weight 0
    vectors = orthogonal(6)
    vectors[4] = vectors[0]  # 4 reads like 0
    vectors[5] = vectors[2]
    chosen = choose_markov(context, rows, np.array([4, 5]), vectors, stats)
    assert chosen.weight == 0.0
    assert chosen.report()["markov"]["validation_customers"] == 2


def test_bad_options_name_the_argument():
    h = histories([[0, 1]], 2)
    with pytest.raises(rt.ConfigError, match="weight"):
        markov_scorer(h, orthogonal(2), BehaviourStats.build(h), weight=-1.0)
    with pytest.raises(rt.ConfigError, match="decays"):
        choose_markov(
            h, np.array([0]), np.array([1]), orthogonal(2), BehaviourStats.build(h), decays=(2.0,)
        )


def test_the_benchmark_has_markov_rows_in_both_history_settings(broad):
    shop = make_shop("markov-bench", seed=5, n_users=120)
    report = run_benchmark(
        broad,
        shop,
        fractions=(1.0,),
        ks=(10,),
        progress=False,
        implicit_references=False,
        own_history_kept=True,
    )
    rows = {r["model"]: r for r in report["results"] if "slice" not in r}
    for name in ("popularity", "item-knn", "text-only", "markov"):
        assert f"{name} (own items kept)" in rows
    markov = rows["markov"]
    # planted chains: the next item is of the last one's domain, which its text names
    choice = markov["markov"]
    assert choice["validation_customers"] > 0 and len(choice["validation_ndcg@10"]) == 12
    assert markov["ndcg@10"] > 2 * rows["popularity"]["ndcg@10"]
    # leaving one's own items in can only push the target down for the same scorer
    assert rows["popularity (own items kept)"]["ndcg@10"] <= rows["popularity"]["ndcg@10"]
