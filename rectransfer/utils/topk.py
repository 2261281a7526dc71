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
