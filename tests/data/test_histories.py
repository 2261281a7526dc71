import numpy as np
import polars as pl

from rectransfer.data.histories import Histories, RetailerIndex
from rectransfer.data.retailer import RetailerData


def _histories() -> Histories:
    # user 0: 1, 2, 3 ; user 1: (empty) ; user 2: 4, 0
    return Histories(
        indptr=np.array([0, 3, 3, 5]),
        items=np.array([1, 2, 3, 4, 0], dtype=np.int32),
        times=np.arange(5, dtype=np.int64),
        n_items=5,
    )


def test_truncate_drops_the_last_events_of_every_user():
    h = _histories().truncate(1)
    assert [h.sequence(u).tolist() for u in range(3)] == [[1, 2], [], [4]]
    assert _histories().truncate(5).lengths.tolist() == [0, 0, 0]


def test_last_with_offset_and_rows():
    h = _histories()
    assert h.last(0).tolist() == [3, -1, 0]
    assert h.last(2).tolist() == [1, -1, -1]
    assert h.last(1, rows=np.array([2, 0])).tolist() == [4, 2]


def test_select_keeps_order_and_times():
    h = _histories().select(np.array([2, 0]))
    assert h.sequence(0).tolist() == [4, 0]
    assert h.sequence(1).tolist() == [1, 2, 3]
    assert h.times.tolist() == [3, 4, 0, 1, 2]


def test_index_maps_external_ids_and_adds_text_only_users():
    data = RetailerData.from_frames(
        pl.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"]}),
        pl.DataFrame(
            {"user_id": ["u2", "u1", "u1"], "item_id": ["c", "b", "a"], "timestamp": [5, 2, 1]}
        ),
        pl.DataFrame({"user_id": ["u1", "cold"], "text": ["hello", "tents please"]}),
        name="shop",
    )
    index = RetailerIndex.build(data)
    assert index.item_ids.tolist() == ["a", "b", "c"]
    assert index.user_ids.tolist() == ["u1", "u2", "cold"]
    # u1's items in time order: a (t=1) then b (t=2)
    assert index.histories.sequence(0).tolist() == [0, 1]
    assert index.histories.sequence(1).tolist() == [2]
    assert index.histories.sequence(2).tolist() == []


def _odd_id_shop() -> RetailerData:
    """Ids that differ only in spaces, case, a NUL or an accent, given out of customer order."""
    users = ["u", " u", "u ", "U", "u\x00", "\u00fc", "u"]
    items = ["i", "i ", "I", "i\x00", "\u00ef", "i", "i "]
    return RetailerData.from_frames(
        pl.DataFrame({"item_id": ["i", "i ", "I", "i\x00", "\u00ef"], "title": list("ABCDE")}),
        pl.DataFrame({"user_id": users, "item_id": items, "timestamp": [7, 3, 5, 1, 2, 4, 0]}),
        pl.DataFrame({"user_id": ["U", "cold", " u "], "text": ["x", "y", "z"]}),
        name="odd",
    )


def test_index_positions_round_trip_to_the_interactions_ids():
    data = _odd_id_shop()
    index = RetailerIndex.build(data)
    histories = index.histories
    events = data.interactions
    assert index.item_ids[histories.items].tolist() == events["item_id"].to_list()
    assert index.user_ids[histories.user_of_event()].tolist() == events["user_id"].to_list()
    assert histories.times.tolist() == events["timestamp"].to_list()
    # every customer once: those with interactions in id order, then text-only ones in file order
    known = events["user_id"].unique(maintain_order=True).to_list()
    assert index.user_ids.tolist() == [*known, "cold", " u "]
    assert histories.lengths[len(known) :].tolist() == [0, 0]
    assert histories.weights is None


def test_index_keeps_weights_unless_every_one_is_one():
    data = _odd_id_shop()
    weighted = RetailerData.from_frames(
        data.items,
        data.interactions.with_columns(pl.Series("weight", [1.0, 2, 1, 1, 1, 1, 0.5])),
        name="w",
    )
    weights = RetailerIndex.build(weighted).histories.weights
    assert weights is not None and weights.dtype == np.float32
    assert weights.tolist() == weighted.interactions["weight"].to_list()
