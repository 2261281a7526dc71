import pytest
from polars.testing import assert_frame_equal

import rectransfer as rt
from tests.conftest import make_shop


def test_one_model_serving_several_shops_prepares_each_once(broad, monkeypatch):
    import rectransfer.model.recmodel as recmodel

    calls = []
    real = recmodel.prepare
    monkeypatch.setattr(
        recmodel, "prepare", lambda data, enc: calls.append(data.name) or real(data, enc)
    )
    model = rt.RecModel(broad.booster, broad.config, encoder=broad.encoder)
    shops = [
        make_shop(f"shop{i}", seed=20 + i, n_users=15)
        for i in range(recmodel.MAX_PREPARED_RETAILERS)
    ]
    for _ in range(3):  # a backend switching between its shops
        for shop in shops:
            rt.recommend(model, shop, k=3)
    assert calls == [shop.name for shop in shops]
    extra = make_shop("one-too-many", seed=40, n_users=15)
    rt.recommend(model, extra, k=3)
    rt.recommend(model, shops[0], k=3)  # the least recently used went
    assert calls[-2:] == ["one-too-many", "shop0"]


def test_the_recommend_method_is_a_deprecated_alias_of_the_function(broad):
    shop = make_shop("alias", seed=5, n_users=15)
    users = shop.interactions["user_id"].unique(maintain_order=True).to_list()[:4]
    options = dict(k=4, exclude_bought=False, deny_items=shop.items["item_id"][:3].to_list())
    deprecated = r"^RecModel\.recommend is deprecated; use rectransfer\.recommend\(model, data"
    with pytest.warns(DeprecationWarning, match=deprecated) as seen:
        old = broad.recommend(shop, users, **options)
    assert seen[0].filename == __file__  # points at the caller, not at the package
    assert_frame_equal(old, rt.recommend(broad, shop, users, **options))
