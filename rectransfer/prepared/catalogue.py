"""A retailer's catalogue as arrays: text vectors, category and brand codes, prices, stock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.text.encoder import Encoder
from rectransfer.text.texts import item_texts


class Derived:
    """Values derived from one catalogue once and reused by every chunk and call (e.g. per-item
    text neighbours). Threads serving the catalogue build each value once; a copy sent to another
    process starts empty and builds again there."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built by ``build()`` on first use."""
        with self._lock:
            if key not in self._values:
                self._values[key] = build()
            return self._values[key]

    def __reduce__(self) -> tuple[type[Derived], tuple[()]]:
        return Derived, ()


@dataclass(frozen=True)
class Catalogue:
    """Item-side arrays of one retailer, aligned with ``RetailerData.items`` row order."""

    vectors: np.ndarray  # float32 (n, d), L2-normalised product text vectors
    category: np.ndarray  # int32 (n,), -1 where unknown
    brand: np.ndarray  # int32 (n,), -1 where unknown
    log_price: np.ndarray  # float32 (n,), NaN where unknown
    in_stock: np.ndarray  # bool (n,)
    derived: Derived = field(default_factory=Derived, compare=False, repr=False)

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
