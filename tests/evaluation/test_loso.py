"""The leave-one-source-out loop and pretraining on virtual small shops."""

import importlib
import json

import numpy as np
import pytest

import rectransfer as rt
from rectransfer.cli import main
from rectransfer.evaluation.loso import loso_markdown, run_loso
from rectransfer.prepared.prepare import prepare
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.ranking.training_data import cut_queries
from rectransfer.transfer.virtual_shops import virtual_shop
from tests.conftest import SAMPLE_DATA, make_shop

SOURCES = sorted((SAMPLE_DATA / "sources").iterdir())
pretrain_module = importlib.import_module(
    "rectransfer.transfer.pretrain"
)  # the package exports the function


# the small loop every test here runs or resumes
SMALL = dict(
    customers=150,
    fractions=(1.0, 0.5),
    seeds=2,
    ks=(10,),
    pretrain_options={"max_customers_per_retailer": 300, "virtual_shops": ()},
    progress=False,
)


@pytest.fixture(scope="module")
def loso_doc(encoder):
    held = []

    def record(doc):
        held.append([f["held_out"] for f in doc["folds"]])

    doc = run_loso(SOURCES, encoder=encoder, on_fold=record, **SMALL)
    doc["_calls"] = held
    return doc


def test_every_source_is_held_out_once_and_never_trained_on(loso_doc):
    names = [path.name for path in SOURCES]
    assert [f["held_out"] for f in loso_doc["folds"]] == names
    for fold in loso_doc["folds"]:
        assert fold["held_out"] not in fold["trained_on"]
        assert sorted(fold["trained_on"]) == sorted(set(names) - {fold["held_out"]})
        assert fold["customers"] == 150 and fold["rounds"] >= 1
        models = {
            (r["model"], r["fraction"], r["seed"]) for r in fold["results"] if "slice" not in r
        }
        for model in ("broad", "local-only", "guarded", "markov", "popularity", "text-only"):
            assert {(model, 1.0, 0), (model, 0.5, 0), (model, 0.5, 1)} <= models
    assert loso_doc["_calls"][-1] == names and len(loso_doc["_calls"]) == len(names)
    json.dumps({k: v for k, v in loso_doc.items() if k != "_calls"})


def test_the_summary_has_every_fold_and_fraction(loso_doc):
    summary = loso_doc["summary"]
    assert len(summary["per_fold"]) == 2 * len(SOURCES)
    for entry in summary["per_fold"]:
        ratio = entry["guarded/local-only"]
        expected = entry["guarded"]["mean"] / entry["local-only"]["mean"]
        assert ratio == pytest.approx(expected)
    assert {m["ratio"] for m in summary["means"]} == {
        "broad/local-only",
        "guarded/local-only",
        "guarded/markov",
    }
    table = loso_markdown(loso_doc)
    assert all(path.name in table for path in SOURCES) and "Goals at f = 0.1" in table


def test_resume_keeps_finished_folds_and_refuses_other_options(loso_doc, encoder):
    names = [path.name for path in SOURCES]
    doc = json.loads(json.dumps({k: v for k, v in loso_doc.items() if k != "_calls"}))
    again = run_loso(SOURCES, encoder=encoder, resume=doc, **SMALL)
    assert [f["held_out"] for f in again["folds"]] == names  # nothing rerun
    with pytest.raises(rt.ConfigError, match="customers"):
        run_loso(SOURCES, encoder=encoder, customers=200, resume=doc, progress=False)
    # a document from before ship_rules existed ran without it: it resumes a run without it
    # and is refused by a run with it
    del doc["ship_rules"]
    assert len(run_loso(SOURCES, encoder=encoder, resume=doc, **SMALL)["folds"]) == len(names)
    with pytest.raises(rt.ConfigError, match="ship_rules"):
        run_loso(SOURCES, encoder=encoder, resume=doc, ship_rules=True, **SMALL)


def test_weighted_folds_pretrain_for_their_held_out_source(loso_doc, encoder):
    first = SOURCES[0].name
    doc = run_loso(SOURCES, encoder=encoder, held_out=[first], weight_sources=True, **SMALL)
    (fold,) = doc["folds"]
    weights = fold["source_weights"]
    assert sorted(weights) == sorted(fold["trained_on"]) and first not in weights
    assert np.mean(list(weights.values())) == pytest.approx(1.0, abs=1e-3)
    assert doc["weight_sources"] is True and "source_weights" not in loso_doc["folds"][0]
    # a document from before the option existed ran without it
    earlier = json.loads(json.dumps({k: v for k, v in loso_doc.items() if k != "_calls"}))
    del earlier["weight_sources"]
    with pytest.raises(rt.ConfigError, match="weight_sources"):
        run_loso(SOURCES, encoder=encoder, resume=earlier, weight_sources=True, **SMALL)


