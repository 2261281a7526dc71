"""One-customer requests (a backend's in-process path) agree with the batch export."""

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from tests.conftest import SAMPLE_DATA, make_shop


@pytest.fixture(scope="module")
def shop():
    return make_shop("online", seed=5, n_users=50, text_only_users=3)


@pytest.fixture(scope="module")
def batch(broad, shop):
    return rt.recommend(broad, shop, k=8)


def _history(shop, user):
    return shop.interactions.filter(pl.col("user_id") == user)["item_id"].to_list()


def _text(shop, user):
    row = shop.users.filter(pl.col("user_id") == user)
    return row["text"].item() if row.height else None


def test_a_request_with_a_customers_history_and_text_gets_their_batch_list(broad, shop, batch):
    users = shop.interactions["user_id"].unique(maintain_order=True).to_list()
    for user in users:
        online = rt.recommend_for(
            broad, shop, history=_history(shop, user), text=_text(shop, user), k=8
        )
        expected = batch.filter(pl.col("user_id") == user)
        assert online["source"].to_list() == expected["source"].to_list(), user
        assert online["item_id"].to_list() == expected["item_id"].to_list(), user
        # the ranker scores each candidate row on its own: the same bits in a batch of any size
        assert online["score"].to_list() == expected["score"].to_list(), user


def test_every_customer_of_the_sample_shop_gets_their_batch_list_online(broad):
    """The bundled target shop (views, carts and purchases; customers with text only): a request
    with a customer's events, text and purchases gets exactly the list the export holds."""
    shop = rt.RetailerData.load(SAMPLE_DATA / "targets" / "trailhead_market")
    batch = rt.recommend(broad, shop, k=20)
    events = shop.interactions.sort("timestamp", maintain_order=True)
    texts = dict(shop.users.select("user_id", "text").iter_rows())
    customers = batch["user_id"].unique(maintain_order=True).to_list()
    everyone = set(shop.interactions["user_id"].to_list()) | set(shop.users["user_id"].to_list())
    assert set(customers) == everyone
    assert set(batch["source"].to_list()) == {"ranker", "text"}
    for user in customers:
        mine = events.filter(pl.col("user_id") == user)
        purchased = mine.filter(pl.col("event").is_in(["purchase"]))["item_id"].to_list()
        online = rt.recommend_for(
            broad,
            shop,
            history=mine["item_id"].to_list(),
            text=texts.get(user),
            exclude=purchased,
            k=20,
        )
        expected = batch.filter(pl.col("user_id") == user)
        assert online["source"].to_list() == expected["source"].to_list(), user
        assert online["item_id"].to_list() == expected["item_id"].to_list(), user
        if expected["source"][0] == "ranker":
            assert online["score"].to_list() == expected["score"].to_list(), user
        else:
            # the text path multiplies a block of customers' vectors by the catalogue's in one
            # product, a request one vector; BLAS may round the last float32 bit differently
            # (gaps between neighbouring scores here are above 1e-4)
            np.testing.assert_allclose(online["score"], expected["score"], rtol=0, atol=1e-5)


def test_text_only_and_empty_requests_take_the_text_and_popular_paths(broad, shop, batch):
    text_only = shop.users.filter(~pl.col("user_id").is_in(shop.interactions["user_id"]))
    user, text = text_only.row(0)
    online = rt.recommend_for(broad, shop, text=text, k=8)
    expected = batch.filter(pl.col("user_id") == user)
    assert online["source"].unique().to_list() == ["text"]
    assert online["item_id"].to_list() == expected["item_id"].to_list()

    anonymous = rt.recommend_for(broad, shop, k=8)
    assert anonymous["source"].unique().to_list() == ["popular"]
    assert anonymous.height == 8


def test_history_items_are_excluded_unknown_ids_ignored_and_rules_hold(broad, shop):
    user = shop.interactions["user_id"][0]
    history = _history(shop, user)
    recs = rt.recommend_for(broad, shop, history=[*history, "no-such-item"], k=10)
    assert recs.height == 10
    assert not set(history) & set(recs["item_id"].to_list())
    assert recs["rank"].to_list() == list(range(1, 11))
    assert (np.diff(recs["score"].to_numpy()) <= 1e-12).all()
    out_of_stock = set(shop.items.filter(~pl.col("in_stock"))["item_id"].to_list())
    assert not out_of_stock & set(recs["item_id"].to_list())
    denied = recs["item_id"][0]
    again = rt.recommend_for(broad, shop, history=history, k=10, deny_items=[denied])
    assert denied not in again["item_id"].to_list()
    allowed_too = rt.recommend_for(broad, shop, history=history, k=10, exclude=[])
    assert set(history) & set(allowed_too["item_id"].to_list())
    with pytest.raises(rt.ConfigError, match="k must be"):
        rt.recommend_for(broad, shop, history=history, k=0)
