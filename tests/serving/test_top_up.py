"""Ranker lists shorter than ``k`` are filled with popular items, scored below the ranker's.

The planted shops used elsewhere have about 50 items, fewer than the candidate caps, so every
ranker list there already covers the catalogue; this shop's catalogue is many times the caps.
"""

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.serving.recommend import top_k
from tests.conftest import make_shop

K = 300  # more than the candidate caps allow a ranker list to hold


@pytest.fixture(scope="module")
def shop() -> rt.RetailerData:
    return make_shop("wide", seed=31, n_users=80, variants=40)  # 16 kinds x 40 = 640 items


def _popular_fill(broad, data, user, ranked, deny=()):
    """The popular items a list is topped up with: most popular first, not yet listed, not
    bought, in stock and allowed, ties by catalogue order."""
    prepared = broad.prepare(data)
    stats = prepared.serving_stats
    popularity = (stats.recent_pct + stats.pop_pct).astype(np.float64)
    ids = prepared.index.item_ids
    blocked = set(ranked) | set(deny)
    blocked |= set(data.interactions.filter(pl.col("user_id") == user)["item_id"].to_list())
    blocked |= set(data.items.filter(~pl.col("in_stock"))["item_id"].to_list())
    mask = np.array([i in blocked for i in ids.tolist()])
    return ids[top_k(np.where(mask, -np.inf, popularity), K - len(ranked))].tolist()


def test_the_catalogue_is_larger_than_any_ranker_list(broad, shop):
    caps = CandidateConfig(**broad.config.candidates)
    assert sum(caps.to_dict().values()) < K < shop.n_items


@pytest.mark.parametrize("rules", ["none", "stock and deny"])
def test_short_ranker_lists_are_topped_up_with_popular_items_scored_below(broad, shop, rules):
    data, deny = shop, []
    if rules == "stock and deny":
        ids = shop.items["item_id"].to_list()
        items = shop.items.with_columns(pl.col("item_id").is_in(ids[::7]).not_().alias("in_stock"))
        data = rt.RetailerData.from_frames(items, shop.interactions, shop.users, name="wide")
        deny = ids[3::11]
    recs = rt.recommend(broad, data, k=K, deny_items=deny or None)
    users = data.interactions["user_id"].unique().to_list()
    assert recs["user_id"].n_unique() == len(users)
    for (user,), group in recs.group_by("user_id"):
        sources = group["source"].to_list()
        n_ranked = sources.count("ranker")
        assert 0 < n_ranked < K  # the ranker's list is short of k ...
        assert group.height == K  # ... and the popular items fill it
        assert sources == ["ranker"] * n_ranked + ["popular"] * (K - n_ranked)
        scores = group["score"].to_numpy()
        assert scores[n_ranked:].max() < scores[:n_ranked].min()
        assert (np.diff(scores) <= 0).all()
        items = group["item_id"].to_list()
        assert len(set(items)) == K
        assert items[n_ranked:] == _popular_fill(broad, data, user, items[:n_ranked], deny)


def test_an_online_request_is_topped_up_the_same_way(broad, shop):
    batch = rt.recommend(broad, shop, k=K)
    for user in shop.interactions["user_id"].unique(maintain_order=True).to_list()[:10]:
        history = shop.interactions.filter(pl.col("user_id") == user)["item_id"].to_list()
        text = shop.users.filter(pl.col("user_id") == user)["text"].item()
        online = rt.recommend_for(broad, shop, history=history, text=text, k=K)
        expected = batch.filter(pl.col("user_id") == user)
        assert online["source"].to_list() == expected["source"].to_list()
        assert online["item_id"].to_list() == expected["item_id"].to_list()
