"""Encoders built from a spec string (what the command line and saved models name).

:func:`load_encoder` takes ``"default"``, ``"hashing[:DIM]"``, a local model directory, or
``"onnx-int8:default"`` / ``"onnx-int8:<model dir>"`` for the int8 path, and wraps the encoder in
the on-disk cache; :func:`encoder_spec` gives the spec back for a saved model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rectransfer.errors import ConfigError
from rectransfer.text.embedding_cache import EmbeddingCache, default_cache_dir
from rectransfer.text.encoder import (
    DEFAULT_MODEL_NAME,
    ONNX_INT8_PREFIX,
    CachedEncoder,
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
)
from rectransfer.text.onnx_int8 import OnnxInt8Encoder

__all__ = ["encoder_spec", "load_encoder"]

_HASHING_SPEC_RE = re.compile(r"hashing(?::(\d+))?")


def load_encoder(
    spec: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    **kwargs: Any,
) -> Encoder:
    """Build an encoder from a spec, wrapped in the on-disk cache unless ``use_cache=False``.

    Parameters
    ----------
    spec
        None or ``"default"``: the packaged all-MiniLM-L6-v2. ``"hashing"`` or
        ``"hashing:<dim>"``: a :class:`HashingEncoder` (64-d by default).
        ``"onnx-int8:default"`` (or just ``"onnx-int8"``) and ``"onnx-int8:<model dir>"``: the
        same models as an int8 ONNX graph, :class:`~rectransfer.text.onnx_int8.OnnxInt8Encoder`
        (several times faster on a CPU; its own fingerprint). Anything else: a local
        sentence-transformers model directory (write ``./default`` for a folder named so).
    cache_dir
        Cache folder (default: :func:`default_cache_dir`); the int8 encoder also stores its
        exported graph there, under ``onnx/``.
    use_cache
        Wrap the encoder in a :class:`CachedEncoder`.
    **kwargs
        Passed to :class:`SentenceTransformerEncoder` (``batch_size``, ``max_seq_length``,
        ``device``) or to the int8 encoder (``max_seq_length``, ``batch_tokens``, ``threads``).

    Raises
    ------
    ConfigError
        For a malformed spec, a missing or invalid model directory, or options the encoder
        does not take.

    Examples
    --------
    >>> load_encoder("hashing:32", use_cache=False).name
    'hashing-32'
    >>> encoder = load_encoder()  # doctest: +SKIP
    >>> fast = load_encoder("onnx-int8:default")  # doctest: +SKIP
    """
    encoder: Encoder
    text = spec.strip() if isinstance(spec, str) else None
    if spec is None or text == "default":
        encoder = _sentence_transformer(None, kwargs)
    elif text is not None and (text == ONNX_INT8_PREFIX[:-1] or text.startswith(ONNX_INT8_PREFIX)):
        encoder = _onnx_int8(text[len(ONNX_INT8_PREFIX) :].strip(), spec, cache_dir, kwargs)
    elif text is not None and (text == "hashing" or text.startswith("hashing:")):
        match = _HASHING_SPEC_RE.fullmatch(text)
        if match is None or (match.group(1) is not None and int(match.group(1)) < 1):
            raise ConfigError(
                f"encoder spec {spec!r} is not 'hashing' or 'hashing:<dim>' with a positive dim"
            )
        if kwargs:
            raise ConfigError(
                f"options {sorted(kwargs)} apply to sentence-transformers models, not to {spec!r}"
            )
        encoder = HashingEncoder(int(match.group(1) or 64))
    elif isinstance(spec, str | Path) and str(spec).strip():
        encoder = _sentence_transformer(Path(spec), kwargs)
    else:
        raise ConfigError(
            "encoder spec must be 'default', 'hashing[:DIM]', 'onnx-int8:default', "
            f"'onnx-int8:<model dir>' or a model directory, got {spec!r}"
        )
    if not use_cache:
        return encoder
    return CachedEncoder(encoder, EmbeddingCache(cache_dir or default_cache_dir()))


_SENTENCE_TRANSFORMER_OPTIONS = frozenset({"batch_size", "max_seq_length", "device"})


def _sentence_transformer(path: Path | None, kwargs: dict[str, Any]) -> SentenceTransformerEncoder:
    unknown = sorted(set(kwargs) - _SENTENCE_TRANSFORMER_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown encoder option(s) {unknown}; SentenceTransformerEncoder takes "
            f"{sorted(_SENTENCE_TRANSFORMER_OPTIONS)}"
        )
    return SentenceTransformerEncoder(path, **kwargs)


_ONNX_INT8_OPTIONS = frozenset({"max_seq_length", "batch_tokens", "threads"})


def _onnx_int8(
    target: str, spec: str | Path, cache_dir: str | Path | None, kwargs: dict[str, Any]
) -> Encoder:
    unknown = sorted(set(kwargs) - _ONNX_INT8_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown encoder option(s) {unknown} for {spec!r}; OnnxInt8Encoder takes "
            f"{sorted(_ONNX_INT8_OPTIONS)}"
        )
    if target.startswith(("hashing", ONNX_INT8_PREFIX)):
        raise ConfigError(
            f"encoder spec {spec!r}: 'onnx-int8:' takes 'default' or a sentence-transformers "
            "model directory"
        )
    path = None if target in ("", "default") else Path(target)
    return OnnxInt8Encoder(path, cache_dir=cache_dir, **kwargs)


def encoder_spec(encoder: Encoder) -> str:
    """What :func:`load_encoder` takes to build this encoder again (saved in model configs).

    Examples
    --------
    >>> encoder_spec(load_encoder("hashing:32", use_cache=False))
    'hashing:32'
    >>> encoder_spec(load_encoder("onnx-int8", use_cache=False))  # doctest: +SKIP
    'onnx-int8:default'
    """
    inner = encoder.encoder if isinstance(encoder, CachedEncoder) else encoder
    if isinstance(inner, HashingEncoder):
        return f"hashing:{inner.dim}"
    if isinstance(inner, OnnxInt8Encoder):
        return ONNX_INT8_PREFIX + ("default" if inner.is_packaged else str(inner.model_path))
    if isinstance(inner, SentenceTransformerEncoder):
        return "default" if inner.name == DEFAULT_MODEL_NAME else str(inner.model_path)
    return inner.name
