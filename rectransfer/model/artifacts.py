"""Model directories: ``config.json`` + LightGBM's text model + a checksum file. No pickle.

Layout::

    MODEL_DIR/
      config.json      ModelConfig: type, versions, encoder, features, guard figures, ...
      ranker.txt       LightGBM's own text format (loading it runs no code)
      checksums.json   sha256 of the two files above, so a tampered or truncated file is caught

Saving is crash-safe and readers never find no model:

1. the new directory is written and fsynced next to the destination, as
   ``.<name>.tmp-<host>-<pid>-<random>`` (never read by :func:`load_model`, which reads only the
   path it is given);
2. it is published in one atomic step: a plain rename when there is no model yet, otherwise an
   atomic *exchange* of the two directories (Linux ``renameat2(RENAME_EXCHANGE)``), so the path
   holds the complete old model up to the instant it holds the complete new one. The old model,
   now under the temporary name, is deleted afterwards.
3. Where the platform or file system cannot exchange (macOS, NFS), the old directory is renamed to
   ``.<name>.old-<token>`` and the new one renamed in right after: there is a moment without a
   model at the path, and a writer killed in that moment leaves none there (the next save writes
   one; nothing incomplete is ever at the path).

A writer killed at any point leaves the old or the new complete model at the path, plus at most a
hidden leftover, which the next save of that model sweeps (see :mod:`rectransfer.utils.atomic`).

:func:`load_model` opens the directory once and reads all three files through that handle, so a
save that swaps directories mid-read cannot mix an old ``config.json`` with a new ``ranker.txt``;
if the directory it opened is deleted under it, it starts again on the one now at the path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import pydantic_core
from pydantic import ValidationError

from rectransfer.errors import IncompatibleArtifactError
from rectransfer.model.config import FORMAT_VERSION, ModelConfig, check_features
from rectransfer.model.ranker_text import check_ranker_text
from rectransfer.utils import atomic as _atomic
from rectransfer.utils.atomic import leftovers, publish_directory
from rectransfer.utils.destinations import check_model_destination

CONFIG_FILE = "config.json"
RANKER_FILE = "ranker.txt"
CHECKSUM_FILE = "checksums.json"
MODEL_FILES = (CONFIG_FILE, RANKER_FILE, CHECKSUM_FILE)
_READ_ATTEMPTS = 5


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def save_model_files(booster: lgb.Booster, config: ModelConfig, path: str | Path) -> Path:
    """Write a ranker and its config to the directory ``path`` atomically, replacing any model.

    ``path`` must be new, an empty folder or a model directory rectransfer wrote; anything else
    is refused with a ``ConfigError`` before a file is written
    (:func:`rectransfer.utils.destinations.check_model_destination`).

    A reader of ``path`` sees the complete old model or the complete new one, never a partial one
    and (where the file system can exchange directories atomically) never none; see the module
    docstring.
    """
    target = check_model_destination(path, kind="model", option="model path")
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic.sweep(leftovers(target))  # what killed saves left behind
    staging = target.parent / f".{target.name}.tmp-{_atomic.owner_token()}"
    staging.mkdir()
    try:
        _write(staging / CONFIG_FILE, config_json(config))
        _write(staging / RANKER_FILE, booster.model_to_string())
        checksums = {name: _sha256(staging / name) for name in (CONFIG_FILE, RANKER_FILE)}
        _write(staging / CHECKSUM_FILE, json.dumps(checksums, indent=2))
        _atomic.fsync_dir(staging)
        load_model_files(staging)  # never publish a directory that does not load back
        publish_directory(staging, target)
        _atomic.fsync_dir(target.parent)
    finally:
        # After a rename, nothing is left here; after an exchange, the old model is.
        _atomic.remove(staging)
    return target


def config_json(config: ModelConfig) -> str:
    """``config.json``'s text. Figures that are undefined (the standard error over a single
    validation customer is NaN) are written as the strings ``"NaN"`` / ``"Infinity"``: JSON has no
    NaN, and pydantic's default ``null`` would not load back as a number."""
    return pydantic_core.to_json(config.model_dump(), indent=2, inf_nan_mode="strings").decode()


@contextlib.contextmanager
def _open_dir(folder: Path) -> Iterator[int | None]:
    """A handle on the directory itself (None where the platform has none)."""
    if not hasattr(os, "O_DIRECTORY") or os.open not in os.supports_dir_fd:
        yield None
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def _read_files(folder: Path) -> dict[str, bytes]:
    """The three files of one and the same directory, even while a save swaps it."""
    for _ in range(_READ_ATTEMPTS):
        if not folder.is_dir():
            raise IncompatibleArtifactError(
                f"{folder}: no model directory here. Pass the directory written by "
                "`rectransfer pretrain` / `rectransfer adapt` or RecModel.save()."
            )
        try:
            with _open_dir(folder) as fd:
                contents: dict[str, bytes] = {}
                for name in MODEL_FILES:
                    try:
                        contents[name] = _read_regular(folder, name, fd)
                    except FileNotFoundError:
                        if fd is not None and _replaced(folder, fd):
                            raise  # a save swapped directories under us: start again
                        raise IncompatibleArtifactError(
                            f"{folder}: model directory is missing {name!r}; it is incomplete "
                            "or not a rectransfer model. Save or train the model again."
                        ) from None
                return contents
        except FileNotFoundError:
            continue  # the directory we opened was replaced and deleted: read the new one
    raise IncompatibleArtifactError(
        f"{folder}: the model kept changing while it was read ({_READ_ATTEMPTS} attempts); "
        "try again when no save is running."
    )


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_unless_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    raise IncompatibleArtifactError(
        f"{path}: is {kind}, not a regular file; a model directory holds only the regular files "
        "rectransfer wrote. Save or train the model again."
    )


