"""Applying incremental windows onto a table: in window order, each window's lines concurrently.

A line with ``NewImage`` puts that image (a full replace), a line without deletes ``Keys``: replaying a window
gives the same table (idempotent), and applying a window onto the table as it was at any time inside the window
gives the table at the window's end. A window holds one line per key, so its lines go out in any order, 25 to a
BatchWriteItem, ``workers`` at a time; the next window starts when the previous one is written, which keeps each
key's changes in order.
"""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dynamoguard.concurrency import bounded_map, prefetch

BATCH = 25  # BatchWriteItem's limit
MAX_BACKOFF = 2.0


@dataclass
class ApplyStats:
    windows: int = 0
    puts: int = 0
    deletes: int = 0
    batches: int = 0
    retried: int = 0
    seconds: float = 0.0
    per_window: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def client_value(value: dict[str, Any]) -> dict[str, Any]:
    """An export-line attribute value (binary as base64 text) as a boto3 client sends it (binary as bytes)."""
    kind, data = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(data)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in data]}
    if kind == "M":
        return {"M": {k: client_value(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [client_value(v) for v in data]}
    return value


def client_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: client_value(value) for name, value in item.items()}


def window_lines(s3, bucket: str, data_keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The lines of one window's data files, streamed."""
    for key in data_keys:
        with gzip.GzipFile(fileobj=s3.get_object(Bucket=bucket, Key=key)["Body"]) as lines:
            for line in lines:
                if line.strip():
                    yield orjson.loads(line)


def write_request(line: dict[str, Any]) -> dict[str, Any]:
    """The BatchWriteItem request of one line: PutRequest of NewImage, or DeleteRequest of Keys."""
    if "NewImage" in line:
        return {"PutRequest": {"Item": client_item(line["NewImage"])}}
    return {"DeleteRequest": {"Key": client_item(line["Keys"])}}


def batch_write(ddb, table: str, requests: list[dict[str, Any]]) -> int:
    """One BatchWriteItem, retrying unprocessed items with backoff; how many retries it took."""
    retries, delay, pending = 0, 0.05, {table: requests}
    while pending:
        pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if pending:
            retries += 1
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
    return retries


def _batches(lines: Iterable[dict[str, Any]]) -> Iterator[tuple[list[dict[str, Any]]]]:
    batch: list[dict[str, Any]] = []
    for line in lines:
        batch.append(write_request(line))
        if len(batch) == BATCH:
            yield (batch,)
            batch = []
    if batch:
        yield (batch,)


def apply_window(ddb, table: str, lines: Iterable[dict[str, Any]], workers: int = 16) -> dict[str, int]:
    """Write one window's lines onto ``table``; counts of puts, deletes, batches and retries."""
    counts = {"puts": 0, "deletes": 0, "batches": 0, "retried": 0}

    def run(batch: list[dict[str, Any]]) -> tuple[int, int, int]:
        puts = sum("PutRequest" in r for r in batch)
        return puts, len(batch) - puts, batch_write(ddb, table, batch)

    # the files are read, parsed and batched on a read-ahead thread while the batches are written
    for puts, deletes, retried in bounded_map(run, prefetch(_batches(lines), size=4 * workers, name="apply-read"),
                                              workers):
        counts["puts"] += puts
        counts["deletes"] += deletes
        counts["batches"] += 1
        counts["retried"] += retried
    return counts


def apply_windows(ddb, s3, table: str, windows: Iterable[tuple[str, str, list[str]]], workers: int = 16
                  ) -> ApplyStats:
    """Apply ``windows`` (``(label, bucket, data keys)`` each, in window order) onto ``table``."""
    stats, started = ApplyStats(), time.monotonic()
    for label, bucket, data_keys in windows:
        counts = apply_window(ddb, table, window_lines(s3, bucket, data_keys), workers)
        stats.windows += 1
        stats.puts += counts["puts"]
        stats.deletes += counts["deletes"]
        stats.batches += counts["batches"]
        stats.retried += counts["retried"]
        stats.per_window.append({"window": label, **counts})
    stats.seconds = round(time.monotonic() - started, 3)
    return stats
