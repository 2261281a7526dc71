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
            model.recommend(shop, k=3)
    assert calls == [shop.name for shop in shops]
    extra = make_shop("one-too-many", seed=40, n_users=15)
    model.recommend(extra, k=3)
    model.recommend(shops[0], k=3)  # the least recently used went
    assert calls[-2:] == ["one-too-many", "shop0"]
