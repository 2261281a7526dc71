"""The exception tree: every error the package raises on purpose derives from RecTransferError."""

from __future__ import annotations


class RecTransferError(Exception):
    """Root of every error rectransfer raises on purpose."""


class SchemaError(RecTransferError, ValueError):
    """A retailer's table breaks the data contract (names the file, column and values)."""


class IncompatibleArtifactError(RecTransferError):
    """A model directory or cache entry cannot be used (missing, tampered, other version)."""


class DataQualityWarning(UserWarning):
    """Data that is usable but worse than it should be (e.g. products without a title)."""


class ConfigError(RecTransferError, ValueError):
    """An option has a value the function cannot use."""
