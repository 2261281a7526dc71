"""Work for child processes in tests/orchestration/test_isolation.py (not a test module).

Module-level functions, so that a spawned child can import them by reference. The crashes are
real: the process ends by a signal, no ``except`` or ``finally`` runs.
"""

from __future__ import annotations

import os
import signal

from rectransfer.errors import SchemaError


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def refuse(table: str) -> None:
    raise SchemaError(f"{table}: column 'item_id' is missing. Add it.")


def die_of(signum: int) -> None:
    os.kill(os.getpid(), signum)


def segfault_on(retailer: str, name: str) -> None:
    """A CHILD_HOOK (with ``functools.partial``): SIGSEGV while working on ``retailer``."""
    if name == retailer:
        os.kill(os.getpid(), signal.SIGSEGV)
