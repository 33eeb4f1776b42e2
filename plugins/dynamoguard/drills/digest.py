"""Order-independent digests of DynamoDB items, from a table (parallel Scan) or an export's gzip files (streamed).

Memory stays bounded by what is in flight, not by the table: the digest buckets are preallocated byte arrays
(no Python object per bucket outlives a page), at most :data:`PARSED_PAGES` Scan pages are held as Python
objects at a time, export lines are digested one by one as they are read, and on glibc the ~1 MB response
bodies bypass the per-thread heaps (:func:`bound_allocator`). To name mismatching keys, only the items of a
few buckets are kept.
"""

from __future__ import annotations

import base64
import ctypes
import functools
import gzip
import hashlib
import itertools
import platform
import re
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import orjson

from dynamoguard.concurrency import bounded_map
from dynamoguard.drills import DrillError
from dynamoguard.drills.restore_points import ExportRef

_PLAIN_INT = re.compile(r"-?[1-9][0-9]{0,37}|0")
_CONTEXT = Context(prec=60)
_MASK = (1 << 256) - 1
PARSED_PAGES = 1  # Scan pages held as Python objects at a time: parsing and digest are CPU-bound under the GIL


def _number(text: str) -> str:
    if _PLAIN_INT.fullmatch(text):
        return text
    try:
        value = _CONTEXT.normalize(Decimal(text))
    except InvalidOperation:
        return text
    return "0" if value.is_zero() else format(value, "f")


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value).decode() if isinstance(value, (bytes, bytearray)) else value


def _canon(value: dict[str, Any]) -> dict[str, Any]:
    for kind, data in value.items():
        if kind in ("S", "BOOL", "NULL"):
            return value
        if kind == "N":
            return {"N": _number(data)}
        if kind == "M":
            return {"M": {k: _canon(v) for k, v in data.items()}}
        if kind == "L":
            return {"L": [_canon(v) for v in data]}
        if kind == "SS":
            return {"SS": sorted(data)}
        if kind == "NS":
            return {"NS": sorted(_number(n) for n in data)}
        if kind == "B":
            return {"B": _b64(data)}
        if kind == "BS":
            return {"BS": sorted(_b64(b) for b in data)}
    return value


