"""The shared concurrency helpers: order kept, calls in flight bounded, errors raised where results are read."""

from __future__ import annotations

import threading
import time

import pytest

from dynamoguard.concurrency import bounded_map, ordered_map, together


def test_ordered_map_keeps_the_input_order_and_bounds_the_calls_in_flight():
    lock, running, most = threading.Lock(), [0], [0]

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (i % 5))  # later items often finish first
        with lock:
            running[0] -= 1
        return i * i

    assert list(ordered_map(work, ((i,) for i in range(60)), workers=4)) == [i * i for i in range(60)]
    assert most[0] <= 4
    assert sorted(bounded_map(work, ((i,) for i in range(20)), workers=3)) == [i * i for i in range(20)]


def test_ordered_map_raises_the_error_of_a_call():
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("item 3")
        return i

    results = ordered_map(work, ((i,) for i in range(10)), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(results)


def test_together_runs_the_calls_at_once_and_returns_their_results_in_order():
    barrier = threading.Barrier(2, timeout=5)  # each call waits for the other: only concurrent calls finish

    def first() -> str:
        barrier.wait()
        return "a"

    def second() -> str:
        barrier.wait()
        return "b"

    assert together(first, second) == ["a", "b"]
    with pytest.raises(KeyError):
        together(lambda: 1, lambda: {}["missing"])
