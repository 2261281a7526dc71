"""The flows refuse a retailer name that cannot name a partition before they score anything."""

from __future__ import annotations

import pytest

import rectransfer as rt
from tests.conftest import make_shop, write_shop

pytestmark = pytest.mark.usefixtures("prefect_harness")  # see conftest.py


@pytest.mark.parametrize("name", ["shop\n", "x" * 300], ids=["newline", "300-chars"])
def test_the_recommend_flow_refuses_the_name_before_scoring(broad, tmp_path, monkeypatch, name):
    from flows.recommend import RecommendParams, recommend

    shop = write_shop(make_shop("named", seed=2, n_users=20), tmp_path / "named")
    broad.save(tmp_path / "broad")
    planned = []
    monkeypatch.setattr(
        "rectransfer.orchestration.tasks.customer_chunks", lambda *a, **kw: planned.append(1)
    )
    params = RecommendParams(
        model=str(tmp_path / "broad"),
        retailer=str(shop),
        out=str(tmp_path / "exports"),
        name=name,
        encoder="hashing:64",
    )
    with pytest.raises(rt.ConfigError, match="cannot name a partition folder"):
        recommend(**params.model_dump())
    assert planned == [] and not (tmp_path / "exports").exists()
