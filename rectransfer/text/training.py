"""Transfer in text space: fine-tune the text encoder on many retailers' behaviour.

The broad ranker (:mod:`rectransfer.transfer.pretrain`) learns *how* to combine signals; this module
moves the text space itself, so that products customers buy one after the other end up close
together at every shop. It mines **product-text pairs** from the source retailers and fine-tunes a
local sentence-transformers model contrastively (sentence-transformers'
``MultipleNegativesRankingLoss``: every other positive in the batch is a negative), with the
embedding layer and the lower transformer layers frozen so that general language knowledge stays
where it is.

Pairs (:mod:`rectransfer.text.pairs`)
    Product-text pairs bought one after the other or close together at the sources; only product
    text, never a customer id, a customer's own text or an item id.

Training (:func:`pretrain_encoder`)
    A plain torch loop over the model's own modules and loss. sentence-transformers'
    ``SentenceTransformerTrainer`` needs the ``datasets`` and ``accelerate`` packages, which this
    project does not otherwise use; the loop below is short, keeps every random draw seeded per
    epoch (batches, dropout), and so resumes exactly. Batches are drawn within one source (the
    in-batch negatives of a books shop are other books, not trivially different fridges) and never
    hold the same text twice (a duplicate would be a false negative). AdamW with linear warm-up
    and decay, gradients clipped at norm 1.

Resuming and publishing
    After every epoch, and every ``checkpoint_every`` batches within one, a checkpoint (trainable
    weights, optimizer, schedule and random state) is written atomically into a work folder
    (default: ``<out>.work`` beside the output). A rerun with the same arguments and data continues
    from it, with the weights an uninterrupted run would reach; other arguments start over. The
    result is a normal sentence-transformers model directory plus ``rectransfer_encoder.json`` (base
    fingerprint, frozen layers, epochs, pair counts, seed, source names), staged beside the output
    and published with one atomic rename or exchange (as :mod:`rectransfer.model.artifacts` does for
    ranker models), so the output path never holds a half-written model. A rerun whose output
    already holds the same training returns at once.

One module for one training run: the plan, its batches, the loop, its checkpoints and the
published folder share the plan's state and are resumed together.

Examples
--------
>>> from rectransfer.text.training import pretrain_encoder
>>> pretrain_encoder(["shops/a", "shops/b"], "models/encoder")  # doctest: +SKIP
PosixPath('models/encoder')
>>> import rectransfer as rt
>>> encoder = rt.load_encoder("models/encoder")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, IncompatibleArtifactError, SchemaError
from rectransfer.text.encoder import SentenceTransformerEncoder, quiet_transformers_loading
from rectransfer.text.pairs import DEFAULT_MAX_PAIRS, DEFAULT_WINDOW, training_pairs
from rectransfer.utils import atomic as _atomic
from rectransfer.utils.atomic import leftovers, publish_directory
from rectransfer.utils.destinations import ENCODER_METADATA_FILE, check_model_destination
from rectransfer.utils.versions import library_versions, package_version

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_FREEZE_LAYERS",
    "DEFAULT_MAX_PAIRS",
    "METADATA_FILE",
    "freeze_layers",
    "pretrain_encoder",
    "read_metadata",
]

# Defaults, measured on the six Amazon source sets on 2 CPU cores shared with other work:
# 20,000 pairs, 1 epoch, 4 of MiniLM's 6 layers frozen took 18 minutes (13.5 CPU minutes). At
# 4,000 pairs, freezing 0 / 2 / 4 layers gave the same gain in next-item NDCG@10 of the text
# signal on two title-only targets, at 316 / 225 / 152 CPU seconds; freezing 5 gained clearly
# less. Product titles are short (99% under 32 word pieces): 64 tokens truncate little.
DEFAULT_FREEZE_LAYERS: Final = 4
DEFAULT_EPOCHS: Final = 1
DEFAULT_BATCH_SIZE: Final = 32
DEFAULT_LEARNING_RATE: Final = 2e-5
DEFAULT_MAX_SEQ_LENGTH: Final = 64
DEFAULT_CHECKPOINT_EVERY: Final = 100  # batches (~3 minutes here): what a crash can cost at most
WARMUP_SHARE: Final = 0.1
WEIGHT_DECAY: Final = 0.01
MAX_GRAD_NORM: Final = 1.0

METADATA_FILE: Final = ENCODER_METADATA_FILE
METADATA_FORMAT: Final = "rectransfer-encoder/1"
CHECKPOINT_FILE: Final = "checkpoint.pt"

# Where a transformer keeps its stack of layers, for the architectures sentence-transformers
# models are commonly built on (BERT / RoBERTa / MPNet / XLM-R, DistilBERT, others).
_LAYER_PATHS: Final = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer")


def _load_model(path: Path, device: str) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for a model hub
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    try:
        with quiet_transformers_loading():
            return SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:
        raise ConfigError(
            f"could not load the sentence-transformers model in {path} "
            f"({type(exc).__name__}: {exc}); pass a complete local model directory"
        ) from exc


def _backbone_parts(model: Any) -> tuple[Any, Any]:
    """The token-embedding module and the list of transformer layers of a model."""
    backbone = getattr(model[0], "auto_model", None)
    if backbone is None:
        raise ConfigError(
            f"the encoder's first module is {type(model[0]).__name__}, not a transformer; "
            "pretrain-encoder fine-tunes sentence-transformers models built on a transformer"
        )
    embeddings = getattr(backbone, "embeddings", None) or backbone.get_input_embeddings()
    for dotted in _LAYER_PATHS:
        layers: Any = backbone
        for attribute in dotted.split("."):
            layers = getattr(layers, attribute, None)
        if layers is not None and hasattr(layers, "__len__") and len(layers) > 0:
            return embeddings, layers
    raise ConfigError(
        f"cannot find the layer stack of {type(backbone).__name__} (looked for "
        f"{', '.join(_LAYER_PATHS)}); pass a BERT-, RoBERTa-, MPNet- or DistilBERT-style model"
    )


def freeze_layers(model: Any, n: int) -> int:
    """Freeze the embedding layer and the first ``n`` transformer layers of a model.

    Frozen parameters get ``requires_grad = False`` (so no gradient is computed for them and the
    optimizer never sees them); every other parameter is made trainable.

    Parameters
    ----------
    model
        A ``sentence_transformers.SentenceTransformer`` on a transformer backbone.
    n
        How many of the lowest layers to freeze, ``0 <= n < number of layers``.

    Returns
    -------
    int
        The number of transformer layers of the model.

    Raises
    ------
    ConfigError
        When ``n`` is out of range or the model has no recognisable layer stack.

    Examples
    --------
    >>> freeze_layers(model, 4)  # doctest: +SKIP
    6
    """
    embeddings, layers = _backbone_parts(model)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(layers):
        raise ConfigError(
            f"freeze_layers must be an integer from 0 to {len(layers) - 1} (the model has "
            f"{len(layers)} layers; freezing all would leave nothing to train), got {n!r}"
        )
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for module in (embeddings, *list(layers)[:n]):
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return len(layers)


# --- training ---


@dataclass(frozen=True)
class _Plan:
    """Everything that decides the result: equal plans give equal weights."""

    base_path: Path
    base_name: str
    sources: tuple[str, ...]
    base_fingerprint: str
    pairs: pl.DataFrame
    freeze: int
    epochs: int
    batch_size: int
    learning_rate: float
    max_seq_length: int
    window: int
    hard_negatives: bool
    random_state: int

    @functools.cached_property
    def key(self) -> str:
        digest = hashlib.sha256(b"rectransfer.text.training/1\0")
        settings = {
            "base": self.base_fingerprint,
            "freeze": self.freeze,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "max_seq_length": self.max_seq_length,
            "window": self.window,
            "hard_negatives": self.hard_negatives,
            "seed": self.random_state,
            "sources": self.sources,
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        for row in self.pairs.iter_rows():
            digest.update("\0".join("\1" if v is None else v for v in row).encode() + b"\0\0")
        return digest.hexdigest()


def _batches(rows: np.ndarray, columns: list[list[str | None]], batch_size: int) -> list[list[int]]:
    """Cut rows (in the given order) into batches in which no text appears twice.

    A row whose texts clash with the batch being filled waits for a later batch; a batch of one
    (a row that clashes with everything left) is dropped, as it has no in-batch negative.
    """
    remaining = dict.fromkeys(rows.tolist())
    batches = []
    while remaining:
        batch: list[int] = []
        seen: set[str] = set()
        for row in remaining:
            texts = {text for column in columns if (text := column[row]) is not None}
            if seen.isdisjoint(texts):
                batch.append(row)
                seen.update(texts)
                if len(batch) == batch_size:
                    break
        for row in batch:
            del remaining[row]
        if len(batch) > 1:
            batches.append(batch)
    return batches


def _epoch_batches(pairs: pl.DataFrame, epoch: int, plan: _Plan) -> list[list[int]]:
    """The batches of one epoch, seeded by (seed, epoch) so that a resumed run draws the same."""
    rng = np.random.default_rng([plan.random_state, epoch])
    columns = [pairs[c].to_list() for c in ("anchor", "positive", "negative")]
    groups = pairs.with_row_index("row").group_by(
        "source", pl.col("negative").is_null().alias("plain"), maintain_order=True
    )
    batches: list[list[int]] = []
    for _, group in sorted(groups, key=lambda item: (str(item[0][0]), bool(item[0][1]))):
        rows = group["row"].to_numpy()
        batches.extend(_batches(rows[rng.permutation(len(rows))], columns, plan.batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _checkpoint(work_dir: Path, plan_key: str) -> dict[str, Any] | None:
    """The saved state of this training, or None (no checkpoint, another training, unreadable)."""
    import torch

    path = work_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # runs no code
    except Exception:  # a foreign or damaged file: start over
        return None
    if not isinstance(state, dict) or state.get("key") != plan_key:
        return None
    return state


def _save_checkpoint(work_dir: Path, state: dict[str, Any]) -> None:
    import torch

    work_dir.mkdir(parents=True, exist_ok=True)
    staging = work_dir / f".{CHECKPOINT_FILE}.tmp-{_atomic.owner_token()}"
    try:
        torch.save(state, staging)
        _atomic.fsync_file(staging)
        os.replace(staging, work_dir / CHECKPOINT_FILE)
        _atomic.fsync_dir(work_dir)
    finally:
        _atomic.remove(staging)


def clear_checkpoint(work_dir: Path) -> None:
    """Delete the checkpoint, and the work folder if that leaves it empty (it may be the user's)."""
    _atomic.remove(work_dir / CHECKPOINT_FILE)
    with contextlib.suppress(OSError):
        work_dir.rmdir()


def _show(show_progress: bool | None) -> bool:
    if show_progress is not None:
        return bool(show_progress)
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _preprocess(model: Any, texts: list[str]) -> dict[str, Any]:
    # sentence-transformers >= 5.2 renamed tokenize() (now deprecated) to preprocess().
    method = getattr(model, "preprocess", None) or model.tokenize
    return dict(method(texts))


def _loss_class() -> Any:
    import importlib

    # sentence-transformers moved its losses in 5.x; older releases keep them at the top.
    for module in (
        "sentence_transformers.sentence_transformer.losses",
        "sentence_transformers.losses",
    ):
        try:
            return importlib.import_module(module).MultipleNegativesRankingLoss
        except (ImportError, AttributeError):
            continue
    raise ConfigError("this sentence-transformers has no MultipleNegativesRankingLoss; upgrade it")


def _train(
    model: Any,
    plan: _Plan,
    work_dir: Path,
    *,
    show_progress: bool | None,
    on_epoch_end: Callable[[int], None] | None,
    checkpoint_every: int = 0,
) -> list[int]:
    """Fine-tune ``model`` in place, resuming from the work folder; returns the epochs run.

    A checkpoint is written after every epoch and every ``checkpoint_every`` batches within one
    (0: only after epochs).
    """
    checkpoint_every = checkpoint_every or sys.maxsize
    import torch
    from tqdm.auto import tqdm

    loss_class = _loss_class()

    pairs = plan.pairs
    schedule = [_epoch_batches(pairs, epoch, plan) for epoch in range(1, plan.epochs + 1)]
    total_steps = max(1, sum(len(b) for b in schedule))
    warmup = max(1, round(WARMUP_SHARE * total_steps))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    trainable = [p for _, p in named]
    optimizer = torch.optim.AdamW(trainable, lr=plan.learning_rate, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = loss_class(model)

    key = plan.key
    state = _checkpoint(work_dir, key)
    done, step = 0, 0  # finished epochs, and batches finished of the next one
    if state is not None:
        weights = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in state["weights"].items():
                weights[name].copy_(tensor)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        done, step = int(state["epoch"]), int(state["step"])

    def save(epoch: int, step: int) -> None:
        _save_checkpoint(
            work_dir,
            {
                "key": key,
                "epoch": epoch,
                "step": step,
                "rng": torch.get_rng_state(),
                "weights": {n: p.detach().clone() for n, p in named},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
        )

    columns = {c: pairs[c].to_list() for c in ("anchor", "positive", "negative")}
    labels = torch.empty(0)  # the loss builds its own targets: row i's positive is column i
    ran = []
    for epoch in range(done + 1, plan.epochs + 1):
        batches = schedule[epoch - 1]
        first = step if epoch == done + 1 else 0
        if first and state is not None:
            torch.set_rng_state(state["rng"])  # dropout continues where it stopped
        else:
            torch.manual_seed(plan.random_state * 1_000_003 + epoch)  # reproducible per epoch
        model.train()
        bar = tqdm(
            batches[first:],
            initial=first,
            total=len(batches),
            desc=f"encoder epoch {epoch}/{plan.epochs}",
            unit="batch",
            disable=not _show(show_progress),
            dynamic_ncols=True,
        )
        running = math.nan
        for position, batch in enumerate(bar, start=first + 1):
            features = [
                _preprocess(model, [columns["anchor"][r] for r in batch]),
                _preprocess(model, [columns["positive"][r] for r in batch]),
            ]
            if columns["negative"][batch[0]] is not None:  # batches are all-or-none
                negatives = [columns["negative"][r] for r in batch]
                features.append(_preprocess(model, [str(t) for t in negatives]))
            loss = loss_fn(features, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            running = value if math.isnan(running) else 0.95 * running + 0.05 * value
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
            if position % checkpoint_every == 0 and position < len(batches):
                save(epoch - 1, position)
        bar.close()
        save(epoch, 0)
        ran.append(epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    model.eval()
    return ran


# --- output ---


def _metadata(plan: _Plan, n_layers: int) -> dict[str, Any]:
    counts = dict(plan.pairs.group_by("source").len().iter_rows())
    return {
        "format": METADATA_FORMAT,
        "package_version": package_version(),
        "base": {"name": plan.base_name, "fingerprint": plan.base_fingerprint},
        "frozen": {"embeddings": True, "layers": plan.freeze, "of_layers": n_layers},
        "epochs": plan.epochs,
        "pairs": plan.pairs.height,
        "pairs_by_source": {name: int(counts.get(name, 0)) for name in plan.sources},
        "hard_negatives": int(plan.pairs["negative"].is_not_null().sum()),
        "seed": plan.random_state,
        "sources": list(plan.sources),
        "batch_size": plan.batch_size,
        "learning_rate": plan.learning_rate,
        "training_max_seq_length": plan.max_seq_length,
        "window": plan.window,
        "loss": "MultipleNegativesRankingLoss",
        "training_key": plan.key,
        "library_versions": {**library_versions(), **_torch_versions()},
    }


def _torch_versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for name in ("torch", "transformers"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``rectransfer_encoder.json`` of a fine-tuned encoder directory.

    Raises
    ------
    IncompatibleArtifactError
        When ``path`` holds no readable ``rectransfer_encoder.json``.

    Examples
    --------
    >>> read_metadata("models/encoder")["sources"]  # doctest: +SKIP
    ['amazon-books', 'amazon-health']
    """
    file = Path(path) / METADATA_FILE
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IncompatibleArtifactError(
            f"cannot read {file} ({exc}); is {path} an encoder written by pretrain_encoder?"
        ) from exc
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise IncompatibleArtifactError(f"{file} is not a {METADATA_FORMAT} file")
    return metadata


def _existing_key(out: Path) -> str | None:
    try:
        key = read_metadata(out).get("training_key")
    except IncompatibleArtifactError:
        return None
    return key if isinstance(key, str) else None


def _check_output(out: Path, inputs: Sequence[RetailerData | str | Path] = ()) -> None:
    """Refuse to replace anything but a previous fine-tuned encoder (or an empty folder), and an
    output that overlaps a source folder."""
    folders = [s for s in inputs if not isinstance(s, RetailerData)]
    check_model_destination(out, inputs=folders, kind="encoder")


@contextlib.contextmanager
def _max_seq_length(model: Any, value: int) -> Iterator[None]:
    previous = model.max_seq_length
    model.max_seq_length = value
    try:
        yield
    finally:
        model.max_seq_length = previous


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _save(model: Any, out: Path, metadata: dict[str, Any]) -> None:
    """Stage the model directory beside ``out``, check it loads, publish it in one step."""
    _check_output(out)  # again: something may have been put there while training ran
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic.sweep(leftovers(out))
    staging = out.parent / f".{out.name}.tmp-{_atomic.owner_token()}"
    try:
        with quiet_transformers_loading():  # no "Writing model shards" bar
            model.save(str(staging), create_model_card=False)
        with open(staging / METADATA_FILE, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(metadata, indent=2) + "\n")
        for _, path in _files(staging):
            _atomic.fsync_file(path)
        _atomic.fsync_dir(staging)
        probe = SentenceTransformerEncoder(staging).encode(["tent"])  # never publish what fails
        if probe.shape[0] != 1 or not np.isfinite(probe).all():
            raise IncompatibleArtifactError(f"the fine-tuned encoder in {staging} gives no vector")
        publish_directory(staging, out)
        _atomic.fsync_dir(out.parent)
    finally:
        _atomic.remove(staging)  # after an exchange, this is the previous encoder


def _files(directory: Path) -> Iterator[tuple[str, Path]]:
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            yield path.relative_to(directory).as_posix(), path


# --- the entry point ---


def _base_encoder(base: str | Path | None) -> SentenceTransformerEncoder:
    text = base.strip() if isinstance(base, str) else None
    if base is None or text == "default":
        return SentenceTransformerEncoder()
    if text is not None and (text == "hashing" or text.startswith("hashing:")):
        raise ConfigError(
            f"base {base!r} is the hashing encoder, which has no weights to fine-tune; pass "
            "'default' (the packaged all-MiniLM-L6-v2) or a local sentence-transformers folder"
        )
    return SentenceTransformerEncoder(Path(base))


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def pretrain_encoder(
    sources: Sequence[RetailerData | str | Path],
    out: str | Path,
    *,
    base: str | Path | None = None,
    freeze: int = DEFAULT_FREEZE_LAYERS,
    epochs: int = DEFAULT_EPOCHS,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    window: int = DEFAULT_WINDOW,
    hard_negatives: bool = True,
    work_dir: str | Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    random_state: int = 0,
    show_progress: bool | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> Path:
    """Fine-tune a sentence-transformers encoder on product-text pairs of many retailers.

    See the module docstring for how pairs are mined and batched. The result is a model
    directory that :func:`rectransfer.load_encoder` (and ``--encoder DIR``) takes, with
    ``rectransfer_encoder.json`` describing the training.

    Parameters
    ----------
    sources
        Retailer folders or loaded :class:`RetailerData`, with distinct names.
    out
        The output model directory; replaced atomically if it holds a previous fine-tuned
        encoder. A rerun whose output already holds this very training returns at once.
    base
        The model to start from: None or ``"default"`` (the packaged all-MiniLM-L6-v2) or a
        local sentence-transformers directory.
    freeze
        Transformer layers frozen from the bottom (the embedding layer is always frozen).
    epochs, max_pairs, batch_size, learning_rate
        Passes over the pairs, the pair budget (spread across sources), pairs per step, and
        AdamW's peak learning rate.
    max_seq_length
        Tokens per text while training (the saved model keeps the base model's limit).
    window, hard_negatives
        See :func:`training_pairs`.
    work_dir
        Where the checkpoint is kept (default: ``<out>.work`` beside ``out``); deleted
        once the model is published.
    device
        Torch device.
    threads
        Torch CPU threads while training (None: torch's default, one per core). On a machine
        whose cores other work keeps busy, 1 can be many times faster than 2: torch's OpenMP
        threads spin while they wait for each other (unless ``OMP_WAIT_POLICY=PASSIVE``).
    checkpoint_every
        Batches between checkpoints within an epoch (0: only after each epoch). A rerun resumes
        from the last checkpoint with the same result as a run that was never stopped.
    random_state
        Seed of the pair sampling, the batches and dropout.
    show_progress
        A progress bar per epoch (None: when stderr is a terminal).
    on_epoch_end
        Called with the epoch number after each epoch's checkpoint is written.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ConfigError
        For an option out of range, a base that is not a transformer model, or an output
        folder that holds something else.
    SchemaError
        When the sources give fewer than two pairs.

    Examples
    --------
    >>> pretrain_encoder(["shops/a", "shops/b"], "models/encoder", freeze=4)  # doctest: +SKIP
    PosixPath('models/encoder')
    """
    if not sources:
        raise ConfigError("pretrain_encoder needs at least one source retailer; none was given")
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size, minimum=2)
    _positive_int("max_seq_length", max_seq_length)
    _positive_int("freeze", freeze, minimum=0)
    _positive_int("checkpoint_every", checkpoint_every, minimum=0)
    if threads is not None:
        _positive_int("threads", threads)
    if not isinstance(learning_rate, int | float) or not 0 < learning_rate < 1:
        raise ConfigError(f"learning_rate must be a number in (0, 1), got {learning_rate!r}")
    target = Path(out)
    _check_output(target, sources)
    encoder = _base_encoder(base)
    datasets = [s if isinstance(s, RetailerData) else RetailerData.load(s) for s in sources]
    pairs = training_pairs(
        datasets,
        max_pairs=max_pairs,
        window=window,
        hard_negatives=hard_negatives,
        random_state=random_state,
    )
    if pairs.height < 2:
        raise SchemaError(
            f"interactions of {[d.name for d in datasets]!r}: only {pairs.height} pair(s) of "
            "distinct products bought one after the other; fine-tuning needs at least 2. Give "
            "sources whose customers bought several products."
        )
    plan = _Plan(
        base_path=encoder.model_path,
        base_name=encoder.name,
        sources=tuple(d.name for d in datasets),
        base_fingerprint=encoder.fingerprint,
        pairs=pairs,
        freeze=freeze,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=float(learning_rate),
        max_seq_length=max_seq_length,
        window=window,
        hard_negatives=hard_negatives,
        random_state=random_state,
    )
    work = Path(work_dir) if work_dir is not None else target.parent / f"{target.name}.work"
    if _existing_key(target) == plan.key:
        clear_checkpoint(work)
        return target
    model = _load_model(plan.base_path, device)
    n_layers = freeze_layers(model, freeze)
    # Train on short inputs (titles), but save the base model's limit for longer shop texts.
    with (
        _max_seq_length(model, min(max_seq_length, model.max_seq_length or max_seq_length)),
        _torch_threads(threads),
    ):
        _train(
            model,
            plan,
            work,
            show_progress=show_progress,
            on_epoch_end=on_epoch_end,
            checkpoint_every=checkpoint_every,
        )
    _save(model, target, _metadata(plan, n_layers))
    clear_checkpoint(work)
    return target
