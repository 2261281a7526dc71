"""An on-disk cache of text vectors, keyed by encoder fingerprint and text hash.

Layout::

    <directory>/embeddings/<fingerprint>/shard-<n>-<uuid>.npz

Every shard holds two arrays: ``keys`` (dtype ``S32``, the SHA-256 digests of the texts) and
``vectors`` (``float32``, one row per key). A shard is written to a temporary file in the same
folder, fsynced and published with :func:`os.replace`, so a writer that is killed half-way never
leaves a file that a later run mistakes for a complete shard. Temporary files are named
``.tmp-<host>-<pid>-<random>`` (the loader ignores them); the next process that opens the folder
removes those whose writer is gone (see :mod:`rectransfer.utils.atomic`).

What is stored: only SHA-256 digests of texts and their vectors, never the texts themselves (a
digest still tells whoever holds a text whether it was encoded). Which texts reach the cache is the
caller's choice: the package caches product text only; customers' own words are encoded without
the cache unless ``prepare(..., cache_user_text=True)`` asks for it.

Shards are read with ``allow_pickle=False``: loading a cache file never runs code from it. A shard
that cannot be read, whose arrays have the wrong shape or dtype, or whose vectors have another
length than the encoder gives (the caller passes it: ``get_many(..., dim=...)``) is moved aside as
``<name>.bad-<token>`` with a :class:`RuntimeWarning` that names it, and its texts are encoded
again. A bad shard never decides what the good ones are worth: good shards are never deleted
(only merged into one by compaction), and a planted shard cannot turn the cache against them.
The cache checks the form of its files, not their truth: a well-formed shard with wrong vectors
of the right length is served as it is (keep the cache folder writable only by those you trust).

Several processes may share one cache folder: writers never overwrite each other's shards (every
shard has a unique name), and a process that misses a key looks for shards other processes wrote
since it last looked.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.errors import ConfigError, IncompatibleArtifactError
from rectransfer.utils import atomic as _atomic

__all__ = ["EmbeddingCache"]

KEY_BYTES = 32
_KEY_DTYPE = np.dtype(f"S{KEY_BYTES}")
_SHARD_RE = re.compile(r"^shard-(\d+)-([0-9a-f]{32})\.npz$")
_TMP_PREFIX = ".tmp-"
_BAD_INFIX = ".bad-"
_FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

CACHE_DIR_ENV = "RECTRANSFER_CACHE_DIR"


class _Entries:
    """The in-memory index of one fingerprint: key -> row of a growable matrix."""

    def __init__(self, dim: int | None = None) -> None:
        self.dim: int | None = dim
        # Whether the length came from the caller (the encoder) rather than from the majority
        # of the shards: only then is a shard of another length known to be bad.
        self.dim_given = dim is not None
        self.rows: dict[bytes, int] = {}
        self.matrix = np.zeros((0, 0 if dim is None else dim), dtype=np.float32)
        self.size = 0
        self.shards: dict[str, int] = {}  # file name -> sequence number, for every shard read
        self.refused: set[str] = set()  # bad shards that could not be moved aside: not read again

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Add rows for keys not yet known (the first vector seen for a key wins)."""
        if self.dim is None:
            self.dim = int(vectors.shape[1])
        if self.matrix.shape[0] == 0:
            self.matrix = np.zeros((max(1024, len(keys)), self.dim), dtype=np.float32)
        new = [i for i, key in enumerate(keys) if key not in self.rows]
        if not new:
            return
        needed = self.size + len(new)
        if needed > self.matrix.shape[0]:
            grown = np.zeros((max(needed, 2 * self.matrix.shape[0]), self.dim), dtype=np.float32)
            grown[: self.size] = self.matrix[: self.size]
            self.matrix = grown
        self.matrix[self.size : needed] = vectors[new]
        for offset, i in enumerate(new):
            self.rows[keys[i]] = self.size + offset
        self.size = needed

    def all_keys(self) -> list[bytes]:
        keys = [b""] * self.size
        for key, row in self.rows.items():
            keys[row] = key
        return keys


