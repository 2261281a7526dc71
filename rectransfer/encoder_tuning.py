"""The optional per-retailer encoder step of adaptation: tune the text encoder on the shop's pairs.

After the sources' fine-tuning (:mod:`rectransfer.encoder_training`), a retailer with enough
behaviour of its own can move the text space a little further toward what *its* customers take
one after the other. The step runs the same contrastive training for one short pass on the
retailer's product-text pairs, mined from every customer's history **without their last item**
(the guard's validation item never enters a pair), all but the top two transformer layers
frozen (as the sources' default does for MiniLM). The retailer is then adapted again with the
tuned encoder, and the tuned encoder is kept only when what the guard would ship with it beats
what it ships with the model's own encoder on the same validation customers by more than one
standard error of the paired difference; otherwise the tuned encoder's folder is removed and the
model keeps its encoder. Both figures and the decision are
recorded in the model's ``config.json`` (``encoder_tuning``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from rectransfer.encoder import (
    ONNX_INT8_PREFIX,
    CachedEncoder,
    Encoder,
    SentenceTransformerEncoder,
    load_encoder,
)
from rectransfer.errors import ConfigError
from rectransfer.schema import RetailerData

MIN_RETAILER_PAIRS = 500  # fewer distinct pairs than this: too little to move the encoder
MAX_RETAILER_PAIRS = 5_000  # one short pass: a few minutes on two cores
TUNING_EPOCHS = 1
TUNING_LEARNING_RATE = 1e-5  # half the sources' rate: a nudge, not a new training
# Only the top layers move, as with the sources' default (4 of MiniLM's 6 layers frozen).
TRAINABLE_TOP_LAYERS = 2


class EncoderTuning(BaseModel):
    """What the per-retailer encoder step did, as recorded in the adapted model's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: int  # distinct product-text pairs the retailer's training histories give
    seconds: float  # tuning the encoder (the second adaptation not included)
    validation_ndcg: dict[str, float]  # what the guard ships, with the model's / the tuned encoder
    stderr: float | None  # standard error of their paired difference (None: not compared)
    kept: bool
    encoder: str | None  # the tuned encoder's spec when kept
    reason: str


@dataclass(frozen=True)
class TunedEncoder:
    encoder: Encoder
    spec: str
    pairs: int
    seconds: float


def trainable_base(encoder: Encoder) -> tuple[Path, bool]:
    """The sentence-transformers folder behind ``encoder`` and whether it runs as int8 ONNX."""
    from rectransfer.onnx_encoder import OnnxInt8Encoder

    inner = encoder.encoder if isinstance(encoder, CachedEncoder) else encoder
    if isinstance(inner, OnnxInt8Encoder):
        return inner.model_path, True
    if isinstance(inner, SentenceTransformerEncoder):
        return inner.model_path, False
    raise ConfigError(
        f"the model's encoder {inner.name!r} has no weights to tune; tuning the encoder per "
        "retailer needs a sentence-transformers encoder (the default, 'onnx-int8:...', or a "
        "model folder). Adapt without tune_encoder, or pretrain with such an encoder."
    )


def tune_encoder(
    encoder: Encoder,
    data: RetailerData,
    out: str | Path,
    *,
    random_state: int = 0,
    show_progress: bool | None = None,
) -> tuple[TunedEncoder | None, int, str]:
    """Tune ``encoder`` on ``data``'s product-text pairs into the new folder ``out``.

    ``data`` must already be without the items the guard validates on
    (:func:`rectransfer.holdout.drop_last_interaction`). Returns the tuned encoder (None when the
    retailer has too few pairs), the number of distinct pairs, and why it was not tuned.
    """
    # imported here: encoder_training reaches the model module, which imports this one
    from rectransfer import encoder_training

    base_path, int8 = trainable_base(encoder)
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"tune_encoder folder {str(target)!r} already holds files. Give a new folder for each "
            "adapted model: an earlier model may still use the encoder in it."
        )
    pairs = encoder_training.mine_pairs(data).height
    if pairs < MIN_RETAILER_PAIRS:
        return (
            None,
            pairs,
            (
                f"{pairs} distinct product-text pairs in the training histories, fewer than "
                f"{MIN_RETAILER_PAIRS}; the encoder was not tuned"
            ),
        )
    started = time.perf_counter()
    folder = encoder_training.pretrain_encoder(
        [data],
        target,
        base=base_path,
        freeze=max(_transformer_layers(base_path) - TRAINABLE_TOP_LAYERS, 0),
        epochs=TUNING_EPOCHS,
        max_pairs=MAX_RETAILER_PAIRS,
        learning_rate=TUNING_LEARNING_RATE,
        random_state=random_state,
        show_progress=show_progress,
    )
    spec = (ONNX_INT8_PREFIX if int8 else "") + str(Path(folder).resolve())
    tuned = TunedEncoder(load_encoder(spec), spec, pairs, time.perf_counter() - started)
    return tuned, pairs, ""


def _transformer_layers(model_path: Path) -> int:
    """Transformer layers of a sentence-transformers folder, from its Hugging Face config."""
    try:
        config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
        return int(config["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"{model_path / 'config.json'}: cannot read the number of transformer layers "
            f"(num_hidden_layers) to tune the encoder: {error}"
        ) from error


def keep_tuned(base_gains: np.ndarray, tuned_gains: np.ndarray) -> tuple[bool, float | None]:
    """Keep the tuned encoder only if the same customers' validation gains (NDCG@10 of what the
    guard ships) rise by more than one standard error of the paired difference.

    Examples
    --------
    >>> import numpy as np
    >>> keep_tuned(np.array([0.1, 0.2, 0.3, 0.2]), np.array([0.5, 0.6, 0.6, 0.7]))[0]
    True
    >>> keep_tuned(np.array([0.1, 0.2, 0.3, 0.2]), np.array([0.1, 0.3, 0.2, 0.2]))[0]
    False
    """
    if len(base_gains) != len(tuned_gains) or len(base_gains) < 2:
        return False, None
    difference = tuned_gains - base_gains
    stderr = float(difference.std(ddof=1) / np.sqrt(len(difference)))
    return bool(difference.mean() > stderr), stderr


def discard(out: str | Path) -> None:
    """Remove a tuned encoder that was not kept (and its training leftovers)."""
    target = Path(out)
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(target.parent / f"{target.name}.work", ignore_errors=True)
