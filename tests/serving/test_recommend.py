from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rectransfer as rt
from rectransfer.ranking import candidates
from tests.conftest import CHAINS, make_shop


@pytest.fixture(scope="module")
def shop():
    return make_shop("shop", seed=11, n_users=60, new_items=2, text_only_users=2)


def assert_valid_recommendations(recs: pl.DataFrame, data: rt.RetailerData, k: int) -> None:
    """Properties every recommendation frame must have."""
    assert recs.columns == ["user_id", "item_id", "rank", "score", "source"]
    assert not recs.select(pl.struct("user_id", "item_id").is_duplicated().any()).item()
    catalogue = set(data.items["item_id"].to_list())
    assert set(recs["item_id"].to_list()) <= catalogue
    out_of_stock = set(data.items.filter(~pl.col("in_stock"))["item_id"].to_list())
    assert not out_of_stock & set(recs["item_id"].to_list())
    for _, group in recs.group_by("user_id", maintain_order=True):
        ranks = group["rank"].to_list()
        assert ranks == list(range(1, len(ranks) + 1))
        assert len(ranks) <= k
        scores = group["score"].to_numpy()
        assert np.all(np.diff(scores) <= 1e-12)


def _bought(data: rt.RetailerData) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for user, item in data.interactions.select("user_id", "item_id").iter_rows():
        out.setdefault(user, set()).add(item)
    return out


def test_every_customer_gets_k_valid_items_without_what_they_bought(broad, shop):
    recs = rt.recommend(broad, shop, k=5)
    assert_valid_recommendations(recs, shop, 5)
    n_customers = shop.interactions["user_id"].n_unique() + 2  # + text-only
    assert recs["user_id"].n_unique() == n_customers
    assert recs.height == 5 * n_customers
    bought = _bought(shop)
    for user, item in recs.select("user_id", "item_id").iter_rows():
        assert item not in bought.get(user, set())


class OneFeature:
    """An untrained ranker: ``model``'s candidates, scored by one of their features alone."""

    def __init__(self, model, feature: str):
        self.model = model
        self.column = rt.FEATURE_NAMES.index(feature)

    @property
    def candidate_config(self):
        return self.model.candidate_config

    @property
    def encoder(self):
        return self.model.encoder

    def score(self, features):
        return features[:, self.column].astype(np.float64)

    def compile_scoring(self):
        return False

    def prepare(self, data):
        return self.model.prepare(data)


def _next_kind_first(model, shop) -> float:
    """Share of customers in mid-chain whose first item is of the planted next kind."""
    recs = rt.recommend(model, shop, k=3)
    titles = dict(shop.items.select("item_id", "title").iter_rows())
    next_kind = {k: chain[i + 1] for chain in CHAINS.values() for i, k in enumerate(chain[:-1])}
    top = dict(recs.filter(pl.col("rank") == 1).select("user_id", "item_id").iter_rows())
    hits = users = 0
    for (user,), group in shop.interactions.group_by("user_id", maintain_order=True):
        last_kind = titles[group["item_id"][-1]].rsplit(" model", 1)[0]
        if last_kind in next_kind:  # customers who have not finished their chain
            users += 1
            hits += titles[top[user]].startswith(next_kind[last_kind])
    assert users >= 10
    return hits / users


def test_the_planted_next_kind_comes_first(broad, shop):
    trained = _next_kind_first(broad, shop)
    # untrained scorers on the same candidates: the shop's own item-to-item transition counts
    # find the planted chain (about 0.97 here), co-occurrence half of it (about 0.65), last-item
    # text similarity hardly (it prefers other variants of the same kind)
    transitions = _next_kind_first(OneFeature(broad, "trans_fwd"), shop)
    cooc = _next_kind_first(OneFeature(broad, "cooc"), shop)
    text = _next_kind_first(OneFeature(broad, "sim_last"), shop)
    assert trained >= transitions - 0.05
    assert trained > max(cooc, text) + 0.2, (trained, cooc, text)
    assert trained > 0.9


