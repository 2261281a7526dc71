"""Everything derived from one retailer's data that scoring needs, computed once and reused."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rectransfer.data.columns import Columns
from rectransfer.data.histories import RetailerIndex
from rectransfer.data.retailer import RetailerData
from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.prepared.text_blend import TextBlend, fit_text_blend
from rectransfer.prepared.text_neighbours import NeighbourPool
from rectransfer.prepared.user_vectors import UserVectors
from rectransfer.text.encoder import Encoder
from rectransfer.text.texts import user_texts
from rectransfer.utils.progress import timed


@dataclass(frozen=True)
class PreparedRetailer:
    """A retailer's validated data with its id index, catalogue vectors and customer text vectors.

    Customer text vectors are aligned with ``index.user_ids`` (stored for the customers with text
    only; the others read as zero rows). Customer text is encoded without the shared on-disk
    cache unless ``cache_user_text`` was set (it is personal data; product text is not).
    """

    data: RetailerData
    index: RetailerIndex
    catalogue: Catalogue
    user_vectors: UserVectors
    encoder_fingerprint: str

    @property
    def name(self) -> str:
        return self.data.name

    @cached_property
    def user_positions(self) -> dict[str, int]:
        """Customer id -> row in ``index.user_ids`` (built once)."""
        return {user: i for i, user in enumerate(self.index.user_ids.tolist())}

    @cached_property
    def item_positions(self) -> dict[str, int]:
        """Item id -> catalogue position (built once; online requests look items up in it)."""
        return {item: i for i, item in enumerate(self.index.item_ids.tolist())}

    @cached_property
    def serving_stats(self) -> BehaviourStats:
        """Behaviour statistics over all interactions, built once per prepared retailer."""
        with timed(f"behaviour statistics of {self.name}"):
            return BehaviourStats.build(self.index.histories)

    @cached_property
    def neighbour_pool(self) -> NeighbourPool:
        """The known customers that text-only customers are compared with (built once)."""
        return NeighbourPool.build(self.index.histories, self.user_vectors)

    @cached_property
    def text_blend(self) -> TextBlend:
        """How customers known only by their text are served: weights chosen once."""
        return fit_text_blend(
            self.index.histories,
            self.user_vectors,
            self.catalogue.vectors,
            self.neighbour_pool,
        )


def prepare(
    data: RetailerData, encoder: Encoder, *, cache_user_text: bool = False
) -> PreparedRetailer:
    """Index ids, embed the catalogue and the customers' own text.

    Examples
    --------
    >>> from rectransfer.text.encoder import HashingEncoder
    >>> prepared = prepare(shop, HashingEncoder())
    >>> prepared.catalogue.vectors.shape
    (210, 64)
    """
    index = RetailerIndex.build(data)
    catalogue = Catalogue.build(data, encoder)
    user_vectors = UserVectors.empty(len(index.user_ids), catalogue.vectors.shape[1])
    if data.users is not None and len(data.users):
        texts = user_texts(data.users)
        text_encoder = encoder if cache_user_text else uncached(encoder)
        vectors = text_encoder.encode(texts)
        position = {u: i for i, u in enumerate(index.user_ids.tolist())}
        rows = np.array([position[u] for u in data.users[Columns.USER].to_list()], dtype=np.int64)
        user_vectors = UserVectors.of(rows, vectors, len(index.user_ids))
    return PreparedRetailer(
        data=data,
        index=index,
        catalogue=catalogue,
        user_vectors=user_vectors,
        encoder_fingerprint=encoder.fingerprint,
    )


def with_customers_of(data: RetailerData, full: PreparedRetailer) -> PreparedRetailer:
    """``data`` (some of ``full``'s customers, the same catalogue) prepared without encoding
    anything again: the catalogue and the customers' text vectors are ``full``'s."""
    index = RetailerIndex.build(data)
    position = full.user_positions
    rows = np.array([position[u] for u in index.user_ids.tolist()], dtype=np.int64)
    return PreparedRetailer(
        data=data,
        index=index,
        catalogue=full.catalogue,
        user_vectors=full.user_vectors.subset(rows),
        encoder_fingerprint=full.encoder_fingerprint,
    )


def uncached(encoder: Encoder) -> Encoder:
    """The encoder behind a cache wrapper, so that personal text never reaches the disk cache."""
    inner = getattr(encoder, "encoder", None)
    return inner if inner is not None else encoder
