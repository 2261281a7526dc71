"""The one order interactions are kept in: by customer id, then time, ties in file order.

Histories are read off that order as contiguous runs (:mod:`rectransfer.data.histories`), so
every normalised interactions frame is in it.
"""

from __future__ import annotations

import polars as pl

from rectransfer.data.columns import Columns

__all__ = ["in_customer_order", "is_in_customer_order"]


def in_customer_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` sorted by ``(user_id, timestamp)``, stably (ties keep their order).

    Exports are often written in this order already, and a folder written from a
    :class:`~rectransfer.data.retailer.RetailerData` always is. One pass over neighbouring rows
    tells, and such a frame is returned as it is: a stable sort would not move a row, and the
    index sort and the gather (a copy of every column, the largest step of loading a big shop)
    are skipped.

    Examples
    --------
    >>> frame = pl.DataFrame({"user_id": ["b", "a", "a"], "timestamp": [1, 5, 2]})
    >>> in_customer_order(frame).rows()
    [('a', 2), ('a', 5), ('b', 1)]
    """
    if is_in_customer_order(frame):
        return frame
    # An index sort and one gather need about half the memory of sorting the frame itself.
    order = frame.select(
        pl.arg_sort_by([Columns.USER, Columns.TIMESTAMP], maintain_order=True)
    ).to_series()
    return frame[order]


def is_in_customer_order(frame: pl.DataFrame) -> bool:
    """Whether no row has a smaller ``(user_id, timestamp)`` than the row before it.

    Ids compare as polars sorts them (by their UTF-8 bytes); nulls are not expected (ids and times
    are checked first).

    Examples
    --------
    >>> is_in_customer_order(pl.DataFrame({"user_id": ["a", "a", "b"], "timestamp": [1, 1, 0]}))
    True
    """
    if frame.height < 2:
        return True
    previous, following = frame.head(frame.height - 1), frame.slice(1)
    user_a, user_b = previous[Columns.USER], following[Columns.USER]
    time_a, time_b = previous[Columns.TIMESTAMP], following[Columns.TIMESTAMP]
    in_order = (user_a < user_b) | ((user_a == user_b) & (time_a <= time_b))
    return bool(in_order.all())
