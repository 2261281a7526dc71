"""When does a retailer's adapted model need adapting again?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rectransfer.errors import IncompatibleArtifactError
from rectransfer.model.recmodel import RecModel


def adaptation_reason(
    model_dir: str | Path, base: RecModel, *, max_age_days: float, now: datetime | None = None
) -> str | None:
    """Why the model in ``model_dir`` must be adapted again, or ``None`` if it is fresh.

    A model is stale when there is none (or it cannot be read), when it was adapted from another
    broad model than ``base``, or when it is older than ``max_age_days``.
    """
    if not Path(model_dir).exists():
        return "first run for this retailer: no adapted model yet"
    try:
        current = RecModel.load(model_dir)
    except IncompatibleArtifactError as err:
        return f"no usable adapted model ({' '.join(str(err).split())})"
    if current.config.base_model_version != base.model_version:
        return (
            f"adapted from broad model {current.config.base_model_version!r}, "
            f"now {base.model_version!r}"
        )
    created = datetime.fromisoformat(current.config.created_at)
    age = (now or datetime.now(UTC)) - created
    if age > timedelta(days=max_age_days):
        return f"adapted {age.days} days ago (limit {max_age_days:g})"
    return None
