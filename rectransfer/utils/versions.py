"""Versions recorded in saved models and encoders: the package's, its libraries', the time."""

from __future__ import annotations

import importlib.metadata
import platform
from datetime import UTC, datetime

__all__ = ["library_versions", "now_iso", "package_version"]


def package_version() -> str:
    """This package's installed version (``0+unknown`` when run from a source tree)."""
    try:
        return importlib.metadata.version("rectransfer")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def library_versions() -> dict[str, str]:
    """Python's and the main libraries' versions, recorded with a saved model."""
    out = {"python": platform.python_version()}
    for name in ("lightgbm", "numpy", "polars", "scikit-learn", "sentence-transformers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def now_iso() -> str:
    """The current UTC time to the second, ISO 8601."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()
