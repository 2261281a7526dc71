"""A seeded generator of retailers of any size, for scale and load benchmarks.

``make_retailer(n_customers, n_items)`` builds a shop with about ``interactions_per_customer``
events per customer, generated fully vectorised so a million customers take seconds. It plants the
same kinds of structure the features look for, so the ranker, candidates and rules do real work:

* products belong to *kinds* (about 40 products each) and kinds to *domains*; titles are built from
  a brand, an adjective, the kind's noun and a model number, so text similarity finds the kind;
* each customer has a home domain; the next product is, with probability ``P_CHAIN``, one of the
  next kind in the domain's chain (what tends to follow what), else a product of the home domain,
  else a globally popular one; inside a kind, products have Zipf-like popularity;
* a share of the customers have their own text (their home domain in their words), some products
  are out of stock, and timestamps increase along each customer's history.

It is a benchmark fixture, not a realistic shop: figures measured on it are speed and memory, never
recommendation quality.

Examples
--------
>>> shop = make_retailer(100, 500, seed=0)
>>> shop.items.height, shop.interactions["user_id"].n_unique()
(500, 100)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.utils import atomic as _atomic

P_CHAIN = 0.55  # the next product is of the next kind in the home domain's chain
P_POPULAR = 0.10  # the next product is one of the globally popular ones
ITEMS_PER_KIND = 40
KINDS_PER_DOMAIN = 6
TEXT_SHARE = 0.3
OUT_OF_STOCK_SHARE = 0.03
START_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z
WINDOW_SECONDS = 180 * 86_400

_BRANDS = [
    "Acme",
    "Alto",
    "Borealis",
    "Cedar",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Ion",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Onyx",
    "Pioneer",
    "Quill",
    "Ridge",
    "Summit",
    "Tundra",
    "Umber",
    "Vertex",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
]
_ADJECTIVES = [
    "compact",
    "deluxe",
    "classic",
    "portable",
    "heavy-duty",
    "lightweight",
    "premium",
    "everyday",
    "pro",
    "mini",
    "large",
    "wireless",
    "ergonomic",
    "foldable",
    "organic",
    "stainless",
    "bamboo",
    "cotton",
    "vintage",
    "smart",
    "quiet",
    "rapid",
]
_NOUNS = [
    "tent",
    "sleeping-bag",
    "headlamp",
    "stove",
    "backpack",
    "lantern",
    "kettle",
    "grinder",
    "frother",
    "mug",
    "teapot",
    "whisk",
    "skillet",
    "spatula",
    "blender",
    "toaster",
    "desk-lamp",
    "monitor-stand",
    "keyboard",
    "mouse",
    "notebook",
    "pen",
    "stapler",
    "leash",
    "collar",
    "dog-bed",
    "chew-toy",
    "feeder",
    "yoga-mat",
    "block",
    "strap",
    "towel",
    "bottle",
    "helmet",
    "bike-light",
    "pump",
    "lock",
    "saddle",
    "glove",
    "trowel",
    "hose",
    "planter",
    "seed-kit",
    "pruner",
    "apron",
    "candle",
    "vase",
    "rug",
    "pillow",
    "blanket",
    "frame",
    "clock",
    "speaker",
    "charger",
    "cable",
    "earbuds",
    "router",
    "webcam",
    "tripod",
]
_DOMAIN_WORDS = [
    "camping",
    "hiking",
    "coffee",
    "baking",
    "home-office",
    "dogs",
    "yoga",
    "cycling",
    "gardening",
    "decor",
    "audio",
    "photography",
]


def make_retailer(
    n_customers: int,
    n_items: int,
    *,
    interactions_per_customer: float = 25.0,
    text_share: float = TEXT_SHARE,
    seed: int = 0,
    name: str = "scale_shop",
) -> RetailerData:
    """A validated synthetic retailer of ``n_customers`` customers and ``n_items`` products.

    Parameters
    ----------
    n_customers, n_items
        Shop size; every customer has at least two interactions.
    interactions_per_customer
        Mean history length (Poisson, at least 2).
    text_share
        Share of customers with a ``users`` row of their own words.
    seed
        The same seed gives the same shop.
    name
        The retailer's name.

    Examples
    --------
    >>> make_retailer(10, 200, seed=1).interactions.height > 20
    True
    """
    if n_customers < 1 or n_items < ITEMS_PER_KIND:
        raise ValueError(
            f"need at least one customer and {ITEMS_PER_KIND} items, got "
            f"n_customers={n_customers}, n_items={n_items}"
        )
    rng = np.random.default_rng(seed)
    items, kind_of_item = _catalogue(n_items, rng)
    interactions = _interactions(n_customers, kind_of_item, interactions_per_customer, rng)
    users = _users(n_customers, interactions, kind_of_item, text_share, rng)
    return RetailerData.from_frames(items, interactions, users, name=name)


def write_retailer(data: RetailerData, folder: str | Path) -> Path:
    """Write a retailer as a data-contract folder of Parquet files; returns the folder."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    tables = {"items": data.items, "interactions": data.interactions, "users": data.users}
    for table, frame in tables.items():
        if frame is None:
            continue
        staging = target / f".{table}.parquet.{_atomic.owner_token()}.tmp"
        frame.write_parquet(staging)
        staging.replace(target / f"{table}.parquet")
    return target