def test_rules_stock_allow_deny(broad, shop):
    some = shop.items["item_id"].to_list()
    out = some[:5]
    items = shop.items.with_columns(pl.col("item_id").is_in(out).not_().alias("in_stock"))
    data = rt.RetailerData.from_frames(items, shop.interactions, shop.users, name="shop")
    recs = rt.recommend(broad, data, k=10, deny_items=some[5:10])
    assert not set(recs["item_id"].to_list()) & set(some[:10])
    allow = some[20:30]
    recs = rt.recommend(broad, data, k=10, allow_items=allow)
    assert set(recs["item_id"].to_list()) <= set(allow)
    with pytest.raises(rt.ConfigError, match="allow_items"):
        rt.recommend(broad, data, allow_items=["nope"])


def test_keep_bought_may_recommend_bought_items(broad, shop):
    recs = rt.recommend(broad, shop, k=40, exclude_bought=False)
    bought = _bought(shop)
    assert any(
        item in bought.get(user, set())
        for user, item in recs.select("user_id", "item_id").iter_rows()
    )


def test_cold_customers_text_and_popular_paths(broad, shop):
    recs = rt.recommend(broad, shop, ["SH-cold0", "never-seen", "SH-u0001"], k=4)
    sources = dict(recs.group_by("user_id").agg(pl.col("source").first()).iter_rows())
    assert sources == {"SH-cold0": "text", "never-seen": "popular", "SH-u0001": "ranker"}
    descriptions = dict(shop.items.select("item_id", "description").iter_rows())
    # the cold customer wrote about espresso: their list comes from the coffee domain
    cold = recs.filter(pl.col("user_id") == "SH-cold0")["item_id"].to_list()
    assert all("espresso" in descriptions[i] for i in cold)
    # customers come back in the order asked
    assert recs["user_id"].unique(maintain_order=True).to_list() == [
        "SH-cold0",
        "never-seen",
        "SH-u0001",
    ]


def test_new_items_without_interactions_can_be_recommended_from_text(broad, shop):
    recs = rt.recommend(broad, shop, k=20)
    assert recs.filter(pl.col("item_id").str.contains("NEW")).height > 0


def test_recommendations_are_deterministic(broad, shop):
    first = rt.recommend(broad, shop, k=7)
    second = rt.recommend(broad, shop, k=7)
    assert first.equals(second)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    k=st.integers(min_value=1, max_value=60),
    exclude_bought=st.booleans(),
    n_out=st.integers(min_value=0, max_value=40),
    seed=st.integers(min_value=0, max_value=3),
)
def test_recommendation_properties_hold_for_any_options(
    broad, shop, k, exclude_bought, n_out, seed
):
    rng = np.random.default_rng(seed)
    ids = shop.items["item_id"].to_numpy()
    out = set(rng.choice(ids, size=n_out, replace=False).tolist())
    items = shop.items.with_columns(pl.col("item_id").is_in(list(out)).not_().alias("in_stock"))
    data = rt.RetailerData.from_frames(items, shop.interactions, shop.users, name="shop")
    recs = rt.recommend(broad, data, k=k, exclude_bought=exclude_bought)
    assert_valid_recommendations(recs, data, k)
    if exclude_bought:
        bought = _bought(data)
        assert all(
            i not in bought.get(u, set()) for u, i in recs.select("user_id", "item_id").iter_rows()
        )
    # every customer gets min(k, items they may still get)
    counts = recs.group_by("user_id").len()["len"]
    assert counts.max() <= k


def test_bad_k_is_a_clear_error(broad, shop):
    with pytest.raises(rt.ConfigError, match="k must be"):
        rt.recommend(broad, shop, k=0)


def test_lists_do_not_depend_on_the_number_of_threads(broad, shop, monkeypatch):
    monkeypatch.setattr(candidates, "BLOCK_BUDGET_BYTES", 1)  # the smallest chunks: 8 customers
    one = rt.recommend(broad, shop, k=5, threads=1)
    assert candidates.chunk_size(shop.items.height) == 8 < shop.interactions["user_id"].n_unique()
    for threads in (2, 3):
        assert rt.recommend(broad, shop, k=5, threads=threads).equals(one)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_a_bad_thread_count_is_refused(broad, shop, threads):
    with pytest.raises(rt.ConfigError, match="threads must be a positive integer"):
        rt.recommend(broad, shop, k=5, threads=threads)