def canonical_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON with one spelling per value: sets sorted, numbers normalised, binary base64.

    Accepts both a boto3 client's item (binary as bytes) and an export line's item (binary as base64).
    """
    return {name: _canon(value) for name, value in item.items()}


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def item_key(item: dict[str, Any], key_names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _canon(item[name]) for name in key_names if name in item}


def item_digest(item: dict[str, Any]) -> int:
    """SHA-256 of the canonical item JSON, as an integer."""
    return int.from_bytes(hashlib.sha256(canonical_json(canonical_item(item))).digest(), "big")


class DigestBuckets:
    """Order-independent digest of a set of items, split into buckets by key.

    Per bucket: item count and the sum (mod 2**256) of the items' SHA-256 digests, kept in arrays allocated once
    (a Python int per bucket, re-created on every add, would pin the allocator's arenas between freed pages).
    Equal buckets mean equal items with overwhelming probability; a changed, missing or extra item changes its
    key's bucket.
    """

    def __init__(self, buckets: int):
        self.size = buckets
        self._sums = bytearray(32 * buckets)
        self._counts = array("Q", bytes(8 * buckets))
        self._lock = threading.Lock()

    def bucket_of(self, key_json: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(key_json, digest_size=8).digest(), "big") % self.size

    def add(self, batch: list[tuple[int, int]]) -> None:
        with self._lock:
            sums, counts = self._sums, self._counts
            for bucket, digest in batch:
                at = 32 * bucket
                sums[at:at + 32] = ((int.from_bytes(sums[at:at + 32], "big") + digest) & _MASK).to_bytes(32, "big")
                counts[bucket] += 1

    def _sum(self, bucket: int) -> bytes:
        return bytes(self._sums[32 * bucket:32 * bucket + 32])

    @property
    def count(self) -> int:
        return sum(self._counts)

    @property
    def total(self) -> str:
        return f"{sum(int.from_bytes(self._sum(b), 'big') for b in range(self.size)) & _MASK:064x}"

    def differing(self, other: DigestBuckets) -> list[int]:
        return [b for b in range(self.size)
                if self._sum(b) != other._sum(b) or self._counts[b] != other._counts[b]]


def bucket_count(item_count: int) -> int:
    """Enough buckets that a mismatching bucket holds few items; bounded so memory stays small."""
    return max(256, min(65536, item_count // 32))


def _digest_batch(items: Iterable[dict[str, Any]], key_names: tuple[str, ...], buckets: DigestBuckets,
                  only: set[int] | None, keyed: dict[bytes, int] | None,
                  skip: Mapping[bytes, Any] | None = None) -> list[tuple[int, int]]:
    batch = []
    sha256 = hashlib.sha256
    for item in items:
        canon = canonical_item(item)
        key_json = canonical_json({n: canon[n] for n in key_names if n in canon})
        if skip is not None and key_json in skip:
            continue
        bucket = buckets.bucket_of(key_json)
        if only is not None and bucket not in only:
            continue
        digest = int.from_bytes(sha256(canonical_json(canon)).digest(), "big")
        if keyed is not None:
            keyed[key_json] = digest
        batch.append((bucket, digest))
    return batch


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc mallopt parameters


@functools.cache
def bound_allocator() -> None:
    """glibc: allocate blocks of 256 KiB and more with mmap (given back on free) and use at most two heaps.

    By default glibc raises its mmap threshold to the largest block freed so far, so after the first Scan
    page the 1 MB bodies come from the heap of the thread that reads them, one heap per segment thread, and
    each heap keeps its high-water mark: the resident size then grows with the run (+66 MiB at 50,000 items,
    +42 MiB with two heaps). Process-wide and once per process (a drill's validation runs in its own task
    process); nothing elsewhere."""
    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return


def scan_pages(ddb, table: str, segment: int, total: int, **extra: Any) -> Iterator[dict[str, Any]]:
    """Pages of one parallel-scan segment (strongly consistent)."""
    kwargs: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": total,
                              "ConsistentRead": True, **extra}
    while True:
        page = ddb.scan(**kwargs)
        yield page
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def export_items(s3, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """The items of one export data file (gzip JSON Lines of ``{"Item": ...}``), streamed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with gzip.GzipFile(fileobj=body) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)["Item"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise DrillError(f"s3://{bucket}/{key} line {number}: not an export item line") from None


def batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for element in iterable:
        batch.append(element)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_page_sink = threading.local()


def _keep_wire_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parse`` hook: take a Scan's items as sent on the wire (DynamoDB JSON, binary as base64,
    the export's spelling) instead of having botocore convert each value. On a thread of :func:`digest_table` the
    items go straight to its digest; elsewhere they are handed over under ``WireItems``."""
    if response_dict.get("status_code") != 200:
        return
    consume: Callable[[bytes], dict[str, Any]] | None = getattr(_page_sink, "consume", None)
    if consume is None:
        body = orjson.loads(response_dict["body"])
        customized_response_dict["WireItems"] = body.pop("Items", [])
    else:
        body = consume(response_dict["body"])
    response_dict["body"] = orjson.dumps(body)


@contextmanager
def wire_items(ddb) -> Iterator[None]:
    """While active, Scan responses of ``ddb`` carry no ``Items`` (``WireItems`` instead, or digested on a
    :func:`digest_table` thread): the digest needs no Python types, and botocore's per-value parsing would cost
    more than the digest itself."""
    ddb.meta.events.register("before-parse.dynamodb.Scan", _keep_wire_items, unique_id="dynamoguard-wire-items")
    try:
        yield
    finally:
        ddb.meta.events.unregister("before-parse.dynamodb.Scan", unique_id="dynamoguard-wire-items")


def digest_table(ddb, table: str, key_names: tuple[str, ...], buckets: DigestBuckets, *, segments: int,
                 only: set[int] | None = None, keyed: dict[bytes, int] | None = None) -> None:
    """Add every item of ``table`` to ``buckets`` (parallel scan of ``segments`` segments).

    Each page is digested as botocore receives it, at most :data:`PARSED_PAGES` at a time: a 1 MB page is
    several MB of Python objects, while the other segments wait holding only their raw bodies."""
    bound_allocator()
    parsing = threading.BoundedSemaphore(PARSED_PAGES)

    def run(segment: int) -> None:
        local: dict[bytes, int] | None = {} if keyed is not None else None

        def consume(raw: bytes) -> dict[str, Any]:
            with parsing:
                body = orjson.loads(raw)
                buckets.add(_digest_batch(body.pop("Items", []), key_names, buckets, only, local))
            return body

        _page_sink.consume = consume
        try:
            for _ in scan_pages(ddb, table, segment, segments):
                pass
        finally:
            del _page_sink.consume
        if keyed is not None:
            with buckets._lock:
                keyed.update(local)

    with wire_items(ddb):
        list(bounded_map(run, [(segment,) for segment in range(segments)], segments))


def digest_export(s3, export: ExportRef, key_names: tuple[str, ...], buckets: DigestBuckets, *, workers: int,
                  only: set[int] | None = None, keyed: dict[bytes, int] | None = None,
                  changes: Mapping[bytes, dict[str, Any] | None] | None = None) -> dict[str, int]:
    """Add every item of the export's data files to ``buckets`` (files streamed concurrently, each line digested
    as it is read); lines per file.

    ``changes`` (canonical key JSON -> item, None for deleted) replace the exported items of their keys: the
    digest is then the one of the export with those changes applied.
    """
    def run(key: str) -> tuple[str, int]:
        local: dict[bytes, int] | None = {} if keyed is not None else None
        lines = 0

        def read() -> Iterator[dict[str, Any]]:
            nonlocal lines
            for item in export_items(s3, export.bucket, key):
                lines += 1
                yield item

        items = read()
        while True:
            before = lines
            buckets.add(_digest_batch(itertools.islice(items, 1000), key_names, buckets, only, local, changes))
            if lines == before:
                break
        if keyed is not None:
            with buckets._lock:
                keyed.update(local)
        return key, lines

    per_file = dict(bounded_map(run, [(key,) for key, _ in export.files], max(1, min(workers, len(export.files)))))
    if changes:
        buckets.add(_digest_batch([i for i in changes.values() if i is not None], key_names, buckets, only, keyed))
    return per_file


