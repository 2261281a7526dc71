"""Hold-outs: a retailer's data without each customer's last interaction, or with only some of
its customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData


def drop_last_interaction(data: RetailerData) -> RetailerData:
    """Every customer's history without their last interaction (interactions are time-ordered).

    The benchmark holds out the test item this way; the per-retailer encoder step holds out the
    guard's validation item.
    """
    order = pl.int_range(pl.len()).over(Columns.USER)
    size = pl.len().over(Columns.USER)
    interactions = data.interactions.filter(order < size - 1)
    return replace(data, interactions=interactions)


def subset_customers(data: RetailerData, users: Sequence[str]) -> RetailerData:
    """The retailer as if only ``users`` were its customers (the whole catalogue stays)."""
    keep = pl.DataFrame({Columns.USER: list(users)}, schema={Columns.USER: pl.String})

    def only_kept(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(keep, on=Columns.USER, how="semi", maintain_order="left")

    interactions = only_kept(data.interactions)
    users_frame = None if data.users is None else only_kept(data.users)
    return replace(data, interactions=interactions, users=users_frame)
