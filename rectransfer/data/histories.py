"""Customers' item sequences as compact integer arrays, and the leave-last-out cuts made from them.

Everything downstream of the schema works on :class:`Histories`: for every customer, the catalogue
positions of the items they interacted with, in time order (ties in file order), stored CSR-style
(``indptr`` into one flat ``items`` array). External ids stay in :class:`RetailerIndex` and are
mapped back only when a frame leaves the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData


@dataclass(frozen=True)
class Histories:
    """Item sequences of ``n_users`` customers over a catalogue of ``n_items`` items.

    ``items[indptr[u]:indptr[u + 1]]`` are customer ``u``'s items in time order and ``times`` the
    matching timestamps (and ``weights`` the matching weights, see
    :mod:`rectransfer.prepared.stats` for how they count).
    """

    indptr: np.ndarray  # int64 (n_users + 1,)
    items: np.ndarray  # int32 (n_events,)
    times: np.ndarray  # int64 (n_events,)
    n_items: int
    # float32 (n_events,): the interactions' weight (or quantity) column; None when every event
    # weighs 1, so that shops without weights take exactly the unweighted path.
    weights: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def user_of_event(self) -> np.ndarray:
        """The customer row of every event, aligned with ``items``."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths)

    def truncate(self, drop_last: int) -> Histories:
        """Every sequence without its last ``drop_last`` events (shorter ones become empty)."""
        if drop_last == 0:
            return self
        lengths = np.maximum(self.lengths - drop_last, 0)
        keep = _prefix_mask(self.indptr, lengths)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Histories(
            indptr, self.items[keep], self.times[keep], self.n_items, _take(self.weights, keep)
        )

    def last(self, offset: int = 0, *, rows: np.ndarray | None = None) -> np.ndarray:
        """The item ``offset`` places before the end of each sequence (-1 where too short).

        ``rows`` restricts the answer to those customer rows, in that order.
        """
        users = np.arange(self.n_users) if rows is None else np.asarray(rows, dtype=np.int64)
        position = self.indptr[1:][users] - 1 - offset
        valid = position >= self.indptr[:-1][users]
        out = np.full(len(users), -1, dtype=np.int64)
        out[valid] = self.items[position[valid]]
        return out

    def select(self, users: np.ndarray) -> Histories:
        """The sequences of the given customer rows, in that order."""
        flat = self.event_positions(users)
        indptr = np.concatenate([[0], np.cumsum(self.lengths[users])]).astype(np.int64)
        return Histories(
            indptr, self.items[flat], self.times[flat], self.n_items, _take(self.weights, flat)
        )

    def event_positions(self, users: np.ndarray) -> np.ndarray:
        """Positions in ``items`` of the given customer rows' events, in ``select`` order."""
        return _ranges(self.indptr[:-1][users], self.lengths[users])


def _take(weights: np.ndarray | None, where: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[where]


def _prefix_mask(indptr: np.ndarray, keep_lengths: np.ndarray) -> np.ndarray:
    """Boolean mask over events keeping the first ``keep_lengths[u]`` events of each user."""
    lengths = np.diff(indptr)
    position = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
    return position < np.repeat(keep_lengths, lengths)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n) pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - offsets)


def _weights(column: pl.Series) -> np.ndarray | None:
    """The weights as float32, or None when every one is 1 (as float32, as before)."""
    if bool((column == 1.0).all()):  # the usual case, without a float32 copy to find it
        return None
    weights = column.to_numpy().astype(np.float32)
    return None if bool(np.all(weights == 1.0)) else weights


def id_array(ids: pl.Series | list[str]) -> np.ndarray:
    """Ids as a numpy array of Python strings (``dtype=object``).

    Never fixed-width unicode (``<U{n}``): that stores every id at the width of the longest, so
    one long id multiplies the memory of every id array and of every output column built from it,
    and numpy drops trailing NUL characters from such strings, which would change an id.
    """
    values = ids.to_list() if isinstance(ids, pl.Series) else ids
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True)
class RetailerIndex:
    """External ids of one retailer mapped to the integer positions used inside the package.

    The id arrays hold Python strings (``dtype=object``, see :func:`id_array`), exactly as the
    retailer's tables give them.
    """

    item_ids: np.ndarray  # object (n_items,), catalogue order
    user_ids: np.ndarray  # object (n_users,), customers with interactions first, then text-only
    histories: Histories  # one row per user_ids entry (text-only customers have empty rows)

    @classmethod
    def build(cls, data: RetailerData) -> RetailerIndex:
        items = data.items[Columns.ITEM]
        interactions = data.interactions
        n_events = interactions.height
        # Item ids become catalogue positions in one pass: the ids are unique, so the catalogue is
        # an Enum whose codes are the positions. Only the code column is built, not a joined copy
        # of the interactions.
        positions = interactions[Columns.ITEM].cast(pl.Enum(items)).to_physical()
        # interactions arrive sorted by (user, time, file order): users are contiguous runs,
        # found by comparing each row's id with the next one's (slices, not shifted copies).
        users = interactions[Columns.USER]
        changes = (users.slice(1) != users.head(max(n_events - 1, 0))).to_numpy()
        starts = np.flatnonzero(np.concatenate([[n_events > 0], changes]))
        user_ids = users.gather(starts)
        indptr = np.append(starts, n_events).astype(np.int64)
        if data.users is not None:
            text_users = data.users[Columns.USER]
            extra = text_users.filter(~text_users.is_in(user_ids.implode()))
            user_ids = pl.concat([user_ids, extra])
            indptr = np.concatenate([indptr, np.full(len(extra), n_events, dtype=np.int64)])
        histories = Histories(
            indptr=indptr,
            items=positions.to_numpy().astype(np.int32),
            # the frame's own buffer where polars can share it (read-only; nothing writes times)
            times=interactions[Columns.TIMESTAMP].to_numpy().astype(np.int64, copy=False),
            n_items=len(items),
            weights=_weights(interactions[Columns.WEIGHT]),
        )
        return cls(item_ids=id_array(items), user_ids=id_array(user_ids), histories=histories)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)
