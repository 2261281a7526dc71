"""Zero-shot transfer against the number of source retailers: the source-count curve.

For each of ``orders`` seeded orders of the sources and each count n, the broad model is pretrained
on the first n sources of that order (with the options of
:func:`~rectransfer.transfer.pretrain.pretrain`) and benchmarked, as it is, on every target with
:func:`~rectransfer.evaluation.benchmark.run_benchmark` restricted to the ``broad`` row: nothing is
fitted on a target, so a point costs one pretraining and the targets' features. A set of sources
met again (every order ends with all of them) is pretrained once. The curve is for reporting: it
chooses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.evaluation.benchmark import run_benchmark
from rectransfer.evaluation.studies import (
    check_resume,
    jsonable,
    mean_se,
    study_pretrain_options,
)
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder
from rectransfer.transfer.pretrain import pretrain

METRIC = "ndcg@10"


def source_orders(names: Sequence[str], orders: int, *, random_state: int) -> list[list[str]]:
    """``orders`` seeded permutations of ``names`` (the first one included).

    Examples
    --------
    >>> source_orders(["a", "b", "c"], 2, random_state=0)
    [['c', 'a', 'b'], ['c', 'b', 'a']]
    """
    rng = np.random.default_rng(random_state)
    return [[names[i] for i in rng.permutation(len(names))] for _ in range(orders)]


def run_source_curve(
    sources: Sequence[RetailerData | str | Path],
    targets: Sequence[RetailerData | str | Path],
    *,
    counts: Sequence[int] = (1, 2, 4, 6),
    orders: int = 1,
    encoder: Encoder | None = None,
    fractions: Sequence[float] = (1.0, 0.1),
    seeds: int = 3,
    ks: Sequence[int] = (10,),
    pretrain_options: dict[str, Any] | None = None,
    random_state: int = 0,
    resume: dict[str, Any] | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain on growing sets of sources and benchmark each broad model zero-shot on targets.

    Parameters
    ----------
    sources
        The source retailers (folders or loaded data), with distinct names.
    targets
        Retailers none of the sources is named like; each is benchmarked at ``fractions``.
    counts
        Numbers of sources to pretrain on, each at most ``len(sources)``.
    orders
        Seeded orders of the sources; each count takes the first n of every order.
    pretrain_options
        Keyword arguments for :func:`~rectransfer.transfer.pretrain.pretrain`; ``encoder`` and
        ``random_state`` are set here.
    resume
        The document of an earlier run with the same options but for ``counts`` and ``orders``
        (e.g. its JSON): its points are kept, not pretrained again, so more orders or counts
        extend a curve (the first orders of a seed are the same whatever their number).
    on_point
        Called with the document after every pretrained source set (e.g. to write it).

    Examples
    --------
    >>> doc = run_source_curve(["s/a", "s/b", "s/c"], ["t/x"], counts=(1, 3))  # doctest: +SKIP
    >>> print(curve_markdown(doc))  # doctest: +SKIP
    """
    source_data = [s if isinstance(s, RetailerData) else RetailerData.load(s) for s in sources]
    target_data = [t if isinstance(t, RetailerData) else RetailerData.load(t) for t in targets]
    names = [d.name for d in source_data]
    if len(set(names)) != len(names):
        raise ConfigError(f"sources need distinct names, got {names!r}.")
    clash = sorted({t.name for t in target_data} & set(names))
    if clash:
        raise ConfigError(f"targets {clash!r} are also sources; a target must be unseen.")
    if not counts or min(counts) < 1 or max(counts) > len(names):
        raise ConfigError(
            f"counts must lie in 1..{len(names)} (the sources given), got {counts!r}."
        )
    if orders < 1:
        raise ConfigError(f"orders must be >= 1, got {orders!r}.")
    options = study_pretrain_options(pretrain_options)
    encoder = encoder if encoder is not None else load_encoder()
    by_name = dict(zip(names, source_data, strict=True))
    doc: dict[str, Any] = {
        "protocol": (
            "zero-shot broad model pretrained on the first n sources of seeded orders; "
            "each target benchmarked with the broad row only"
        ),
        "sources": names,
        "targets": [t.name for t in target_data],
        "counts": sorted(set(counts)),
        "orders": source_orders(names, orders, random_state=random_state),
        "fractions": list(fractions),
        "seeds": seeds,
        "encoder": encoder.name,
        "pretrain_options": {k: jsonable(v) for k, v in options.items()},
        "random_state": random_state,
        "points": [],
    }
    if resume is not None:
        keys = ["sources", "targets", "fractions", "seeds", "encoder", "pretrain_options"]
        check_resume(resume, doc, [*keys, "random_state"])
        doc["points"] = list(resume.get("points", []))
    done = {tuple(point["sources"]) for point in doc["points"]}
    for order in doc["orders"]:
        for n in doc["counts"]:
            chosen = tuple(sorted(order[:n]))
            if chosen in done:
                continue
            done.add(chosen)
            started = time.perf_counter()
            broad = pretrain(
                [by_name[name] for name in chosen],
                encoder=encoder,
                random_state=random_state,
                **options,
            )
            point: dict[str, Any] = {
                "sources": list(chosen),
                "count": n,
                "rounds": broad.config.rounds["broad"],
                "pretrain_seconds": round(time.perf_counter() - started, 1),
                "targets": {},
            }
            for target in target_data:
                report = run_benchmark(
                    broad,
                    target,
                    fractions=fractions,
                    seeds=seeds,
                    ks=ks,
                    progress=progress,
                    implicit_references=False,
                    rows=["broad"],
                )
                point["targets"][target.name] = _by_fraction(report["results"])
            doc["points"].append(point)
            doc["summary"] = curve_summary(doc)
            if on_point is not None:
                on_point(doc)
    doc["summary"] = curve_summary(doc)
    return doc