def test_the_text_path_follows_the_weights_chosen_for_the_retailer(broad, shop, monkeypatch):
    import rectransfer.prepared.prepare
    from rectransfer.prepared.text_blend import TextBlend

    def served(choice: tuple[float, float, float, int]) -> rt.RetailerData:
        """Another data object, prepared anew with this choice of the text path."""
        monkeypatch.setattr(
            rectransfer.prepared.prepare, "fit_text_blend", lambda *_a, **_k: TextBlend(*choice, 0)
        )
        return replace(shop)

    # a retailer whose customers' text turned out to say nothing: all popularity is the popular list
    fresh = served((0.0, 0.0, 1.0, 50))
    recs = rt.recommend(broad, fresh, ["SH-cold0", "never-seen"], k=5)
    lists = {u: g["item_id"].to_list() for (u,), g in recs.group_by("user_id")}
    assert lists["SH-cold0"] == lists["never-seen"]
    assert set(recs["source"]) == {"popular"}
    text = fresh.users.filter(pl.col("user_id") == "SH-cold0")["text"].item()
    online = rt.recommend_for(broad, fresh, text=text, k=5)
    assert online["item_id"].to_list() == lists["SH-cold0"]
    assert set(online["source"]) == {"popular"}

    # text and popularity, then text, neighbours and popularity: each reorders the list, and
    # batch and online agree on every one
    seen = [lists["SH-cold0"]]
    for choice in [(0.5, 0.0, 0.5, 50), (0.0, 0.75, 0.25, 2), (0.25, 0.5, 0.25, 2)]:
        fresh = served(choice)
        batch = rt.recommend(broad, fresh, ["SH-cold0"], k=5)
        assert set(batch["source"]) == {"text"}
        online = rt.recommend_for(broad, fresh, text=text, k=5)
        assert online["item_id"].to_list() == batch["item_id"].to_list()
        assert online["score"].to_list() == pytest.approx(batch["score"].to_list(), rel=1e-5)
        assert batch["item_id"].to_list() not in seen
        seen.append(batch["item_id"].to_list())
    prepared = broad.prepare(fresh)
    assert prepared.neighbour_pool is prepared.neighbour_pool  # built once, then reused


def test_asking_mostly_for_unknown_customers_warns_once_per_shop(broad):
    import warnings

    shop = make_shop("warned", seed=5, n_users=30)
    known = shop.interactions["user_id"].unique().sort().to_list()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # once per message and place, as outside the tests
        rt.recommend(broad, shop, [*known[:3], "c-0001"], k=3)  # mostly known: no warning
        assert caught == []
        for _ in range(3):
            rt.recommend(broad, shop, ["c-0001", "c-0002"], k=3)
    assert [str(w.message).split(":")[0] for w in caught] == [
        "most customers asked for are unknown at 'warned'"
    ]


def test_quantities_move_an_item_up_the_popular_list_and_weights_of_one_change_nothing(broad):
    shop = make_shop("qty", seed=12, n_users=40)

    def for_a_stranger(data: rt.RetailerData) -> list[str]:
        with pytest.warns(rt.DataQualityWarning, match="unknown"):  # a stranger: popular items
            return rt.recommend(broad, data, ["a-stranger"], k=10)["item_id"].to_list()

    popular = for_a_stranger(shop)
    rare = shop.interactions["item_id"].value_counts(sort=True)["item_id"][-1]
    assert rare not in popular

    def with_quantity(quantity: pl.Expr) -> rt.RetailerData:
        interactions = shop.interactions.drop("weight").with_columns(quantity=quantity)
        return rt.RetailerData.from_frames(shop.items, interactions, shop.users, name="qty")

    bulk = with_quantity(pl.when(pl.col("item_id") == rare).then(500).otherwise(1))
    ones = with_quantity(pl.lit(1))
    # 500 units count log2(501), about 9 events, in what popular lists sort by: more than most
    # items of a shop where items are taken a few times each.
    position = broad.prepare(bulk).item_positions[rare]
    before = broad.prepare(shop).serving_stats.popular
    after = broad.prepare(bulk).serving_stats.popular
    assert (before > before[position]).sum() > 10 > (after > after[position]).sum()
    assert rare in for_a_stranger(bulk)
    assert_frame_equal(rt.recommend(broad, ones, k=5), rt.recommend(broad, shop, k=5))
