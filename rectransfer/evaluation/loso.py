"""Leave-one-source-out: the development loop that cannot tune to a target.

For each source in turn, the broad model is pretrained on the *other* sources (the options of
:func:`~rectransfer.transfer.pretrain.pretrain` are passed through, so variants can be compared) and
the held-out source is benchmarked as an unseen retailer with
:func:`~rectransfer.evaluation.benchmark.run_benchmark`: a seeded sample of ``customers`` of its
customers plays ``f = 1`` and seeded shares of those the smaller fractions (``seeds`` each). The
slow ``implicit`` rows are left out. The document holds every fold's rows and a summary: per
held-out source and fraction the ratios broad / local-only, guarded / local-only and guarded /
markov of mean NDCG@10, their means over folds with standard errors, and whether the transfer goals
hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.data.holdout import subset_customers
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.benchmark import (
    MIN_EVENTS,
    PROTOCOL,
    eligible_customers,
    run_benchmark,
)
from rectransfer.evaluation.studies import (
    check_resume,
    jsonable,
    mean_se,
    study_pretrain_options,
)
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder
from rectransfer.transfer.pretrain import pretrain

MODELS = ("broad", "local-only", "adapted", "blend", "guarded", "markov", "popularity", "text-only")
RATIOS = (("broad", "local-only"), ("guarded", "local-only"), ("guarded", "markov"))
GOAL_FRACTION = 0.1
GOAL_BROAD_WINS = 5  # held-out sources where broad >= local-only at f = 0.1 (of six)
GOAL_GUARDED_RATIO = 1.10  # mean guarded / local-only at f = 0.1
METRIC = "ndcg@10"


def sample_customers(data: RetailerData, n: int, *, seed: int) -> RetailerData:
    """A seeded sample of ``n`` customers with at least three interactions (all if fewer).

    Examples
    --------
    >>> books = rt.RetailerData.load("shops/books")  # doctest: +SKIP
    >>> small = sample_customers(books, 5000, seed=0)  # doctest: +SKIP
    """
    if n < MIN_EVENTS:
        raise ConfigError(f"customers must be >= {MIN_EVENTS}, got {n!r}.")
    eligible = eligible_customers(data)
    if len(eligible) > n:
        rng = np.random.default_rng(seed)
        eligible = sorted(rng.choice(eligible, n, replace=False).tolist())
    return subset_customers(data, eligible)


def run_loso(
    sources: Sequence[RetailerData | str | Path],
    *,
    encoder: Encoder | None = None,
    customers: int = 5_000,
    fractions: Sequence[float] = (1.0, 0.1),
    seeds: int = 3,
    ks: Sequence[int] = (10, 20, 50),
    pretrain_options: dict[str, Any] | None = None,
    held_out: Sequence[str] | None = None,
    ship_rules: bool = False,
    weight_sources: bool = False,
    random_state: int = 0,
    resume: dict[str, Any] | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the leave-one-source-out loop; returns the JSON document (``folds`` and ``summary``).

    Parameters
    ----------
    sources
        At least two source retailers (folders or loaded data), with distinct names.
    customers
        Customers sampled (seeded) from the held-out source; they play ``f = 1``.
    fractions, seeds, ks
        As in :func:`~rectransfer.evaluation.benchmark.run_benchmark` (fractions below 1 are shares
        of the sampled customers, ``seeds`` each).
    pretrain_options
        Keyword arguments for :func:`~rectransfer.transfer.pretrain.pretrain` (e.g.
        ``{"virtual_shops": (0.1,)}``); ``encoder`` and ``random_state`` are set here.
    held_out
        Names of the sources to hold out (default: every source in turn).
    ship_rules
        Let the guard ship a rule (popularity, markov) where it wins on validation, as
        :func:`~rectransfer.transfer.adapt.adapt` does with ``ship_rules``.
    weight_sources
        Pretrain each fold's broad model for its held-out source: the other sources weighted by
        how close their catalogues are to its catalogue (``pretrain(weight_towards=...)``).
    resume
        The document of an earlier run with the same options (e.g. its JSON, stopped half-way):
        its finished folds are kept, not redone.
    on_fold
        Called with the document after every fold (e.g. to write it, so a stopped run keeps
        the folds it finished).

    Examples
    --------
    >>> doc = run_loso(["sources/a", "sources/b", "sources/c"], customers=2000)  # doctest: +SKIP
    >>> print(loso_markdown(doc))  # doctest: +SKIP
    """
    datasets = [s if isinstance(s, RetailerData) else RetailerData.load(s) for s in sources]
    names = [d.name for d in datasets]
    if len(datasets) < 2:
        raise ConfigError(f"sources needs at least two retailers to hold one out, got {names!r}.")
    if len(set(names)) != len(names):
        raise ConfigError(f"sources need distinct names, got {names!r}.")
    chosen = list(names if held_out is None else held_out)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ConfigError(f"held_out names {unknown!r} are not among the sources {names!r}.")
    options = study_pretrain_options(pretrain_options)
    encoder = encoder if encoder is not None else load_encoder()
    doc: dict[str, Any] = {
        "protocol": (
            "leave-one-source-out: pretrain on the other sources, benchmark the held-out one as "
            f"an unseen retailer ({PROTOCOL}); f = 1 is a seeded sample of its customers"
        ),
        "sources": names,
        "customers": customers,
        "fractions": list(fractions),
        "seeds": seeds,
        "encoder": encoder.name,
        "pretrain_options": {k: jsonable(v) for k, v in options.items()},
        "ship_rules": ship_rules,
        "weight_sources": weight_sources,
        "random_state": random_state,
        "folds": [],
    }
    if resume is not None:
        check_resume(
            resume,
            doc,
            [
                "customers",
                "fractions",
                "seeds",
                "encoder",
                "pretrain_options",
                "ship_rules",
                "weight_sources",
                "random_state",
            ],
        )
        doc["folds"] = [f for f in resume.get("folds", []) if f["held_out"] in chosen]
    finished = {f["held_out"] for f in doc["folds"]}
    for target in datasets:
        if target.name not in chosen or target.name in finished:
            continue
        others = [d for d in datasets if d.name != target.name]
        started = time.perf_counter()
        broad = pretrain(
            others,
            encoder=encoder,
            random_state=random_state,
            weight_towards=target if weight_sources else None,
            **options,
        )
        pretrain_s = time.perf_counter() - started
        sample = sample_customers(target, customers, seed=random_state)
        started = time.perf_counter()
        report = run_benchmark(
            broad,
            sample,
            fractions=fractions,
            seeds=seeds,
            ks=ks,
            progress=progress,
            implicit_references=False,
            ship_rules=ship_rules,
        )
        doc["folds"].append(
            {
                "held_out": target.name,
                "trained_on": broad.config.trained_on,
                "customers": report["n_users"],
                "n_items": report["n_items"],
                "pretrain_seconds": round(pretrain_s, 1),
                "benchmark_seconds": round(time.perf_counter() - started, 1),
                "rounds": broad.config.rounds["broad"],
                **(
                    {"source_weights": broad.config.params["source_weights"]}
                    if weight_sources
                    else {}
                ),
                "base": report["base"],
                "results": report["results"],
            }
        )
        doc["summary"] = loso_summary(doc)
        if on_fold is not None:
            on_fold(doc)
    doc["summary"] = loso_summary(doc)
    return doc


