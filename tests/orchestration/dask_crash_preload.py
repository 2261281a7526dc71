"""A Dask worker preload for tests/orchestration/test_isolation.py (not a test module).

Loaded only into the workers of that test's cluster (``distributed.worker.preload``): scoring a
chunk of the retailer named ``crashing-shop`` kills the worker with SIGSEGV, as a native crash
would.
"""

from __future__ import annotations

import os
import signal

from rectransfer.serving import fanout

CRASHING = "crashing-shop"
_real = fanout.recommend_chunk


def _recommend_chunk(model, prepared, rows, *, k, **options):  # type: ignore[no-untyped-def]
    if prepared.name == CRASHING:
        os.kill(os.getpid(), signal.SIGSEGV)
    return _real(model, prepared, rows, k=k, **options)


fanout.recommend_chunk = _recommend_chunk
