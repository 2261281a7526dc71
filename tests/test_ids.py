"""External ids in and out, byte for byte, at a memory cost that does not grow with id length."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from rectransfer.data.columns import MAX_ID_CHARS
from rectransfer.data.histories import RetailerIndex
from rectransfer.errors import SchemaError
from rectransfer.serving.recommend import recommend_prepared
from tests.conftest import make_shop

# Ids that a stripping, trimming or fixed-width-unicode step would change or merge.
ODD_IDS = {
    "padded": " cust1 ",  # and the plain "cust1" below: two customers, never one
    "nul": "cust1\x00",  # numpy's <U strings drop trailing NULs
    "tab": "\tcust1",
    "accent": "cust\u00e9",
}


def _odd_shop() -> rt.RetailerData:
    """A planted shop whose customers and one item have ids only byte-exact code keeps apart."""
    base = make_shop("odd", seed=5, n_users=40)
    users = base.interactions["user_id"].unique(maintain_order=True).to_list()
    rename = {users[0]: "cust1", **{users[i + 1]: v for i, v in enumerate(ODD_IDS.values())}}
    item = base.items["item_id"][0]
    padded = pl.col("item_id").replace({item: item + " "})
    items = base.items.with_columns(padded)
    interactions = base.interactions.with_columns(pl.col("user_id").replace(rename), padded)
    return rt.RetailerData.from_frames(items, interactions, None, name="odd")


def test_ids_that_differ_only_in_spaces_or_nul_stay_apart_through_the_export(
    broad, tmp_path: Path
) -> None:
    shop = _odd_shop()
    expected_users = set(shop.interactions["user_id"].to_list())
    assert {"cust1", *ODD_IDS.values()} <= expected_users

    recs = rt.recommend(broad, shop, k=3)
    path = rt.write_recommendations(recs, tmp_path, retailer="odd", model_version="v")
    written = pl.read_parquet(path)

    for frame in (recs, written):
        assert set(frame["user_id"].to_list()) == expected_users
        assert set(frame["item_id"].to_list()) <= set(shop.items["item_id"].to_list())
    index = broad.prepare(shop).index
    assert index.item_ids[0] == shop.items["item_id"][0] and index.item_ids[0].endswith(" ")
    assert index.user_ids.tolist().count("cust1") == 1


def test_a_request_names_the_exact_customer(broad) -> None:
    shop = _odd_shop()
    exact = rt.recommend(broad, shop, [" cust1 "], k=3)
    plain = rt.recommend(broad, shop, ["cust1"], k=3)
    assert exact["user_id"].unique().to_list() == [" cust1 "]
    bought = dict(
        shop.interactions.group_by("user_id").agg("item_id").select("user_id", "item_id").rows()
    )
    # Each list leaves out its own customer's purchases, not the other spelling's.
    assert not set(exact["item_id"]) & set(bought[" cust1 "])
    assert not set(plain["item_id"]) & set(bought["cust1"])


def test_an_id_longer_than_the_maximum_is_refused_with_its_row() -> None:
    items = pl.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]})
    interactions = pl.DataFrame(
        {
            "user_id": ["u1", "x" * (MAX_ID_CHARS + 1), "u2"],
            "item_id": ["a", "b", "a"],
            "timestamp": [1, 2, 3],
        }
    )
    with pytest.raises(SchemaError, match=r"interactions: column 'user_id' has 1 id longer than"):
        rt.RetailerData.from_frames(items, interactions, None, name="s")
    with pytest.raises(SchemaError, match=rf"{MAX_ID_CHARS + 1} characters at data row 2"):
        rt.RetailerData.from_frames(items, interactions, None, name="s")
    # The maximum itself is accepted.
    ok = interactions.with_columns(pl.col("user_id").str.slice(0, MAX_ID_CHARS))
    assert rt.RetailerData.from_frames(items, ok, None, name="s").n_users == 3


def _long_id_shop(n_items: int, long_id: str) -> rt.RetailerData:
    ids = [f"i{j}" for j in range(n_items - 1)] + [long_id]
    items = pl.DataFrame({"item_id": ids, "title": [f"product {j}" for j in range(n_items)]})
    interactions = pl.DataFrame(
        {
            "user_id": [*(f"u{j % 500}" for j in range(n_items)), long_id],
            "item_id": [*ids, long_id],
            "timestamp": list(range(n_items + 1)),
        }
    )
    return rt.RetailerData.from_frames(items, interactions, None, name="long")


def test_the_index_keeps_ids_as_python_strings_whatever_their_length() -> None:
    n_items = 20_000
    shop = _long_id_shop(n_items, "z" * MAX_ID_CHARS)

    tracemalloc.start()
    index = RetailerIndex.build(shop)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert index.item_ids.dtype == object and index.user_ids.dtype == object
    assert index.item_ids[-1] == "z" * MAX_ID_CHARS
    # One 1,000-character id among 20,000 short ones: fixed-width unicode would hold 20,000 x
    # 4,000 bytes (80 MB) for the items alone; Python strings hold ~60 bytes each plus the one.
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB while indexing"


def _recommend_peak(model, shop: rt.RetailerData) -> tuple[pl.DataFrame, int]:  # type: ignore[no-untyped-def]
    users = shop.interactions["user_id"].unique(maintain_order=True).to_list()
    model.prepare(shop)  # vectors and statistics are not what this measures
    tracemalloc.start()
    recs = rt.recommend(model, shop, users, k=20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return recs, peak


def test_recommendation_frames_do_not_widen_every_id_to_the_longest(broad) -> None:
    long_id = "z" * MAX_ID_CHARS
    recs, peak = _recommend_peak(broad, _long_id_shop(2_000, long_id))
    _, peak_short = _recommend_peak(broad, _long_id_shop(2_000, "z"))

    assert recs.filter(pl.col("user_id") == long_id).height == 20
    # The same shop with one short id instead: 501 customers x 20 rows widened to 1,000
    # characters would add 80 MB for the two id columns; the one long id itself costs kilobytes.
    extra = peak - peak_short
    assert extra < 4 * 2**20, f"one long id added {extra / 2**20:.0f} MiB while recommending"


# ----------------------------------------------------------------------------------------------
# The API takes lists of ids: a bare string is not read as its characters


def _calls(model, shop):  # type: ignore[no-untyped-def]
    """Every public call that takes a list of ids, with a bare string in that place."""
    item = shop.items["item_id"][0]
    return {
        "users": [
            lambda: rt.recommend(model, shop, "123"),
            lambda: recommend_prepared(model, model.prepare(shop), "123"),
        ],
        "allow_items": [
            lambda: rt.recommend(model, shop, allow_items=item),
            lambda: rt.recommend_for(model, shop, allow_items=item),
        ],
        "deny_items": [
            lambda: rt.recommend(model, shop, deny_items=item),
            lambda: rt.recommend_for(model, shop, deny_items=item),
        ],
        "history": [lambda: rt.recommend_for(model, shop, history=item)],
        "exclude": [lambda: rt.recommend_for(model, shop, history=[item], exclude=item)],
    }


def test_a_bare_string_for_a_list_of_ids_raises_a_type_error_naming_the_argument(broad) -> None:
    shop = make_shop("api", seed=3, n_users=20)
    for argument, calls in _calls(broad, shop).items():
        for call in calls:
            with pytest.raises(TypeError, match=rf"^{argument} must be a list of ids, got the "):
                call()


@pytest.mark.parametrize("bad", [[None], [1.5], [True]], ids=["none", "float", "bool"])
def test_a_non_id_in_a_list_raises_a_type_error_naming_its_place(broad, bad) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop("api", seed=3, n_users=20)
    with pytest.raises(TypeError, match=r"^users\[1\] is .* not an id"):
        rt.recommend(broad, shop, ["c", *bad])
    with pytest.raises(TypeError, match=r"^history\[0\] is .* not an id"):
        rt.recommend_for(broad, shop, history=bad)


def test_integer_ids_in_a_list_are_read_as_their_decimal_text(broad) -> None:
    shop = make_shop("api", seed=3, n_users=20)
    with pytest.warns(rt.DataQualityWarning, match="unknown"):  # neither is a customer there
        recs = rt.recommend(broad, shop, [123, np.int64(7)], k=2)
    assert recs["user_id"].unique(maintain_order=True).to_list() == ["123", "7"]


@pytest.mark.parametrize("text", [123, b"tents", ["tents"]], ids=["int", "bytes", "list"])
def test_text_that_is_not_a_string_raises_a_type_error(broad, text) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop("api", seed=3, n_users=20)
    with pytest.raises(TypeError, match=r"^text must be a string"):
        rt.recommend_for(broad, shop, text=text)
