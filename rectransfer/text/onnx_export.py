"""Building the int8 ONNX graph of a sentence-transformers model, once per model, on first use.

How it is built, once per model, on first use:

1. The transformer is exported with ``torch.onnx.export(..., dynamo=True)`` (dynamic batch and
   sequence axes). It is loaded with eager attention: the SDPA export adds a NaN guard after every
   softmax that costs a fifth of the int8 run time.
2. Its weight ``MatMul`` nodes are quantised to int8 with
   ``onnxruntime.quantization.quantize_dynamic``, *per channel* (one scale per output column:
   per-tensor scales gave a mean cosine of only 0.95), activations quantised on the fly with one
   scale per batch. The word embeddings stay ``float32`` (a lookup, no speed to gain), and so does
   the first feed-forward down-projection (the most sensitive MatMul; see
   :func:`_nodes_kept_float32`).
3. The int8 graph is checked against the ``float32`` torch model on a few probe texts, then
   published under ``<cache_dir>/onnx/<export key>/`` with a ``meta.json`` that records its
   SHA-256: it is staged in a temporary folder and renamed into place, so a killed export never
   leaves a folder that a later run takes for complete. A stored export whose file does not match
   its ``meta.json`` (truncated, corrupt) is discarded with a warning and built again.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.errors import ConfigError
from rectransfer.text.encoder import (
    max_position_embeddings,
    model_files,
    quiet_transformers_loading,
)
from rectransfer.utils import atomic as _atomic

SPEC_PREFIX = "onnx-int8:"
EXPORT_FORMAT = 1
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
# Everything that changes the stored graph (and so its vectors); part of the export key.
QUANTISATION: dict[str, Any] = {
    "exporter": "torch.onnx.export(dynamo=True)",
    "attention": "eager",
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "activation_type": "QUInt8 (dynamic)",
    "per_channel": True,
    "reduce_range": False,
    "op_types": ["MatMul"],
    "kept_float32": "the first feed-forward down-projection (layer 0)",
}
# The int8 graph must agree this well with the float32 torch model on the probe texts, or the
# export is refused (a real model gives about 0.99; a broken export far less).
MIN_PROBE_COSINE = 0.95
PROBE_TEXTS = (
    "Two person backpacking tent. Category: Camping > Tents. Brand: Ridge.",
    "Stainless steel espresso machine with milk frother. Category: Kitchen > Coffee.",
    "Trail running shoes, men's size 10. Category: Sports > Running > Shoes. Brand: Fleet.",
    "A4 printer paper, 500 sheets, 80 gsm, bright white. Category: Office Products > Paper.",
    "Wooden toy train set with 40 pieces and a bridge. Category: Toys > Vehicles.",
    "Cordless phone, DECT 6.0, 2 handsets, caller ID, answering system, white/grey.",
)
DEFAULT_MAX_SEQ_LENGTH = 256
_TMP_PREFIX = ".tmp-"
_SUPPORTED_MODEL_TYPES = frozenset(
    {"bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra"}
)
_MODULE_KINDS = {"Transformer": "transformer", "Pooling": "pooling", "Normalize": "normalize"}


@dataclass(frozen=True)
class ModelLayout:
    """What the encoder needs to know about a sentence-transformers model folder."""

    transformer_dir: Path
    dim: int
    model_type: str
    lowercase: bool
    pad_token_id: int
    max_positions: int | None
    normalize: bool


def _read_json(path: Path, folder: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{folder}: cannot read {path.relative_to(folder).as_posix()} ({exc}); the int8 "
            "encoder needs a complete sentence-transformers model folder"
        ) from exc


def inspect_model(folder: Path) -> ModelLayout:
    """Check that ``folder`` is a Transformer + mean Pooling (+ Normalize) model; describe it."""
    modules = _read_json(folder / "modules.json", folder)
    if not isinstance(modules, list) or not modules:
        raise ConfigError(f"{folder}: modules.json lists no modules")
    kinds = []
    for module in modules:
        type_name = str(module.get("type", "")) if isinstance(module, dict) else ""
        from_st = type_name.startswith("sentence_transformers.")
        kind = _MODULE_KINDS.get(type_name.rsplit(".", 1)[-1]) if from_st else None
        if kind is None:
            raise ConfigError(
                f"{folder}: the int8 encoder supports Transformer + Pooling (+ Normalize) models, "
                f"but modules.json has module {type_name or module!r}; use the fp32 encoder (pass "
                "the folder without 'onnx-int8:')"
            )
        kinds.append((kind, module))
    names = [kind for kind, _ in kinds]
    if names not in (["transformer", "pooling"], ["transformer", "pooling", "normalize"]):
        raise ConfigError(
            f"{folder}: the int8 encoder supports exactly Transformer, Pooling and optionally "
            f"Normalize, in that order; modules.json has {names}. Use the fp32 encoder (pass the "
            "folder without 'onnx-int8:')"
        )
    transformer_dir = folder / str(kinds[0][1].get("path", ""))
    pooling_dir = folder / str(kinds[1][1].get("path", ""))
    pooling = _read_json(pooling_dir / "config.json", folder)
    mode = _pooling_mode(pooling if isinstance(pooling, dict) else {})
    if mode != "mean":
        raise ConfigError(
            f"{folder}: the int8 encoder supports mean pooling only, but "
            f"{(pooling_dir / 'config.json').relative_to(folder).as_posix()} asks for {mode!r}; "
            "use the fp32 encoder (pass the folder without 'onnx-int8:')"
        )
    settings = folder / "config_sentence_transformers.json"
    if settings.is_file():
        st_config = _read_json(settings, folder)
        if isinstance(st_config, dict) and st_config.get("default_prompt_name"):
            raise ConfigError(
                f"{folder}: the model prepends the prompt {st_config['default_prompt_name']!r} to "
                "every text (default_prompt_name), which the int8 encoder does not do; use the "
                "fp32 encoder (pass the folder without 'onnx-int8:')"
            )
    config = _read_json(transformer_dir / "config.json", folder)
    model_type = str(config.get("model_type", "")) if isinstance(config, dict) else ""
    if model_type not in _SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{folder}: the int8 encoder supports BERT-like transformers "
            f"({sorted(_SUPPORTED_MODEL_TYPES)}), not model_type {model_type!r}; use the fp32 "
            "encoder (pass the folder without 'onnx-int8:')"
        )
    if not (transformer_dir / "tokenizer.json").is_file():
        raise ConfigError(
            f"{folder}: no tokenizer.json beside the transformer's config.json; the int8 encoder "
            "tokenises with the 'tokenizers' library and needs a fast-tokenizer file"
        )
    dim = pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))
    if dim is None:
        dim = config.get("hidden_size", config.get("dim"))
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"{folder}: cannot tell the embedding dimension (got {dim!r})")
    lowercase = False
    bert_config = transformer_dir / "sentence_bert_config.json"
    if bert_config.is_file():
        st_bert = _read_json(bert_config, folder)
        lowercase = bool(isinstance(st_bert, dict) and st_bert.get("do_lower_case", False))
    pad = config.get("pad_token_id")
    return ModelLayout(
        transformer_dir=transformer_dir,
        dim=int(dim),
        model_type=model_type,
        lowercase=lowercase,
        pad_token_id=pad if isinstance(pad, int) and not isinstance(pad, bool) else 0,
        max_positions=max_position_embeddings(transformer_dir),
        normalize=names[-1] == "normalize",
    )


def _pooling_mode(config: dict[str, Any]) -> str:
    """The pooling mode of a Pooling config, old (``pooling_mode_*`` flags) or new layout."""
    mode = config.get("pooling_mode")
    if mode is not None:
        if isinstance(mode, list | tuple):
            return "+".join(str(m) for m in mode)
        return str(mode)
    flags = {
        "pooling_mode_cls_token": "cls",
        "pooling_mode_max_tokens": "max",
        "pooling_mode_mean_tokens": "mean",
        "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens": "weightedmean",
        "pooling_mode_lasttoken": "lasttoken",
    }
    active = [name for key, name in flags.items() if config.get(key)]
    return "+".join(active) if active else "mean"  # sentence-transformers' default


def files_digest(folder: Path) -> str:
    """SHA-256 of a model folder's files (relative names and content), hidden files left out."""
    digest = hashlib.sha256(b"rectransfer.model.recmodel-files/1\0")
    for relative, path in model_files(folder):
        with open(path, "rb") as handle:
            content = hashlib.file_digest(handle, "sha256").hexdigest()
        digest.update(f"{relative}\0{content}\0".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporter's and quantiser's chatter (warnings, log lines) while they run."""

    class _DropOnnxruntime(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "onnxruntime" not in record.pathname  # quantize_dynamic logs on the root logger

    import torch.onnx  # noqa: F401  (first: importing torch (re)sets its loggers' levels)

    torch_onnx = logging.getLogger("torch.onnx")
    level = torch_onnx.level
    drop = _DropOnnxruntime()
    root = logging.getLogger()
    torch_onnx.setLevel(logging.ERROR)
    root.addFilter(drop)
    try:
        with warnings.catch_warnings(), quiet_transformers_loading():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(drop)
        torch_onnx.setLevel(level)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the attention mask, L2-normalised (zero rows stay zero)."""
    weights = mask.astype(np.float32)
    summed = np.einsum("bld,bl->bd", hidden, weights)
    pooled = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# --- the stored export ---


def check_export(folder: Path) -> str | None:
    """None when ``folder`` holds a complete export, else what is wrong with it."""
    meta_path = folder / META_FILE
    model_path = folder / MODEL_FILE
    if not meta_path.is_file():
        return "no meta.json" if folder.exists() else "not built yet"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"meta.json is unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        return f"meta.json is not format {EXPORT_FORMAT}"
    try:
        size = model_path.stat().st_size
    except OSError:
        return f"{MODEL_FILE} is missing"
    if size != meta.get("bytes"):
        return f"{MODEL_FILE} has {size} bytes, meta.json says {meta.get('bytes')}"
    if file_sha256(model_path) != meta.get("sha256"):
        return f"the SHA-256 of {MODEL_FILE} does not match meta.json"
    return None


def discard_export(folder: Path) -> None:
    """Move a bad export out of the way in one step, then delete it."""
    graveyard = folder.parent / f"{_TMP_PREFIX}{_atomic.owner_token()}"
    try:
        os.replace(folder, graveyard)
    except FileNotFoundError:
        return
    _atomic.remove(graveyard)


def export_int8(model_path: Path, layout: ModelLayout, tokenizer: Any, folder: Path) -> None:
    """Export, quantise, check and publish the int8 graph of a model into ``folder``."""
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _atomic.sweep(p for p in parent.iterdir() if p.name.startswith(_TMP_PREFIX))
    staging = parent / f"{_TMP_PREFIX}{_atomic.owner_token()}"
    staging.mkdir()
    try:
        with _quiet_export():
            model = _load_torch_model(layout)
            fp32 = staging / "fp32.onnx"
            _export_fp32(model, layout, fp32)
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                fp32,
                staging / MODEL_FILE,
                weight_type=QuantType.QInt8,
                per_channel=bool(QUANTISATION["per_channel"]),
                reduce_range=bool(QUANTISATION["reduce_range"]),
                op_types_to_quantize=list(QUANTISATION["op_types"]),
                nodes_to_exclude=_nodes_kept_float32(fp32),
            )
            fp32.unlink()
            probe_cosine = _probe(model, layout, tokenizer, staging / MODEL_FILE)
        if probe_cosine < MIN_PROBE_COSINE:
            raise ConfigError(
                f"{model_path}: the int8 graph deviates from the float32 model (cosine "
                f"{probe_cosine:.3f} < {MIN_PROBE_COSINE} on probe texts); use the fp32 encoder "
                "(pass the folder without 'onnx-int8:')"
            )
        write_meta(staging, model_path, probe_cosine)
        _atomic.fsync_dir(staging)
        try:
            os.replace(staging, folder)
        except OSError:
            if check_export(folder) is not None:  # not another process's complete export
                raise
        _atomic.fsync_dir(parent)
    finally:
        if staging.exists():
            _atomic.remove(staging)