def _fold_means(fold: dict[str, Any]) -> dict[tuple[str, float], tuple[float, float]]:
    """(model, fraction) -> (mean, standard error over seeds) of NDCG@10."""
    by: dict[tuple[str, float], list[float]] = {}
    for row in fold["results"]:
        if "slice" in row or row.get(METRIC) is None:
            continue
        by.setdefault((row["model"], row["fraction"]), []).append(row[METRIC])
    out = {}
    for key, values in by.items():
        summary = mean_se(values)
        out[key] = (float(summary["mean"] or 0.0), float(summary["se"] or 0.0))
    return out


def loso_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """Per fold and fraction: NDCG@10 of every row and the ratios; means over folds; goals.

    Examples
    --------
    >>> loso_summary({"folds": []})["goals"]["broad_wins"]
    0
    """
    per_fold = []
    ratios: dict[tuple[float, str], list[float]] = {}
    for fold in doc["folds"]:
        means = _fold_means(fold)
        for fraction in sorted({f for _, f in means}, reverse=True):
            entry: dict[str, Any] = {"held_out": fold["held_out"], "fraction": fraction}
            for model in MODELS:
                if (model, fraction) in means:
                    mean, se = means[(model, fraction)]
                    entry[model] = {"mean": mean, "se": se}
            for top, bottom in RATIOS:
                name = f"{top}/{bottom}"
                a, b = means.get((top, fraction)), means.get((bottom, fraction))
                value = a[0] / b[0] if a is not None and b is not None and b[0] > 0 else None
                entry[name] = value
                if value is not None:
                    ratios.setdefault((fraction, name), []).append(value)
            per_fold.append(entry)
    at_goal = [e for e in per_fold if e["fraction"] == GOAL_FRACTION]
    wins = sum(1 for e in at_goal if (e.get("broad/local-only") or 0.0) >= 1.0)
    guarded = mean_se([e["guarded/local-only"] for e in at_goal if e["guarded/local-only"]])
    return {
        "per_fold": per_fold,
        "means": [
            {"fraction": fraction, "ratio": name, **mean_se(values)}
            for (fraction, name), values in sorted(ratios.items(), key=lambda kv: -kv[0][0])
        ],
        "goals": {
            "broad_wins": wins,
            "folds_at_goal_fraction": len(at_goal),
            "broad_wins_goal": f">= {GOAL_BROAD_WINS} of 6 held-out sources at f = {GOAL_FRACTION}",
            "broad_wins_met": wins >= GOAL_BROAD_WINS,
            "guarded_over_local": guarded,
            "guarded_over_local_goal": f"mean >= {GOAL_GUARDED_RATIO} at f = {GOAL_FRACTION}",
            "guarded_over_local_met": guarded["mean"] is not None
            and guarded["mean"] >= GOAL_GUARDED_RATIO,
        },
    }


