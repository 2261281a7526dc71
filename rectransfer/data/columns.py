"""Canonical column names and the exact schemas of the normalised and output frames.

Examples
--------
>>> Columns.USER, Columns.ITEM, Columns.TIMESTAMP
('user_id', 'item_id', 'timestamp')
"""

from __future__ import annotations

from typing import Final

import polars as pl

__all__ = [
    "INTERACTIONS_SCHEMA",
    "ITEMS_SCHEMA",
    "MAX_FUTURE_SECONDS",
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "OUTPUT_SCHEMA",
    "SOURCE",
    "USERS_SCHEMA",
    "Columns",
]


class Columns:
    """Canonical column names used by every frame the package takes in or hands out.

    Examples
    --------
    >>> Columns.USER, Columns.ITEM, Columns.TIMESTAMP
    ('user_id', 'item_id', 'timestamp')
    """

    USER: Final = "user_id"
    ITEM: Final = "item_id"
    TIMESTAMP: Final = "timestamp"
    WEIGHT: Final = "weight"
    EVENT: Final = "event"
    TITLE: Final = "title"
    DESCRIPTION: Final = "description"
    CATEGORY: Final = "category"
    BRAND: Final = "brand"
    PRICE: Final = "price"
    IN_STOCK: Final = "in_stock"
    TEXT: Final = "text"
    RETAILER: Final = "retailer"
    RANK: Final = "rank"
    SCORE: Final = "score"


# The exact column order and dtypes of the normalised frames.
ITEMS_SCHEMA: Final = pl.Schema(
    {
        Columns.ITEM: pl.String,
        Columns.TITLE: pl.String,
        Columns.DESCRIPTION: pl.String,
        Columns.CATEGORY: pl.String,
        Columns.BRAND: pl.String,
        Columns.PRICE: pl.Float64,
        Columns.IN_STOCK: pl.Boolean,
    }
)
INTERACTIONS_SCHEMA: Final = pl.Schema(
    {
        Columns.USER: pl.String,
        Columns.ITEM: pl.String,
        Columns.TIMESTAMP: pl.Int64,
        Columns.WEIGHT: pl.Float64,
        Columns.EVENT: pl.String,
    }
)
USERS_SCHEMA: Final = pl.Schema({Columns.USER: pl.String, Columns.TEXT: pl.String})

# Longest text cell accepted, in characters; longer is a broken export.
MAX_TEXT_CHARS: Final = 100_000
# Longest id accepted, in characters. Ids are kept byte for byte and travel into every output row;
# real ids (SKUs, UUIDs, hashed e-mails, URLs) are far shorter, and a cap keeps a pasted document
# in an id column from costing memory in every list that names it.
MAX_ID_CHARS: Final = 1_000
# How far after the current time an interaction may be (clock skew between systems).
MAX_FUTURE_SECONDS: Final = 86_400

# The recommendation frame every serving path returns (and the export writes, with more columns).
SOURCE: Final = "source"  # which path made a list: ranker, text or popular
OUTPUT_SCHEMA: Final = {
    Columns.USER: pl.String,
    Columns.ITEM: pl.String,
    Columns.RANK: pl.Int32,
    Columns.SCORE: pl.Float64,
    SOURCE: pl.String,
}
