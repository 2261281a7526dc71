"""The optional per-retailer encoder step of adaptation: tune the text encoder on the shop's pairs.

After the sources' fine-tuning (:mod:`rectransfer.text.training`), a retailer with enough
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError
from rectransfer.text import training
from rectransfer.text.encoder import (
    ONNX_INT8_PREFIX,
    CachedEncoder,
    Encoder,
    SentenceTransformerEncoder,
)
from rectransfer.text.load import load_encoder
from rectransfer.text.pairs import mine_pairs
from rectransfer.utils.destinations import check_model_destination, is_rectransfer_encoder

MIN_RETAILER_PAIRS = 500  # fewer distinct pairs than this: too little to move the encoder
MAX_RETAILER_PAIRS = 5_000  # one short pass: a few minutes on two cores
TUNING_EPOCHS = 1
TUNING_LEARNING_RATE = 1e-5  # half the sources' rate: a nudge, not a new training
# Only the top layers move, as with the sources' default (4 of MiniLM's 6 layers frozen).
TRAINABLE_TOP_LAYERS = 2


@dataclass(frozen=True)
class TunedEncoder:
    encoder: Encoder
    spec: str
    pairs: int
    seconds: float


def trainable_base(encoder: Encoder) -> tuple[Path, bool]:
    """The sentence-transformers folder behind ``encoder`` and whether it runs as int8 ONNX."""
    from rectransfer.text.onnx_int8 import OnnxInt8Encoder

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
    (:func:`rectransfer.data.holdout.drop_last_interaction`). Returns the tuned encoder (None when
    the retailer has too few pairs), the number of distinct pairs, and why it was not tuned.
    """
    base_path, int8 = trainable_base(encoder)
    target = check_tune_folder(out)
    pairs = mine_pairs(data).height
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
    folder = training.pretrain_encoder(
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


def check_tune_folder(
    out: str | Path, *, inputs: Iterable[str | Path] = (), option: str = "tune_encoder"
) -> Path:
    """Refuse a tuned encoder's folder unless it is new or empty and outside every input.

    Stricter than other destinations: even a previous tuned encoder is not replaced, since an
    earlier adapted model may still name it. Call it before any training.

    Raises
    ------
    ConfigError
        When ``out`` overlaps an input (see
        :func:`rectransfer.utils.destinations.check_model_destination`) or already holds files.
    """
    target = check_model_destination(out, inputs=inputs, kind="encoder", option=option)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"{option} folder {str(target)!r} already holds files. Give a new folder for each "
            "adapted model: an earlier model may still use the encoder in it."
        )
    return target


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


def discard(out: str | Path) -> None:
    """Remove a tuned encoder that was not kept (and its training leftovers)."""
    target = Path(out)
    # Only what tuning wrote: the folder was new or empty (check_tune_folder), and the work
    # folder beside it may be the user's, so only its checkpoint goes.
    if is_rectransfer_encoder(target):
        shutil.rmtree(target, ignore_errors=True)
    training.clear_checkpoint(target.parent / f"{target.name}.work")
