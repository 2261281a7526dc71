"""Interactions in customer order: the shortcut for frames already in it must change nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rectransfer as rt
from rectransfer.data.ordering import in_customer_order, is_in_customer_order
from tests.conftest import make_shop, write_shop

# Ids whose byte order differs from other orders one might assume (case, accents, NUL, spaces).
IDS = ["a", "B", "b", " a", "a ", "a\x00", "\u00e9", "e", "10", "9", "\t"]


def _stable_sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["user_id", "timestamp"], maintain_order=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 3)), max_size=30),
    st.booleans(),
)
def test_any_frame_comes_out_as_a_stable_sort_by_customer_and_time(rows, presorted) -> None:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "timestamp": [t for _, t in rows],
            "row": list(range(len(rows))),  # file order, to see that ties keep it
        },
        schema={"user_id": pl.String, "timestamp": pl.Int64, "row": pl.Int64},
    )
    if presorted:
        frame = _stable_sort(frame)
    expected = _stable_sort(frame)
    assert is_in_customer_order(frame) == frame.equals(expected)
    assert_frame_equal(in_customer_order(frame), expected)


def test_a_frame_in_order_is_kept_as_it_is() -> None:
    frame = pl.DataFrame({"user_id": ["a", "a", "b"], "timestamp": [2, 2, 1]})
    assert in_customer_order(frame) is frame


def test_a_shuffled_folder_loads_and_recommends_as_the_ordered_one(broad, tmp_path: Path) -> None:
    shop = make_shop("shuffled", seed=11, n_users=60, text_only_users=3)
    ordered = rt.RetailerData.load(write_shop(shop, tmp_path / "ordered"))
    shuffled_frame = shop.interactions.sample(fraction=1.0, shuffle=True, seed=1)
    assert not is_in_customer_order(shuffled_frame)
    shuffled = rt.RetailerData.from_frames(shop.items, shuffled_frame, shop.users, name="shuffled")
    assert_frame_equal(shuffled.interactions, ordered.interactions)
    assert_frame_equal(
        rt.recommend(broad, shuffled, k=10), rt.recommend(broad, ordered, k=10), check_exact=True
    )
