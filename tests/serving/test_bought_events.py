"""With an ``event`` column only purchase-like events count as bought: a shop where half the
interactions are views must still be offered what its customers only looked at."""

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from tests.conftest import make_shop

K_ALL = 50  # more than the catalogue: every item a customer may get is in their list
PURCHASES = ["purchase", "order"]  # of the events below; "view" and "cart" are not purchases


@pytest.fixture(scope="module")
def shop() -> rt.RetailerData:
    """The planted shop with half of its interactions views (and a few carts), seeded."""
    plain = make_shop("events", seed=21, n_users=60)
    rng = np.random.default_rng(21)
    kinds = rng.choice(
        ["view", "purchase", "order", "cart"], p=[0.5, 0.3, 0.1, 0.1], size=plain.n_interactions
    )
    interactions = plain.interactions.with_columns(pl.Series("event", kinds))
    return rt.RetailerData.from_frames(plain.items, interactions, plain.users, name="events")


def _events(shop: rt.RetailerData) -> pl.DataFrame:
    return shop.interactions.sort("timestamp", maintain_order=True).with_columns(
        pl.col("event").is_in(PURCHASES).alias("bought")
    )


def _purchased_and_viewed_only(shop: rt.RetailerData) -> dict[str, tuple[set[str], set[str]]]:
    out = {}
    for (user,), group in _events(shop).group_by("user_id", maintain_order=True):
        purchased = set(group.filter(pl.col("bought"))["item_id"].to_list())
        seen = set(group["item_id"].to_list())
        out[user] = (purchased, seen - purchased)
    return out


def test_the_shop_has_customers_with_items_they_only_viewed(shop):
    customers = _purchased_and_viewed_only(shop)
    assert sum(1 for _, viewed in customers.values() if viewed) >= 30
    assert sum(1 for purchased, _ in customers.values() if purchased) >= 30


def test_batch_lists_leave_out_purchases_only(broad, shop):
    catalogue = set(shop.items["item_id"].to_list())
    assert len(catalogue) < K_ALL
    recs = rt.recommend(broad, shop, k=K_ALL)
    lists = {u: set(g["item_id"].to_list()) for (u,), g in recs.group_by("user_id")}
    for user, (purchased, viewed) in _purchased_and_viewed_only(shop).items():
        # everything but what they purchased: viewed-only items stay recommendable
        assert lists[user] == catalogue - purchased, user
        assert viewed <= lists[user]
    # the ranker itself proposes viewed-only items, not only the popular top-up
    ranker = recs.filter(pl.col("source") == "ranker")
    viewed_pairs = {
        (u, i) for u, (_, viewed) in _purchased_and_viewed_only(shop).items() for i in viewed
    }
    offered = set(ranker.select("user_id", "item_id").iter_rows())
    assert len(offered & viewed_pairs) >= 0.9 * len(viewed_pairs)


def test_online_requests_with_views_in_the_history_get_the_batch_list(broad, shop):
    batch = rt.recommend(broad, shop, k=10)
    texts = dict(shop.users.select("user_id", "text").iter_rows())
    customers = _purchased_and_viewed_only(shop)
    for (user,), group in _events(shop).group_by("user_id", maintain_order=True):
        purchased, viewed = customers[user]
        online = rt.recommend_for(
            broad,
            shop,
            history=group["item_id"].to_list(),  # every event, oldest first: the context
            text=texts.get(user),
            exclude=sorted(purchased),
            k=10,
        )
        expected = batch.filter(pl.col("user_id") == user)
        assert online["item_id"].to_list() == expected["item_id"].to_list(), user
        assert online["score"].to_list() == expected["score"].to_list(), user
        everything = rt.recommend_for(
            broad, shop, history=group["item_id"].to_list(), exclude=sorted(purchased), k=K_ALL
        )
        assert viewed <= set(everything["item_id"].to_list())
        assert not purchased & set(everything["item_id"].to_list())
