"""Adaptation to one retailer: fine-tune the broad ranker, and let the guard decide what ships.

Time is split per customer so nothing downstream sees what it predicts:

* validation: each customer's last item (the guard's figures; never trained on);
* training: the ``train_cuts`` items before it, each with the history before it as context;
* within training, 20% of the customers pick the number of boosting rounds (early stopping), or a
  fixed small number of rounds is used when there are too few of them to trust.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from rectransfer.data.holdout import drop_last_interaction
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.metrics import (
    ndcg_at,
    ndcg_gains,
    ndcg_stderr,
    recall_at,
    target_ranks,
)
from rectransfer.model.config import Choice, EncoderInfo, EncoderTuning, GuardReport, ModelConfig
from rectransfer.model.recmodel import RecModel
from rectransfer.prepared.prepare import PreparedRetailer, prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.ranker import (
    ADAPT_PARAMS,
    ADAPT_PARAMS_RICH,
    ADAPT_ROUNDS,
    ADAPT_ROUNDS_RICH,
    LOCAL_PARAMS,
    LOCAL_ROUNDS,
    MIN_EARLY_STOPPING_GROUPS,
    predict,
    sum_of_boosters,
    train_ranker,
)
from rectransfer.ranking.rules import (
    RULE_NAMES,
    Rule,
    choose_markov_weight,
    markov_rule,
    popularity_rule,
    rule_scores,
)
from rectransfer.ranking.training_data import labelled_rows
from rectransfer.text.encoder import Encoder
from rectransfer.text.tuning import check_tune_folder, discard, tune_encoder
from rectransfer.transfer.guard import decide, keep_tuned, too_little_to_adapt
from rectransfer.transfer.pretrain import MAX_TRAINING_NEGATIVES, split_by_customer
from rectransfer.utils.progress import stage
from rectransfer.utils.versions import now_iso

EARLY_STOPPING_SHARE = 0.2
PROBE_ROWS = 5_000  # validation rows the joined blend booster is checked on
METRIC_K = 10


@dataclass
class Adaptation:
    """Everything one adaptation produced: every ranker, the guard's report, timings."""

    rankers: dict[str, lgb.Booster]  # broad, and (unless too little data) adapted, local, blend
    rules: dict[str, Rule]  # popularity, and markov when the training lists could choose its weight
    report: GuardReport
    gains: dict[str, np.ndarray]  # per validation customer NDCG@10 of each ranker
    rounds: dict[str, int]
    fit_seconds: dict[str, float]
    prepared: PreparedRetailer

    def score(self, name: str, features: np.ndarray) -> np.ndarray:
        """Scores of candidate feature rows by the ranker or rule called ``name``."""
        return _score(self.rankers, self.rules, name, features)


def _score(
    rankers: dict[str, lgb.Booster], rules: dict[str, Rule], name: str, features: np.ndarray
) -> np.ndarray:
    if name in rules:
        return rule_scores(rules[name], features)
    return predict(rankers[name], features)


