"""Model directories: ``config.json`` + LightGBM's text model + a checksum file. No pickle.

Layout::

    MODEL_DIR/
      config.json      ModelConfig: type, versions, encoder, features, guard figures, ...
      ranker.txt       LightGBM's own text format (loading it runs no code)
      checksums.json   sha256 of the two files above, so a tampered or truncated file is caught

A directory is written next to its destination under a temporary name and renamed into place, so a
reader sees the old model or the new one, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import lightgbm as lgb
from pydantic import ValidationError

from rectransfer.errors import IncompatibleArtifactError
from rectransfer.model import FORMAT_VERSION, ModelConfig, RecModel, check_features

CONFIG_FILE = "config.json"
RANKER_FILE = "ranker.txt"
CHECKSUM_FILE = "checksums.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def save_model(model: RecModel, path: str | Path) -> Path:
    """Write ``model`` to the directory ``path`` atomically, replacing any model there."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        _write(staging / CONFIG_FILE, model.config.model_dump_json(indent=2))
        _write(staging / RANKER_FILE, model.booster.model_to_string())
        checksums = {name: _sha256(staging / name) for name in (CONFIG_FILE, RANKER_FILE)}
        _write(staging / CHECKSUM_FILE, json.dumps(checksums, indent=2))
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_model(path: str | Path) -> RecModel:
    """Read a model directory written by :func:`save_model`.

    Raises :class:`IncompatibleArtifactError` when a file is missing, a checksum does not match,
    the config is not valid, or the model was made by an incompatible version.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise IncompatibleArtifactError(
            f"{folder}: no model directory here. Pass the directory written by "
            "`rectransfer pretrain` / `rectransfer adapt` or RecModel.save()."
        )
    for name in (CONFIG_FILE, RANKER_FILE, CHECKSUM_FILE):
        if not (folder / name).is_file():
            raise IncompatibleArtifactError(
                f"{folder}: model directory is missing {name!r}; it is incomplete or not a "
                "rectransfer model. Save or train the model again."
            )
    try:
        checksums = json.loads((folder / CHECKSUM_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IncompatibleArtifactError(
            f"{folder / CHECKSUM_FILE}: not valid JSON ({err})"
        ) from err
    for name in (CONFIG_FILE, RANKER_FILE):
        if not isinstance(checksums, dict) or checksums.get(name) != _sha256(folder / name):
            raise IncompatibleArtifactError(
                f"{folder / name}: checksum does not match {CHECKSUM_FILE}; the file was changed "
                "or truncated after saving. Restore it or save the model again."
            )
    try:
        raw = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IncompatibleArtifactError(f"{folder / CONFIG_FILE}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        found = raw.get("format_version") if isinstance(raw, dict) else None
        raise IncompatibleArtifactError(
            f"{folder / CONFIG_FILE}: format_version {found!r} is not the {FORMAT_VERSION} this "
            "rectransfer reads. Train the model again with this version."
        )
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise IncompatibleArtifactError(
            f"{folder / CONFIG_FILE}: field {where!r}: {first['msg']}. The file is not a valid "
            "rectransfer model config; save the model again."
        ) from err
    check_features(config)
    try:
        booster = lgb.Booster(model_str=(folder / RANKER_FILE).read_text(encoding="utf-8"))
    except lgb.basic.LightGBMError as err:
        raise IncompatibleArtifactError(
            f"{folder / RANKER_FILE}: not a LightGBM model ({err})"
        ) from err
    if booster.num_feature() != len(config.feature_names):
        raise IncompatibleArtifactError(
            f"{folder / RANKER_FILE}: the ranker has {booster.num_feature()} features but "
            f"config.json lists {len(config.feature_names)}. Save the model again."
        )
    return RecModel(booster, config)
