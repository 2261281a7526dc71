"""A next-item vector from a customer's last items' text vectors: the model and its examples.

It reads only the catalogue's text vectors, never item ids, so a model learnt at some shops
applies unchanged at a shop it has never seen (the UniSRec idea, small). A one-layer GRU runs over
the vectors of the last ``window`` items (oldest first) and adds a learnt correction to the last
item's vector: ``q = normalise(v_last + W_out h + b_out)``. The correction starts at zero, so an
untrained model *is* last-item text similarity, and training moves it only where the shops agree.

Prediction is plain numpy (no torch threads at scoring time); training is in
:mod:`rectransfer.evaluation.next_item_net`, the measurement in
:mod:`rectransfer.evaluation.next_item_probe`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rectransfer.data.histories import Histories
from rectransfer.errors import ConfigError

WINDOW = 8  # items read per customer, newest last


@dataclass(frozen=True)
class NextItemTraining:
    """How the model is trained (the defaults are those measured in ``docs/BENCHMARKS.md``).

    Each step draws one shop (in proportion to its examples) and a batch of its examples; the
    loss is a softmax of the true next item against negatives of that same shop, so the model
    learns what follows what within a catalogue, not which catalogue an item comes from.
    """

    steps: int = 800
    max_epochs: float = 5.0  # passes over the examples at most: fewer steps on a small shop
    batch: int = 512
    uniform_negatives: int = 512  # items drawn uniformly per batch; 0: the whole catalogue
    in_batch_negatives: bool = False  # the batch's other targets too (popularity-weighted)
    hard_negatives: int = 0  # per example, the last item's nearest items by text
    hidden: int = 128
    learning_rate: float = 2e-3
    max_examples_per_shop: int = 100_000

    def __post_init__(self) -> None:
        least = dict.fromkeys(("steps", "batch", "hidden", "max_examples_per_shop"), 1)
        least |= dict.fromkeys(("uniform_negatives", "hard_negatives"), 0)
        for name, low in least.items():
            if getattr(self, name) < low:
                raise ConfigError(
                    f"NextItemTraining.{name} must be >= {low}, got {getattr(self, name)!r}."
                )
        if not self.max_epochs > 0:
            raise ConfigError(f"NextItemTraining.max_epochs must be > 0, got {self.max_epochs!r}.")

    def to_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)


@dataclass(frozen=True)
class NextItemModel:
    """The trained weights (numpy, torch's names) of the input projection, GRU and correction."""

    weights: dict[str, np.ndarray]
    window: int = WINDOW

    def predict(self, context: Histories, rows: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Unit next-item vectors (float32, ``len(rows) x d``); zero rows for empty histories."""
        window = windows(context, np.asarray(rows, dtype=np.int64), self.window)
        return self.predict_windows(window, vectors)

    def predict_windows(self, window: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """As :meth:`predict`, from item windows (``n x window``, oldest first, -1 padding)."""
        w = self.weights
        x = np.where((window >= 0)[..., None], vectors[np.maximum(window, 0)], 0.0)
        x = x.astype(np.float32) @ w["inp.weight"].T + w["inp.bias"]  # (n, window, hidden)
        h = np.zeros((len(window), w["gru.weight_hh_l0"].shape[1]), dtype=np.float32)
        w_ir, w_iz, w_in = np.split(w["gru.weight_ih_l0"], 3)
        w_hr, w_hz, w_hn = np.split(w["gru.weight_hh_l0"], 3)
        b_ir, b_iz, b_in = np.split(w["gru.bias_ih_l0"], 3)
        b_hr, b_hz, b_hn = np.split(w["gru.bias_hh_l0"], 3)
        for t in range(window.shape[1]):  # torch.nn.GRU's equations, gates in its order
            xt = x[:, t]
            r = _sigmoid(xt @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
            z = _sigmoid(xt @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
            n = np.tanh(xt @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
            h = (1.0 - z) * n + z * h
        last = window[:, -1]
        q = np.where((last >= 0)[:, None], vectors[np.maximum(last, 0)], 0.0)
        q = q + h @ w["out.weight"].T + w["out.bias"]
        q[last < 0] = 0.0
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        return np.divide(q, norms, out=np.zeros_like(q), where=norms > 0).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def windows(context: Histories, rows: np.ndarray, width: int = WINDOW) -> np.ndarray:
    """Each customer's last ``width`` items, oldest first, -1 padding in front.

    Examples
    --------
    >>> h = Histories(np.array([0, 3, 3]), np.array([4, 5, 6], np.int32), np.zeros(3, np.int64), 7)
    >>> windows(h, np.array([0, 1]), 4).tolist()
    [[-1, 4, 5, 6], [-1, -1, -1, -1]]
    """
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for back in range(width):
        out[:, width - 1 - back] = context.last(back, rows=rows)
    return out


def training_examples(
    histories: Histories, *, max_examples: int, rng: np.random.Generator, width: int = WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """(windows, targets): every item after a customer's first, with the items before it.

    Sampled (seeded) down to ``max_examples``. An item already in its window is not a target:
    recommendations never repeat the history.

    Examples
    --------
    >>> h = Histories(np.array([0, 3]), np.array([4, 5, 4], np.int32), np.zeros(3, np.int64), 7)
    >>> w, t = training_examples(h, max_examples=10, rng=np.random.default_rng(0), width=2)
    >>> w.tolist(), t.tolist()
    ([[-1, 4]], [5])
    """
    lengths = histories.lengths
    start = np.repeat(histories.indptr[:-1], lengths)
    events = np.flatnonzero(np.arange(len(histories.items)) - start >= 1)
    if len(events) > max_examples:
        events = np.sort(rng.choice(events, max_examples, replace=False))
    at = events[:, None] + np.arange(-width, 0)[None, :]
    window = np.where(at >= start[events][:, None], histories.items[np.maximum(at, 0)], -1)
    target = histories.items[events].astype(np.int64)
    fresh = ~(window == target[:, None]).any(axis=1)
    return window[fresh].astype(np.int64), target[fresh]
