"""Fine-tuning the encoder on product-text pairs: mining, freezing, resuming, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, SchemaError
from rectransfer.text.encoder import SentenceTransformerEncoder
from rectransfer.text.load import load_encoder
from rectransfer.text.pairs import _budgets, mine_pairs, training_pairs
from rectransfer.text.texts import item_texts
from rectransfer.text.training import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    freeze_layers,
    pretrain_encoder,
)
from tests.conftest import make_shop, write_shop

ITEMS = pl.DataFrame(
    {
        "item_id": ["sku-a", "sku-b", "sku-c", "sku-d"],
        "title": ["Tent", "Sleeping bag", "Stove", "Tent"],  # d has a's text
    }
)
EVENTS = [  # (customer, item); time order within each customer
    ("cust-1", "sku-a"),
    ("cust-1", "sku-b"),
    ("cust-1", "sku-c"),
    ("cust-2", "sku-b"),
    ("cust-2", "sku-a"),  # the pair a-b again, the other way round
    ("cust-3", "sku-a"),
    ("cust-3", "sku-d"),  # two products with the same text: no pair
    ("cust-4", "sku-c"),
    ("cust-4", "sku-c"),  # the same product twice: no pair
    ("cust-5", "sku-c"),
    ("cust-5", "sku-a"),
]
SECRET = "my secret words about weekend camping"


# torch with one thread: on a shared 2-core box, two spinning OpenMP threads run ~15x slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_shop() -> RetailerData:
    interactions = pl.DataFrame(
        {
            "user_id": [u for u, _ in EVENTS],
            "item_id": [i for _, i in EVENTS],
            "timestamp": list(range(100, 100 + len(EVENTS))),
        }
    )
    users = pl.DataFrame({"user_id": ["cust-1", "cust-2", "cust-9"], "text": [SECRET] * 3})
    return RetailerData.from_frames(ITEMS, interactions, users, name="tiny")


# --- pairs ---


def test_mine_pairs_gives_consecutive_pairs_once_without_self_pairs() -> None:
    pairs = mine_pairs(tiny_shop(), window=1)
    assert pairs.rows() == [
        ("Tent.", "Sleeping bag.", 1),
        ("Sleeping bag.", "Stove.", 1),
        ("Stove.", "Tent.", 1),
    ]


def test_mine_pairs_window_adds_co_purchases_but_keeps_the_closest_occurrence() -> None:
    # u1's Tent -> Stove (two apart) is the pair u5 bought next to each other: kept once, at gap 1.
    assert mine_pairs(tiny_shop(), window=2).rows() == mine_pairs(tiny_shop(), window=1).rows()
    shop = make_shop("chain", seed=3, n_users=40)
    one, two = mine_pairs(shop, window=1), mine_pairs(shop, window=2)
    assert two.filter(pl.col("gap") == 2).height > 0
    assert two.filter(pl.col("gap") == 1).equals(one)


def _unordered(frame: pl.DataFrame) -> list[frozenset[str]]:
    return [frozenset(pair) for pair in frame.select("anchor", "positive").rows()]


def test_pairs_hold_only_product_text() -> None:
    shops = [tiny_shop(), make_shop("camp", seed=1, n_users=40, text_only_users=2)]
    pairs = training_pairs(shops, max_pairs=1_000)
    product_texts = {t for shop in shops for t in item_texts(shop.items)}
    texts = [t for column in ("anchor", "positive", "negative") for t in pairs[column].drop_nulls()]
    assert texts and set(texts) <= product_texts
    secrets = [SECRET]
    for shop in shops:
        assert shop.users is not None
        secrets += shop.users["text"].to_list() + shop.users["user_id"].to_list()
        secrets += shop.interactions["user_id"].unique().to_list()
        secrets += shop.items["item_id"].to_list()
    blob = "\n".join(texts)
    leaked = [s for s in set(secrets) if s in blob]
    assert leaked == [], f"customer or item identifiers in training pairs: {leaked[:5]}"


def branded(shop: RetailerData) -> RetailerData:
    """The shop with its name in every title, so that no two shops share a product text."""
    items = shop.items.with_columns(pl.col("title") + f" by {shop.name}")
    return RetailerData.from_frames(items, shop.interactions, shop.users, name=shop.name)


def test_training_pairs_are_seeded_deduplicated_and_spread_across_sources() -> None:
    shops = [branded(make_shop(f"s{i}", seed=i, n_users=60)) for i in range(3)]
    pairs = training_pairs(shops, max_pairs=30, random_state=7)
    assert pairs.equals(training_pairs(shops, max_pairs=30, random_state=7))
    assert not pairs.equals(training_pairs(shops, max_pairs=30, random_state=8))
    assert pairs.height == 30
    assert pairs.group_by("source").len().sort("source").rows() == [
        ("s0", 10),
        ("s1", 10),
        ("s2", 10),
    ]
    unordered = _unordered(pairs)
    assert len(set(unordered)) == len(unordered)
    assert all(len(pair) == 2 for pair in unordered)  # never a text paired with itself


def test_a_pair_two_sources_share_is_kept_once() -> None:
    twins = [make_shop("first", seed=4, n_users=60), make_shop("second", seed=5, n_users=60)]
    pairs = training_pairs(twins, max_pairs=10_000)  # same catalogue text at both shops
    unordered = _unordered(pairs)
    assert len(set(unordered)) == len(unordered)
    first = set(_unordered(mine_pairs(twins[0])))
    assert set(_unordered(pairs.filter(pl.col("source") == "first"))) == first
    assert set(_unordered(pairs.filter(pl.col("source") == "second"))).isdisjoint(first)


def test_a_small_source_gives_its_unused_share_to_the_others() -> None:
    assert _budgets([2, 100, 100], 30) == [2, 14, 14]
    assert _budgets([5, 5], 30) == [5, 5]
    assert _budgets([10, 10, 10], 7) == [3, 2, 2]
    pairs = training_pairs(
        [tiny_shop(), branded(make_shop("big", seed=2, n_users=60))], max_pairs=20
    )
    assert pairs.group_by("source").len().sort("source").rows() == [("big", 17), ("tiny", 3)]


def test_hard_negatives_come_from_the_positive_s_category() -> None:
    shop = make_shop("cats", seed=5, n_users=60)  # every product has a category
    category = dict(zip(item_texts(shop.items), shop.items["category"], strict=True))
    pairs = training_pairs([shop], max_pairs=40, random_state=1)
    assert pairs["negative"].null_count() == 0
    for _, anchor, positive, negative in pairs.iter_rows():
        assert negative not in (anchor, positive)
        assert category[negative] == category[positive]
    assert training_pairs([shop], max_pairs=40, hard_negatives=False)["negative"].null_count() == 40
    assert training_pairs([tiny_shop()])["negative"].null_count() == 3  # no categories there


# --- a tiny transformer, so that training tests take seconds ---


@pytest.fixture(scope="module")
def shops() -> list[RetailerData]:
    return [make_shop("north", seed=11, n_users=40), make_shop("south", seed=12, n_users=40)]


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _train(shops: list[RetailerData], base: Path, out: Path, **options: object) -> list[int]:
    """Fine-tune the tiny model quickly; returns the epochs that ran."""
    ran: list[int] = []
    options = {
        "base": base,
        "max_pairs": 48,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "freeze": 1,
        "show_progress": False,
        "on_epoch_end": ran.append,
        **options,
    }
    pretrain_encoder(shops, out, **options)  # type: ignore[arg-type]
    return ran


def test_freeze_layers_bounds(tiny_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu", local_files_only=True)
    assert freeze_layers(model, 0) == 3
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".embeddings." in f or f.startswith("embeddings.") for f in frozen)
    freeze_layers(model, 2)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(".layer.1." in f for f in frozen) and not any(".layer.2." in f for f in frozen)
    for bad in (3, -1, 1.5, True):
        with pytest.raises(ConfigError, match="freeze_layers"):
            freeze_layers(model, bad)  # type: ignore[arg-type]


def test_frozen_parameters_stay_bit_identical_and_the_others_move(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    out = tmp_path / "encoder"
    _train(shops, tiny_model, out, freeze=2)
    before, after = _weights(tiny_model), _weights(out)
    assert set(before) == set(after)
    moved = {name for name in before if not np.array_equal(before[name], after[name])}
    frozen = {n for n in before if "embeddings." in n or ".layer.0." in n or ".layer.1." in n}
    assert frozen and not frozen & moved
    # Every tensor of the top layer changed (BERT's pooler is unused by mean pooling: no gradient).
    assert moved == {name for name in before if ".layer.2." in name}
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["frozen"] == {"embeddings": True, "layers": 2, "of_layers": 3}
    assert metadata["sources"] == ["north", "south"]
    assert metadata["pairs"] == 48 and metadata["pairs_by_source"] == {"north": 24, "south": 24}
    assert metadata["base"]["fingerprint"] == SentenceTransformerEncoder(tiny_model).fingerprint
    assert not (tmp_path / "encoder.work").exists()  # the checkpoint goes once published


def test_metadata_holds_no_customer_data(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    out = tmp_path / "encoder"
    _train(shops, tiny_model, out, epochs=1)
    blob = (out / METADATA_FILE).read_text()
    for shop in shops:
        assert shop.users is not None
        for value in shop.users["user_id"].to_list() + shop.users["text"].to_list():
            assert value not in blob
        for value in shop.items["item_id"].to_list():
            assert value not in blob


def test_an_interrupted_run_resumes_after_its_last_epoch_with_the_same_weights(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    straight = tmp_path / "straight"
    assert _train(shops, tiny_model, straight, epochs=2) == [1, 2]

    class Stop(Exception):
        pass

    def stop_after_first(epoch: int) -> None:
        if epoch == 1:
            raise Stop

    resumed = tmp_path / "resumed"
    with pytest.raises(Stop):
        _train(shops, tiny_model, resumed, epochs=2, on_epoch_end=stop_after_first)
    assert not resumed.exists()
    assert (tmp_path / "resumed.work" / CHECKPOINT_FILE).is_file()

    assert _train(shops, tiny_model, resumed, epochs=2) == [2]  # epoch 1 is not redone
    a, b = _weights(straight), _weights(resumed)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert not (tmp_path / "resumed.work").exists()


def test_a_run_stopped_mid_epoch_resumes_at_its_last_checkpoint(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rectransfer.text.training as et

    steps: list[int] = []
    loss_class = et._loss_class

    def counting_loss_class() -> object:
        class Counting(loss_class()):  # type: ignore[misc]
            def forward(self, *args: object) -> object:
                steps.append(1)
                return super().forward(*args)

        return Counting

    monkeypatch.setattr(et, "_loss_class", counting_loss_class)
    _train(shops, tiny_model, tmp_path / "straight", checkpoint_every=2)
    n_batches, steps[:] = len(steps), []
    assert n_batches > 3

    class Stop(Exception):
        pass

    save_checkpoint = et._save_checkpoint

    def save_then_stop(work_dir: Path, state: dict[str, object]) -> None:
        save_checkpoint(work_dir, state)
        if state["step"] == 2:
            raise Stop

    monkeypatch.setattr(et, "_save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        _train(shops, tiny_model, tmp_path / "resumed", checkpoint_every=2)
    assert len(steps) == 2
    monkeypatch.setattr(et, "_save_checkpoint", save_checkpoint)
    steps[:] = []
    assert _train(shops, tiny_model, tmp_path / "resumed", checkpoint_every=2) == [1]
    assert len(steps) == n_batches - 2  # the two finished batches are not redone
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_a_checkpoint_of_other_arguments_is_not_resumed(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    def stop(epoch: int) -> None:
        raise KeyboardInterrupt

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("the user's own file")
    with pytest.raises(KeyboardInterrupt):
        _train(shops, tiny_model, tmp_path / "a", epochs=2, work_dir=work, on_epoch_end=stop)
    ran = _train(shops, tiny_model, tmp_path / "a", epochs=2, work_dir=work, random_state=1)
    assert ran == [1, 2]
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]  # only the checkpoint went


def test_a_finished_training_is_not_run_again(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    out = tmp_path / "encoder"
    _train(shops, tiny_model, out)
    files = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert _train(shops, tiny_model, out) == []
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == files


def test_a_failed_save_leaves_no_half_written_output(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformer

    original = SentenceTransformer.save

    def save_then_fail(self: SentenceTransformer, path: str, *args: object, **kw: object) -> None:
        original(self, path, *args, **kw)  # type: ignore[arg-type]
        (Path(path) / "model.safetensors").write_bytes(b"trunc")
        raise OSError("disk full")

    out = tmp_path / "encoder"
    monkeypatch.setattr(SentenceTransformer, "save", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _train(shops, tiny_model, out)
    assert not out.exists()  # no encoder yet: still none

    monkeypatch.setattr(SentenceTransformer, "save", original)
    assert _train(shops, tiny_model, out) == []  # the checkpoint made only the save run again
    previous = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    fingerprint = SentenceTransformerEncoder(out).fingerprint

    monkeypatch.setattr(SentenceTransformer, "save", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _train(shops, tiny_model, out, random_state=3)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == previous
    assert SentenceTransformerEncoder(out).fingerprint == fingerprint
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_arguments_are_refused(
    tiny_model: Path, shops: list[RetailerData], tmp_path: Path
) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(ConfigError, match="not a fine-tuned encoder"):
        pretrain_encoder(shops, foreign, base=tiny_model)
    with pytest.raises(ConfigError, match="hashing"):
        pretrain_encoder(shops, tmp_path / "x", base="hashing:32")
    with pytest.raises(ConfigError, match="epochs"):
        pretrain_encoder(shops, tmp_path / "x", base=tiny_model, epochs=0)
    with pytest.raises(ConfigError, match="freeze_layers"):
        pretrain_encoder(shops, tmp_path / "x", base=tiny_model, freeze=3, max_pairs=8)
    with pytest.raises(ConfigError, match="distinct names"):
        pretrain_encoder([shops[0], shops[0]], tmp_path / "x", base=tiny_model)
    one_pair = RetailerData.from_frames(
        ITEMS,
        pl.DataFrame({"user_id": ["u", "u"], "item_id": ["sku-a", "sku-b"], "timestamp": [1, 2]}),
        name="one",
    )
    with pytest.raises(SchemaError, match="only 1 pair"):
        pretrain_encoder([one_pair], tmp_path / "x", base=tiny_model)


def test_cli_pretrain_encoder(tiny_model: Path, shops: list[RetailerData], tmp_path: Path) -> None:
    from rectransfer.cli import main

    folders = [str(write_shop(shop, tmp_path / shop.name)) for shop in shops]
    out = tmp_path / "models" / "encoder"
    argv = ["pretrain-encoder", "--sources", *folders, "--out", str(out)]
    argv += ["--encoder", str(tiny_model), "--max-pairs", "40", "--threads", "1"]
    argv += ["--freeze-layers", "1"]
    assert main(argv) == 0
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["pairs"] == 40 and metadata["frozen"]["layers"] == 1
    assert load_encoder(out, use_cache=False).encode(["tent"]).shape == (1, 32)
    assert main([*argv[:-1], "9"]) == 2  # freezing all layers: a one-line error, no traceback


# --- end to end, on the real packaged MiniLM ---


@pytest.mark.e2e
def test_fine_tuning_minilm_moves_trained_pairs_closer(
    shops: list[RetailerData], tmp_path: Path
) -> None:
    pairs = training_pairs(shops, max_pairs=32)
    base = load_encoder("default", use_cache=False)
    out = tmp_path / "minilm-shops"
    pretrain_encoder(
        shops, out, max_pairs=32, batch_size=16, learning_rate=1e-4, show_progress=False
    )
    tuned = load_encoder(out, use_cache=False)
    assert tuned.dim == base.dim == 384
    assert tuned.fingerprint != base.fingerprint

    def cosines(encoder: object) -> np.ndarray:
        a = encoder.encode(pairs["anchor"].to_list())  # type: ignore[attr-defined]
        b = encoder.encode(pairs["positive"].to_list())  # type: ignore[attr-defined]
        return np.asarray((a * b).sum(axis=1))

    before, after = cosines(base), cosines(tuned)
    assert after.mean() > before.mean()
    assert (after > before).mean() > 0.5
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["base"]["name"] == "all-MiniLM-L6-v2"
    assert metadata["frozen"]["of_layers"] == 6