class EmbeddingCache:
    """Text vectors on disk, one folder per encoder fingerprint.

    The cache stores exactly the keys and vectors a caller passes to :meth:`put_many`; it never
    decides on its own what to store. Whoever calls it decides whether a text may be written to
    disk at all: customer-written text (reviews, profiles) is personal data and should normally be
    encoded without the cache (see ``CachedEncoder.encoder`` in :mod:`rectransfer.text.encoder`).

    Parameters
    ----------
    directory
        The cache folder; shards go under ``<directory>/embeddings/<fingerprint>/``. It is created
        on the first write.
    max_shards
        When a fingerprint has more shards than this, they are compacted into one.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> tent, stove, mug = (EmbeddingCache.key(t) for t in ("tent", "stove", "mug"))
    >>> cache.put_many("abc123", [tent, stove], np.eye(2, 4, dtype=np.float32))
    >>> found, vectors = cache.get_many("abc123", [tent, stove, mug])
    >>> found.tolist(), vectors.shape
    ([True, True, False], (3, 4))
    """

    def __init__(self, directory: str | Path, *, max_shards: int = 32) -> None:
        if isinstance(max_shards, bool) or not isinstance(max_shards, int) or max_shards < 1:
            raise ConfigError(f"max_shards must be a positive integer, got {max_shards!r}")
        self.directory = Path(directory).expanduser()
        self.max_shards = max_shards
        self._entries: dict[str, _Entries] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r}, max_shards={self.max_shards})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (e.g. for task runners): the lock and the in-memory index are rebuilt.
        return {"directory": self.directory, "max_shards": self.max_shards}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self.max_shards = state["max_shards"]
        self._entries = {}
        self._lock = threading.RLock()

    # --- public API ---

    @staticmethod
    def key(text: str) -> bytes:
        """The cache key of a text: the SHA-256 digest (32 bytes) of its UTF-8 encoding.

        Examples
        --------
        >>> len(EmbeddingCache.key("two person tent"))
        32
        """
        return hashlib.sha256(text.encode("utf-8")).digest()

    def get_many(
        self, fingerprint: str, keys: Sequence[bytes], *, dim: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Look keys up under one encoder fingerprint.

        Parameters
        ----------
        fingerprint
            The encoder's fingerprint (letters, digits, ``.``, ``_`` and ``-`` only).
        keys
            32-byte keys from :meth:`key`; duplicates are fine.
        dim
            The length of the encoder's vectors: shards of another length are moved aside. Pass
            it whenever it is known; without it, the length most stored vectors have is taken.

        Returns
        -------
        found, vectors
            A bool mask of shape ``(n,)`` and a ``float32`` array of shape ``(n, dim)`` with zero
            rows where a key was not found; ``(n, 0)`` when nothing is stored for the fingerprint.

        Examples
        --------
        >>> import tempfile
        >>> found, vectors = EmbeddingCache(tempfile.mkdtemp()).get_many("abc", [b"k" * 32])
        >>> found.tolist(), vectors.shape
        ([False], (1, 0))
        """
        key_list = _check_keys(keys)
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        with self._lock:
            entries = self._load(fingerprint, dim)
            rows = np.array([entries.rows.get(k, -1) for k in key_list], dtype=np.int64)
            if (rows < 0).any() and self._refresh(fingerprint, entries):
                rows = np.array([entries.rows.get(k, -1) for k in key_list], dtype=np.int64)
            found = rows >= 0
            if entries.dim is None:
                return found, np.zeros((len(key_list), 0), dtype=np.float32)
            vectors = np.zeros((len(key_list), entries.dim), dtype=np.float32)
            vectors[found] = entries.matrix[rows[found]]
            return found, vectors

    def put_many(self, fingerprint: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors under one encoder fingerprint (keys already stored are left as they are).

        Only what is passed here is written. Do not pass text the data owner has not agreed to
        keep on disk (such as customers' own words).

        Parameters
        ----------
        fingerprint
            The encoder's fingerprint.
        keys
            32-byte keys from :meth:`key`, one per row of ``vectors``; duplicates are fine.
        vectors
            Array of shape ``(len(keys), dim)``; stored as ``float32``.

        Raises
        ------
        IncompatibleArtifactError
            When ``dim`` differs from the vectors already stored under this fingerprint.
        OSError
            When the shard cannot be written.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> cache = EmbeddingCache(tempfile.mkdtemp())
        >>> cache.put_many("abc123", [EmbeddingCache.key("tent")], np.ones((1, 4)))
        """
        key_list = _check_keys(keys)
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(key_list) or array.shape[1] < 1:
            raise ConfigError(
                f"vectors must have shape ({len(key_list)}, dim) for {len(key_list)} keys, "
                f"got {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ConfigError("vectors contain NaN or infinite values; they are not cached")
        with self._lock:
            entries = self._entries.get(fingerprint)
            if entries is None:  # first use: the vectors given say how long this encoder's are
                entries = self._load(fingerprint, int(array.shape[1]))
            if entries.dim is not None and entries.dim != array.shape[1]:
                raise IncompatibleArtifactError(
                    f"the embedding cache holds {entries.dim}-d vectors for encoder fingerprint "
                    f"{fingerprint[:12]}, but {array.shape[1]}-d vectors were given; delete "
                    f"{self._folder(fingerprint)} if the encoder really changed"
                )
            first: dict[bytes, int] = {}
            for i, k in enumerate(key_list):
                if k not in entries.rows:
                    first.setdefault(k, i)
            if not first:
                return
            new_keys = list(first)
            new_vectors = np.ascontiguousarray(array[list(first.values())])
            number = max(entries.shards.values(), default=0) + 1
            name = self._write_shard(fingerprint, number, new_keys, new_vectors)
            entries.shards[name] = number
            entries.add(new_keys, new_vectors)
            if len(entries.shards) > self.max_shards:
                self._compact(fingerprint, entries)

    # --- internals ---

    def _folder(self, fingerprint: str) -> Path:
        if not isinstance(fingerprint, str) or not _FINGERPRINT_RE.match(fingerprint):
            raise ConfigError(
                f"an encoder fingerprint must be 1-128 letters, digits, '.', '_' or '-', "
                f"got {fingerprint!r}"
            )
        return self.directory / "embeddings" / fingerprint

    def _load(self, fingerprint: str, dim: int | None = None) -> _Entries:
        """The in-memory index of a fingerprint, read from disk on first use.

        With ``dim``, an index built before the length was known and holding another one is
        read again, so that the shards of the wrong length are the ones moved aside.
        """
        folder = self._folder(fingerprint)
        entries = self._entries.get(fingerprint)
        if entries is not None and dim is not None and entries.dim not in (None, dim):
            entries = None
        if entries is None:
            entries = _Entries(dim)
            self._entries[fingerprint] = entries
            _remove_stale_temp_files(folder)
            self._refresh(fingerprint, entries)
            if len(entries.shards) > self.max_shards:
                try:
                    self._compact(fingerprint, entries)
                except OSError as exc:  # a read-only cache still serves lookups
                    warnings.warn(
                        f"could not compact the embedding cache in {folder}: {exc}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        elif dim is not None:
            entries.dim, entries.dim_given = dim, True
        return entries

    def _refresh(self, fingerprint: str, entries: _Entries) -> bool:
        """Read shards that appeared on disk since the last look; True if any was read."""
        folder = self._folder(fingerprint)
        try:
            names = os.listdir(folder)
        except OSError:  # not created yet, or unreadable: behaves as empty (writes will tell)
            return False
        shards = []
        for name in names:
            match = _SHARD_RE.match(name)
            if match and name not in entries.shards and name not in entries.refused:
                shards.append((int(match.group(1)), name))
        added = False
        if entries.dim is None:
            # No length from the encoder: the one most stored vectors have, so that a single
            # planted shard cannot outvote the rest (ties: the first shard's). Only here are all
            # new shards held at once; with a known length each is added as it is read.
            loaded = []
            for number, name in sorted(shards):
                shard = self._read_shard(folder / name, entries)
                if shard is not None:
                    loaded.append((number, name, *shard))
            rows: dict[int, int] = {}
            for _, _, keys, vectors in loaded:
                rows[vectors.shape[1]] = rows.get(vectors.shape[1], 0) + len(keys)
            entries.dim = max(rows, key=lambda d: rows[d], default=None)
            for number, name, keys, vectors in loaded:
                added |= self._take(folder / name, number, keys, vectors, entries)
            return added
        for number, name in sorted(shards):
            shard = self._read_shard(folder / name, entries)
            if shard is not None:
                added |= self._take(folder / name, number, *shard, entries)
        return added

    def _take(
        self, path: Path, number: int, keys: list[bytes], vectors: np.ndarray, entries: _Entries
    ) -> bool:
        """Add a read shard to the index if its length is the index's; True if it was added."""
        if vectors.shape[1] != entries.dim:
            if entries.dim_given:
                why = f"{vectors.shape[1]}-d vectors where the encoder gives {entries.dim}-d"
                self._set_aside(path, why, entries)
            # else: the minority length, left alone until the encoder's length is known
            return False
        entries.shards[path.name] = number
        entries.add(keys, vectors)
        return True

    def _read_shard(self, path: Path, entries: _Entries) -> tuple[list[bytes], np.ndarray] | None:
        """Keys and vectors of a shard, or None (with a warning, moved aside) if it is bad."""
        try:
            # Open the file here: np.load leaks its own handle when the zip is truncated.
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
                if set(npz.files) != {"keys", "vectors"}:
                    raise ValueError(f"expected arrays 'keys' and 'vectors', found {npz.files}")
                keys = npz["keys"]
                vectors = npz["vectors"]
            if keys.dtype != _KEY_DTYPE or keys.ndim != 1:
                raise ValueError(f"keys have dtype {keys.dtype} and shape {keys.shape}")
            if vectors.dtype != np.float32 or vectors.ndim != 2:
                raise ValueError(f"vectors have dtype {vectors.dtype} and shape {vectors.shape}")
            if vectors.shape[0] != keys.shape[0] or vectors.shape[1] < 1:
                raise ValueError(f"{keys.shape[0]} keys but vectors of shape {vectors.shape}")
            if not np.isfinite(vectors).all():
                raise ValueError("vectors contain NaN or infinite values")
        except FileNotFoundError:
            return None  # removed by another process (compaction) since the listing
        except Exception as exc:  # anything else in the file: it is not a shard we can use
            self._set_aside(path, str(exc) or type(exc).__name__, entries)
            return None
        raw = keys.tobytes()  # not keys.tolist(): numpy strips trailing NUL bytes from S32 items
        key_list = [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)]
        return key_list, vectors

    @staticmethod
    def _set_aside(path: Path, why: str, entries: _Entries) -> None:
        """Move a bad shard out of the loader's way (renamed, never deleted) and say so."""
        aside = path.with_name(f"{path.name}{_BAD_INFIX}{_atomic.owner_token()}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # another process moved it first
        except OSError as exc:
            entries.refused.add(path.name)  # e.g. a read-only cache: skip it from now on
            moved = f"it could not be moved aside ({exc.strerror}) and is skipped"
        else:
            moved = f"moved aside to {aside.name}"
        warnings.warn(
            f"embedding cache shard {path} is not usable ({why}); {moved}. Its texts are encoded "
            "again; delete the moved file once you have looked at it.",
            RuntimeWarning,
            stacklevel=4,
        )

    def _write_shard(
        self, fingerprint: str, number: int, keys: list[bytes], vectors: np.ndarray
    ) -> str:
        """Write a shard atomically; returns its file name."""
        folder = self._folder(fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        token = _atomic.owner_token()
        name = f"shard-{number}-{hashlib.sha256(token.encode()).hexdigest()[:32]}.npz"
        tmp = folder / f"{_TMP_PREFIX}{token}"
        key_array = np.frombuffer(b"".join(keys), dtype=_KEY_DTYPE)
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=key_array, vectors=vectors.astype(np.float32, copy=False))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return name

    def _compact(self, fingerprint: str, entries: _Entries) -> None:
        """Merge every known shard into one, then remove the merged ones."""
        self._refresh(fingerprint, entries)  # include shards other processes wrote meanwhile
        if entries.dim is None or len(entries.shards) <= 1:
            return
        old = dict(entries.shards)
        number = max(old.values())
        name = self._write_shard(
            fingerprint, number, entries.all_keys(), entries.matrix[: entries.size]
        )
        folder = self._folder(fingerprint)
        for old_name in old:
            (folder / old_name).unlink(missing_ok=True)
        entries.shards = {name: number}


def _check_keys(keys: Sequence[bytes]) -> list[bytes]:
    if isinstance(keys, bytes | str):
        raise ConfigError("keys must be a sequence of 32-byte keys, not a single key")
    key_list = list(keys)
    for k in key_list:
        if not isinstance(k, bytes) or len(k) != KEY_BYTES:
            raise ConfigError(
                f"cache keys must be {KEY_BYTES}-byte digests from EmbeddingCache.key(), "
                f"got {k!r:.60}"
            )
    return key_list


def _remove_stale_temp_files(folder: Path) -> None:
    """Delete temporary files whose writer is gone (others may be in use by live writers)."""
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(_TMP_PREFIX)]
    except OSError:
        return
    _atomic.sweep(candidates)


def default_cache_dir() -> Path:
    """The embedding cache folder: ``$RECTRANSFER_CACHE_DIR``, else ``~/.cache/rectransfer``.

    Examples
    --------
    >>> default_cache_dir().name  # doctest: +SKIP
    'rectransfer'
    """
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "rectransfer"
