"""Training the next-item model of :mod:`rectransfer.evaluation.next_item_model` in torch.

Only :mod:`rectransfer.evaluation.next_item_probe` imports this module (torch comes with it, so
``import rectransfer`` stays light).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from rectransfer.data.histories import Histories
from rectransfer.errors import ConfigError
from rectransfer.evaluation.next_item_model import (
    NextItemModel,
    NextItemTraining,
    training_examples,
)


class NextItemNet(nn.Module):
    """``normalise(v_last + out(GRU(inp(window))))``; ``out`` starts at zero (see the model)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))  # softmax temperature

    def forward(self, window_vectors: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.inp(window_vectors))
        return nn.functional.normalize(last + self.out(h[-1]), dim=-1)

    def to_model(self) -> NextItemModel:
        state = {k: v for k, v in self.state_dict().items() if k != "log_scale"}
        return NextItemModel({k: v.detach().numpy().astype(np.float32) for k, v in state.items()})


def gather(vectors: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``vectors`` at ``index``, zero where the index is -1."""
    out = vectors[index.clamp(min=0)]
    return out * (index >= 0).unsqueeze(-1).to(out.dtype)


def nearest_items(vectors: np.ndarray, k: int) -> np.ndarray:
    """Each item's ``k`` nearest other items by text (int64, ``n x k``; needs ``n > k``)."""
    out = np.zeros((len(vectors), k), dtype=np.int64)
    for s in range(0, len(vectors), 4096):
        sims = vectors[s : s + 4096] @ vectors.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -np.inf
        out[s : s + 4096] = np.argpartition(-sims, k, axis=1)[:, :k]
    return out


def train_next_item(
    shops: Sequence[tuple[Histories, np.ndarray]],
    training: NextItemTraining | None = None,
    *,
    random_state: int = 0,
    start: NextItemModel | None = None,
) -> NextItemModel:
    """Learn the model from shops' (histories, unit item vectors), from scratch or continuing
    from ``start`` (fine-tuning a model learnt elsewhere; same dimensions).

    Pass histories without the items a later evaluation predicts: the model learns from every
    item of the histories it is given.
    """
    t = training or NextItemTraining()
    rng = np.random.default_rng(random_state)
    torch.manual_seed(random_state)
    data = []
    for histories, vectors in shops:
        window, target = training_examples(histories, max_examples=t.max_examples_per_shop, rng=rng)
        if len(target) == 0:
            continue
        unit = np.ascontiguousarray(vectors, dtype=np.float32)
        near = None
        if t.hard_negatives:
            near = torch.from_numpy(nearest_items(unit, min(t.hard_negatives, len(unit) - 1)))
        data.append((window, target, torch.from_numpy(unit), near))
    if not data:
        raise ConfigError(
            "the next-item model has nothing to learn from: no shop given has a customer with two "
            "or more items (after leaving out the items held back); give it shops with histories."
        )
    net = NextItemNet(int(data[0][2].shape[1]), t.hidden)
    if start is not None:
        weights = {k: torch.from_numpy(v) for k, v in start.weights.items()}
        net.load_state_dict(weights | {"log_scale": net.log_scale.detach()})
    examples = np.array([len(target) for _, target, _, _ in data], dtype=np.float64)
    share = examples / examples.sum()
    optimiser = torch.optim.AdamW(net.parameters(), lr=t.learning_rate, weight_decay=1e-4)
    steps = min(t.steps, math.ceil(t.max_epochs * examples.sum() / t.batch))
    for _ in range(steps):
        window, target, items, near = data[int(rng.choice(len(data), p=share))]
        pick = rng.integers(0, len(target), min(t.batch, len(target)))
        win, tgt = torch.from_numpy(window[pick]), torch.from_numpy(target[pick])
        if t.uniform_negatives:
            negatives = torch.from_numpy(rng.integers(0, len(items), t.uniform_negatives))
        else:
            negatives = torch.arange(len(items))
        if t.in_batch_negatives:
            negatives = torch.cat([tgt, negatives])
        q = net(gather(items, win), gather(items, win[:, -1]))
        logits = [(q * items[tgt]).sum(dim=1, keepdim=True), q @ items[negatives].T]
        # a drawn item that is the example's own target is not a negative
        same = [torch.zeros(len(tgt), 1, dtype=torch.bool), negatives[None, :] == tgt[:, None]]
        if near is not None:
            hard = near[win[:, -1]]  # (batch, k)
            logits.append(torch.einsum("bd,bkd->bk", q, items[hard]))
            same.append(hard == tgt[:, None])
        scaled = net.log_scale.exp() * torch.cat(logits, dim=1)
        scaled = scaled.masked_fill(torch.cat(same, dim=1), float("-inf"))
        loss = nn.functional.cross_entropy(scaled, torch.zeros(len(tgt), dtype=torch.long))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.to_model()
