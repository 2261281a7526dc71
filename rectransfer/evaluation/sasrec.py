"""A small SASRec network in torch (Kang & McAuley, 2018), the model behind the ``sasrec`` row.

Item ID embeddings plus learned positions, a few pre-norm blocks of causal self-attention and a
feed-forward layer, and a score for every catalogue item from the item embeddings themselves (tied
input and output). Trained on next-item prediction at every position of a customer's sequence with
full-softmax cross-entropy over the whole catalogue, as SASRec is usually trained today instead of
the paper's one sampled negative; catalogues of a small shop are small enough for that on a CPU.

Sequences are the customer's last ``max_length`` items, padded on the right, with positions
counted from the oldest item kept: the output at position ``t`` has seen exactly what scoring a
customer with ``t + 1`` items sees, and causal attention never reaches the padding on its right.

Only :mod:`rectransfer.evaluation.sequential` imports this module (torch is imported with it, so
``import rectransfer`` stays light); it owns the protocol, the seeds and the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rectransfer.data.histories import Histories

SCORE_BATCH = 512  # customers per forward pass when scoring
BUCKET = 20  # batches of similar lengths are made from runs of this many batches' windows


class SASRec(nn.Module):
    """Causal self-attention over a customer's item sequence; scores every catalogue item.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = SASRec(5, hidden=8, blocks=1, dropout=0.0, max_length=4).eval()
    >>> net.scores(torch.tensor([[0, 1, 5, 5]]), torch.tensor([2])).shape
    torch.Size([1, 5])
    """

    def __init__(
        self, n_items: int, *, hidden: int, blocks: int, dropout: float, max_length: int
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_length = max_length
        self.items = nn.Embedding(n_items + 1, hidden, padding_idx=n_items)  # last row: padding
        self.positions = nn.Embedding(max_length, hidden)
        nn.init.normal_(self.items.weight, std=hidden**-0.5)
        nn.init.normal_(self.positions.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.items.weight[n_items].zero_()
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)

    def states(self, sequences: torch.Tensor) -> torch.Tensor:
        """``(batch, length)`` item codes padded with ``n_items`` -> ``(batch, length, hidden)``."""
        length = sequences.shape[1]
        x = self.items(sequences) + self.positions(torch.arange(length))
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """``(..., hidden)`` states -> ``(..., n_items)`` scores: dot products with every item."""
        return states @ self.items.weight[: self.n_items].T

    def scores(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item after each sequence's last item (``lengths`` >= 1)."""
        states = self.states(sequences)
        last = states[torch.arange(len(lengths)), lengths - 1]
        return self.logits(last)