def _by_fraction(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fraction (as text, a JSON key) -> NDCG@10 of every seed, their mean and standard error."""
    values: dict[float, list[float]] = {}
    for row in results:
        if "slice" not in row and row["model"] == "broad":
            values.setdefault(row["fraction"], []).append(row[METRIC])
    return {f"{f:g}": {"values": v, **mean_se(v)} for f, v in sorted(values.items())}


def curve_summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per target, fraction and count: the mean over source sets of their mean NDCG@10.

    Examples
    --------
    >>> point = {"count": 1, "targets": {"x": {"1": {"mean": 0.2}}}}
    >>> curve_summary({"points": [point, {**point, "targets": {"x": {"1": {"mean": 0.4}}}}]})
    [{'target': 'x', 'fraction': '1', 'count': 1, 'mean': 0.30000000000000004, 'se': 0.1, 'n': 2}]
    """
    grouped: dict[tuple[str, str, int], list[float]] = {}
    for point in doc["points"]:
        for target, fractions in point["targets"].items():
            for fraction, figure in fractions.items():
                grouped.setdefault((target, fraction, point["count"]), []).append(figure["mean"])
    return [
        {"target": t, "fraction": f, "count": n, **mean_se(v)}
        for (t, f, n), v in sorted(
            grouped.items(), key=lambda kv: (kv[0][0], -float(kv[0][1]), kv[0][2])
        )
    ]


def curve_markdown(doc: dict[str, Any]) -> str:
    """One line per count: zero-shot NDCG@10 per target and fraction (± se over source sets).

    Examples
    --------
    >>> print(curve_markdown({"points": []}))
    | sources | rounds |
    |---|---|
    """
    summary = doc.get("summary") or curve_summary(doc)
    columns = sorted(
        {(e["target"], e["fraction"]) for e in summary}, key=lambda c: (c[0], -float(c[1]))
    )
    cells = {(e["target"], e["fraction"], e["count"]): e for e in summary}
    rounds: dict[int, list[int]] = {}
    for point in doc["points"]:
        rounds.setdefault(point["count"], []).append(point["rounds"])
    header = " | ".join(f"{t} f = {f}" for t, f in columns)
    lines = [
        f"| sources | rounds | {header} |" if columns else "| sources | rounds |",
        "|---" * (2 + len(columns)) + "|",
    ]
    for n in sorted(rounds):
        row = []
        for t, f in columns:
            e = cells.get((t, f, n))
            if e is None:
                row.append("")
            elif e["n"] > 1:
                row.append(f"{e['mean']:.4f} ± {e['se']:.4f}")
            else:
                row.append(f"{e['mean']:.4f}")
        lines.append(f"| {n} | {', '.join(map(str, rounds[n]))} | " + " | ".join(row) + " |")
    return "\n".join(lines)
