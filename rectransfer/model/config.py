"""What a model directory's ``config.json`` holds: the model's settings, the encoder it was trained
with, the guard's figures and the per-retailer encoder step's outcome.

Saved models store no class paths, so these classes may move without breaking saved models.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rectransfer.errors import IncompatibleArtifactError
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.rules import RULE_NAMES, check_rule
from rectransfer.text.encoder import Encoder
from rectransfer.utils.versions import package_version

__all__ = [
    "CANDIDATES",
    "FORMAT_VERSION",
    "Choice",
    "EncoderInfo",
    "EncoderTuning",
    "GuardReport",
    "ModelConfig",
    "check_features",
]

FORMAT_VERSION = 1

# Bounds on what a config.json may ask for, so that an edited file cannot make serving allocate
# without end: candidates per signal and customer (the defaults are 30-60; 0 turns a signal off),
# boosting rounds (training makes hundreds) and the encoder's vector size (MiniLM: 384).
MAX_CANDIDATES = 10_000
MAX_ROUNDS = 100_000
MAX_ENCODER_DIM = 65_536
CANDIDATE_SIGNALS = tuple(field.name for field in dataclasses.fields(CandidateConfig))

Choice = Literal["adapted", "broad", "local", "blend", "markov", "popularity"]
CANDIDATES: tuple[Choice, ...] = ("adapted", "broad", "local", "blend", "markov", "popularity")


class GuardReport(BaseModel):
    """What the guard measured on validation and what it decided."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "ndcg@10"
    validation_customers: int
    ndcg: dict[str, float]  # broad, local, adapted, blend, markov, popularity
    recall: dict[str, float]
    stderr: dict[str, float]  # standard error of each NDCG over customers
    decision: Choice
    reason: str
    markov_weight: float | None = None  # the markov rule's weight, chosen on the training lists

    def table(self) -> str:
        """A small plain-text table of the figures, the shipped model marked with '*'."""
        lines = [f"{'model':<12}{'NDCG@10':>10}{'Recall@10':>11}{'+/- se':>9}"]
        for name in ("popularity", "markov", "local", "broad", "adapted", "blend"):
            if name not in self.ndcg:
                continue
            mark = " *" if name == self.decision else ""
            lines.append(
                f"{name:<12}{self.ndcg[name]:>10.4f}{self.recall[name]:>11.4f}"
                f"{self.stderr.get(name, float('nan')):>9.4f}{mark}"
            )
        lines.append(f"decision: {self.decision} ({self.reason})")
        return "\n".join(lines)


class EncoderTuning(BaseModel):
    """What the per-retailer encoder step did, as recorded in the adapted model's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: int  # distinct product-text pairs the retailer's training histories give
    seconds: float  # tuning the encoder (the second adaptation not included)
    validation_ndcg: dict[str, float]  # what the guard ships, with the model's / the tuned encoder
    stderr: float | None  # standard error of their paired difference (None: not compared)
    kept: bool
    encoder: str | None  # the tuned encoder's spec when kept
    reason: str


class EncoderInfo(BaseModel):
    """Which encoder made the vectors the model was trained on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dim: Annotated[int, Field(ge=1, le=MAX_ENCODER_DIM)]
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
    kind: Choice  # which ranker this model ships
    retailer: str | None = None  # the retailer it was adapted to (None for a broad model)
    base_model_version: str | None = None
    encoder: EncoderInfo
    feature_names: list[str]
    candidates: dict[str, Annotated[int, Field(strict=True, ge=0, le=MAX_CANDIDATES)]]
    params: dict[str, Any]
    rounds: dict[str, Annotated[int, Field(strict=True, ge=0, le=MAX_ROUNDS)]]
    trained_on: list[str]  # retailer names only: no ids or customer data
    guard: GuardReport | None = None
    library_versions: dict[str, str]
    random_state: int = 0
    encoder_tuning: EncoderTuning | None = None  # the per-retailer encoder step, when asked for
    # a rule ranker's weights (kind markov or popularity; rectransfer.ranking.rules): it scores
    # the candidates instead of the trees, which are the broad model's, kept so every model
    # directory has one layout
    rule: dict[str, float] | None = None

    @field_validator("rule")
    @classmethod
    def _known_features(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return None if value is None else check_rule(value)

    @model_validator(mode="after")
    def _rule_matches_kind(self) -> ModelConfig:
        if (self.kind in RULE_NAMES) != (self.rule is not None):
            raise ValueError(
                f"kind {self.kind!r} "
                + ("needs the rule's weights" if self.rule is None else "is not scored by a rule")
            )
        return self

    @field_validator("candidates")
    @classmethod
    def _every_signal_once(cls, value: dict[str, int]) -> dict[str, int]:
        if sorted(value) != sorted(CANDIDATE_SIGNALS):
            raise ValueError(
                f"the signals must be exactly {list(CANDIDATE_SIGNALS)}, got {list(value)}"
            )
        if not any(value.values()):
            raise ValueError("every signal has 0 candidates, so no customer would get any")
        return value


def check_features(config: ModelConfig) -> None:
    if list(config.feature_names) != list(FEATURE_NAMES):
        raise IncompatibleArtifactError(
            f"the model uses features {config.feature_names!r} but this rectransfer "
            f"({package_version()}) computes {list(FEATURE_NAMES)!r}. Pretrain and adapt the model "
            "again with this version."
        )