class _Block(nn.Module):
    """Pre-norm causal self-attention (one head) and a feed-forward layer, both residual."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.forward_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
        )
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.attention_norm(x)).chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attention_dropout if self.training else 0.0
        )
        x = x + self.dropout(self.out(attended))
        return x + self.dropout(self.feed_forward(self.forward_norm(x)))


class _FullSoftmaxLoss(torch.autograd.Function):
    """Mean cross-entropy of ``states @ weights.T`` against ``targets``, over the whole catalogue.

    What ``F.cross_entropy(states @ weights.T, targets)`` computes, with the ``positions x items``
    block written once and turned into the softmax in place, whose gradient is the softmax less
    the one-hot target: about 1.6x faster on a CPU, where that block's memory traffic is most of
    an epoch. Differentiates once (training's single backward pass reuses the block in place).
    """

    @staticmethod
    def forward(
        ctx: Any, states: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        block = states @ weights.T
        picked = block.gather(1, targets[:, None])
        top = block.amax(dim=1, keepdim=True)  # values only: much faster than max's indices
        total = block.sub_(top).exp_().sum(dim=1, keepdim=True)
        # log-sum-exp less the target's score, without the log of a probability that underflows
        loss = (total.log() + top - picked).mean()
        ctx.save_for_backward(states, weights, targets, block.div_(total))
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        states, weights, targets, softmax = ctx.saved_tensors
        softmax[torch.arange(len(targets)), targets] -= 1.0
        softmax.mul_(grad / len(targets))
        return softmax @ weights, softmax.T @ states, None


def full_softmax_loss(
    states: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over the whole catalogue of ``(positions, hidden)`` states against
    ``(items, hidden)`` item weights; ``targets`` are the items that came next.

    Examples
    --------
    >>> states, weights = torch.randn(3, 4), torch.randn(6, 4)
    >>> targets = torch.tensor([0, 5, 2])
    >>> expected = F.cross_entropy(states @ weights.T, targets)
    >>> bool(torch.isclose(full_softmax_loss(states, weights, targets), expected))
    True
    """
    return _FullSoftmaxLoss.apply(states, weights, targets)


def training_windows(histories: Histories, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets of every sequence with two or more items, right-padded.

    Each customer's last ``max_length + 1`` items give one row: the items but the last as input
    (padded with ``n_items``), the items but the first as the targets (padded with -100, which
    the loss ignores).

    Examples
    --------
    >>> h = Histories(np.array([0, 3, 4]), np.array([0, 1, 2, 3], dtype=np.int32),
    ...               np.zeros(4, dtype=np.int64), 5)
    >>> inputs, targets = training_windows(h, 4)
    >>> inputs.tolist(), targets.tolist()
    ([[0, 1, 5, 5]], [[1, 2, -100, -100]])
    """
    users = np.flatnonzero(histories.lengths >= 2)
    inputs = np.full((len(users), max_length), histories.n_items, dtype=np.int64)
    targets = np.full((len(users), max_length), -100, dtype=np.int64)
    for row, user in enumerate(users):
        window = histories.sequence(int(user))[-(max_length + 1) :]
        inputs[row, : len(window) - 1] = window[:-1]
        targets[row, : len(window) - 1] = window[1:]
    return inputs, targets


def train_epoch(
    net: SASRec,
    optimiser: torch.optim.Optimizer,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over the windows in seeded random batches; returns the mean training loss."""
    net.train()
    total, count = 0.0, 0
    for batch in _batches(targets, batch_size, rng):
        batch_targets = torch.from_numpy(targets[batch])
        # padding sits on the right: the batch needs only its longest sequence's columns
        width = int((batch_targets != -100).sum(dim=1).max())
        batch_targets = batch_targets[:, :width]
        states = net.states(torch.from_numpy(inputs[batch, :width]))
        real = batch_targets != -100
        # logits only where there is a next item: padding would cost a catalogue-wide row each
        loss = full_softmax_loss(states[real], net.items.weight[: net.n_items], batch_targets[real])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        n = int(real.sum())
        total += loss.item() * n
        count += n
    return total / max(count, 1)


def _batches(targets: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of windows of similar lengths, in random order.

    Windows are shuffled, sorted by length within runs of ``BUCKET`` batches and cut there: a
    batch pads to its longest window, and a few long histories would otherwise pad most batches
    to ``max_length``.
    """
    lengths = (targets != -100).sum(axis=1)
    order = rng.permutation(len(targets))
    run = BUCKET * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), run):
        part = order[start : start + run]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def score_histories(net: SASRec, histories: Histories, rows: np.ndarray) -> np.ndarray:
    """``(len(rows), n_items)`` scores of the next item after each customer's history.

    Customers with an empty history score 0 everywhere (every item ties).
    """
    net.eval()
    out = np.zeros((len(rows), histories.n_items), dtype=np.float32)
    lengths = np.minimum(histories.lengths[rows], net.max_length)
    for start in range(0, len(rows), SCORE_BATCH):
        block = np.arange(start, min(start + SCORE_BATCH, len(rows)))
        block = block[lengths[block] > 0]
        if len(block) == 0:
            continue
        width = int(lengths[block].max())
        sequences = np.full((len(block), width), histories.n_items, dtype=np.int64)
        for row, position in enumerate(block):
            n = lengths[position]
            sequences[row, :n] = histories.sequence(int(rows[position]))[-n:]
        with torch.inference_mode():
            scores = net.scores(torch.from_numpy(sequences), torch.from_numpy(lengths[block]))
        out[block] = scores.numpy()
    return out


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op thread count set to ``threads`` inside, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
