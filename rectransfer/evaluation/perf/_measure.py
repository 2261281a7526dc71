"""Measuring helpers shared by the benchmarks: peak memory, fresh processes, reference models."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rectransfer.model.recmodel import RecModel

GIB = 1024**3


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 3)


def run_fresh(module: str, argv: Sequence[str]) -> dict[str, Any]:
    """Run ``python -m module argv`` in a new process and return the JSON it prints last.

    A fresh process per measurement keeps peak memory and warm-up of one size from leaking
    into the next.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *argv], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def add_model_options(parser: argparse.ArgumentParser, *, model_flag: str = "--model") -> None:
    """The options every model-using benchmark takes: the model, its encoder, cache and seed."""
    parser.add_argument(
        model_flag, type=Path, default=None, help="model directory (default: pretrain a small one)"
    )
    parser.add_argument("--encoder", default="default", help="encoder spec")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache folder")
    parser.add_argument("--seed", type=int, default=0)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self._start, 3)


def reference_model(encoder_spec: str, cache_dir: Path | None, *, seed: int = 0) -> RecModel:
    """A broad model pretrained on two generated shops (no data set needed), for speed figures."""
    import rectransfer as rt
    from rectransfer.evaluation.synthetic import make_retailer
    from rectransfer.text.load import load_encoder

    encoder = load_encoder(encoder_spec, cache_dir=cache_dir)
    shops = [
        make_retailer(3_000, 2_000, seed=seed + 100 + i, name=f"reference_{i}") for i in range(2)
    ]
    return rt.pretrain(shops, encoder=encoder, random_state=seed)
