"""A retailer's catalogue as arrays: text vectors, category and brand codes, prices, stock."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rectransfer.encoder import Encoder
from rectransfer.schema import Columns, RetailerData
from rectransfer.text import item_texts


@dataclass(frozen=True)
class Catalogue:
    """Item-side arrays of one retailer, aligned with ``RetailerData.items`` row order."""

    vectors: np.ndarray  # float32 (n, d), L2-normalised product text vectors
    category: np.ndarray  # int32 (n,), -1 where unknown
    brand: np.ndarray  # int32 (n,), -1 where unknown
    log_price: np.ndarray  # float32 (n,), NaN where unknown
    in_stock: np.ndarray  # bool (n,)

    @property
    def n_items(self) -> int:
        return len(self.vectors)

    @classmethod
    def build(cls, data: RetailerData, encoder: Encoder) -> Catalogue:
        items = data.items
        vectors = np.ascontiguousarray(encoder.encode(item_texts(items)), dtype=np.float32)
        price = items[Columns.PRICE].cast(pl.Float64).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_price = np.where(price > 0, np.log(price), np.nan).astype(np.float32)
        return cls(
            vectors=vectors,
            category=_codes(items[Columns.CATEGORY]),
            brand=_codes(items[Columns.BRAND]),
            log_price=log_price,
            in_stock=items[Columns.IN_STOCK].to_numpy().astype(bool),
        )


def _codes(column: pl.Series) -> np.ndarray:
    """Integer code per distinct non-blank value (case-insensitive), -1 for blanks and nulls."""
    cleaned = column.cast(pl.String).str.strip_chars().str.to_lowercase().replace("", None)
    codes = (cleaned.rank("dense") - 1).fill_null(-1)
    return codes.to_numpy().astype(np.int32)