def _catalogue(n_items: int, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    n_kinds = max(n_items // ITEMS_PER_KIND, 1)
    kind = np.sort(rng.integers(0, n_kinds, n_items))
    noun = np.array(_NOUNS)[kind % len(_NOUNS)]
    # Kinds beyond the noun list get a series word, so their titles stay distinguishable.
    series = np.where(
        kind >= len(_NOUNS), np.char.add(" series-", (kind // len(_NOUNS)).astype(str)), ""
    )
    brand = np.array(_BRANDS)[rng.integers(0, len(_BRANDS), n_items)]
    adjective = np.array(_ADJECTIVES)[rng.integers(0, len(_ADJECTIVES), n_items)]
    model = rng.integers(100, 10_000, n_items).astype(str)
    title = [
        f"{b} {a} {n.replace('-', ' ')}{s} {m}"
        for b, a, n, s, m in zip(brand, adjective, noun, series, model, strict=True)
    ]
    domain = np.array(_DOMAIN_WORDS)[(kind // KINDS_PER_DOMAIN) % len(_DOMAIN_WORDS)]
    price = np.round(np.exp(rng.normal(3.0, 0.8, n_items)), 2)
    items = pl.DataFrame(
        {
            Columns.ITEM: [f"p{i:07d}" for i in range(n_items)],
            Columns.TITLE: title,
            Columns.CATEGORY: domain,
            Columns.BRAND: brand,
            Columns.PRICE: price,
            Columns.IN_STOCK: rng.random(n_items) >= OUT_OF_STOCK_SHARE,
        }
    )
    return items, kind


def _interactions(
    n_customers: int, kind_of_item: np.ndarray, mean_length: float, rng: np.random.Generator
) -> pl.DataFrame:
    n_items = len(kind_of_item)
    n_kinds = int(kind_of_item.max()) + 1
    kind_start = np.searchsorted(kind_of_item, np.arange(n_kinds))
    kind_size = np.bincount(kind_of_item, minlength=n_kinds)
    popular = rng.permutation(n_items)[: max(n_items // 100, 1)]

    lengths = np.maximum(rng.poisson(mean_length, n_customers), 2)
    user = np.repeat(np.arange(n_customers), lengths)
    position = np.arange(len(user)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    home_domain_first_kind = (rng.integers(0, n_kinds, n_customers) // KINDS_PER_DOMAIN) * (
        KINDS_PER_DOMAIN
    )

    # Walk each customer's kinds: next in the chain, a random kind of the home domain, or popular.
    steps = rng.random(len(user))
    chain_offset = np.zeros(len(user), dtype=np.int64)
    offset = rng.integers(0, KINDS_PER_DOMAIN, n_customers)
    max_length = int(lengths.max())
    for step in range(max_length):
        at = position == step
        who = user[at]
        chained = steps[at] < P_CHAIN
        offset[who] = np.where(
            chained,
            (offset[who] + 1) % KINDS_PER_DOMAIN,
            rng.integers(0, KINDS_PER_DOMAIN, len(who)),
        )
        chain_offset[at] = offset[who]
    kind = np.minimum(home_domain_first_kind[user] + chain_offset, n_kinds - 1)
    # Zipf-like choice inside the kind: low ranks are popular.
    rank = np.minimum(rng.zipf(1.6, len(user)) - 1, kind_size[kind] - 1)
    item = kind_start[kind] + rank
    is_popular = steps >= 1.0 - P_POPULAR
    item[is_popular] = popular[rng.integers(0, len(popular), int(is_popular.sum()))]

    gaps = rng.exponential(1.0, len(user))
    cumulative = np.cumsum(gaps)
    first = np.repeat(cumulative[np.cumsum(lengths) - lengths], lengths)
    span = np.repeat(np.add.reduceat(gaps, np.cumsum(lengths) - lengths), lengths)
    fraction = (cumulative - first) / np.maximum(span, 1e-9)
    start = rng.random(n_customers) * 0.5
    timestamp = START_TIME + (
        (start[user] + fraction * (1.0 - start[user])) * WINDOW_SECONDS
    ).astype(np.int64)
    return pl.DataFrame(
        {
            Columns.USER: pl.Series(np.char.add("c", user.astype(str))),
            Columns.ITEM: pl.Series([f"p{i:07d}" for i in range(n_items)]).gather(item),
            Columns.TIMESTAMP: timestamp,
        }
    )


def _users(
    n_customers: int,
    interactions: pl.DataFrame,
    kind_of_item: np.ndarray,
    text_share: float,
    rng: np.random.Generator,
) -> pl.DataFrame | None:
    if text_share <= 0:
        return None
    chosen = np.flatnonzero(rng.random(n_customers) < text_share)
    first_item = (
        interactions.group_by(Columns.USER, maintain_order=True)
        .agg(pl.col(Columns.ITEM).first())
        .get_column(Columns.ITEM)
        .str.slice(1)
        .cast(pl.Int64)
        .to_numpy()
    )
    domain_words = np.array(_DOMAIN_WORDS)
    domain = domain_words[
        (kind_of_item[first_item[chosen]] // KINDS_PER_DOMAIN) % len(domain_words)
    ]
    text = [
        f"I love {d.replace('-', ' ')} gear, looking for good {d.replace('-', ' ')} things"
        for d in domain
    ]
    return pl.DataFrame({Columns.USER: np.char.add("c", chosen.astype(str)), Columns.TEXT: text})
