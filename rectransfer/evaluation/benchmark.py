"""The transfer benchmark: every model against the baselines on one target retailer.

Protocol (as in the UniSRec / VQ-Rec / Recformer papers): per customer, interactions in time order
(ties in file order); the last one is the test target, the one before it validation, the rest
training. Every model ranks the *whole* catalogue for every test customer, the customer's own
earlier items removed, and is scored by Recall@K and NDCG@K. The test target is used for nothing
but the final metric; when it is predicted, the validation item is part of the customer's history
(no retraining). A *fraction* f plays a small retailer: a seeded f of the customers with only
their interactions, evaluated only on them; the whole catalogue (with its text) stays known.

Rows: ``popularity``, ``item-knn``, ``text-only`` (no training), ``markov`` (last-item text plus
transitions from the last three items, weights chosen on validation: :mod:`rectransfer.markov`),
``local-only`` (the ranker trained
on the fraction alone), ``broad`` (the pretrained model as it is), ``adapted`` (fine-tuned),
``blend`` (adapted plus local-only) and ``guarded`` (what the negative-transfer guard ships, chosen
on validation only). With the ``bench`` extra, also ``implicit-als`` and ``implicit-item-knn``:
references from the ``implicit`` library, hyper-parameters chosen on validation (see
:mod:`rectransfer.evaluation.implicit_baselines`). A model with a candidate stage ranks the items
outside its candidates below them, so they count as misses. With ``tune_encoder``, also
``tuned-encoder`` and ``guarded+tuning``: adapt's per-retailer encoder step
(:mod:`rectransfer.text.tuning`), judged on the same test items. With ``sequential_references``,
also ``sasrec``: a small SASRec trained on the shop alone, its setting and epochs chosen on
validation within a stated CPU budget (see :mod:`rectransfer.evaluation.sequential`).

One module for one benchmark: the rows, the run over fractions and seeds, and the summary, table
and plot of its report share the report's structure.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from rectransfer.data.columns import Columns
from rectransfer.data.histories import Histories
from rectransfer.data.holdout import drop_last_interaction, subset_customers
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.baselines import (
    Scorer,
    dense_target_ranks,
    item_knn_scorer,
    popularity_scorer,
    text_scorer,
)
from rectransfer.evaluation.implicit_baselines import (
    IMPLICIT_MISSING_NOTE,
    implicit_available,
    tune_references,
)
from rectransfer.evaluation.markov import choose_markov, markov_scorer
from rectransfer.evaluation.sequential import SEQUENTIAL_MODEL, tune_sequential
from rectransfer.metrics import ndcg_at, recall_at, target_ranks
from rectransfer.model.recmodel import RecModel
from rectransfer.prepared.prepare import PreparedRetailer, prepare, with_customers_of
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.ranker import predict
from rectransfer.ranking.rules import RULE_NAMES
from rectransfer.ranking.training_data import CutQueries, cut_queries, labelled_rows
from rectransfer.transfer.adapt import Adaptation, fit_adaptation, with_tuned_encoder
from rectransfer.transfer.guard import decide

PROTOCOL = (
    "leave-one-out per customer in time order (last = test, previous = validation); whole "
    "catalogue ranked, own history removed; fraction f = seeded share of customers"
)
COLD_ITEM_MAX_INTERACTIONS = 2  # slice: test items with at most this many training interactions
SHORT_HISTORY_MAX_ITEMS = 3  # slice: customers with at most this many earlier items
MIN_EVENTS = 3  # a customer needs training, validation and test interactions
UNTRAINED_ROWS = ("popularity", "item-knn", "text-only", "markov")
RANKER_ROWS = ("broad", "local-only", "adapted", "blend", "guarded")
# Rows that need the shop's own rankers fitted (the broad model alone needs no fitting).
ADAPTED_ROWS = frozenset(RANKER_ROWS) - {"broad"}


def eligible_customers(data: RetailerData) -> list[str]:
    """Customers with training, validation and test interactions (``MIN_EVENTS``), sorted."""
    counts = data.interactions.group_by(Columns.USER).len()
    eligible = counts.filter(pl.col("len") >= MIN_EVENTS)[Columns.USER].sort()
    return eligible.to_list()


def _metrics(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float | None]:
    """Recall@K and NDCG@K; ``None`` (JSON null) for an empty slice rather than a false 0."""
    out: dict[str, float | None] = {}
    if len(ranks) == 0:
        return {f"{m}@{k}": None for k in ks for m in ("recall", "ndcg")}
    for k in ks:
        out[f"recall@{k}"] = recall_at(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
    return out


def evaluate_split(
    base: RecModel,
    data: RetailerData,
    full: PreparedRetailer,
    *,
    ks: Sequence[int],
    random_state: int,
    implicit_references: bool = False,
    sequential_references: bool = False,
    tune_encoder: bool = False,
    own_history_kept: bool = False,
    rows: Sequence[str] | None = None,
    ship_rules: bool = False,
) -> list[dict[str, Any]]:
    """Every model's figures on one customer subset (rows without fraction/seed filled in).

    ``implicit_references`` adds the ``implicit`` rows (the library must be installed);
    ``sequential_references`` the ``sasrec`` row (:mod:`rectransfer.evaluation.sequential`);
    ``tune_encoder`` the rows of adapt's per-retailer encoder step (:func:`_tuned_rows`);
    ``own_history_kept`` the untrained rows and ``sasrec`` again with the customers' own earlier
    items left in the ranking (named ``... (own items kept)``; the rankers' candidates never hold
    them; ``sasrec`` is the same fitted model, ranked once more).
    ``rows`` keeps only these of the untrained and ranker rows (default: all; see
    :func:`check_rows`); the rows of the options above are computed whenever they are on.
    ``ship_rules`` lets the guard ship a rule, as ``adapt(..., ship_rules=True)`` does.
    """
    wanted = set(check_rows(rows, tune_encoder=tune_encoder))
    evaluated = with_customers_of(data, full)
    trainable = with_customers_of(drop_last_interaction(data), full)
    test = cut_queries(evaluated, 0)
    queries = test.rows
    context = test.queries.context.select(queries)
    targets = test.queries.targets[queries] if test.queries.targets is not None else queries
    train_counts = test.stats.count[targets]
    slices = {
        "cold items": train_counts <= COLD_ITEM_MAX_INTERACTIONS,
        "short histories": context.lengths <= SHORT_HISTORY_MAX_ITEMS,
    }

    results: list[tuple[str, np.ndarray, float, float, str | None]] = []
    extras: dict[str, dict[str, Any]] = {}
    vectors = full.catalogue.vectors
    valid = cut_queries(evaluated, 1)  # histories before the validation item, its statistics
    settings = [("", context)]
    if own_history_kept:
        settings.append((KEPT_SUFFIX, _no_items(len(queries), context.n_items)))
    for suffix, excluded in settings:
        valid_excluded = None if not suffix else _no_items(len(valid.rows), context.n_items)
        for name in (n for n in UNTRAINED_ROWS if n in wanted):
            started = time.perf_counter()
            record: dict[str, Any] | None = None
            if name == "popularity":
                scorer = popularity_scorer(test.stats)
            elif name == "item-knn":
                scorer = item_knn_scorer(test.queries.context)
            elif name == "text-only":
                scorer = text_scorer(test.queries.context, vectors)
            else:
                scorer, record = _tuned_markov(test, valid, vectors, valid_excluded)
            fitted = time.perf_counter()
            ranks = dense_target_ranks(scorer, queries, targets, excluded)
            elapsed = time.perf_counter() - fitted
            results.append((name + suffix, ranks, fitted - started, elapsed, None))
            if record is not None:
                extras[name + suffix] = record
    if implicit_references:
        # tuned on the customers' histories before the test item: it never sees the test item
        for reference in tune_references(test.queries.context, random_state=random_state):
            started = time.perf_counter()
            ranks = dense_target_ranks(reference.scorer, queries, targets, context)
            elapsed = time.perf_counter() - started
            results.append((reference.name, ranks, reference.fit_seconds, elapsed, None))
            extras[reference.name] = reference.report()
    if sequential_references:
        # tuned on the same histories before the test item: it never sees the test item
        sequential = tune_sequential(test.queries.context, random_state=random_state)
        for suffix, excluded in settings:
            started = time.perf_counter()
            ranks = dense_target_ranks(sequential.scorer, queries, targets, excluded)
            elapsed = time.perf_counter() - started
            name = sequential.name + suffix
            results.append((name, ranks, sequential.fit_seconds, elapsed, None))
            extras[name] = sequential.report()

    adaptation = (
        fit_adaptation(base, trainable, ship_rules=ship_rules, random_state=random_state)
        if wanted & ADAPTED_ROWS
        else None
    )
    if wanted & set(RANKER_ROWS):
        config = CandidateConfig(**base.config.candidates)
        started = time.perf_counter()
        test_rows = labelled_rows(evaluated, range(1), config=config)
        candidates_s = time.perf_counter() - started
        for name, score_rows, fit_seconds in _rankers(base, adaptation):
            if name not in wanted:
                continue
            if score_rows is None:
                # Too little data to train at all: a retailer alone would fall back to
                # popularity, and there is nothing to fine-tune; the rows say so instead of
                # going missing.
                stand_in, why = _STAND_INS[name]
                if stand_in == "popularity":
                    scorer = popularity_scorer(test.stats)
                    ranks = dense_target_ranks(scorer, queries, targets, context)
                else:  # the broad model, scored here: its row may not be among those wanted
                    scores = predict(base.booster, test_rows.rows.features)
                    ranks = target_ranks(
                        test_rows.group, test_rows.rows.label, scores, test_rows.n_groups
                    )
                results.append((name, ranks, 0.0, 0.0, why))
                continue
            started = time.perf_counter()
            scores = score_rows(test_rows.rows.features)
            ranks = target_ranks(test_rows.group, test_rows.rows.label, scores, test_rows.n_groups)
            elapsed = candidates_s + time.perf_counter() - started
            results.append((name, ranks, fit_seconds, elapsed, None))

    if tune_encoder:
        assert adaptation is not None  # check_rows keeps guarded with tune_encoder
        guarded_ranks = next(r[1] for r in results if r[0] == "guarded")
        tuned_results, extras["guarded+tuning"] = _tuned_rows(
            base,
            data,
            trainable,
            adaptation,
            guarded_ranks,
            ship_rules=ship_rules,
            random_state=random_state,
        )
        results.extend(tuned_results)

    out: list[dict[str, Any]] = []
    for name, ranks, fit_seconds, recommend_seconds, note in results:
        row: dict[str, Any] = {
            "model": name,
            "users": len(ranks),
            **_metrics(ranks, ks),
            "fit_s": round(fit_seconds, 3),
            "recommend_s": round(recommend_seconds, 3),
        }
        if name == "guarded" and adaptation is not None:
            row["decision"] = adaptation.report.decision
            row["decision_without_rules"] = _decision_without_rules(adaptation)
        if note is not None:
            row["note"] = note
        row.update(extras.get(name, {}))
        out.append(row)
        for slice_name, mask in slices.items():
            out.append(
                {
                    "model": name,
                    "slice": slice_name,
                    "users": int(mask.sum()),
                    **_metrics(ranks[mask], ks),
                }
            )
    return out


KEPT_SUFFIX = " (own items kept)"  # rows ranked with the customer's earlier items left in
# What a ranker row shows when its model could not be trained: (row shown instead, why).
_STAND_INS = {
    "local-only": ("popularity", "too little data to train: popularity"),
    "adapted": ("broad", "too little data to fine-tune: broad"),
    "blend": ("broad", "too little data to fine-tune: broad"),
}


def check_rows(rows: Sequence[str] | None, *, tune_encoder: bool = False) -> tuple[str, ...]:
    """The untrained and ranker rows to compute: ``rows`` checked, or all of them.

    Examples
    --------
    >>> check_rows(["broad", "markov"])
    ('markov', 'broad')
    >>> check_rows(["brod"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: rows: 'brod' is not a benchmark row; choose from ...
    """
    known = UNTRAINED_ROWS + RANKER_ROWS
    if rows is None:
        return known
    for name in rows:
        if name == SEQUENTIAL_MODEL:
            raise ConfigError(
                f"rows: {name!r} is an optional reference row: turn it on with "
                "sequential_references (--sequential on the command line) instead."
            )
        if name not in known:
            raise ConfigError(
                f"rows: {name!r} is not a benchmark row; choose from {', '.join(known)}."
            )
    if not rows:
        raise ConfigError(f"rows must name at least one row of {', '.join(known)}.")
    if tune_encoder and "guarded" not in rows:
        raise ConfigError("tune_encoder compares with the guarded row: keep 'guarded' in rows.")
    return tuple(name for name in known if name in rows)


RowScorer = Callable[[np.ndarray], np.ndarray]  # candidate feature rows -> scores


def _rankers(
    base: RecModel, adaptation: Adaptation | None
) -> list[tuple[str, RowScorer | None, float]]:
    """(row, scorer or None when it could not be trained, fit seconds) of every ranker row."""
    if adaptation is None:  # only the broad row is wanted
        return [("broad", partial(predict, base.booster), 0.0)]
    fits = adaptation.fit_seconds

    def trained(name: str) -> RowScorer | None:
        return partial(adaptation.score, name) if name in adaptation.rankers else None

    return [
        ("broad", trained("broad"), 0.0),
        ("local-only", trained("local"), fits.get("local", float("nan"))),
        ("adapted", trained("adapted"), fits.get("adapted", float("nan"))),
        ("blend", trained("blend"), fits.get("blend", float("nan"))),
        (
            "guarded",
            partial(adaptation.score, adaptation.report.decision),
            sum(v for k, v in fits.items() if k != "blend"),
        ),
    ]


def _decision_without_rules(adaptation: Adaptation) -> str:
    """What the guard would have shipped had the rules not been candidates (that ranker's row
    holds its test figures), so a run shows what the rules changed."""
    decision = adaptation.report.decision
    if decision not in RULE_NAMES:  # a rule that did not ship changed nothing
        return decision
    return decide({name: g for name, g in adaptation.gains.items() if name not in RULE_NAMES})[0]


def _no_items(n_users: int, n_items: int) -> Histories:
    """Empty histories for ``n_users`` customers: nothing is removed from their rankings."""
    return Histories(
        np.zeros(n_users + 1, dtype=np.int64),
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int64),
        n_items,
    )


def _tuned_markov(
    test: CutQueries, valid: CutQueries, vectors: np.ndarray, valid_excluded: Histories | None
) -> tuple[Scorer, dict[str, Any]]:
    """The ``markov`` row's scorer, its weights chosen on the validation items only."""
    targets = valid.queries.targets
    assert targets is not None
    choice = choose_markov(
        valid.queries.context,
        valid.rows,
        targets[valid.rows],
        vectors,
        valid.stats,
        excluded=valid_excluded,
    )
    scorer = markov_scorer(
        test.queries.context, vectors, test.stats, weight=choice.weight, decay=choice.decay
    )
    return scorer, choice.report()


def _tuned_rows(
    base: RecModel,
    data: RetailerData,
    trainable: PreparedRetailer,
    adaptation: Adaptation,
    guarded_ranks: np.ndarray,
    *,
    ship_rules: bool,
    random_state: int,
) -> tuple[list[tuple[str, np.ndarray, float, float, str | None]], dict[str, Any]]:
    """Rows of adapt's per-retailer encoder step on one split.

    ``tuned-encoder``: what the guard ships when adapting with the encoder tuned on the split's
    training pairs, kept or not (to judge the step itself); ``guarded+tuning``: what ``adapt``
    with ``tune_encoder_to`` ships (the tuned encoder only where validation preferred it).
    """
    config = CandidateConfig(**base.config.candidates)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rectransfer-tuned-") as work:
        outcome = with_tuned_encoder(
            base,
            trainable.data,
            adaptation,
            Path(work) / "encoder",
            lambda tuned: fit_adaptation(
                tuned, trainable.data, ship_rules=ship_rules, random_state=random_state
            ),
            random_state,
        )
        fit_seconds = time.perf_counter() - started
        record = {"tuning": outcome.tuning.model_dump()}
        tuned = outcome.tuned
        if tuned is None:  # too few pairs: adapt ships what it ships without the step
            note = outcome.tuning.reason
            return [
                ("tuned-encoder", guarded_ranks, fit_seconds, 0.0, note),
                ("guarded+tuning", guarded_ranks, fit_seconds, 0.0, note),
            ], record
        started = time.perf_counter()
        test_rows = labelled_rows(with_customers_of(data, tuned.prepared), range(1), config=config)
        scores = tuned.score(tuned.report.decision, test_rows.rows.features)
        ranks = target_ranks(test_rows.group, test_rows.rows.label, scores, test_rows.n_groups)
        elapsed = time.perf_counter() - started
    shipped = ranks if outcome.tuning.kept else guarded_ranks
    return [
        ("tuned-encoder", ranks, fit_seconds, elapsed, None),
        ("guarded+tuning", shipped, fit_seconds, elapsed, None),
    ], record


def run_benchmark(
    base: RecModel,
    target: RetailerData,
    *,
    fractions: Sequence[float] = (1.0, 0.25, 0.1),
    seeds: int = 3,
    ks: Sequence[int] = (10, 20, 50),
    progress: bool = True,
    implicit_references: bool = True,
    sequential_references: bool = False,
    tune_encoder: bool = False,
    own_history_kept: bool = False,
    rows: Sequence[str] | None = None,
    ship_rules: bool = False,
) -> dict[str, Any]:
    """Run the benchmark on ``target`` with the broad model ``base``; returns the JSON document.

    ``implicit_references`` adds the ``implicit-als`` and ``implicit-item-knn`` rows when the
    ``implicit`` library is installed; without it the rows are left out and ``notes`` says so.
    ``sequential_references`` adds the ``sasrec`` row: SASRec trained on the fraction alone, its
    setting chosen on validation within a wall-clock budget per setting (up to 16 minutes per
    fraction and seed on a shop of 20,000 customers; see :mod:`rectransfer.evaluation.sequential`).
    ``tune_encoder`` adds the rows of adapt's per-retailer encoder step (``tuned-encoder``,
    ``guarded+tuning``); it tunes an encoder per fraction and seed, which takes minutes each.
    ``own_history_kept`` adds the untrained rows (``popularity``, ``item-knn``, ``text-only``,
    ``markov``) and ``sasrec`` (when on) ranked with the customers' own earlier items left in, as
    ``... (own items kept)``.
    ``rows`` keeps only these of the untrained and ranker rows (e.g. ``["broad"]`` for zero-shot
    transfer alone, which fits nothing on the target; default: all of them); the optional
    reference rows are not among them: their options turn them on, whatever ``rows`` holds.
    ``ship_rules`` lets the guard ship a rule (popularity, markov) where it wins on validation,
    as ``adapt(..., ship_rules=True)`` does; the ``guarded`` row's ``decision_without_rules``
    then says what would have shipped without.

    Examples
    --------
    >>> import rectransfer as rt
    >>> report = run_benchmark(rt.RecModel.load("models/broad"),
    ...                        rt.RetailerData.load("shops/office"))  # doctest: +SKIP
    """
    for f in fractions:
        if not 0 < f <= 1:
            raise ConfigError(f"fractions must lie in (0, 1], got {f!r}.")
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds!r}.")
    if not ks or min(ks) < 1:
        raise ConfigError(f"k values must be positive integers, got {list(ks)!r}.")
    check_rows(rows, tune_encoder=tune_encoder)
    if target.name in base.config.trained_on:
        raise ConfigError(
            f"the broad model was trained on {target.name!r}; benchmark it on a retailer it has "
            "not seen (pretrain on the other retailers only)."
        )
    full = prepare(target, base.encoder)
    customers = eligible_customers(target)
    if not customers:
        raise ConfigError(
            f"{target.name!r} has no customer with {MIN_EVENTS} or more interactions; the "
            "protocol needs a training, a validation and a test interaction per customer."
        )
    notes: list[str] = []
    if implicit_references and not implicit_available():
        implicit_references = False
        notes.append(IMPLICIT_MISSING_NOTE)
    plan = [(f, s) for f in fractions for s in (range(seeds) if f < 1.0 else range(1))]
    results: list[dict[str, Any]] = []
    for fraction, seed in tqdm(plan, desc=f"benchmark {target.name}", disable=not progress):
        rng = np.random.default_rng(seed)
        n = max(MIN_EVENTS, round(fraction * len(customers)))
        chosen = customers if fraction >= 1.0 else sorted(rng.choice(customers, n, replace=False))
        subset = subset_customers(target, chosen)
        split_rows = evaluate_split(
            base,
            subset,
            full,
            ks=ks,
            random_state=seed,
            implicit_references=implicit_references,
            sequential_references=sequential_references,
            tune_encoder=tune_encoder,
            own_history_kept=own_history_kept,
            rows=rows,
            ship_rules=ship_rules,
        )
        for row in split_rows:
            results.append({"fraction": fraction, "seed": seed, **row})
    return {
        "target": target.name,
        "n_users": len(customers),
        "n_items": target.n_items,
        "protocol": PROTOCOL,
        "base": {
            "model_version": base.model_version,
            "trained_on": base.config.trained_on,
            "encoder": base.config.encoder.name,
            "rounds": base.config.rounds,
            "features": len(base.config.feature_names),
        },
        "results": results,
        "notes": notes,
    }


def summary_table(report: dict[str, Any], *, metric: str = "ndcg@10") -> pl.DataFrame:
    """Mean and standard error over seeds of ``metric`` per model and fraction (no slices)."""
    frame = pl.DataFrame([r for r in report["results"] if "slice" not in r])
    return (
        frame.group_by("model", "fraction")
        .agg(
            pl.col(metric).mean().alias("mean"),
            (pl.col(metric).std() / pl.len().sqrt()).fill_null(0.0).alias("se"),
            pl.len().alias("seeds"),
        )
        .sort("fraction", "mean", descending=[True, True])
    )


def write_report(
    report: dict[str, Any], path: str | Path, *, plot: str | Path | None = None
) -> None:
    """Write the JSON document atomically, and optionally the NDCG@10-by-fraction plot."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps(report, indent=2), encoding="utf-8")
    os.replace(staging, target)
    if plot is not None:
        plot_report(report, plot)


# One colour and marker per model, the same in every plot.
PLOT_STYLES: dict[str, dict[str, str]] = {
    "guarded": {"color": "#000000", "marker": "o"},
    "blend": {"color": "#1f77b4", "marker": "s"},
    "adapted": {"color": "#2ca02c", "marker": "^"},
    "broad": {"color": "#9467bd", "marker": "D"},
    "local-only": {"color": "#d62728", "marker": "v"},
    "markov": {"color": "#ff7f0e", "marker": "P"},
    "text-only": {"color": "#8c564b", "marker": "X"},
    "item-knn": {"color": "#e377c2", "marker": "<"},
    "implicit-item-knn": {"color": "#bcbd22", "marker": ">"},
    "implicit-als": {"color": "#17becf", "marker": "h"},
    "sasrec": {"color": "#98df8a", "marker": "H"},
    "popularity": {"color": "#7f7f7f", "marker": "*"},
    "tuned-encoder": {"color": "#aec7e8", "marker": "p"},
    "guarded+tuning": {"color": "#393b79", "marker": "d"},
}


def plot_style(model: str) -> dict[str, str]:
    """The colour and marker of ``model`` in every plot (grey circles for one not listed)."""
    return PLOT_STYLES.get(model, {"color": "#c7c7c7", "marker": "o"})


def plot_report(report: dict[str, Any], path: str | Path, *, metric: str = "ndcg@10") -> None:
    """NDCG@10 against fraction for every model (needs matplotlib: the ``bench`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ConfigError(
            "--plot needs matplotlib; install the bench extra: pip install -e '.[bench]'"
        ) from err
    table = summary_table(report, metric=metric).sort("fraction")
    fig, ax = plt.subplots(figsize=(7.5, 4))
    models = table["model"].unique(maintain_order=True).to_list()
    for i, model in enumerate(models):
        part = table.filter(pl.col("model") == model)
        style = plot_style(model)
        # a small sideways shift per model, so lines that coincide stay apart
        shift = 1.0 + 0.012 * (i - (len(models) - 1) / 2)
        ax.errorbar(
            part["fraction"] * shift,
            part["mean"],
            yerr=part["se"],
            label=model,
            capsize=2,
            markersize=5,
            color=style["color"],
            marker=style["marker"],
        )
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the retailer's customers")
    ax.set_ylabel(metric.upper())
    ax.set_title(f"{report['target']}: transfer by data size")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_summary(report: dict[str, Any], *, metric: str = "ndcg@10") -> str:
    """A markdown table: one row per model, one column per fraction, ``mean ± se`` of ``metric``."""
    table = summary_table(report, metric=metric)
    fractions = sorted(table["fraction"].unique().to_list(), reverse=True)
    models = table.filter(pl.col("fraction") == fractions[0])["model"].to_list()
    lines = [
        f"| {report['target']} ({metric}) | " + " | ".join(f"f = {f:g}" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for model in models:
        cells = []
        for fraction in fractions:
            row = table.filter((pl.col("model") == model) & (pl.col("fraction") == fraction))
            cells.append(f"{row['mean'][0]:.4f} ± {row['se'][0]:.4f}" if row.height else "")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