def test_bad_loso_options_name_the_argument(encoder):
    with pytest.raises(rt.ConfigError, match="held_out"):
        run_loso(SOURCES, encoder=encoder, held_out=["nowhere"], progress=False)
    with pytest.raises(rt.ConfigError, match="at least two"):
        run_loso(SOURCES[:1], encoder=encoder, progress=False)


def test_cli_loso_writes_json_and_table(tmp_path, capsys):
    out, table = tmp_path / "loso.json", tmp_path / "loso.md"
    code = main(
        [
            "loso",
            "--sources",
            *map(str, SOURCES[:2]),
            "--out",
            str(out),
            "--table",
            str(table),
            "--customers",
            "120",
            "--fractions",
            "1.0,0.5",
            "--seeds",
            "1",
            "--k",
            "10",
            "--max-customers",
            "200",
            "--virtual-shops",
            "0.5",
            "--max-negatives",
            "40",
            "--held-out",
            SOURCES[0].name,
            "--encoder",
            "hashing",
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert [f["held_out"] for f in doc["folds"]] == [SOURCES[0].name]
    assert doc["pretrain_options"]["virtual_shops"] == [0.5]
    assert doc["pretrain_options"]["max_negatives"] == 40
    assert SOURCES[0].name in table.read_text()
    assert "guarded/local" in capsys.readouterr().out


def test_virtual_shop_statistics_are_built_on_the_subsample_only(encoder):
    source = prepare(make_shop("big", seed=3, n_users=200), encoder)
    shop, parent_rows = virtual_shop(source, 0.25, seed=0)
    assert shop.name == "big@0.25" and shop.index.histories.n_users == 50
    assert shop.catalogue is source.catalogue  # whole catalogue, nothing re-encoded
    # its customers' sequences are the source's, row for row
    for row, parent in enumerate(parent_rows):
        seq = shop.index.histories.sequence(row)
        assert np.array_equal(seq, source.index.histories.sequence(int(parent)))
    own = cut_queries(shop, 0).stats
    expected = BehaviourStats.build(source.index.histories.select(parent_rows).truncate(1))
    whole = cut_queries(source, 0).stats
    assert np.array_equal(own.count, expected.count)
    assert (own.trans_fwd != expected.trans_fwd).nnz == 0
    assert own.count.sum() < 0.5 * whole.count.sum()
    again, _ = virtual_shop(source, 0.25, seed=0)
    assert np.array_equal(again.index.user_ids, shop.index.user_ids)  # seeded


def test_pretrain_learns_from_virtual_shops_with_their_own_statistics(
    sources, encoder, monkeypatch
):
    seen = []
    real = pretrain_module.labelled_rows

    def spy(prepared, cuts, **kwargs):
        rows = real(prepared, cuts, **kwargs)
        events = int(prepared.index.histories.lengths.sum())
        stats_events = float(cut_queries(prepared, 0).stats.count.sum())
        seen.append((prepared.name, events, stats_events, rows))
        return rows

    monkeypatch.setattr(pretrain_module, "labelled_rows", spy)
    model = rt.pretrain(sources, encoder=encoder, virtual_shops=(0.25,), random_state=0)
    names = [name for name, *_ in seen]
    assert names == [n for s in sources for n in (s.name, f"{s.name}@0.25")]
    assert model.config.trained_on == [s.name for s in sources]
    assert model.config.params["virtual_shops"] == [0.25]
    for i, (name, events, stats_events, rows) in enumerate(seen):
        source = sources[i // 2]
        if "@" in name:  # statistics of a quarter of the customers, not of the whole source
            assert events < 0.4 * source.n_interactions
            assert stats_events < 0.4 * seen[i - 1][2]
            # customer keys are the source's: one customer never sits on both sides of a split
            assert np.all(rows.group_customer >> 40 == i // 2)
            assert set(rows.group_customer) <= set(range((i // 2) << 40, ((i // 2) << 40) + 200))


def test_the_cli_can_pretrain_on_the_sources_alone():
    from rectransfer.cli import build_parser

    args = ["pretrain", "--sources", "a", "--out", "m"]
    assert build_parser().parse_args(args).virtual_shops == [0.1]
    assert build_parser().parse_args([*args, "--virtual-shops", "none"]).virtual_shops == []


def test_virtual_shop_fractions_are_checked(sources, encoder):
    with pytest.raises(rt.ConfigError, match="virtual_shops"):
        rt.pretrain(sources, encoder=encoder, virtual_shops=(1.0,))


def test_a_fold_can_pretrain_with_other_candidate_counts_and_the_document_records_them(encoder):
    first = SOURCES[0].name
    fewer = rt.CandidateConfig(text_last=10, text_recent=5, text_user=5, cooc=10, transitions=5)
    options = {**SMALL["pretrain_options"], "candidates": fewer}
    doc = run_loso(
        SOURCES, encoder=encoder, held_out=[first], **{**SMALL, "pretrain_options": options}
    )
    written = json.loads(json.dumps(doc))  # the document is JSON as it is
    assert written["pretrain_options"]["candidates"] == fewer.to_dict()
    assert written["folds"][0]["held_out"] == first
