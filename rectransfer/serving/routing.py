"""Which list a customer gets: the one routing rule of batch, online and chunked serving.

* ``ranker``: customers with history are ranked by the model;
* ``text``: customers with no history but their own words get the text path's blend;
* ``popular``: everyone else (unknown or silent customers) gets the shop's popular items.

Examples
--------
>>> import numpy as np
>>> route(np.array([3, 0, 0]), np.array([True, True, False])).tolist()
['ranker', 'text', 'popular']
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np

from rectransfer.data.retailer import RetailerData
from rectransfer.prepared.prepare import PreparedRetailer
from rectransfer.ranking.features import CandidateConfig
from rectransfer.text.encoder import Encoder

__all__ = ["PATHS", "POPULAR", "RANKER", "TEXT", "ServingModel", "route"]

RANKER: Final = "ranker"
TEXT: Final = "text"
POPULAR: Final = "popular"
PATHS: Final = (RANKER, TEXT, POPULAR)


def route(history_lengths: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """The path (``ranker``, ``text`` or ``popular``) of each customer, as a string array.

    ``history_lengths`` counts each customer's known items (0 for an unknown customer) and
    ``has_text`` says whether they have their own words.
    """
    lengths = np.asarray(history_lengths)
    text = np.asarray(has_text, dtype=bool)
    return np.where(lengths > 0, RANKER, np.where(text, TEXT, POPULAR))


class ServingModel(Protocol):
    """What serving needs of a model (:class:`~rectransfer.RecModel` is one)."""

    @property
    def candidate_config(self) -> CandidateConfig: ...

    @property
    def encoder(self) -> Encoder: ...

    def score(self, features: np.ndarray) -> np.ndarray: ...

    def compile_scoring(self) -> bool: ...

    def prepare(self, data: RetailerData) -> PreparedRetailer: ...
