"""Tenants: retailers' data never mixes, models and caches hold no retailer's raw data, and
loading a model or a cache runs no code from its files."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import pickle
import re
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from rectransfer.model.artifacts import CHECKSUM_FILE, CONFIG_FILE, RANKER_FILE
from rectransfer.prepared.prepare import prepare
from rectransfer.serving.export import partition_path
from rectransfer.text.embedding_cache import EmbeddingCache
from rectransfer.text.encoder import CachedEncoder, HashingEncoder
from rectransfer.text.texts import item_texts, user_texts
from tests.conftest import ROOT, make_shop

PACKAGE = ROOT / "rectransfer"


def secret_shop(name: str, seed: int, n_users: int = 60) -> rt.RetailerData:
    """A planted shop whose ids and customer text are unique strings, easy to search for."""
    shop = make_shop(name, seed=seed, n_users=n_users, text_only_users=2)
    tag = uuid.UUID(int=seed).hex[-10:]
    item = {i: f"sku-{tag}-{n:04d}" for n, i in enumerate(shop.items["item_id"])}
    user = {u: f"cust-{tag}-{n:04d}" for n, u in enumerate(shop.users["user_id"])}
    users = shop.users.with_columns(
        pl.col("user_id").replace_strict(user),
        (pl.col("text") + f" (private note {tag} " + pl.col("user_id") + ")").alias("text"),
    )
    return rt.RetailerData.from_frames(
        shop.items.with_columns(pl.col("item_id").replace_strict(item)),
        shop.interactions.with_columns(
            pl.col("item_id").replace_strict(item), pl.col("user_id").replace_strict(user)
        ),
        users,
        name=name,
    )


def customers(shop: rt.RetailerData) -> set[str]:
    assert shop.users is not None
    return set(shop.interactions["user_id"]) | set(shop.users["user_id"])


# ----------------------------------------------------------------------------------------------
# Recommendations and exports


@pytest.fixture(scope="module")
def shops() -> dict[str, rt.RetailerData]:
    return {name: secret_shop(name, seed=i + 1, n_users=30) for i, name in enumerate("ab")}


def test_recommendations_hold_only_the_retailers_items_and_customers(broad, shops):
    a, b = shops["a"], shops["b"]
    first = rt.recommend(broad, a, k=5)
    rt.recommend(broad, b, k=5)  # the same model object serves another retailer in between
    again = rt.recommend(broad, a, k=5)
    assert again.equals(first)  # nothing of b stayed behind
    for shop in (a, b):
        recs = rt.recommend(broad, shop, k=5)
        assert set(recs["item_id"]) <= set(shop.items["item_id"])
        assert set(recs["user_id"]) == customers(shop)
    # Asking one retailer for another's customer gives that retailer's popular items only.
    stranger = next(iter(customers(b)))
    with pytest.warns(rt.DataQualityWarning, match="unknown at 'a'"):
        asked = rt.recommend(broad, a, [stranger], k=5)
    assert set(asked["item_id"]) <= set(a.items["item_id"])
    assert asked["source"].unique().to_list() == ["popular"]


def test_colliding_ids_of_two_retailers_do_not_mix(broad):
    """Two shops that use the same id strings for different products and customers."""
    plain = {name: make_shop("same", seed=seed, n_users=20) for name, seed in (("x", 1), ("y", 2))}
    x = plain["x"]
    y = rt.RetailerData.from_frames(
        plain["y"].items.with_columns(title=pl.lit("espresso machine deluxe")),
        plain["y"].interactions,
        plain["y"].users,
        name="y",
    )
    alone = rt.recommend(broad, x, k=5)
    rt.recommend(broad, y, k=5)
    assert rt.recommend(broad, x, k=5).equals(alone)


def test_exports_of_two_retailers_in_one_root_stay_apart(broad, shops, tmp_path):
    date = dt.date(2026, 11, 23)
    for name, shop in shops.items():
        recs = rt.recommend(broad, shop, k=4)
        rt.write_recommendations(recs, tmp_path, retailer=name, run_date=date, model_version="v")
    scanned = pl.scan_parquet(tmp_path / "**" / "*.parquet", hive_partitioning=True).collect()
    for name, shop in shops.items():
        part = pl.read_parquet(
            partition_path(tmp_path, name, date) / "part-0.parquet", hive_partitioning=True
        )
        assert part["retailer"].unique().to_list() == [name]
        assert set(part["item_id"]) <= set(shop.items["item_id"])
        assert set(part["user_id"]) <= customers(shop)
        assert scanned.filter(pl.col("retailer") == name).height == part.height


# ----------------------------------------------------------------------------------------------
# What models and caches hold


def raw_values(shop: rt.RetailerData) -> set[str]:
    """The raw item ids, customer ids and customer text of a shop."""
    assert shop.users is not None
    values = set(shop.items["item_id"]) | customers(shop)
    values |= set(shop.users["text"]) | set(user_texts(shop.users))
    return {v for v in values if v}


def leaks(folder: Path, values: set[str]) -> list[tuple[str, str]]:
    """(file, value) for every raw value found in any file under ``folder``, as UTF-8 text or
    in any JSON string (escaped or not)."""
    found = []
    for path in (p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for value in values:
            needles = {value.encode(), json.dumps(value)[1:-1].encode()}
            if any(n in data for n in needles):
                found.append((path.name, value))
    return found


@pytest.fixture(scope="module")
def secret_sources() -> list[rt.RetailerData]:
    return [secret_shop(f"src{i}", seed=100 + i) for i in range(2)]


def test_a_broad_model_directory_holds_no_ids_or_customer_text_of_its_sources(
    secret_sources, encoder, tmp_path
):
    model = rt.pretrain(secret_sources, encoder=encoder, random_state=0)
    folder = model.save(tmp_path / "broad")
    secrets = set().union(*(raw_values(s) for s in secret_sources))
    assert len(secrets) > 200
    assert leaks(folder, secrets) == []
    assert rt.RecModel.load(folder).config.trained_on == ["src0", "src1"]  # names only

    # The scan itself works: a planted id is found.
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["params"]["note"] = sorted(secrets)[0]
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    assert leaks(folder, secrets) == [(CONFIG_FILE, sorted(secrets)[0])]


def test_an_adapted_model_directory_holds_no_ids_or_customer_text_either(broad, tmp_path):
    target = secret_shop("target", seed=7, n_users=60)
    adapted = rt.adapt(broad, target)
    assert adapted.guard is not None and "adapted" in adapted.guard.ndcg  # really trained on it
    folder = adapted.save(tmp_path / "adapted")
    assert leaks(folder, raw_values(target)) == []


def cache_keys_on_disk(directory: Path) -> set[bytes]:
    keys: set[bytes] = set()
    for shard in directory.rglob("shard-*.npz"):
        with np.load(shard, allow_pickle=False) as npz:
            raw = npz["keys"].tobytes()
        keys |= {raw[i : i + 32] for i in range(0, len(raw), 32)}
    return keys


def test_the_cache_stores_text_hashes_and_vectors_and_customer_text_only_when_asked(
    secret_sources, tmp_path
):
    shop = secret_sources[0]
    assert shop.users is not None
    customer = {EmbeddingCache.key(t) for t in user_texts(shop.users) if t}
    products = {EmbeddingCache.key(t) for t in item_texts(shop.items) if t}

    cached = CachedEncoder(HashingEncoder(64), EmbeddingCache(tmp_path / "shared"))
    model = rt.pretrain([shop], encoder=cached, random_state=0)
    rt.recommend(model, shop, k=3)
    rt.adapt(model, shop)
    stored = cache_keys_on_disk(tmp_path / "shared")
    assert stored == products  # product text only: no customer text by default
    assert leaks(tmp_path / "shared", raw_values(shop) | set(item_texts(shop.items))) == []

    opted_in = CachedEncoder(HashingEncoder(64), EmbeddingCache(tmp_path / "private"))
    prepare(shop, opted_in, cache_user_text=True)
    assert cache_keys_on_disk(tmp_path / "private") == products | customer


# ----------------------------------------------------------------------------------------------
# No code from the files


class _Planted:
    """Unpickling this creates a marker file: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_models_and_caches_never_unpickles(broad, tmp_path, monkeypatch):
    folder = broad.save(tmp_path / "model")
    cache = EmbeddingCache(tmp_path / "cache")
    cache.put_many("fp", [EmbeddingCache.key("tent")], np.ones((1, 4), dtype=np.float32))

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used to load a file")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert rt.RecModel.load(folder).model_version == broad.model_version
    found, _ = EmbeddingCache(tmp_path / "cache").get_many("fp", [EmbeddingCache.key("tent")])
    assert found.all()


