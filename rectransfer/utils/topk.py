"""Row-wise top-k of dense score blocks.

``torch.topk`` selects in parallel over rows and is 10-20x faster than numpy's ``argpartition``
on catalogue-wide rows (50,000 columns); torch is already here for the text encoder.
"""

from __future__ import annotations

import numpy as np


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions (int64) and values of each row's ``k`` highest scores, best first.

    Equal scores are ordered by the lower column position. Which of several scores tied at the
    ``k``-th place is kept is the selection's choice (the same for the same input, like numpy's
    ``argpartition``). ``k`` is clipped to the row length.
    """
    import torch  # here, not at import: `import rectransfer` stays light

    scores = np.ascontiguousarray(scores, dtype=np.float32)
    k = max(min(k, scores.shape[1]), 0)
    if k == 0 or scores.shape[0] == 0:
        return np.zeros((scores.shape[0], k), np.int64), np.zeros((scores.shape[0], k), np.float32)
    values, positions = torch.topk(torch.from_numpy(scores), k, dim=1, sorted=False)
    top_values, top_positions = values.numpy(), positions.numpy()
    order = np.lexsort((top_positions, -top_values), axis=1)
    return (
        np.take_along_axis(top_positions, order, axis=1),
        np.take_along_axis(top_values, order, axis=1),
    )


def descending_ranks_in_runs(runs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based rank (int64) of each value within its run of equal consecutive ``runs``.

    Highest first, equal values in their order, NaN after every number: what a stable sort by
    ``(runs, -values)`` gives when equal ``runs`` are contiguous. Each run is sorted on its own
    row of a padded block, a few times faster than one ``lexsort`` over all pairs.

    Examples
    --------
    >>> descending_ranks_in_runs(np.array([4, 4, 4, 7, 7]), np.array([0.2, 0.9, 0.2, 1.0, 3.0]))
    array([2, 1, 3, 2, 1])
    """
    n = len(runs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    sizes = np.diff(np.r_[starts, n])
    run = np.repeat(np.arange(len(starts)), sizes)
    slot = np.arange(n) - starts[run]
    if len(starts) * int(sizes.max()) > 4 * n + 4096:  # runs of very unequal length: no padding
        order = np.lexsort((-values, run))
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = slot + 1  # sorted by run, each run's rows take its slots in order
        return ranks
    # NaN pads each row: a stable sort leaves the padding after the run's own values, NaN included
    block = np.full(
        (len(starts), int(sizes.max())), np.nan, dtype=np.result_type(values, np.float32)
    )
    block[run, slot] = -values
    order = np.argsort(block, axis=1, kind="stable")
    ranks = np.empty(block.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, np.arange(1, block.shape[1] + 1)[None, :], axis=1)
    return ranks[run, slot]
