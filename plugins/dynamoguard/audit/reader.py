"""Stream CloudTrail log files and send each record to the rules for its ``(eventSource, eventName)``.

A log file is a gzip of one JSON object ``{"Records": [...]}``. Each file is decompressed in 1 MiB
chunks through zlib (from an S3 body or a local file). The fast path (:mod:`dynamoguard.audit.screen`)
then reads only each record's head and parses in full, with orjson, the records a rule may match; the
plain path (``fast=False``) parses every record. Both give the same findings. A file that cannot be
read (truncated gzip, trailing garbage, bad JSON, no ``Records`` list) and records missing required
fields become ``unreadable-log`` findings naming the object; the other files and records are still
audited. Counts say what was listed, read, matched and parsed, so nothing is dropped silently.

Findings of ``grouped`` rules (reads of a protected table by a principal not allowed) are one per
principal, table and outcome per audit unit, with a count; above ``max_reads_per_hour`` they are high.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from dynamoguard.audit import screen
from dynamoguard.audit.context import Context
from dynamoguard.audit.findings import Finding, lower, rank
from dynamoguard.audit.records import is_network_copy
from dynamoguard.audit.registry import REGISTRY, evaluate
from dynamoguard.audit.rules import RULES
from dynamoguard.concurrency import ordered_map

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
    records_parsed: int = 0
    bytes_read: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


GROUPED = frozenset(r.id for r in RULES if r.grouped)


@dataclass
class LogResult:
    counts: Counts = field(default_factory=Counts)
    findings: list[Finding] = field(default_factory=list)
    groups: dict[tuple, list] = field(default_factory=dict)  # grouped findings: key -> [first, count, names, last]

    def add(self, found: list[Finding]) -> None:
        for finding in found:
            if finding.rule not in GROUPED:
                self.findings.append(finding)
                continue
            key = (finding.rule, finding.principal, finding.table, finding.outcome, finding.account, finding.region)
            group = self.groups.get(key)
            if group is None:
                self.groups[key] = [finding, 1, {finding.event_name: 1}, finding.event_time]
                continue
            names = group[2]
            group[0] = _keep_worst(finding, group[0])
            group[1] += 1
            names[finding.event_name] = names.get(finding.event_name, 0) + 1
            group[3] = max(group[3] or "", finding.event_time or "") or None

    def merge(self, other: LogResult) -> None:
        self.counts.add(other.counts)
        self.findings.extend(other.findings)
        for key, (first, count, names, last) in other.groups.items():
            group = self.groups.get(key)
            if group is None:
                self.groups[key] = [first, count, dict(names), last]
                continue
            group[0] = _keep_worst(first, group[0])
            group[1] += count
            for name, n in names.items():
                group[2][name] = group[2].get(name, 0) + n
            group[3] = max(group[3] or "", last or "") or None

    def all_findings(self, ctx: Context) -> list[Finding]:
        """The findings, grouped ones as one per group with its count (high above ``max_reads_per_hour``)."""
        out = list(self.findings)
        for first, count, names, last in self.groups.values():
            severity = first.severity
            if count > ctx.max_reads_per_hour:
                volume = "high" if first.outcome != "denied" else lower("high")
                severity = volume if rank(volume) < rank(severity) else severity
            out.append(replace(first, severity=severity, detail={
                **first.detail, "count": count, "event_names": dict(sorted(names.items())),
                "last_event_time": last, "max_per_hour": ctx.max_reads_per_hour}))
        return out


def _keep_worst(a: Finding, b: Finding) -> Finding:
    """Of two findings of one group, the more severe; the earlier at equal severity."""
    key_a = (rank(a.severity), a.event_time or "", a.event_id or "")
    key_b = (rank(b.severity), b.event_time or "", b.event_id or "")
    return a if key_a <= key_b else b


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
            result.add(evaluate(record, rules, ctx, key))
    counts.records_read += len(records)
    counts.records_parsed += len(records)
    counts.records_matched += matched
    counts.records_invalid += bad
    _report_invalid(key, result, bad, bad_first)


def _report_invalid(key: str, result: LogResult, bad: int, bad_first: int | None) -> None:
    if bad:
        result.findings.append(unreadable(
            key, f"{bad} record(s) missing {sorted(REQUIRED_FIELDS)} or not objects",
            first_bad_record=bad_first, bad_records=bad))


def audit_screened(data: bytes | bytearray, key: str, ctx: Context, result: LogResult, registry=REGISTRY) -> bool:
    """The fast path over a decompressed log file: False (nothing recorded) if the file is not a well-formed
    log, which the plain path then reports."""
    if not data.isascii():
        try:
            bytes(data).decode("utf-8")  # msgspec skips the strings it does not decode; orjson would reject
        except UnicodeDecodeError:
            return False
    try:
        raws = screen.split_records(data).Records
    except screen.HEAD_ERRORS:
        return False
    lookup, screens = registry.get, screen.screens_by_key(registry)
    decode_head, loads = screen.decode_head, orjson.loads
    local = LogResult()
    bad_first, bad = None, 0
    matched = parsed = 0
    for index, raw in enumerate(raws):
        try:
            head = decode_head(raw)
            complete = not (head.eventSource is None or head.eventName is None or head.eventTime is None
                            or head.eventID is None)
        except screen.HEAD_ERRORS:
            complete = False
        if complete:
            pair = (head.eventSource, head.eventName)
            rules = lookup(pair)
            if not rules:
                continue
            matched += 1
            if head.eventCategory == "NetworkActivity" or head.eventType == "AwsVpceEvent":
                continue
            checks = screens.get(pair)
            if checks is not None and not any(check(head, ctx) for check in checks):
                continue
        try:
            record = loads(memoryview(raw))
        except orjson.JSONDecodeError:
            return False
        parsed += 1
        try:
            if not record.keys() >= REQUIRED_FIELDS:
                raise TypeError
            rules = lookup((record["eventSource"], record["eventName"]))
        except (AttributeError, TypeError):
            bad += 1
            if bad_first is None:
                bad_first = index
            continue
        if not complete and rules:
            matched += 1
        if rules and not is_network_copy(record):
            local.add(evaluate(record, rules, ctx, key))
    local.counts.records_read = len(raws)
    local.counts.records_matched = matched
    local.counts.records_parsed = parsed
    local.counts.records_invalid = bad
    _report_invalid(key, local, bad, bad_first)
    result.merge(local)
    return True


def audit_stream(stream: BinaryIO, key: str, ctx: Context, registry=REGISTRY, fast: bool = True) -> LogResult:
    """Audit one log file read from ``stream`` (an S3 body or a local file)."""
    result = LogResult()
    result.counts.files_listed = 1
    try:
        data = gunzip_stream(stream)
    except UnreadableLog as exc:
        result.counts.files_unreadable = 1
        result.findings.append(unreadable(key, str(exc)))
        return result
    if not (fast and audit_screened(data, key, ctx, result, registry)):
        try:
            records = parse_records(data)
        except UnreadableLog as exc:
            result.counts.files_unreadable = 1
            result.findings.append(unreadable(key, str(exc)))
            return result
        audit_records(records, key, ctx, result, registry)
    result.counts.files_read = 1
    result.counts.bytes_read = len(data)
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


def audit_objects(s3, bucket: str, keys: list[str], ctx: Context, max_workers: int = 32,
                  fast: bool = True) -> LogResult:
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

    for key, fetched in zip(keys, ordered_map(fetch, ((key,) for key in keys), max_workers, "audit-get"),
                            strict=True):
        total.merge(fetched if isinstance(fetched, LogResult) else audit_stream(_Bytes(fetched), key, ctx, fast=fast))
    return total
