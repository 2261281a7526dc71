"""Threads for chunked numeric work: numpy, torch and LightGBM release the GIL in their kernels."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_THREADS = 4  # past this the chunks' single-threaded glue, not the cores, is the limit


def cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    return min(cores(), MAX_THREADS)


def map_in_threads(
    function: Callable[[T], R], items: Iterable[T], threads: int | None = None
) -> Iterator[R]:
    """``map(function, items)`` on ``threads`` threads, results in input order.

    At most ``threads`` items are in flight at once, so memory stays that of ``threads`` chunks.
    With one thread (or one item) it is the plain ``map``, with no pool.
    """
    threads = default_threads() if threads is None else threads
    work = list(items)
    if threads <= 1 or len(work) <= 1:
        yield from map(function, work)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(work))) as pool:
        pending = [pool.submit(function, item) for item in work[:threads]]
        for following in work[threads:]:
            result = pending.pop(0).result()
            pending.append(pool.submit(function, following))  # before handing the result on
            yield result
        for future in pending:
            yield future.result()
