"""Order-independent digests of DynamoDB items, from a table (parallel Scan) or an export's gzip files (streamed).

Memory stays bounded: only fixed-size digest buckets (and, to name mismatching keys, the items of a few
buckets) are held.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
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

    Per bucket: item count and the sum (mod 2**256) of the items' SHA-256 digests. Equal buckets mean equal
    items with overwhelming probability; a changed, missing or extra item changes its key's bucket.
    """

    def __init__(self, buckets: int):
        self.size = buckets
        self.sums = [0] * buckets
        self.counts = [0] * buckets
        self._lock = threading.Lock()

    def bucket_of(self, key_json: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(key_json, digest_size=8).digest(), "big") % self.size

    def add(self, batch: list[tuple[int, int]]) -> None:
        with self._lock:
            sums, counts = self.sums, self.counts
            for bucket, digest in batch:
                sums[bucket] = (sums[bucket] + digest) & _MASK
                counts[bucket] += 1

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def total(self) -> str:
        return f"{sum(self.sums) & _MASK:064x}"

    def differing(self, other: DigestBuckets) -> list[int]:
        return [b for b in range(self.size) if self.sums[b] != other.sums[b] or self.counts[b] != other.counts[b]]


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


def _keep_wire_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parse`` hook: hand over a Scan's items as sent on the wire (DynamoDB JSON, binary as
    base64, the export's spelling) under ``WireItems`` instead of having botocore convert each value."""
    if response_dict.get("status_code") == 200:
        body = orjson.loads(response_dict["body"])
        customized_response_dict["WireItems"] = body.pop("Items", [])
        response_dict["body"] = orjson.dumps(body)


@contextmanager
def wire_items(ddb) -> Iterator[None]:
    """While active, Scan responses of ``ddb`` carry ``WireItems`` (and no ``Items``): the digest needs no
    Python types, and botocore's per-value parsing would cost more than the digest itself."""
    ddb.meta.events.register("before-parse.dynamodb.Scan", _keep_wire_items, unique_id="dynamoguard-wire-items")
    try:
        yield
    finally:
        ddb.meta.events.unregister("before-parse.dynamodb.Scan", unique_id="dynamoguard-wire-items")


def digest_table(ddb, table: str, key_names: tuple[str, ...], buckets: DigestBuckets, *, segments: int,
                 only: set[int] | None = None, keyed: dict[bytes, int] | None = None) -> None:
    """Add every item of ``table`` to ``buckets`` (parallel scan of ``segments`` segments)."""
    def run(segment: int) -> None:
        local: dict[bytes, int] | None = {} if keyed is not None else None
        for page in scan_pages(ddb, table, segment, segments):
            items = page["WireItems"] if "WireItems" in page else page.get("Items", [])
            buckets.add(_digest_batch(items, key_names, buckets, only, local))
        if keyed is not None:
            with buckets._lock:
                keyed.update(local)

    with wire_items(ddb):
        list(bounded_map(run, [(segment,) for segment in range(segments)], segments))


def digest_export(s3, export: ExportRef, key_names: tuple[str, ...], buckets: DigestBuckets, *, workers: int,
                  only: set[int] | None = None, keyed: dict[bytes, int] | None = None,
                  changes: Mapping[bytes, dict[str, Any] | None] | None = None) -> dict[str, int]:
    """Add every item of the export's data files to ``buckets`` (files streamed concurrently); lines per file.

    ``changes`` (canonical key JSON -> item, None for deleted) replace the exported items of their keys: the
    digest is then the one of the export with those changes applied.
    """
    def run(key: str) -> tuple[str, int]:
        local: dict[bytes, int] | None = {} if keyed is not None else None
        lines = 0
        for batch in batched(export_items(s3, export.bucket, key), 1000):
            lines += len(batch)
            buckets.add(_digest_batch(batch, key_names, buckets, only, local, changes))
        if keyed is not None:
            with buckets._lock:
                keyed.update(local)
        return key, lines

    per_file = dict(bounded_map(run, [(key,) for key, _ in export.files], max(1, min(workers, len(export.files)))))
    if changes:
        buckets.add(_digest_batch([i for i in changes.values() if i is not None], key_names, buckets, only, keyed))
    return per_file


