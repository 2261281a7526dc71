"""The ranker compiled to native code for large batches (lleaves; the ``compiled`` extra).

LightGBM walks every tree node by node for every candidate row; lleaves compiles the trees with
LLVM into one native function that scores the same rows about 7x faster (a 325-tree model: 1.7
against 12.6 us per row on one thread). A nightly export scores millions of rows, and the models
retailers ship carry the broad model's trees plus their own, so scoring is most of its time.
Compiling costs seconds (7-10 s for 300 trees), so only a large batch asks for it
(:data:`COMPILE_MIN_CUSTOMERS`); one request online is scored by LightGBM.

The compiled function must score exactly as LightGBM does: it is checked on probe rows that
reach every split of every tree from both sides, and refused (with a warning) on any difference.
Without lleaves, or when compiling fails, scoring stays with LightGBM: the lists are the same,
only slower.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from rectransfer.ranking.ranker import predict

log = logging.getLogger(__name__)

# Customers with a ranked list in one batch from which compiling pays for itself: a 300-tree
# model scores ~180 candidates per customer at ~12 us per row in LightGBM, 2 ms per customer,
# against ~10 s to compile.
COMPILE_MIN_CUSTOMERS = 10_000
PROBE_ROWS = 4_000
TOLERANCE = 1e-9
ZERO_SPLIT = 1e-30  # thresholds this close to zero are LightGBM's "is it below zero" splits

# Compiled models kept per process: the chunks of one export (each with its own RecModel object,
# possibly on a worker process) compile their model once, not once per chunk.
MAX_CACHED_MODELS = 8

Scorer = Callable[[np.ndarray], np.ndarray]


class CompiledModels:
    """Compiled rankers, keyed by model version (the digest of the trees, so equal models share
    one), the latest ``max_models`` kept. Thread-safe."""

    def __init__(self, max_models: int = MAX_CACHED_MODELS) -> None:
        self.max_models = max_models
        self._scorers: dict[str, Scorer | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._scorers)

    def scorer(self, booster: lgb.Booster, key: str) -> Scorer | None:
        """:func:`compile_booster` once for each ``key`` (None where compiling is not possible)."""
        with self._lock:
            if key not in self._scorers:
                if len(self._scorers) >= self.max_models:
                    # the oldest goes: a nightly run goes shop by shop
                    del self._scorers[next(iter(self._scorers))]
                self._scorers[key] = compile_booster(booster)
            return self._scorers[key]


# The process's compiled models, which every model object asks by default.
SHARED = CompiledModels()


def cached_scorer(
    booster: lgb.Booster, key: str, models: CompiledModels | None = None
) -> Scorer | None:
    """The compiled ``booster`` from ``models`` (default: :data:`SHARED`)."""
    return (SHARED if models is None else models).scorer(booster, key)


def compile_booster(booster: lgb.Booster) -> Scorer | None:
    """A native scorer equal to ``predict(booster, ·)``, or ``None`` where it cannot be had."""
    try:
        import lleaves  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        log.info("lleaves is not installed (extra 'compiled'); scoring with LightGBM")
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="rectransfer-compile-") as folder:
            path = Path(folder) / "ranker.txt"
            booster.save_model(str(path))
            compiled = lleaves.Model(model_file=str(path))
            compiled.compile()
    # An optional accelerator: whatever LLVM or lleaves raise, LightGBM still scores correctly.
    except Exception as error:
        log.warning("compiling the ranker failed (%s); scoring with LightGBM", error)
        return None

    def scorer(features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(compiled.predict(features, n_jobs=1), dtype=np.float64)

    probe = probe_rows(booster)
    expected = predict(booster, probe)
    got = scorer(probe)
    if not np.allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE):
        worst = float(np.max(np.abs(got - expected)))
        log.warning(
            "the compiled ranker differs from LightGBM by up to %.3g on probe rows; scoring "
            "with LightGBM",
            worst,
        )
        return None
    return scorer


def probe_rows(booster: lgb.Booster, n: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows whose values are the ranker's own split thresholds, a hair below, at and above.

    Every split is then met at its edge from both sides, where a compiled comparison that
    differs from LightGBM's (``<=`` against ``<``, float32 against float64) would show; a few
    rows hold NaN to check how missing values are routed. Other features are random.
    """
    thresholds: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            thresholds.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, booster.num_feature()))
    for feature, values in thresholds.items():
        edges = np.asarray(values)
        # LightGBM parts "below zero" from "zero" at -1e-35 (its zero threshold). Features never
        # fall within 1e-35 of zero without being zero, so that split is probed at 0 and at
        # ordinary values either side, not at its float edge.
        zero_split = np.abs(edges) < ZERO_SPLIT
        edges = np.concatenate([edges[~zero_split], [0.0, -1e-6, 1e-6] if zero_split.any() else []])
        edges = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
        rows[:, feature] = rng.choice(edges, size=n)
    rows[rng.random(rows.shape) < 0.01] = np.nan
    return rows
