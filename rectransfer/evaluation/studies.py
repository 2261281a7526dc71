"""What the development studies (:mod:`~rectransfer.evaluation.loso`,
:mod:`~rectransfer.evaluation.source_curve`) share: checked pretraining options, resuming an
earlier run's document, and one mean ± standard error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rectransfer.errors import ConfigError

# Options added after documents were kept: an earlier document without one ran with this value.
RESUME_DEFAULTS: dict[str, Any] = {"ship_rules": False, "weight_sources": False}


def study_pretrain_options(pretrain_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments for :func:`~rectransfer.transfer.pretrain.pretrain`, refusing those
    a study sets itself (the encoder, the seed, the retailer to weigh sources for).

    Examples
    --------
    >>> study_pretrain_options({"virtual_shops": (0.1,)})
    {'virtual_shops': (0.1,)}
    >>> study_pretrain_options({"random_state": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: pretrain_options must not set 'random_state'; ...
    """
    options = dict(pretrain_options or {})
    for reserved in ("encoder", "random_state", "weight_towards"):
        if reserved in options:
            raise ConfigError(
                f"pretrain_options must not set {reserved!r}; pass it to the study itself."
            )
    return options


def jsonable(value: Any) -> Any:
    """Tuples as lists and option objects (e.g. a ``CandidateConfig``) as their ``to_dict()``,
    so an option reads back from JSON equal to what was written.

    Examples
    --------
    >>> from rectransfer.ranking.candidates import CandidateConfig
    >>> jsonable((0.1, 0.3)), jsonable(CandidateConfig(text_last=30))["text_last"]
    ([0.1, 0.3], 30)
    """
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if callable(getattr(value, "to_dict", None)):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def check_resume(resume: Mapping[str, Any], doc: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Refuse to resume ``resume`` unless it was run with this ``doc``'s values of ``keys``.

    Examples
    --------
    >>> check_resume({"seeds": 3}, {"seeds": 2}, ["seeds"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: resume: the earlier run had seeds = 3, this one 2; ...
    """
    for key in keys:
        earlier = resume.get(key, RESUME_DEFAULTS.get(key))
        if earlier != doc[key]:
            raise ConfigError(
                f"resume: the earlier run had {key} = {earlier!r}, this one {doc[key]!r}; "
                "resume only a run with the same options."
            )


def load_document(path: str | Path) -> dict[str, Any] | None:
    """An earlier run's JSON document, or ``None`` if the file does not exist."""
    target = Path(path)
    if not target.exists():
        return None
    doc: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    return doc


def mean_se(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, standard error (0 for one value) and count of ``values``; ``None`` when empty.

    Examples
    --------
    >>> mean_se([1.0, 3.0])
    {'mean': 2.0, 'se': 1.0, 'n': 2}
    """
    if not values:
        return {"mean": None, "se": None, "n": 0}
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "se": se, "n": len(values)}
