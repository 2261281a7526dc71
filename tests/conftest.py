"""Shared fixtures: a tiny planted-signal shop builder, the bundled sample data, a fast encoder."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest

from rectransfer.data.histories import Histories
from rectransfer.data.retailer import RetailerData
from rectransfer.text.encoder import HashingEncoder, SentenceTransformerEncoder

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services set it), where every extra is
    installed."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def import_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` of an optional extra: skip the test where it is not installed, but fail
    in CI, which installs every extra; there a skip would hide a test that runs nowhere.

    Tests use this instead of ``pytest.importorskip`` (``tests/test_extras.py`` checks).
    """
    if not in_ci():
        return pytest.importorskip(module)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pytest.fail(
            f"{module!r} cannot be imported ({err}) but CI={os.environ['CI']!r}: CI must run "
            f"the tests of every extra. Install it with pip install -e '.[{extra}]'.",
            pytrace=False,
        )


# Kinds of product that follow each other at every planted shop, by domain.
CHAINS = {
    "camping": ["tent", "sleeping bag", "sleeping pad", "camp stove"],
    "coffee": ["espresso machine", "burr grinder", "coffee beans", "milk frother"],
    "running": ["trail shoes", "running socks", "hydration vest", "gps watch"],
    "baking": ["stand mixer", "baking sheet", "cooling rack", "piping bags"],
}
TASTE_WORDS = {
    "camping": "weekend backpacking trips outdoors",
    "coffee": "morning espresso ritual barista",
    "running": "marathon training trail runs",
    "baking": "homemade bread cakes oven",
}


def make_shop(
    name: str,
    *,
    seed: int,
    n_users: int = 120,
    variants: int = 3,
    new_items: int = 0,
    text_only_users: int = 0,
) -> RetailerData:
    """A small shop with planted behaviour that a correct model must pick up.

    Every customer has one domain; their sequence walks that domain's chain (tent -> sleeping bag
    -> ...), so the next item is the next kind of the last one. Customer text names the domain's
    taste words (which also appear in the product descriptions).
    """
    rng = np.random.default_rng(seed)
    prefix = name[:2].upper()
    items: list[dict[str, object]] = []
    by_kind: dict[str, list[str]] = {}
    for domain, kinds in CHAINS.items():
        for kind in kinds:
            for v in range(variants):
                item_id = f"{prefix}-{len(items):04d}"
                by_kind.setdefault(kind, []).append(item_id)
                items.append(
                    {
                        "item_id": item_id,
                        "title": f"{kind} model {v + 1}",
                        "description": f"great for {TASTE_WORDS[domain]}",
                        "category": domain,
                        "brand": f"brand{v}",
                        "price": float(10 + 5 * v),
                        "in_stock": True,
                    }
                )
    for j in range(new_items):
        items.append(
            {
                "item_id": f"{prefix}-NEW{j}",
                "title": f"tent new edition {j}",
                "description": f"great for {TASTE_WORDS['camping']}",
                "category": "camping",
                "brand": "brandnew",
                "price": 99.0,
                "in_stock": True,
            }
        )
    rows: list[dict[str, object]] = []
    users: list[dict[str, str]] = []
    domains = list(CHAINS)
    for u in range(n_users):
        user_id = f"{prefix}-u{u:04d}"
        domain = domains[u % len(domains)]
        chain = CHAINS[domain]
        start = int(rng.integers(0, 2))
        length = int(rng.integers(2, len(chain) - start + 1))
        t = 1_700_000_000 + int(rng.integers(0, 10_000))
        for step in range(length):
            kind = chain[start + step]
            choice = by_kind[kind][int(rng.integers(0, variants))]
            t += int(rng.integers(60, 86_400))
            rows.append({"user_id": user_id, "item_id": choice, "timestamp": t})
        users.append({"user_id": user_id, "text": f"I love {TASTE_WORDS[domain]}"})
    for j in range(text_only_users):
        users.append({"user_id": f"{prefix}-cold{j}", "text": f"I love {TASTE_WORDS['coffee']}"})
    return RetailerData.from_frames(
        pl.DataFrame(items), pl.DataFrame(rows), pl.DataFrame(users), name=name
    )


@pytest.fixture(scope="session")
def encoder() -> HashingEncoder:
    return HashingEncoder(64)


@pytest.fixture(scope="session")
def sources() -> list[RetailerData]:
    return [make_shop(f"source{i}", seed=i, n_users=160) for i in range(3)]


@pytest.fixture(scope="session")
def target() -> RetailerData:
    return make_shop("target", seed=42, n_users=90, new_items=2, text_only_users=3)


@pytest.fixture(scope="session")
def broad(sources: list[RetailerData], encoder: HashingEncoder):  # type: ignore[no-untyped-def]
    import rectransfer as rt

    return rt.pretrain(sources, encoder=encoder, random_state=0)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core box, two spinning OpenMP threads run ~15x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer, 32-wide BERT sentence-transformer with the packaged MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    packaged = SentenceTransformerEncoder().model_path
    folder = tmp_path_factory.mktemp("tiny-bert")
    for path in packaged.iterdir():
        if path.is_file() and path.suffix in (".json", ".txt") and path.name != "config.json":
            shutil.copy(path, folder / path.name)
    (folder / "1_Pooling").mkdir()
    pooling = json.loads((packaged / "1_Pooling" / "config.json").read_text())
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({**pooling, "word_embedding_dimension": 32})
    )
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server (and home) for every test that runs flows; ~20 s to start."""
    home = tmp_path_factory.mktemp("prefect_home")
    settings = {
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    previous = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test's embedding cache out of the user's home."""
    previous = os.environ.get("RECTRANSFER_CACHE_DIR")
    os.environ["RECTRANSFER_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield
    if previous is None:
        os.environ.pop("RECTRANSFER_CACHE_DIR", None)
    else:
        os.environ["RECTRANSFER_CACHE_DIR"] = previous


def histories_of(sequences: list[list[int]], n_items: int) -> Histories:
    """Histories of customers 0..n-1 from their item sequences, oldest first."""
    lengths = [len(s) for s in sequences]
    items = np.array([i for s in sequences for i in s], dtype=np.int32)
    return Histories(
        indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=items,
        times=np.arange(len(items), dtype=np.int64),
        n_items=n_items,
    )


def write_shop(data: RetailerData, folder: Path) -> Path:
    """Write a shop in the data contract's folder layout."""
    folder.mkdir(parents=True, exist_ok=True)
    data.items.write_parquet(folder / "items.parquet")
    data.interactions.write_parquet(folder / "interactions.parquet")
    if data.users is not None:
        data.users.write_parquet(folder / "users.parquet")
    return folder


def one_error_line(err: str) -> str:
    """The one ``rectransfer: error: ...`` line of a failed command's standard error.

    Stage and progress lines (``rectransfer: ...``) may come before it; the error is exactly one
    line, the last, and nothing else (no traceback) is printed.
    """
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("rectransfer: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert all(line.startswith("rectransfer: ") for line in lines), err
    return errors[0] + "\n"