def fit_adaptation(
    base: RecModel,
    data: RetailerData | PreparedRetailer,
    *,
    train_cuts: int = 3,
    max_customers: int | None = 10_000,
    ship_rules: bool = False,
    random_state: int = 0,
) -> Adaptation:
    """Fine-tune ``base`` on one retailer, train the local-only ranker, and run the guard.

    ``max_customers`` bounds the customers sampled (seeded) per training cut on big shops. The
    rules (popularity, markov) are always measured; ``ship_rules`` lets the guard ship one.
    """
    if train_cuts < 1:
        raise ConfigError(f"train_cuts must be >= 1, got {train_cuts!r}.")
    if not isinstance(data, PreparedRetailer):
        stage(
            f"adapting to {data.name}: {data.n_items:,} products, {data.n_users:,} customers, "
            f"{data.n_interactions:,} interactions"
        )
    prepared = data if isinstance(data, PreparedRetailer) else prepare(data, base.encoder)
    if prepared.encoder_fingerprint != base.config.encoder.fingerprint:
        raise ConfigError(f"{prepared.name!r} was embedded with another encoder than the model's.")
    candidates = CandidateConfig(**base.config.candidates)

    valid_rows = labelled_rows(prepared, range(1), config=candidates)
    if valid_rows.n_queries == 0:
        return _broad_unmeasured(base, prepared)
    train_rows = labelled_rows(
        prepared,
        range(1, 1 + train_cuts),
        config=candidates,
        max_customers=max_customers,
        max_negatives=MAX_TRAINING_NEGATIVES,
        random_state=random_state,
    )

    rankers = {"broad": base.booster}
    rounds = dict(base.config.rounds)
    fit_seconds: dict[str, float] = {"broad": 0.0}
    too_small = too_little_to_adapt(valid_rows.n_queries, train_rows.positives_only().n_groups)
    if too_small is None:
        inner_train, inner_valid = split_by_customer(
            train_rows, test_size=EARLY_STOPPING_SHARE, random_state=random_state
        )
        rich = inner_valid.positives_only().n_groups >= MIN_EARLY_STOPPING_GROUPS
        for name, params, max_rounds, init in (
            (
                "adapted",
                ADAPT_PARAMS_RICH if rich else ADAPT_PARAMS,
                ADAPT_ROUNDS_RICH if rich else ADAPT_ROUNDS,
                base.booster,
            ),
            ("local", LOCAL_PARAMS, LOCAL_ROUNDS, None),
        ):
            started = time.perf_counter()
            rankers[name], rounds[name] = train_ranker(
                inner_train,
                inner_valid,
                params=params,
                max_rounds=max_rounds,
                init_model=init,
                random_state=random_state,
                label=f"{name} ({prepared.name})",
            )
            fit_seconds[name] = time.perf_counter() - started
        blend = _blend(rankers["adapted"], rankers["local"], valid_rows.rows.features)
        if blend is not None:
            rankers["blend"] = blend
            fit_seconds["blend"] = fit_seconds["adapted"] + fit_seconds["local"]
    rules = {"popularity": popularity_rule()}
    markov_weight = choose_markov_weight(train_rows)
    if markov_weight is not None:
        rules["markov"] = markov_rule(markov_weight)
    figures = {}
    gains = {}
    for name in [*rankers, *rules]:
        ranks = target_ranks(
            valid_rows.group,
            valid_rows.rows.label,
            _score(rankers, rules, name, valid_rows.rows.features),
            valid_rows.n_groups,
        )
        figures[name] = _figures(ranks)
        gains[name] = ndcg_gains(ranks, METRIC_K)

    ndcg = {name: f[0] for name, f in figures.items()}
    decision: Choice = "broad"
    if too_small is not None:
        reason = too_small
    else:
        decision, reason = decide(
            {name: g for name, g in gains.items() if ship_rules or name not in RULE_NAMES}
        )
    stage(f"guard for {prepared.name}: ships {decision} ({reason})")
    report = GuardReport(
        metric=f"ndcg@{METRIC_K}",
        validation_customers=valid_rows.n_queries,
        ndcg=ndcg,
        recall={name: f[1] for name, f in figures.items()},
        stderr={name: f[2] for name, f in figures.items()},
        decision=decision,
        reason=reason,
        markov_weight=markov_weight,
    )
    return Adaptation(rankers, rules, report, gains, rounds, fit_seconds, prepared)


def _broad_unmeasured(base: RecModel, prepared: PreparedRetailer) -> Adaptation:
    """The broad model as it is, for a shop where no customer has come back yet.

    Without a customer with two or more interactions there is nothing to fine-tune on and no
    validation customer to measure anything with, so the report has no figures; the broad model
    serves such a shop as it serves any new one.
    """
    reason = too_little_to_adapt(0, 0)
    assert reason is not None  # zero validation customers is always too few
    report = GuardReport(
        metric=f"ndcg@{METRIC_K}",
        validation_customers=0,
        ndcg={},
        recall={},
        stderr={},
        decision="broad",
        reason=reason,
    )
    return Adaptation(
        {"broad": base.booster}, {}, report, {}, dict(base.config.rounds), {"broad": 0.0}, prepared
    )


