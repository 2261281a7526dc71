"""Where rectransfer may write a folder: the one rule every writer of a model or encoder follows.

A save publishes a whole folder in one atomic step and deletes what was at the path before (see
:mod:`rectransfer.utils.atomic`). That is only safe when what was there is something rectransfer
wrote itself, so :func:`check_model_destination` accepts, as the destination of a save:

* a path that does not exist yet, or an empty folder;
* for ``kind="model"``, a model directory rectransfer wrote: ``config.json`` whose ``model_type``
  is ``"rectransfer-ranker"``, ``ranker.txt`` and ``checksums.json``, and nothing else (another
  file in it would be deleted with the old model);
* for ``kind="encoder"``, a fine-tuned encoder folder, recognised by ``rectransfer_encoder.json``.

Anything else (a file, a symbolic link, a folder of other files such as a retailer's data) is
refused with a :class:`~rectransfer.errors.ConfigError`, as is a destination equal to, inside or
around one of the command's inputs (a retailer folder, a source, the base model, the retailers'
root). Entry points (the CLI, the flows, ``pretrain_encoder``, ``adapt``) call it before any
training, so a bad destination costs a second, not an hour; the savers call it again just before
publishing.

:func:`check_writable_parent` probes, before the long work, that a destination's folder can take
a new entry at all (an existing file in the way, a read-only folder, a name too long).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from rectransfer.errors import ConfigError

# The files that make a folder a rectransfer model or encoder. ``model/artifacts.py`` and
# ``text/training.py`` write these names; ``tests/utils/test_destinations.py`` keeps them in step.
MODEL_TYPE = "rectransfer-ranker"
MODEL_CONFIG_FILE = "config.json"
MODEL_FILES = (MODEL_CONFIG_FILE, "ranker.txt", "checksums.json")
ENCODER_METADATA_FILE = "rectransfer_encoder.json"

Kind = Literal["model", "encoder"]
_WHAT = {"model": "model directory", "encoder": "fine-tuned encoder folder"}


def _absolute(path: Path) -> Path:
    # resolve() follows symlinks of the parents, so two spellings of one folder compare equal;
    # strict=False because the destination usually does not exist yet.
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop: compare the spelling as given
        return absolute


def _overlap(output: Path, inputs: Iterable[str | Path]) -> tuple[Path, str] | None:
    out = _absolute(output)
    for given in inputs:
        source = _absolute(Path(given))
        if out == source:
            return Path(given), "is"
        if out.is_relative_to(source):
            return Path(given), "is inside"
        if source.is_relative_to(out):
            return Path(given), "contains"
    return None


def check_outside_inputs(
    path: str | Path,
    *,
    inputs: Iterable[str | Path],
    option: str = "--out",
    what: str = "the output",
) -> None:
    """Refuse an output folder that is, lies inside or contains one of ``inputs``.

    Raises
    ------
    ConfigError
        Naming the output, the input and how they overlap.

    Examples
    --------
    >>> check_outside_inputs("models", inputs=["shops"])
    >>> check_outside_inputs("shops/models", inputs=["shops"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: ...
    """
    overlap = _overlap(Path(path), inputs)
    if overlap is not None:
        source, relation = overlap
        raise ConfigError(
            f"{option} {str(path)!r} {relation} the input {str(source)!r}; writing {what} "
            f"there would replace or mix with the input's files. Pass an {option} outside "
            "every input folder."
        )


def is_rectransfer_model(folder: Path) -> bool:
    """Whether ``folder`` holds exactly the files of a model directory rectransfer wrote."""
    try:
        names = {entry.name for entry in os.scandir(folder)}
        config = json.loads((folder / MODEL_CONFIG_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    regular = all((folder / name).is_file() and not (folder / name).is_symlink() for name in names)
    return (
        names == set(MODEL_FILES)
        and regular
        and isinstance(config, dict)
        and config.get("model_type") == MODEL_TYPE
    )


def is_rectransfer_encoder(folder: Path) -> bool:
    """Whether ``folder`` is an encoder folder that rectransfer fine-tuned (its metadata file)."""
    marker = folder / ENCODER_METADATA_FILE
    return marker.is_file() and not marker.is_symlink()


def check_model_destination(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    kind: Kind = "model",
    option: str = "--out",
) -> Path:
    """Refuse a destination whose replacement would destroy files rectransfer did not write.

    Parameters
    ----------
    path
        Where the model or encoder folder is to be published.
    inputs
        Folders the command reads (retailer folders, sources, the base model, a retailers'
        root, another output of the same command); the destination may not be one of them, lie
        inside one or contain one.
    kind
        ``"model"`` (a ranker directory) or ``"encoder"`` (a fine-tuned encoder folder).
    option
        The option or parameter that named ``path``, for the message.

    Returns
    -------
    pathlib.Path
        ``path`` as a ``Path``.

    Raises
    ------
    ConfigError
        When ``path`` overlaps an input, or exists and is neither an empty folder nor a
        ``kind`` folder that rectransfer wrote.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> check_model_destination(root / "models" / "shop", inputs=[root / "shop"]).name
    'shop'
    >>> check_model_destination(root / "shop" / "m", inputs=[root / "shop"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: ...
    """
    target = Path(path)
    what = _WHAT[kind]
    check_outside_inputs(target, inputs=inputs, option=option, what=f"the {what}")
    if target.is_symlink():
        raise ConfigError(
            f"{option} {str(target)!r} is a symbolic link; a save would replace the link, not "
            "write where it points. Pass the real folder or a new path."
        )
    if not target.exists():
        return target
    if not target.is_dir():
        raise ConfigError(
            f"{option} {str(target)!r} exists and is a file, not a {what}. Pass a new or empty "
            "folder."
        )
    try:
        entries = sorted(entry.name for entry in os.scandir(target))
    except OSError as err:
        raise ConfigError(
            f"{option} {str(target)!r} cannot be listed ({err.strerror}); pass a folder you can "
            "write."
        ) from err
    if not entries:
        return target
    recognised = is_rectransfer_model(target) if kind == "model" else is_rectransfer_encoder(target)
    if recognised:
        return target
    shown = ", ".join(repr(name) for name in entries[:3]) + (", ..." if len(entries) > 3 else "")
    marker = (
        f"{' + '.join(MODEL_FILES)} with model_type {MODEL_TYPE!r} and nothing else"
        if kind == "model"
        else ENCODER_METADATA_FILE
    )
    raise ConfigError(
        f"{option} {str(target)!r} already holds files that are not a {what} rectransfer wrote "
        f"({shown}; a {what} holds {marker}); a save would delete them. Pass a new or empty "
        "folder, or move those files away."
    )


def check_writable_parent(
    path: str | Path, *, option: str = "--out", folder: bool = True, beside: bool = False
) -> None:
    """Probe, before any long work, that ``path`` can be written.

    The folders that exist on the way to ``path`` must be folders, and the deepest of them must
    take a new file (a probe file is created and removed at once). A name longer than the file
    system allows is refused too, and, with ``folder=True``, an existing file at ``path``. A full
    disk is not detected here (an empty probe file needs no space); the writer reports it when it
    happens. With ``beside=True`` (a folder published by renaming a staged sibling, as models
    and encoders are) the probe goes into ``path``'s parent rather than into ``path``.

    Raises
    ------
    ConfigError
        With the path and the reason, when ``path`` cannot be written.
    """
    target = Path(os.path.abspath(path))
    for part in target.parts:
        if len(os.fsencode(part)) > 255:  # NAME_MAX of every common file system
            raise ConfigError(
                f"{option} {str(path)!r}: the name {part[:40]!r}... is {len(os.fsencode(part))} "
                "bytes long, more than the 255 a file name may have. Pass a shorter path."
            )
    if folder and target.exists() and not target.is_dir():
        raise ConfigError(
            f"{option} {str(path)!r} is a file, not a folder. Pass a folder (new or existing)."
        )
    existing = target.parent if beside else target
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if existing != target and not existing.is_dir():
        raise ConfigError(
            f"{option} {str(path)!r}: {str(existing)!r} is a file, not a folder, so nothing can "
            "be created under it. Pass another path."
        )
    parent = existing if existing.is_dir() else existing.parent
    probe = parent / f".rectransfer-write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # a probe of ours from a process with the same PID: the folder takes files
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason += " (the folder is read-only for this user)"
        raise ConfigError(
            f"{option} {str(path)!r}: cannot create files in {str(parent)!r}: {reason}. Pass a "
            "folder you can write."
        ) from err
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