def write_meta(staging: Path, model_path: Path, probe_cosine: float) -> None:
    import onnx
    import onnxruntime
    import torch

    model_file = staging / MODEL_FILE
    _atomic.fsync_file(model_file)
    meta = {
        "format": EXPORT_FORMAT,
        "source": str(model_path),
        "settings": QUANTISATION,
        "bytes": model_file.stat().st_size,
        "sha256": file_sha256(model_file),
        "probe_min_cosine": round(probe_cosine, 6),
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    meta_path = staging / META_FILE
    with open(meta_path, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def _load_torch_model(layout: ModelLayout) -> Any:
    # Never reach for a model hub: set before transformers imports huggingface_hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(
            str(layout.transformer_dir), local_files_only=True, attn_implementation="eager"
        )
    except Exception as exc:
        raise ConfigError(
            f"could not load the transformer in {layout.transformer_dir} "
            f"({type(exc).__name__}: {exc}); check that the folder holds a complete model"
        ) from exc
    return model.eval()


def _input_names(model: Any) -> list[str]:
    accepted = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]


def _export_fp32(model: Any, layout: ModelLayout, path: Path) -> None:
    import torch

    names = _input_names(model)

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.inner(**inputs).last_hidden_state

    # Example inputs of batch 2 and length 8: sizes 0 and 1 would be specialised by the tracer.
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    if "token_type_ids" in names:
        example = (*example[:-1], torch.zeros((2, 8), dtype=torch.int64))
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=layout.max_positions or 512)
    with torch.no_grad():
        program = torch.onnx.export(
            _LastHiddenState(model),
            example,
            dynamo=True,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            optimize=True,
            verbose=False,
        )
    if program is None:  # pragma: no cover - the dynamo exporter always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))