def adapt(
    base: RecModel,
    data: RetailerData,
    *,
    encoder: Encoder | None = None,
    tune_encoder_to: str | Path | None = None,
    train_cuts: int = 3,
    max_customers: int | None = 10_000,
    ship_rules: bool = False,
    random_state: int = 0,
) -> RecModel:
    """Fine-tune ``base`` on one retailer and return what the negative-transfer guard ships.

    Four rankers are compared on the retailer's validation split: ``broad`` (``base`` as it is),
    ``adapted`` (continued boosting from ``base``), ``local`` (the same kind of ranker trained on
    this retailer alone) and ``blend`` (adapted and local summed into one booster), with two rules
    that need no training alongside for scale: ``popularity`` and ``markov`` (last-item text plus
    transitions; :mod:`rectransfer.ranking.rules`). With ``ship_rules`` the guard may ship a rule
    too, where it clearly beats the transferred models; it is off by default because on the
    development loop the rules that won on validation lost on test (``docs/BENCHMARKS.md``). The
    returned model's ``kind`` says what ships and ``guard`` holds all figures and the reason
    (:func:`rectransfer.transfer.guard.decide`).

    With ``tune_encoder_to`` (a new folder), the text encoder is also tuned on this retailer's own
    product-text pairs and the retailer adapted again with it; the tuned encoder is kept (saved
    there, and named in the model's config) only if what the guard ships with it beats, on the
    same validation customers, what it ships with the model's encoder
    (:mod:`rectransfer.text.tuning`; ``model.config.encoder_tuning`` has the figures).

    Examples
    --------
    >>> import rectransfer as rt
    >>> shop = rt.RetailerData.load("sample_data/targets/trailhead_market")
    >>> model = rt.adapt(rt.RecModel.load(broad_dir), shop)  # the broad model: models/broad
    >>> model.kind == model.guard.decision  # broad, adapted, blend, local, markov or popularity
    True
    """
    if tune_encoder_to is not None:
        check_tune_folder(tune_encoder_to)  # before the minutes of adaptation, not after
    if encoder is not None:
        base.with_encoder(encoder)
    result = fit_adaptation(
        base,
        data,
        train_cuts=train_cuts,
        max_customers=max_customers,
        ship_rules=ship_rules,
        random_state=random_state,
    )
    tuning = None
    if tune_encoder_to is not None:

        def refit(tuned_base: RecModel) -> Adaptation:
            return fit_adaptation(
                tuned_base,
                data,
                train_cuts=train_cuts,
                max_customers=max_customers,
                ship_rules=ship_rules,
                random_state=random_state,
            )

        outcome = with_tuned_encoder(base, data, result, tune_encoder_to, refit, random_state)
        base, result, tuning = outcome.base, outcome.adaptation, outcome.tuning
    decision = result.report.decision
    config = ModelConfig(
        **{
            **base.config.model_dump(exclude={"guard", "kind", "retailer", "base_model_version"}),
            "created_at": now_iso(),
            "kind": decision,
            "retailer": data.name,
            "base_model_version": base.model_version,
            "params": {**base.config.params, "adapt": ADAPT_PARAMS, "local": LOCAL_PARAMS},
            "rounds": result.rounds,
            "trained_on": _trained_on(decision, base.config.trained_on, data.name),
            "guard": result.report,
            "random_state": random_state,
            "encoder_tuning": tuning,
            "rule": result.rules.get(decision),
        }
    )
    # a rule ships with the broad model's trees beside it (one directory layout); they are unused
    model = RecModel(result.rankers.get(decision, base.booster), config, encoder=base.encoder)
    model.reuse_prepared(result.prepared)  # recommending right after adapting embeds nothing again
    return model


