"""Stream CloudTrail log files, parse them with orjson and send each record to its rules.

A log file is a gzip of one JSON object ``{"Records": [...]}``. Each file is decompressed in
1 MiB chunks through zlib (from an S3 body or a local file), parsed once with orjson, and every
record goes only to the rules registered for its ``(eventSource, eventName)``. A file that cannot
be read (truncated gzip, trailing garbage, bad JSON, no ``Records`` list) and records missing
required fields become ``unreadable-log`` findings naming the object; the other files and records
are still audited. Counts say what was listed, read and matched, so nothing is dropped silently.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from dynamoguard.audit.findings import Finding
from dynamoguard.audit.rules import REGISTRY, Context, evaluate

CHUNK = 1 << 20
REQUIRED_FIELDS = frozenset({"eventSource", "eventName", "eventTime", "eventID"})


class UnreadableLog(ValueError):
    """A log (or digest) object that is not a complete gzip of a JSON document."""


def iter_gunzip(stream: BinaryIO, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Decompressed pieces of every member of a gzip stream, read ``chunk_size`` at a time.

    UnreadableLog if the stream is empty, cut short, or has bytes after the last member
    (as ``aws cloudtrail validate-logs`` does)."""
    decompressor = zlib.decompressobj(wbits=31)
    chunk = stream.read(chunk_size)
    if not chunk:
        raise UnreadableLog("empty object")
    while chunk:
        try:
            yield decompressor.decompress(chunk)
        except zlib.error as exc:
            raise UnreadableLog(f"not a valid gzip stream ({exc})") from None
        if decompressor.eof:
            chunk = decompressor.unused_data or stream.read(chunk_size)
            if chunk:
                decompressor = zlib.decompressobj(wbits=31)
            continue
        chunk = stream.read(chunk_size)
    if not decompressor.eof:
        raise UnreadableLog("truncated gzip stream (ends before the end of a member)")


def gunzip_stream(stream: BinaryIO, chunk_size: int = CHUNK) -> bytearray:
    """The whole decompressed content of a gzip stream (see :func:`iter_gunzip`)."""
    out = bytearray()
    for piece in iter_gunzip(stream, chunk_size):
        out += piece
    return out


def parse_records(data: bytes | bytearray) -> list:
    """The ``Records`` list of a decompressed log file."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UnreadableLog(f"not valid JSON ({exc})") from None
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise UnreadableLog('not a CloudTrail log file (no "Records" list)')
    return records


@dataclass
class Counts:
    files_listed: int = 0
    files_read: int = 0
    files_unreadable: int = 0
    records_read: int = 0
    records_matched: int = 0
    records_invalid: int = 0
    bytes_read: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class LogResult:
    counts: Counts = field(default_factory=Counts)
    findings: list[Finding] = field(default_factory=list)


def unreadable(key: str, reason: str, **detail) -> Finding:
    return Finding(severity="medium", rule="unreadable-log", title="CloudTrail log file could not be read",
                   resource=key, log_key=key, detail={"reason": reason, **detail})


def audit_records(records: list, key: str, ctx: Context, result: LogResult, registry=REGISTRY) -> None:
    """Send every record to the rules for its (eventSource, eventName); count what was read and matched."""
    counts = result.counts
    required = REQUIRED_FIELDS
    lookup = registry.get
    bad_first, bad = None, 0
    matched = 0
    for index, record in enumerate(records):
        try:
            if not record.keys() >= required:
                raise TypeError
            rules = lookup((record["eventSource"], record["eventName"]))
        except (AttributeError, TypeError):
            bad += 1
            if bad_first is None:
                bad_first = index
            continue
        if rules:
            matched += 1
            result.findings.extend(evaluate(record, rules, ctx, key))
    counts.records_read += len(records)
    counts.records_matched += matched
    counts.records_invalid += bad
    if bad:
        result.findings.append(unreadable(
            key, f"{bad} record(s) missing {sorted(REQUIRED_FIELDS)} or not objects",
            first_bad_record=bad_first, bad_records=bad))


def audit_stream(stream: BinaryIO, key: str, ctx: Context, registry=REGISTRY) -> LogResult:
    """Audit one log file read from ``stream`` (an S3 body or a local file)."""
    result = LogResult()
    result.counts.files_listed = 1
    try:
        data = gunzip_stream(stream)
        records = parse_records(data)
    except UnreadableLog as exc:
        result.counts.files_unreadable = 1
        result.findings.append(unreadable(key, str(exc)))
        return result
    result.counts.files_read = 1
    result.counts.bytes_read = len(data)
    del data
    audit_records(records, key, ctx, result, registry)
    return result


class _Bytes:
    """A read-only stream over bytes already in memory (no copy)."""

    def __init__(self, data: bytes):
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._pos + size
        piece = self._view[self._pos:end]
        self._pos += len(piece)
        return piece


def audit_objects(s3, bucket: str, keys: list[str], ctx: Context, max_workers: int = 32) -> LogResult:
    """Audit the log objects ``keys`` of ``bucket``.

    Up to ``max_workers`` GETs run at once and at most twice that many compressed bodies wait in
    memory; each file is decompressed, parsed and audited in the calling thread, one at a time (parsing
    holds the GIL anyway), so memory stays near one file's worth whatever the number of files."""
    total = LogResult()

    def fetch(key: str) -> bytes | LogResult:
        try:
            with s3.get_object(Bucket=bucket, Key=key)["Body"] as body:
                return body.read()
        except (ClientError, BotoCoreError) as exc:  # vanished or unreadable after retries: say so, keep going
            failed = LogResult()
            failed.counts.files_listed = failed.counts.files_unreadable = 1
            failed.findings.append(unreadable(key, f"cannot fetch object ({exc})"))
            return failed

    def consume(key: str, future) -> None:
        fetched = future.result()
        result = fetched if isinstance(fetched, LogResult) else audit_stream(_Bytes(fetched), key, ctx)
        total.counts.add(result.counts)
        total.findings.extend(result.findings)

    workers = max(1, max_workers)
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for key in keys:
            pending.append((key, pool.submit(fetch, key)))
            if len(pending) >= 2 * workers:
                consume(*pending.popleft())
        while pending:
            consume(*pending.popleft())
    return total