def test_a_cache_shard_carrying_a_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    folder = tmp_path / "cache" / "embeddings" / "fp"
    folder.mkdir(parents=True)
    payload = np.array([_Planted(marker)], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, keys=payload, vectors=payload)
    shard = folder / f"shard-1-{'0' * 32}.npz"
    shard.write_bytes(buffer.getvalue())

    with pytest.warns(RuntimeWarning, match="embedding cache shard .* is not usable"):
        found, _ = EmbeddingCache(tmp_path / "cache").get_many("fp", [b"k" * 32])
    assert not found.any()
    assert not marker.exists()
    assert not shard.exists()  # moved out of the loader's way; its texts are encoded again
    assert len(list(folder.glob(f"{shard.name}.bad-*"))) == 1


def test_a_model_file_carrying_a_pickle_is_refused_and_its_code_never_runs(broad, tmp_path):
    marker = tmp_path / "code-ran"
    folder = broad.save(tmp_path / "model")
    (folder / RANKER_FILE).write_bytes(pickle.dumps(_Planted(marker)))
    sums = json.loads((folder / CHECKSUM_FILE).read_text())
    sums[RANKER_FILE] = hashlib.sha256((folder / RANKER_FILE).read_bytes()).hexdigest()
    (folder / CHECKSUM_FILE).write_text(json.dumps(sums))  # even with a matching checksum

    with pytest.raises(rt.IncompatibleArtifactError, match=r"ranker\.txt: not a LightGBM model"):
        rt.RecModel.load(folder)
    assert not marker.exists()


