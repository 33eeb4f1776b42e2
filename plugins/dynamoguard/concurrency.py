"""The one place for concurrent work: a read-ahead iterator, bounded thread maps (unordered and ordered) and
two or more calls at once.

Memory stays flat whatever the size of the input: ``prefetch`` holds at most ``size`` items ahead of the
consumer, ``bounded_map`` and ``ordered_map`` at most ``2 * workers`` calls in flight.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

_END = object()


def prefetch(items: Iterable[Any], size: int = 2000, name: str = "prefetch") -> Iterator[Any]:
    """``items``, produced on a background thread at most ``size`` ahead, so that the next listing page is
    fetched while the objects of the current one are being worked on. Errors are re-raised here."""
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put(error)

    thread = threading.Thread(target=produce, daemon=True, name=name)
    thread.start()
    try:
        while (item := buffer.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def bounded_map(fn: Callable[..., Any], items: Iterable[tuple], workers: int,
                thread_name_prefix: str = "") -> Iterator[Any]:
    """``fn(*item)`` for each item on ``workers`` threads, at most ``2 * workers`` in flight (results unordered)."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix) as pool:
        running: set[Future] = {pool.submit(fn, *item) for item in itertools.islice(items, 2 * workers)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
            running |= {pool.submit(fn, *item) for item in itertools.islice(items, len(done))}


def ordered_map(fn: Callable[..., Any], items: Iterable[tuple], workers: int,
                thread_name_prefix: str = "") -> Iterator[Any]:
    """``fn(*item)`` for each item on ``workers`` threads, results in the order of ``items``, at most
    ``2 * workers`` calls in flight (a slow call holds back the results after it, not the work)."""
    items = iter(items)
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix) as pool:
        pending = deque(pool.submit(fn, *item) for item in itertools.islice(items, 2 * workers))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(fn, *item) for item in itertools.islice(items, 1))
            yield result


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at the same time, one thread each; their results in order (the first error is raised)."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]
