"""Product and customer text, built one documented way.

Product text is what the encoder sees for an item::

    "<title>. Category: <category>. Brand: <brand>. <description>"

Parts that are missing or blank are left out (with their label), whitespace is collapsed, and the
description is cut to ``MAX_DESCRIPTION_CHARS`` characters, so that a long description cannot
drown the title (the encoder truncates by tokens anyway; the title and category carry most of the
signal that transfers between shops).

Customer text is the ``text`` column of ``users.parquet`` with whitespace collapsed and cut to
``MAX_USER_TEXT_CHARS``.
"""

from __future__ import annotations

import polars as pl

from rectransfer.data.columns import Columns

MAX_DESCRIPTION_CHARS = 400
MAX_USER_TEXT_CHARS = 1000


def _clean(column: str) -> pl.Expr:
    """Collapse whitespace and strip; nulls become empty strings."""
    return pl.col(column).fill_null("").str.replace_all(r"\s+", " ").str.strip_chars()


def item_texts(items: pl.DataFrame) -> list[str]:
    """Product text for every row of a normalised items frame, in row order.

    Examples
    --------
    >>> import polars as pl
    >>> items = pl.DataFrame({"item_id": ["a"], "title": ["Dome Tent"], "description": [None],
    ...                       "category": ["Camping > Tents"], "brand": ["Ridge"]})
    >>> item_texts(items)
    ['Dome Tent. Category: Camping > Tents. Brand: Ridge.']
    """
    title = _clean(Columns.TITLE)
    category = _clean(Columns.CATEGORY)
    brand = _clean(Columns.BRAND)
    description = _clean(Columns.DESCRIPTION).str.slice(0, MAX_DESCRIPTION_CHARS)

    def labelled(label: str, part: pl.Expr) -> pl.Expr:
        return pl.when(part != "").then(pl.lit(label) + part + ".").otherwise(pl.lit(""))

    title_part = pl.when(title != "").then(title + ".").otherwise(pl.lit(""))
    description_part = pl.when(description != "").then(description).otherwise(pl.lit(""))
    text = pl.concat_str(
        [
            title_part,
            labelled(" Category: ", category),
            labelled(" Brand: ", brand),
            pl.lit(" ") + description_part,
        ]
    ).str.strip_chars()
    frame = items.with_columns(
        *[pl.col(c).cast(pl.String) for c in (Columns.DESCRIPTION, Columns.CATEGORY, Columns.BRAND)]
    )
    return frame.select(text.alias("text"))["text"].to_list()


def user_texts(users: pl.DataFrame) -> list[str]:
    """Customer text for every row of a normalised users frame, in row order.

    Examples
    --------
    >>> import polars as pl
    >>> user_texts(pl.DataFrame({"user_id": ["u"], "text": ["  weekend   hikes "]}))
    ['weekend hikes']
    """
    cleaned = _clean(Columns.TEXT).str.slice(0, MAX_USER_TEXT_CHARS)
    return users.select(cleaned.alias("text"))["text"].to_list()
