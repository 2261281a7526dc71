import threading
import time

import numpy as np
import pytest

from rectransfer.utils.parallel import map_in_threads
from rectransfer.utils.topk import top_k_rows


def test_map_in_threads_keeps_input_order_and_bounds_work_in_flight():
    lock = threading.Lock()
    running = peak = 0

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002 * (x % 3))  # finish out of order
        with lock:
            running -= 1
        return x * x

    assert list(map_in_threads(work, range(20), threads=3)) == [x * x for x in range(20)]
    assert 1 < peak <= 3


def test_one_thread_runs_in_the_calling_thread():
    caller = threading.get_ident()
    assert set(map_in_threads(lambda _: threading.get_ident(), range(4), threads=1)) == {caller}


def test_an_error_in_a_thread_reaches_the_caller():
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        list(map_in_threads(fail_on_three, range(6), threads=2))


@pytest.mark.parametrize("k", [1, 4, 9, 12])
def test_top_k_rows_keeps_the_k_best_ordered_ties_by_the_lower_column(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 5, size=(30, 9)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    positions, values = top_k_rows(scores, k)
    assert positions.shape == values.shape == (30, min(k, 9))
    for row, got, got_values in zip(scores, positions, values, strict=True):
        np.testing.assert_array_equal(got_values, np.sort(row)[::-1][:k])  # the k best values
        np.testing.assert_array_equal(row[got], got_values)
        assert len(set(got.tolist())) == len(got)
        # best first, equal values by the lower column
        assert (np.lexsort((got, -got_values)) == np.arange(len(got))).all()


def test_top_k_rows_of_nothing():
    positions, values = top_k_rows(np.zeros((0, 5), np.float32), 3)
    assert positions.shape == values.shape == (0, 3)
    positions, values = top_k_rows(np.zeros((2, 5), np.float32), 0)
    assert positions.shape == values.shape == (2, 0)