def _nodes_kept_float32(path: Path) -> list[str]:
    """The first feed-forward down-projection: the first weight MatMul of shape (in > out).

    Keeping this one of the 36 MatMuls of MiniLM in float32 raised the mean cosine to float32
    from 0.9943 to 0.9955 and the smallest from 0.985 to 0.992 on Office product text (short toy
    titles: 0.961 -> 0.984) for about 8% of the int8 speed. The rule needs no module names, so it
    holds for every BERT-like model: Q, K, V and the attention output are square, the up-projection
    widens, and the graph is in execution order.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    for node in graph.node:
        shape = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
            return [node.name]
    return []


def _probe(model: Any, layout: ModelLayout, tokenizer: Any, path: Path) -> float:
    """Smallest cosine between the int8 graph's and the torch model's vectors on probe texts."""
    import onnxruntime as ort
    import torch

    texts = [t.lower() for t in PROBE_TEXTS] if layout.lowercase else list(PROBE_TEXTS)
    encodings = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(texts), width), layout.pad_token_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n] = encoding.ids
        mask[row, :n] = 1
        types[row, :n] = encoding.type_ids
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    names = _input_names(model)
    with torch.no_grad():
        reference = model(**{n: torch.from_numpy(feeds[n]) for n in names}).last_hidden_state
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    hidden = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
    ours = mean_pool(np.asarray(hidden, dtype=np.float32), mask)
    theirs = mean_pool(reference.numpy().astype(np.float32), mask)
    return float(np.min(np.sum(ours * theirs, axis=1)))
