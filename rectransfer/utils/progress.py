"""What a long step is doing: stages and progress with an ETA, for people watching a run.

Everything goes through the ``rectransfer`` logger at INFO level, so a library user sees nothing
unless their logging shows it, and the command line shows it unless ``--quiet``
(:func:`log_to_stderr`). On a terminal a step with a known size draws a bar (tqdm); elsewhere
(logs of a scheduled run, a pipe) it writes a plain line at most every ``LINE_EVERY_SECONDS``, with
the share done and an estimate of the time left.

Examples
--------
>>> with progress("encoding", total=3, unit="texts") as bar:
...     for _ in range(3):
...         bar.update()
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LOGGER", "Progress", "log_to_stderr", "progress", "stage", "timed"]

LOGGER = logging.getLogger("rectransfer")
LINE_EVERY_SECONDS = 15.0  # plain progress lines, off a terminal


def stage(message: str) -> None:
    """Say which stage a run has reached (one line)."""
    LOGGER.info(message)


def _on_terminal() -> bool:
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Progress of one step of known size; use :func:`progress` to make one."""

    def __init__(self, description: str, total: int, unit: str) -> None:
        self.description = description
        self.total = max(int(total), 0)
        self.unit = unit
        self.done = 0
        self.note = ""
        self._started = time.monotonic()
        self._last_line = self._started
        self._enabled = LOGGER.isEnabledFor(logging.INFO)
        self._bar: Any = None
        if self._enabled and _on_terminal():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=description, unit=f" {unit}", leave=False)
        elif self._enabled:
            LOGGER.info(f"{description}: {self.total:,} {unit}")

    def update(self, n: int = 1, note: str = "") -> None:
        """``n`` more units done; ``note`` (e.g. a validation score) is shown beside them."""
        self.done += n
        self.note = note or self.note
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line >= LINE_EVERY_SECONDS and self.done < self.total:
            self._last_line = now
            LOGGER.info(self._line(now))

    def _line(self, now: float) -> str:
        elapsed = now - self._started
        share = self.done / self.total if self.total else 1.0
        left = elapsed * (1 - share) / share if share > 0 else float("nan")
        eta = f", about {_duration(left)} left" if share > 0 else ""
        note = f" ({self.note})" if self.note else ""
        return (
            f"{self.description}: {share:.0%} ({self.done:,}/{self.total:,} {self.unit}){note}{eta}"
        )

    def close(self) -> None:
        """End the step with one line: what was done and how long it took."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.close()
        elapsed = time.monotonic() - self._started
        note = f", {self.note}" if self.note else ""
        LOGGER.info(f"{self.description}: {self.done:,} {self.unit} in {_duration(elapsed)}{note}")


@contextmanager
def progress(description: str, *, total: int, unit: str = "") -> Iterator[Progress]:
    """A :class:`Progress` for a step of ``total`` units, closed with a summary line at the end."""
    bar = Progress(description, total, unit)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def timed(description: str) -> Iterator[None]:
    """A stage of unknown size: one line when it starts and one with its time when it ends."""
    started = time.monotonic()
    LOGGER.info(f"{description} ...")
    yield
    LOGGER.info(f"{description}: done in {_duration(time.monotonic() - started)}")


def log_to_stderr(*, quiet: bool = False) -> logging.Handler:
    """Show the ``rectransfer`` logger's lines on standard error (the command line does this);
    ``quiet`` shows warnings and errors only. Returns the handler (remove it to undo)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rectransfer: %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False
    return handler
