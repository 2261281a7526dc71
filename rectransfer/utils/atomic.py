"""Crash-safe publishing of files and folders, shared by the export, the model and the cache.

Every writer stages its output under a temporary name that carries an owner token
(``<host>-<pid>-<random>``), makes it durable, and publishes it with one atomic rename. A process
killed at any instant therefore leaves either the previous output or the new one at the published
name, plus at most a temporary leftover that no reader looks at. Leftovers are swept by the next
writer: at once when their owner (same host and PID namespace) is no longer running, else when they
are older than :data:`STALE_SECONDS` (a live writer on another host may still be using them).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

STALE_SECONDS = 3600.0
TOKEN_PATTERN = r"[0-9a-f]{8}-\d+-[0-9a-f]{16}"  # what owner_token() returns
_TOKEN_RE = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{16}")


def _host_id() -> str:
    """This host (and PID namespace): PIDs are only comparable within one."""
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    return hashlib.sha256(f"{socket.gethostname()}\0{namespace}".encode()).hexdigest()[:8]


_HOST = _host_id()


def owner_token() -> str:
    """A unique token naming this process as the owner of a temporary file or folder."""
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:16]}"


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would stop the process there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the PID exists (owned by someone else)
        return True
    return True


def is_abandoned(path: Path, *, now: float | None = None) -> bool:
    """Whether a temporary ``path`` was left by a writer that is gone.

    True when the owner token in its name names a process of this host that no longer runs, or
    when it has not been modified for :data:`STALE_SECONDS` (no token, another host, or a PID that
    was reused). A leftover of this very process is never abandoned unless it is stale.
    """
    try:
        modified = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if (now if now is not None else time.time()) - modified > STALE_SECONDS:
        return True
    match = _TOKEN_RE.search(path.name)
    if match is None or match["host"] != _HOST:
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not _running(pid)


def remove(path: Path) -> None:
    """Delete a file, a symlink or a folder tree; missing is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: a leftover is swept again next time


def sweep(candidates: Iterable[Path]) -> list[Path]:
    """Remove the abandoned ones among ``candidates``; returns what was removed."""
    removed = []
    for path in candidates:
        if is_abandoned(path):
            remove(path)
            removed.append(path)
    return removed


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort; not every platform can)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- atomic exchange of two paths (Linux renameat2 with RENAME_EXCHANGE) ---

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _load_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc, or a libc older than glibc 2.28
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False when the platform cannot.

    Raises the ``OSError`` of any other failure (e.g. one of the paths is missing).
    """
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this file system (e.g. NFS) or kernel has no atomic exchange
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def leftovers(path: str | Path) -> list[Path]:
    """Hidden temporary folders that saves of the model at ``path`` left next to it."""
    target = Path(path)
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return []
    # Only names that a save made (prefix + owner token, or the 32 hex digits earlier versions
    # used): a similar name of the user's is kept.
    pattern = re.compile(
        re.escape(f".{target.name}.") + rf"(tmp|old)-({TOKEN_PATTERN}|[0-9a-f]{{32}})"
    )
    return sorted(p for p in siblings if pattern.fullmatch(p.name))


def publish_directory(staging: Path, target: Path) -> None:
    """Put the folder ``staging`` at ``target``: a rename, else an atomic exchange with the old
    folder (which is then removed), else rename-aside where the file system cannot exchange."""
    if not target.exists():
        try:
            os.rename(staging, target)  # atomic; fails if a non-empty directory appeared meanwhile
            return
        except OSError:
            if not target.is_dir():
                raise
    if exchange(staging, target):
        return
    # No atomic exchange here: keep the old model under a hidden name until the new one is in.
    retired = target.parent / f".{target.name}.old-{owner_token()}"
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    remove(retired)
