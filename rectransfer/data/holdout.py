"""Leave-last-out: a retailer's data without each customer's last interaction."""

from __future__ import annotations

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