def loso_markdown(doc: dict[str, Any]) -> str:
    """The summary as markdown: one line per held-out source and fraction, then the means.

    Examples
    --------
    >>> print(loso_markdown({"folds": [], "summary": loso_summary({"folds": []})}))
    ... # doctest: +ELLIPSIS
    | held out | f | broad | local-only | guarded | markov | ...
    """
    summary = doc.get("summary") or loso_summary(doc)
    lines = [
        "| held out | f | broad | local-only | guarded | markov | broad/local | guarded/local "
        "| guarded/markov |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(entry: dict[str, Any], model: str) -> str:
        value = entry.get(model)
        if not value:
            return ""
        return f"{value['mean']:.4f} ± {value['se']:.4f}" if value["se"] else f"{value['mean']:.4f}"

    def ratio(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    for e in summary["per_fold"]:
        lines.append(
            f"| {e['held_out']} | {e['fraction']:g} | {cell(e, 'broad')} | "
            f"{cell(e, 'local-only')} | {cell(e, 'guarded')} | {cell(e, 'markov')} | "
            f"{ratio(e['broad/local-only'])} | {ratio(e['guarded/local-only'])} | "
            f"{ratio(e['guarded/markov'])} |"
        )
    lines += ["", "| mean over held-out sources | f | value ± se (n) |", "|---|---|---|"]
    for m in summary["means"]:
        if m["mean"] is not None:
            lines.append(
                f"| {m['ratio']} | {m['fraction']:g} | {m['mean']:.3f} ± {m['se']:.3f} ({m['n']}) |"
            )
    goals = summary["goals"]
    guarded = goals["guarded_over_local"]
    guarded_text = "n/a" if guarded["mean"] is None else f"{guarded['mean']:.3f}"
    lines += [
        "",
        f"Goals at f = {GOAL_FRACTION}: broad >= local-only on {goals['broad_wins']} of "
        f"{goals['folds_at_goal_fraction']} held-out sources (goal: {GOAL_BROAD_WINS} of 6; "
        f"{'met' if goals['broad_wins_met'] else 'not met'}); guarded / local-only "
        f"{guarded_text} on average (goal: {GOAL_GUARDED_RATIO}; "
        f"{'met' if goals['guarded_over_local_met'] else 'not met'}).",
    ]
    return "\n".join(lines)