@dataclass
class TunedAdaptation:
    """The outcome of the per-retailer encoder step."""

    base: RecModel  # the model to ship from: with the tuned encoder when it was kept
    adaptation: Adaptation  # the adaptation that goes with ``base``
    tuning: EncoderTuning  # the record for config.json
    tuned: Adaptation | None  # the adaptation with the tuned encoder, kept or not (None: untuned)


def with_tuned_encoder(
    base: RecModel,
    data: RetailerData,
    result: Adaptation,
    out: str | Path,
    refit: Callable[[RecModel], Adaptation],
    random_state: int,
) -> TunedAdaptation:
    """Tune the encoder on ``data``, adapt again with it (``refit``), keep what validation prefers.

    ``result`` is the adaptation with the model's own encoder. ``out`` is removed when the tuned
    encoder is not kept.
    """
    shipped = result.report.decision
    if result.report.validation_customers == 0:  # nothing to compare the two encoders on
        unmeasured = EncoderTuning(
            pairs=0,
            seconds=0.0,
            validation_ndcg={},
            stderr=None,
            kept=False,
            encoder=None,
            reason="not tuned: no validation customer to compare the encoders on "
            "(no customer has two or more interactions yet)",
        )
        return TunedAdaptation(base, result, unmeasured, None)
    figures = {"model encoder": result.report.ndcg[shipped]}
    tuned, pairs, why_not = tune_encoder(
        base.encoder, drop_last_interaction(data), out, random_state=random_state
    )
    if tuned is None:
        untuned = EncoderTuning(
            pairs=pairs,
            seconds=0.0,
            validation_ndcg=figures,
            stderr=None,
            kept=False,
            encoder=None,
            reason=why_not,
        )
        return TunedAdaptation(base, result, untuned, None)
    info = EncoderInfo.of(tuned.encoder, tuned.spec)
    tuned_base = RecModel(
        base.booster, base.config.model_copy(update={"encoder": info}), encoder=tuned.encoder
    )
    tuned_result = refit(tuned_base)
    tuned_shipped = tuned_result.report.decision
    figures["tuned encoder"] = tuned_result.report.ndcg[tuned_shipped]
    kept, stderr = keep_tuned(result.gains[shipped], tuned_result.gains[tuned_shipped])
    verdict = "more" if kept else "not more"
    reason = (
        f"with the tuned encoder the guard ships {tuned_shipped} at NDCG@10 "
        f"{figures['tuned encoder']:.4f}, with the model's encoder {shipped} at "
        f"{figures['model encoder']:.4f}: {verdict} than one standard error "
        f"({stderr if stderr is not None else float('nan'):.4f}) better"
    )
    tuning = EncoderTuning(
        pairs=pairs,
        seconds=round(tuned.seconds, 1),
        validation_ndcg=figures,
        stderr=stderr,
        kept=kept,
        encoder=tuned.spec if kept else None,
        reason=reason + ("; kept" if kept else "; the tuned encoder was removed"),
    )
    if kept:
        return TunedAdaptation(tuned_base, tuned_result, tuning, tuned_result)
    discard(out)
    return TunedAdaptation(base, result, tuning, tuned_result)


def _blend(adapted: lgb.Booster, local: lgb.Booster, probe: np.ndarray) -> lgb.Booster | None:
    """The adapted and the local-only ranker as one booster (their scores summed).

    Two rankers trained from different starts err differently; on small shops their sum often
    beats both. None (with a warning) if LightGBM's model text could not be joined.
    """
    try:
        return sum_of_boosters(adapted, local, probe[:PROBE_ROWS])
    except ValueError as error:
        warnings.warn(f"no blend of adapted and local-only: {error}", stacklevel=3)
        return None


def _figures(ranks: np.ndarray) -> tuple[float, float, float]:
    return ndcg_at(ranks, METRIC_K), recall_at(ranks, METRIC_K), ndcg_stderr(ranks, METRIC_K)


def _trained_on(decision: str, base_sources: list[str], retailer: str) -> list[str]:
    if decision in ("local", "markov", "popularity"):
        return [retailer]
    if decision in ("adapted", "blend"):
        return [*base_sources, retailer]
    return list(base_sources)
