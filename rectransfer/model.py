"""The model a platform or a retailer's backend holds: a ranker plus what it needs to serve."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, ConfigDict

from rectransfer.compiled_scoring import Scorer, cached_scorer
from rectransfer.encoder import Encoder, load_encoder
from rectransfer.encoder_tuning import EncoderTuning
from rectransfer.errors import IncompatibleArtifactError
from rectransfer.features import FEATURE_NAMES
from rectransfer.guard import GuardReport
from rectransfer.ranker import predict

if TYPE_CHECKING:
    import polars as pl

    from rectransfer.prepare import PreparedRetailer
    from rectransfer.schema import RetailerData

FORMAT_VERSION = 1


def package_version() -> str:
    try:
        return importlib.metadata.version("rectransfer")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


class EncoderInfo(BaseModel):
    """Which encoder made the vectors the model was trained on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dim: int
    fingerprint: str
    spec: str  # what load_encoder() takes to rebuild it: "default", "hashing:64" or a local path

    @classmethod
    def of(cls, encoder: Encoder, spec: str) -> EncoderInfo:
        return cls(name=encoder.name, dim=encoder.dim, fingerprint=encoder.fingerprint, spec=spec)


class ModelConfig(BaseModel):
    """Everything in a model directory's ``config.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_type: Literal["rectransfer-ranker"] = "rectransfer-ranker"
    format_version: int = FORMAT_VERSION
    package_version: str
    created_at: str
    kind: Literal["broad", "adapted", "local", "blend"]  # which ranker this model ships
    retailer: str | None = None  # the retailer it was adapted to (None for a broad model)
    base_model_version: str | None = None
    encoder: EncoderInfo
    feature_names: list[str]
    candidates: dict[str, int]
    params: dict[str, Any]
    rounds: dict[str, int]
    trained_on: list[str]  # retailer names only: no ids or customer data
    guard: GuardReport | None = None
    library_versions: dict[str, str]
    random_state: int = 0
    encoder_tuning: EncoderTuning | None = None  # the per-retailer encoder step, when asked for


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("lightgbm", "numpy", "polars", "scikit-learn", "sentence-transformers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class RecModel:
    """A trained ranker with its configuration; scores candidates of any retailer.

    Build one with :func:`rectransfer.pretrain` or :func:`rectransfer.adapt`, or load one with
    :meth:`load`. The encoder that made the training vectors is remembered by fingerprint; a model
    refuses vectors of another encoder.

    Examples
    --------
    >>> import rectransfer as rt
    >>> model = rt.RecModel.load("models/broad")  # doctest: +SKIP
    >>> recs = model.recommend(rt.RetailerData.load("shops/my_shop"), k=10)  # doctest: +SKIP
    """

    def __init__(self, booster: lgb.Booster, config: ModelConfig, encoder: Encoder | None = None):
        self.booster = booster
        self.config = config
        self._encoder = encoder
        self._prepared: PreparedRetailer | None = None
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
        digest = hashlib.sha256(self.booster.model_to_string().encode()).hexdigest()[:12]
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
        self._prepared = None
        return self

    # --- scoring ---
    def score(self, features: np.ndarray) -> np.ndarray:
        """Ranker scores of candidate feature rows (columns in ``FEATURE_NAMES`` order)."""
        compiled = self._compiled
        return compiled(features) if compiled is not None else predict(self.booster, features)

    def compile_scoring(self) -> bool:
        """Score with the ranker compiled to native code from now on, if it can be.

        Worth it before scoring many customers (seconds to compile, then several times faster;
        :mod:`rectransfer.compiled_scoring`). Needs the ``compiled`` extra; the scores are the
        same either way. Returns whether compiled scoring is in use. Safe to call from several
        threads; a model is compiled once per process (other objects of the same model reuse it).
        """
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
        self._prepared = prepared

    def prepare(self, data: RetailerData) -> PreparedRetailer:
        """Index and embed a retailer once; reused while the same data object is passed."""
        from rectransfer.prepare import prepare

        if self._prepared is None or self._prepared.data is not data:
            self._prepared = prepare(data, self.encoder)
        return self._prepared

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
        """Top-``k`` items per customer; see :func:`rectransfer.recommend`."""
        from rectransfer.recommend import recommend

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
        """Write the model directory atomically (see :mod:`rectransfer.artifacts`)."""
        from rectransfer.artifacts import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, *, encoder: Encoder | None = None) -> RecModel:
        """Read a model directory; no code from the files is executed."""
        from rectransfer.artifacts import load_model

        model = load_model(path)
        if encoder is not None:
            model.with_encoder(encoder)
        return model


def check_features(config: ModelConfig) -> None:
    if list(config.feature_names) != list(FEATURE_NAMES):
        raise IncompatibleArtifactError(
            f"the model uses features {config.feature_names!r} but this rectransfer "
            f"({package_version()}) computes {list(FEATURE_NAMES)!r}. Pretrain and adapt the model "
            "again with this version."
        )
