"""One validated, normalised view of a retailer, and the folders that hold retailers.

A retailer is a folder with three tables, each stored as Parquet or CSV:

- ``items`` (required): ``item_id``, ``title``; optional ``description``, ``category``, ``brand``,
  ``price``, ``in_stock``.
- ``interactions`` (required): ``user_id``, ``item_id``, ``timestamp``; optional ``weight`` or
  ``quantity``, ``event``. Other columns (``rating``, ``invoice``, ...) are allowed and dropped.
- ``users`` (optional): ``user_id``, ``text`` (the customer's own words).

:meth:`RetailerData.load` (files) and :meth:`RetailerData.from_frames` (in-memory frames) run the
same checks, once; everything downstream trusts the normalised frames (see ``ITEMS_SCHEMA``,
``INTERACTIONS_SCHEMA`` and ``USERS_SCHEMA``). Every broken rule raises
:class:`~rectransfer.errors.SchemaError` naming the file (or table), the column, up to five
offending values and the fix. Row numbers in messages count data rows from 1, header excluded.

The checks themselves are in :mod:`rectransfer.data.checks`, the file readers in
:mod:`rectransfer.data.readers`.

Examples
--------
>>> import polars as pl
>>> shop = RetailerData.from_frames(
...     pl.DataFrame({"item_id": ["a", "b"], "title": ["Tent", "Stove"]}),
...     pl.DataFrame({"user_id": ["u1", "u1"], "item_id": ["b", "a"], "timestamp": [20, 10]}),
...     name="demo",
... )
>>> shop.interactions[Columns.ITEM].to_list()
['a', 'b']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rectransfer.data.checks import validate_frames
from rectransfer.data.columns import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, Columns
from rectransfer.data.readers import read_folder
from rectransfer.errors import SchemaError

__all__ = ["RetailerData", "retailer_folders"]


@dataclass(frozen=True, eq=False)
class RetailerData:
    """One retailer's validated, normalised tables.

    Build it with :meth:`load` (a folder) or :meth:`from_frames` (in-memory frames); both check the
    data contract once and normalise dtypes, so everything downstream can trust these frames.

    Attributes
    ----------
    name : str
        The retailer's name (the folder's name by default).
    items : polars.DataFrame
        The catalogue in file order, with the columns and dtypes of ``ITEMS_SCHEMA``.
    interactions : polars.DataFrame
        ``INTERACTIONS_SCHEMA``, sorted by ``(user_id, timestamp)``; ties keep file order.
    users : polars.DataFrame or None
        ``USERS_SCHEMA`` (one row per customer with text), or None without a users table.

    Examples
    --------
    >>> shop = RetailerData.load("sample_data/targets/trailhead_market")
    >>> shop.n_items, shop.n_users, shop.n_interactions
    (210, 165, 1104)
    """

    name: str
    items: pl.DataFrame
    interactions: pl.DataFrame
    users: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        # Cheap guard against building the class directly from raw frames, which would skip the
        # checks that everything downstream relies on.
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemaError(
                f"RetailerData: name must be a non-empty string, got {self.name!r}. "
                "Pass name='my_shop'."
            )
        expected = [
            ("items", self.items, ITEMS_SCHEMA),
            ("interactions", self.interactions, INTERACTIONS_SCHEMA),
        ]
        if self.users is not None:
            expected.append(("users", self.users, USERS_SCHEMA))
        for label, frame, schema in expected:
            if not isinstance(frame, pl.DataFrame) or frame.schema != schema:
                raise SchemaError(
                    f"RetailerData: {label} is not normalised (expected columns {dict(schema)}). "
                    "Build it with RetailerData.load(folder) or RetailerData.from_frames(...)."
                )

    def __repr__(self) -> str:
        users = "None" if self.users is None else f"<{self.users.height} rows>"
        return (
            f"RetailerData(name={self.name!r}, n_items={self.n_items}, n_users={self.n_users}, "
            f"n_interactions={self.n_interactions}, users={users})"
        )

    @property
    def n_items(self) -> int:
        """Number of products in the catalogue.

        Examples
        --------
        >>> shop.n_items
        210
        """
        return self.items.height

    @property
    def n_users(self) -> int:
        """Number of distinct customers in the interactions (text-only customers not counted).

        Examples
        --------
        >>> shop.n_users
        165
        """
        return self.interactions[Columns.USER].n_unique()

    @property
    def n_interactions(self) -> int:
        """Number of interaction rows.

        Examples
        --------
        >>> shop.n_interactions
        1104
        """
        return self.interactions.height

    @classmethod
    def load(cls, folder: str | Path, *, name: str | None = None) -> RetailerData:
        """Read and validate a retailer folder.

        The folder holds ``items.parquet`` or ``items.csv``, ``interactions.parquet`` or
        ``interactions.csv``, and optionally ``users.parquet`` or ``users.csv``. The items are
        read and checked before the interactions. CSV files are read with their id and text
        columns as strings, so ``"007"`` stays ``"007"``.

        Parameters
        ----------
        folder : str or Path
            The retailer's folder.
        name : str, optional
            The retailer's name; defaults to the folder's name.

        Returns
        -------
        RetailerData
            The normalised tables.

        Raises
        ------
        SchemaError
            When the folder or a required file is missing or unreadable, or a table breaks the
            data contract (the message names the file, the column, the values and the fix).

        Examples
        --------
        >>> shop = RetailerData.load("sample_data/targets/trailhead_market")
        >>> shop.name
        'trailhead_market'
        """
        path = Path(folder)
        if not path.exists():
            raise SchemaError(
                f"{path}: retailer folder not found. Pass the folder that holds items.parquet "
                "(or .csv) and interactions.parquet (or .csv)."
            )
        if not path.is_dir():
            raise SchemaError(
                f"{path}: is a file, not a retailer folder. Pass the folder that holds "
                "items.parquet (or .csv) and interactions.parquet (or .csv)."
            )
        items, interactions, users = read_folder(path)
        return cls(name or path.name or path.resolve().name, items, interactions, users)

    @classmethod
    def from_frames(
        cls,
        items: pl.DataFrame,
        interactions: pl.DataFrame,
        users: pl.DataFrame | None = None,
        *,
        name: str,
    ) -> RetailerData:
        """Validate in-memory frames (e.g. from a retailer's backend) with the folder's rules.

        Parameters
        ----------
        items : polars.DataFrame
            The catalogue: ``item_id``, ``title`` and optional item columns.
        interactions : polars.DataFrame
            ``user_id``, ``item_id``, ``timestamp`` and optional ``weight``/``quantity``,
            ``event``; other columns are dropped. Zero rows is allowed (a new shop).
        users : polars.DataFrame, optional
            ``user_id``, ``text``.
        name : str
            The retailer's name.

        Returns
        -------
        RetailerData
            The normalised tables.

        Raises
        ------
        SchemaError
            When a frame breaks the data contract; messages call the tables ``items``,
            ``interactions`` and ``users``.

        Examples
        --------
        >>> import polars as pl
        >>> shop = RetailerData.from_frames(
        ...     pl.DataFrame(
        ...         {"item_id": [1, 2], "title": ["Tent", "Stove"], "in_stock": ["yes", "no"]}
        ...     ),
        ...     pl.DataFrame({"user_id": ["u1"], "item_id": ["2"], "timestamp": [1_700_000_000]}),
        ...     name="demo",
        ... )
        >>> shop.items[Columns.IN_STOCK].to_list()
        [True, False]
        """
        return cls(name, *validate_frames(items, interactions, users))


def retailer_folders(root: str | Path) -> list[Path]:
    """The retailer folders under ``root`` (one per retailer; hidden and ``_`` folders skipped).

    Examples
    --------
    >>> [p.name for p in retailer_folders("sample_data/sources")]
    ['harbor_home', 'northwind_outfitters', 'summit_supply', 'urban_pantry']
    """
    return sorted(
        p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