def test_the_package_has_no_way_to_load_code_from_files():
    """No pickle, joblib, eval or exec anywhere in the package's own loaders; torch.load only with
    weights_only=True (tensors, no code)."""
    forbidden = re.compile(
        r"^\s*(import pickle|from pickle|import joblib|import cloudpickle|import dill)"
        r"|allow_pickle\s*=\s*True|torch\.load\((?![^)]*weights_only=True)"
        r"|(?<![.\w])eval\(|(?<![.\w])exec\(|pickle\.loads?\(",
        re.MULTILINE,
    )
    offenders = [
        f"{path.name}: {match.group(0).strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for match in forbidden.finditer(path.read_text())
    ]
    assert offenders == []


# ----------------------------------------------------------------------------------------------
# Two retailers with the same name


@pytest.fixture(scope="module")
def namesakes() -> tuple[rt.RetailerData, rt.RetailerData]:
    """Two tenants that both call themselves "shop": different catalogues and customers, and a
    second pair that also uses the same id strings for different products."""
    first = secret_shop("shop", seed=41, n_users=30)
    second = secret_shop("shop", seed=42, n_users=30)
    assert first.name == second.name and not set(first.items["item_id"]) & set(
        second.items["item_id"]
    )
    return first, second


def _alone(model: rt.RecModel) -> rt.RecModel:
    """The same ranker in a fresh model object that has prepared no retailer yet."""
    return rt.RecModel(model.booster, model.config, encoder=model.encoder)


def test_two_retailers_with_the_same_name_served_by_one_model_stay_apart(broad, namesakes):
    first, second = namesakes
    shared = _alone(broad)
    one = rt.recommend(shared, first, k=5)
    two = rt.recommend(shared, second, k=5)
    again = rt.recommend(shared, first, k=5)
    assert again.equals(one)
    for shop, recs in ((first, one), (second, two)):
        assert recs.equals(rt.recommend(_alone(broad), shop, k=5))  # as if served alone
        assert set(recs["item_id"]) <= set(shop.items["item_id"])
        assert set(recs["user_id"]) == customers(shop)
        # an online request is answered from this tenant's catalogue too
        user = shop.interactions["user_id"][0]
        history = shop.interactions.filter(pl.col("user_id") == user)["item_id"].to_list()
        text = shop.users.filter(pl.col("user_id") == user)["text"].item()
        online = rt.recommend_for(shared, shop, history=history, text=text, k=5)
        assert (
            online["item_id"].to_list()
            == recs.filter(pl.col("user_id") == user)["item_id"].to_list()
        )


def test_namesakes_with_the_same_id_strings_get_their_own_lists(broad):
    plain = make_shop("shop", seed=1, n_users=20)
    other = make_shop("shop", seed=2, n_users=20)
    # the same item and customer ids, other products: every title is the same espresso machine
    other = rt.RetailerData.from_frames(
        other.items.with_columns(title=pl.lit("espresso machine deluxe")),
        other.interactions,
        other.users,
        name="shop",
    )
    shared = _alone(broad)
    first = rt.recommend(shared, plain, k=5)
    second = rt.recommend(shared, other, k=5)
    assert second.equals(rt.recommend(_alone(broad), other, k=5))
    assert not second.equals(first)  # the two shops really differ
    assert rt.recommend(shared, plain, k=5).equals(first)


def test_exports_of_namesakes_in_their_own_roots_hold_only_their_own_rows(
    broad, namesakes, tmp_path
):
    date = dt.date(2026, 11, 23)
    shared = _alone(broad)
    roots = [tmp_path / "tenant-1", tmp_path / "tenant-2"]
    for shop, root in zip(namesakes, roots, strict=True):
        recs = rt.recommend(shared, shop, k=4)
        rt.write_recommendations(recs, root, retailer="shop", run_date=date, model_version="v")
    for shop, root in zip(namesakes, roots, strict=True):
        part = pl.read_parquet(partition_path(root, "shop", date) / "part-0.parquet")
        assert set(part["item_id"]) <= set(shop.items["item_id"])
        assert set(part["user_id"]) == customers(shop)
        assert part.height == 4 * len(customers(shop))