def _read_regular(folder: Path, name: str, fd: int | None) -> bytes:
    """The bytes of ``folder/name`` if it is a regular file in ``folder``; nothing else is read.

    A FIFO would block the read forever and a device can stream without end; a symbolic link can
    point anywhere, out of the folder (rectransfer never writes links, so every link is refused:
    checking where it points would race with a change of the link). The file is checked with
    ``lstat`` before it is opened and again on the open handle, and opened with ``O_NOFOLLOW`` and
    ``O_NONBLOCK``, so one swapped in between is neither followed nor waited on.
    """
    path = folder / name
    if fd is None:
        _refuse_unless_regular(path, os.lstat(path).st_mode)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        handle = os.open(path, flags)
    else:
        _refuse_unless_regular(path, os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            handle = os.open(name, flags, dir_fd=fd)
        except OSError as err:
            if err.errno == errno.ELOOP:  # it became a link after the lstat
                _refuse_unless_regular(path, stat.S_IFLNK)
            raise
    with os.fdopen(handle, "rb") as stream:
        _refuse_unless_regular(path, os.fstat(stream.fileno()).st_mode)
        return stream.read()


def _replaced(folder: Path, fd: int) -> bool:
    """Whether ``folder`` now names another directory than the open handle ``fd``."""
    try:
        now = os.stat(folder)
    except FileNotFoundError:
        return True
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)


def _json(folder: Path, name: str, raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IncompatibleArtifactError(
            f"{folder / name}: not valid JSON ({err}). Restore the file or save the model again."
        ) from err


def load_model_files(path: str | Path) -> tuple[lgb.Booster, ModelConfig]:
    """Read a model directory written by :func:`save_model_files`; runs no code from the files.

    Raises :class:`IncompatibleArtifactError` when a file is missing or not a regular file (a FIFO,
    a device, a symbolic link), a checksum does not match, the config is not valid, ``ranker.txt``
    is not a model rectransfer would write (checked before LightGBM reads it, see
    :mod:`rectransfer.model.ranker_text`), or the model was made by an incompatible version.
    """
    folder = Path(path)
    files = _read_files(folder)
    checksums = _json(folder, CHECKSUM_FILE, files[CHECKSUM_FILE])
    for name in (CONFIG_FILE, RANKER_FILE):
        expected = checksums.get(name) if isinstance(checksums, dict) else None
        if expected != hashlib.sha256(files[name]).hexdigest():
            raise IncompatibleArtifactError(
                f"{folder / name}: checksum does not match {CHECKSUM_FILE}; the file was changed "
                "or truncated after saving. Restore it or save the model again."
            )
    raw = _json(folder, CONFIG_FILE, files[CONFIG_FILE])
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        found = raw.get("format_version") if isinstance(raw, dict) else None
        raise IncompatibleArtifactError(
            f"{folder / CONFIG_FILE}: format_version {found!r} is not the {FORMAT_VERSION} this "
            "rectransfer reads. Train the model again with this version."
        )
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise IncompatibleArtifactError(
            f"{folder / CONFIG_FILE}: field {where!r}: {first['msg']} (got "
            f"{repr(first.get('input'))[:80]}). The file is not a valid rectransfer model config; "
            "save the model again."
        ) from err
    check_features(config)
    try:
        ranker_text = files[RANKER_FILE].decode("utf-8")
    except UnicodeDecodeError as err:
        raise IncompatibleArtifactError(
            f"{folder / RANKER_FILE}: not a LightGBM model (not UTF-8 text: {err}). Restore it or "
            "save the model again."
        ) from err
    # LightGBM trusts its model text (a bad child index crashes the process): check it first.
    check_ranker_text(ranker_text, config.feature_names, source=folder / RANKER_FILE)
    try:
        booster = lgb.Booster(model_str=ranker_text)
    except lgb.basic.LightGBMError as err:
        raise IncompatibleArtifactError(
            f"{folder / RANKER_FILE}: not a LightGBM model ({err}). Restore it or save the model "
            "again."
        ) from err
    if booster.num_feature() != len(config.feature_names):
        raise IncompatibleArtifactError(
            f"{folder / RANKER_FILE}: the ranker has {booster.num_feature()} features but "
            f"config.json lists {len(config.feature_names)}. Save the model again."
        )
    return booster, config
