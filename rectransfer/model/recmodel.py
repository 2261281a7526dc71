"""The model a platform or a retailer's backend holds: a ranker plus what it needs to serve."""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import IncompatibleArtifactError
from rectransfer.model.artifacts import load_model_files, save_model_files
from rectransfer.model.config import GuardReport, ModelConfig
from rectransfer.prepared.prepare import PreparedRetailer, prepare
from rectransfer.ranking.compiled import Scorer, cached_scorer
from rectransfer.ranking.features import CandidateConfig
from rectransfer.ranking.ranker import predict
from rectransfer.ranking.rules import rule_scores
from rectransfer.serving.recommend import recommend
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder

# Retailers a model keeps prepared (vectors, statistics, text neighbours) for the next calls: a
# backend serving a few shops from one model does not prepare again on every switch.
MAX_PREPARED_RETAILERS = 4


class RecModel:
    """A trained ranker with its configuration; scores candidates of any retailer.

    Build one with :func:`rectransfer.transfer.pretrain` or :func:`rectransfer.transfer.adapt`, or
    load one with :meth:`load`. The encoder that made the training vectors is remembered by
    fingerprint; a model refuses vectors of another encoder.

    Examples
    --------
    >>> import rectransfer as rt
    >>> model = rt.RecModel.load(broad_dir)
    >>> shop = rt.RetailerData.load("sample_data/targets/trailhead_market")
    >>> recs = rt.recommend(model, shop, k=10)
    >>> recs["user_id"].n_unique(), recs.height
    (180, 1800)
    """

    def __init__(self, booster: lgb.Booster, config: ModelConfig, encoder: Encoder | None = None):
        self.booster = booster
        self.config = config
        self._encoder = encoder
        # data object id -> its prepared retailer, most recently used last (bounded)
        self._prepared: OrderedDict[int, PreparedRetailer] = OrderedDict()
        self._compiled: Scorer | None = None
        self._compile_tried = False
        self._compile_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # native code and a lock do not travel to another process; compile again there
        state = self.__dict__.copy()
        state.update(_compiled=None, _compile_tried=False, _compile_lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _compile_lock=threading.Lock())

    # --- identity ---
    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def guard(self) -> GuardReport | None:
        return self.config.guard

    @property
    def model_version(self) -> str:
        """``<kind>-<first 12 hex of the ranker's sha256>``: equal models have equal versions."""
        rule = self.config.rule
        ranker = json.dumps(rule, sort_keys=True) if rule else self.booster.model_to_string()
        digest = hashlib.sha256(ranker.encode()).hexdigest()[:12]
        return f"{self.config.kind}-{digest}"

    def __repr__(self) -> str:
        return (
            f"RecModel(kind={self.kind!r}, version={self.model_version!r}, "
            f"encoder={self.config.encoder.name!r}, trained_on={self.config.trained_on!r})"
        )

    # --- encoder ---
    @property
    def encoder(self) -> Encoder:
        """The encoder of the training vectors, loaded from its spec on first use."""
        if self._encoder is None:
            self._encoder = load_encoder(self.config.encoder.spec)
        self.check_encoder(self._encoder)
        return self._encoder

    def check_encoder(self, encoder: Encoder) -> None:
        expected = self.config.encoder
        if encoder.fingerprint != expected.fingerprint:
            raise IncompatibleArtifactError(
                f"the model was trained with encoder {expected.name!r} (fingerprint "
                f"{expected.fingerprint[:12]}), but encoder {encoder.name!r} (fingerprint "
                f"{encoder.fingerprint[:12]}) was given. Use the same encoder, or pretrain and "
                "adapt again with the new one."
            )

    def with_encoder(self, encoder: Encoder) -> RecModel:
        """Use this encoder object (checked against the model's fingerprint) from now on."""
        self.check_encoder(encoder)
        self._encoder = encoder
        self._prepared.clear()
        return self

    @property
    def candidate_config(self) -> CandidateConfig:
        """How many candidates of each kind the ranker scores (saved with the model)."""
        return CandidateConfig(**self.config.candidates)

    # --- scoring ---
    def score(self, features: np.ndarray) -> np.ndarray:
        """Ranker scores of candidate feature rows (columns in ``FEATURE_NAMES`` order)."""
        if self.config.rule is not None:
            return rule_scores(self.config.rule, features)
        compiled = self._compiled
        return compiled(features) if compiled is not None else predict(self.booster, features)

    def compile_scoring(self) -> bool:
        """Score with the ranker compiled to native code from now on, if it can be.

        Worth it before scoring many customers (seconds to compile, then several times faster;
        :mod:`rectransfer.ranking.compiled`). Needs the ``compiled`` extra; the scores are the
        same either way. Returns whether compiled scoring is in use. Safe to call from several
        threads; a model is compiled once per process (other objects of the same model reuse it).
        """
        if self.config.rule is not None:  # a weighted sum of a few columns: nothing to compile
            return False
        with self._compile_lock:
            if not self._compile_tried:
                self._compiled = cached_scorer(self.booster, self.model_version)
                self._compile_tried = True
        return self._compiled is not None

    def reuse_prepared(self, prepared: PreparedRetailer) -> None:
        """Keep a retailer already prepared with this model's encoder for the next calls."""
        if prepared.encoder_fingerprint != self.config.encoder.fingerprint:
            raise IncompatibleArtifactError(
                f"{prepared.name!r} was embedded with another encoder than this model's."
            )
        self._keep(prepared)

    def prepare(self, data: RetailerData) -> PreparedRetailer:
        """Index and embed a retailer once; reused while the same data object is passed.

        The last ``MAX_PREPARED_RETAILERS`` retailers are kept, so a backend serving several
        shops from one model prepares each once.
        """
        found = self._prepared.get(id(data))
        if found is None or found.data is not data:  # an id can be reused after a data object dies
            found = prepare(data, self.encoder)
        self._keep(found)
        return found

    def _keep(self, prepared: PreparedRetailer) -> None:
        self._prepared[id(prepared.data)] = prepared
        self._prepared.move_to_end(id(prepared.data))
        while len(self._prepared) > MAX_PREPARED_RETAILERS:
            self._prepared.popitem(last=False)

    def recommend(
        self,
        data: RetailerData,
        users: list[str] | None = None,
        *,
        k: int = 20,
        exclude_bought: bool = True,
        allow_items: list[str] | None = None,
        deny_items: list[str] | None = None,
        threads: int | None = None,
    ) -> pl.DataFrame:
        """Top-``k`` items per customer: a deprecated spelling of :func:`rectransfer.recommend`.

        .. deprecated:: 0.1.0
            ``RecModel.recommend`` will be removed in a later version; use
            ``rectransfer.recommend(model, data, ...)``, which takes the same arguments after the
            model and returns the same frame. Verbs on a shop are functions taking the model
            first, like :func:`rectransfer.recommend_for` and :func:`rectransfer.adapt`; methods
            are the model's own lifecycle (``load``, ``save``, ``prepare``).
        """
        # The tests' warning filters (pyproject.toml) match this message's start.
        warnings.warn(
            "RecModel.recommend is deprecated; use rectransfer.recommend(model, data, ...) "
            "instead. The method will be removed in a later version.",
            DeprecationWarning,
            stacklevel=2,
        )
        return recommend(
            self,
            data,
            users,
            k=k,
            exclude_bought=exclude_bought,
            allow_items=allow_items,
            deny_items=deny_items,
            threads=threads,
        )

    # --- persistence ---
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (see :mod:`rectransfer.model.artifacts`).

        ``path`` must be new, an empty folder or a model directory rectransfer wrote; anything
        else raises :class:`~rectransfer.errors.ConfigError` and is left as it was.
        """
        return save_model_files(self.booster, self.config, path)

    @classmethod
    def load(cls, path: str | Path, *, encoder: Encoder | None = None) -> RecModel:
        """Read a model directory; no code from the files is executed."""
        booster, config = load_model_files(path)
        model = cls(booster, config)
        if encoder is not None:
            model.with_encoder(encoder)
        return model
