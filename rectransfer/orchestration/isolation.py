"""Run a piece of work in a process of its own, so that its crash is an error, not the end.

A segmentation fault or an abort in native code (LightGBM, BLAS, Parquet) or the kernel's
out-of-memory killer ends a process at once: no ``except`` and no ``finally`` run. Work done in a
child process turns that into :class:`ProcessDied` in the parent, naming the signal, and the
parent carries on (the nightly flow with the next retailer, its report and its failed state).

The child is started with ``spawn`` (a fresh interpreter): forking a process that runs Prefect's
and torch's threads can deadlock the child. The work and its arguments are pickled to the child
(functions by reference), and the child sends back the result or the exception it raised, which is
raised again in the parent with its own type and message.

This module does not import Prefect, so the child does not either.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from rectransfer.errors import RecTransferError

__all__ = ["CHILD_HOOK", "ProcessDied", "describe_exit", "run_isolated"]

R = TypeVar("R")

# A test seam: a picklable callable the child runs with the work's name before the work (tests set
# it to kill the child for one retailer with a real signal). It is state of the parent's Python
# process, passed to the child explicitly, so no environment variable or file can set it.
CHILD_HOOK: Callable[[str], None] | None = None


class ProcessDied(RecTransferError):
    """The process doing a piece of work died (a signal, the out-of-memory killer) without an
    answer; the work's output was not published."""


def describe_exit(exitcode: int | None) -> str:
    """How a child ended, in words: ``"died of signal SIGSEGV (exit code -11)"``."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"died of signal {name}{hint} (exit code {exitcode})"
    return f"exited with code {exitcode} without an answer"


def _portable(err: BaseException) -> BaseException:
    """``err`` if it can travel to the parent, else a RecTransferError with its type and message.

    An exception is rebuilt on arrival as its class called with its arguments (what
    ``BaseException.__reduce__`` says); both that and the sending are tried here."""
    try:
        ForkingPickler.dumps(err)
        type(err)(*err.args)
    except Exception:
        return RecTransferError(f"{type(err).__name__}: {err}")
    return err


def _child(
    conn: Connection,
    hook: Callable[[str], None] | None,
    name: str,
    work: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        if hook is not None:
            hook(name)
        answer: tuple[str, Any] = ("ok", work(*args))
    except BaseException as err:  # everything goes back to the parent, which decides
        answer = ("error", _portable(err))
    try:
        conn.send(answer)
    except Exception as err:  # a result that cannot be pickled
        conn.send(("error", RecTransferError(f"{name}: its result could not be sent: {err}")))
    finally:
        conn.close()


def run_isolated(work: Callable[..., R], *args: Any, name: str) -> R:
    """``work(*args)`` in a child process; its result, or its exception raised here.

    Parameters
    ----------
    work
        A module-level function (pickled by reference; its module must be importable by the
        child, which starts a fresh interpreter with this process's ``sys.path``).
    *args
        Its arguments, pickled to the child: keep them small (paths and settings, not data).
    name
        What the work is about (a retailer), for messages.

    Raises
    ------
    ProcessDied
        When the child died without an answer: the message names the signal (``SIGSEGV``,
        ``SIGKILL`` from the out-of-memory killer, ...).
    BaseException
        Whatever ``work`` raised, with its type and message.

    Examples
    --------
    >>> run_isolated(max, 3, 7, name="example")  # doctest: +SKIP
    7
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, CHILD_HOOK, name, work, args), name=f"rectransfer-{name}"
    )
    try:
        try:
            process.start()
        finally:
            sender.close()  # the child holds the only writer: its death ends recv() with EOFError
        try:
            kind, payload = receiver.recv()
        except EOFError:
            kind, payload = "died", None
        process.join()
    finally:
        receiver.close()
        if process.is_alive():  # interrupted while waiting: do not leave the work running
            process.kill()
            process.join()
    if kind == "ok":
        return payload
    if kind == "error":
        raise payload
    raise ProcessDied(
        f"the process working on {name!r} {describe_exit(process.exitcode)}; nothing was "
        "published for it. A crash in native code or the out-of-memory killer does this: see the "
        "log above for the last step it took, and its memory use."
    )
