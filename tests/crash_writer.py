"""A writer to kill, used by tests/test_crash_safety.py (not a test module itself).

    python crash_writer.py SEED

It imports the package once (the slow part), then serves requests, one JSON line each on stdin::

    {"kind": "export" | "model" | "cache", "workdir": "...", "round": 3,
     "max_delay": 0.5, "after_writes": 1}     (a kill at a random time)
    {"kind": ..., "workdir": ..., "round": 4, "max_bytes": 300000}     (at a random byte)

For each request a child is forked that writes in a loop: a large Parquet partition, a model
directory, or vectors into the embedding cache (with compaction). It is killed with SIGKILL

* with ``max_delay``: after a seeded random delay in ``[0, max_delay]`` seconds once it has started
  (and finished ``after_writes`` writes), so the kill lands at any point of a write: mid-file,
  between fsync and rename, mid-compaction;
* with ``max_bytes``: by the kernel, as soon as one of its files would grow past a seeded random
  size in ``[1, max_bytes]`` (``RLIMIT_FSIZE`` with ``SIGXFSZ`` at its default action, which ends
  the process as abruptly as SIGKILL: no ``except``, no ``finally``), so the kill lands in the
  middle of a file, at any byte, whatever the speed of the machine. Pass the size of the largest
  file a write makes, so that every such round ends inside the first write.

The reply is one JSON line ``{"delay": d, "bytes": b, "completed": n}``, ``n`` being the writes
the child finished before it died. EOF on stdin ends the server.

Every write is deterministic (see :func:`version_frame`, :func:`cache_keys`, :func:`vector_of`),
so the test can tell whether what it finds on disk is exactly one complete write.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

RETAILER = "big_shop"
RUN_DATE = "2026-11-23"
EXPORT_ROWS = 150_000
CACHE_FINGERPRINT = "crash-test"
CACHE_BATCH = 400
CACHE_DIM = 16
BATCHES_PER_ROUND = 1_000_000  # cache batch numbers of round r start at r * BATCHES_PER_ROUND


def version_frame(version: int, rows: int = EXPORT_ROWS) -> Any:
    """The recommendations frame of export version ``version`` (-1: the previous run's)."""
    import polars as pl

    i = pl.int_range(rows, eager=True)
    return pl.DataFrame(
        {
            "user_id": (i // 10).cast(pl.String),
            "item_id": (i % 997 + version * 7).cast(pl.String),
            "rank": (i % 10 + 1).cast(pl.Int32),
            "score": (-i).cast(pl.Float64) + version,
            "source": pl.repeat("ranker", rows, eager=True),
        }
    )


def cache_keys(batch: int) -> list[bytes]:
    return [hashlib.sha256(f"text {batch} {j}".encode()).digest() for j in range(CACHE_BATCH)]


def vector_of(key: bytes) -> np.ndarray:
    """The vector stored for a key: a pure function of the key, so any corruption shows."""
    raw = np.frombuffer(hashlib.sha512(key).digest(), dtype=np.uint8)[:CACHE_DIM]
    return (raw / 255.0).astype(np.float32)


def _write_loop(request: dict[str, Any], progress: int) -> None:
    """Runs in the child: write until killed; one byte on ``progress`` after each write."""
    kind = request["kind"]
    workdir = Path(request["workdir"])
    if kind == "export":
        from rectransfer.serving.export import write_recommendations

        frames = [version_frame(v) for v in range(2)]
        _started(progress, request["budget"])
        for n in range(10**9):
            write_recommendations(
                frames[n % 2],
                workdir / "exports",
                retailer=RETAILER,
                run_date=RUN_DATE,
                model_version=f"v{n % 2}",
            )
            os.write(progress, b"w")
    elif kind == "model":
        from rectransfer.model.recmodel import RecModel

        source = RecModel.load(workdir / "source")
        _started(progress, request["budget"])
        for n in range(10**9):
            config = source.config.model_copy(update={"random_state": n})
            RecModel(source.booster, config).save(workdir / "model")
            os.write(progress, b"w")
    elif kind == "cache":
        from rectransfer.text.embedding_cache import EmbeddingCache

        cache = EmbeddingCache(workdir / "cache", max_shards=3)
        _started(progress, request["budget"])
        for n in range(10**9):
            keys = cache_keys(request["round"] * BATCHES_PER_ROUND + n)
            cache.put_many(CACHE_FINGERPRINT, keys, np.stack([vector_of(k) for k in keys]))
            os.write(progress, b"w")


def _started(progress: int, budget: int | None) -> None:
    """Tell the server the child is about to write; cap its file size if there is a budget."""
    if budget is not None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the default kills
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (budget, hard))
    os.write(progress, b"r")


def _serve(request: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    budget = rng.randint(1, int(request["max_bytes"])) if "max_bytes" in request else None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write until killed
        os.close(read_end)
        request = {**request, "budget": budget}
        try:
            _write_loop(request, write_end)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_end)
    if os.read(read_end, 1) != b"r":
        os.waitpid(pid, 0)
        return {"error": "the writer died before it started"}
    completed, delay = 0, None
    if budget is None:
        while completed < request.get("after_writes", 0):
            completed += os.read(read_end, 1).count(b"w")
        delay = rng.uniform(0.0, float(request["max_delay"]))
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)  # reaped: its PID is gone, as after a real crash
    else:  # the kernel ends it when a file grows past the budget
        deadline = time.monotonic() + 120
        while (status := os.waitpid(pid, os.WNOHANG)[1]) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if status == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"error": f"no file grew to {budget} bytes: max_bytes is too large"}
    while chunk := os.read(read_end, 4096):
        completed += chunk.count(b"w")
    os.close(read_end)
    expected = signal.SIGKILL if budget is None else signal.SIGXFSZ
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == expected):
        return {"error": f"the writer was not killed as planned (status {status})"}
    return {"delay": delay, "bytes": budget, "completed": completed}


def main(seed: str) -> None:
    import rectransfer  # noqa: F401 - the slow imports, once, before any fork

    rng = random.Random(int(seed))
    for line in sys.stdin:
        print(json.dumps(_serve(json.loads(line), rng)), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
