"""Validation of a restored table against its export: every item by digest (``full``) or a sample read back by key."""

from __future__ import annotations

import base64
import hashlib
import heapq
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dynamoguard.concurrency import bounded_map, together
from dynamoguard.drills.digest import (
    DigestBuckets,
    batched,
    bucket_count,
    canonical_json,
    digest_export,
    digest_table,
    export_items,
    item_digest,
    item_key,
    scan_pages,
)
from dynamoguard.drills.restore_points import DEFAULT_WORKERS, ExportRef

DEFAULT_SEGMENTS = 8
MAX_REPORTED_KEYS = 20


@dataclass
class Validation:
    """What a validation checked and found."""

    mode: str
    items_expected: int
    items_restored: int = 0
    items_validated: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digest_restored: str | None = None
    digest_export: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["items_per_second"] = round(self.items_validated / self.seconds, 1) if self.seconds else None
        return data


def _key_from_json(key_json: bytes) -> dict[str, Any]:
    return orjson.loads(key_json)


def validate_full(ddb, s3, table: str, export: ExportRef, key_names: tuple[str, ...], *,
                  segments: int = DEFAULT_SEGMENTS, workers: int = DEFAULT_WORKERS,
                  max_keys: int = MAX_REPORTED_KEYS,
                  changes: Mapping[bytes, dict[str, Any] | None] | None = None) -> Validation:
    """Compare every restored item with every exported item, by digest; name up to ``max_keys`` differing keys.

    Pass 1 digests both sides concurrently into key buckets. Only if buckets differ, pass 2 re-reads the
    items of the first few differing buckets (per-key digests) to name the keys: ``changed``, ``missing``
    (in the export, not restored) or ``unexpected`` (restored, not in the export). ``changes`` (canonical key
    JSON -> item or None) are applied to the export first (incremental windows restored on top of it).
    """
    started = time.monotonic()
    result = Validation(mode="full", items_expected=export.item_count)
    restored, exported = DigestBuckets(bucket_count(export.item_count)), DigestBuckets(bucket_count(export.item_count))
    _, per_file = together(
        lambda: digest_table(ddb, table, key_names, restored, segments=segments),
        lambda: digest_export(s3, export, key_names, exported, workers=workers, changes=changes))
    if changes:
        result.items_expected = exported.count
        result.notes.append(f"{len(changes)} key(s) changed by incremental windows on top of the export")
    result.items_restored = restored.count
    result.items_validated = restored.count
    result.digest_restored, result.digest_export = restored.total, exported.total
    for key, expected in export.files:
        if per_file.get(key) != expected:
            result.problems.append(f"export file s3://{export.bucket}/{key} has {per_file.get(key)} items, "
                                   f"manifest says {expected}")
    if not changes and exported.count != export.item_count:
        result.problems.append(f"export data holds {exported.count} items, manifest itemCount {export.item_count}")
    if restored.count != result.items_expected:
        expected = "expected" if changes else "manifest itemCount"
        result.problems.append(f"restored table holds {restored.count} items, {expected} {result.items_expected}")
    differing = restored.differing(exported)
    if differing:
        result.problems.append(f"content differs from the export in {len(differing)} of {restored.size} key buckets")
        result.mismatches = _name_mismatches(ddb, s3, table, export, key_names, restored.size, differing,
                                             segments=segments, workers=workers, max_keys=max_keys, changes=changes)
    result.seconds = time.monotonic() - started
    return result


def _name_mismatches(ddb, s3, table: str, export: ExportRef, key_names: tuple[str, ...], size: int,
                     differing: list[int], *, segments: int, workers: int, max_keys: int,
                     changes: Mapping[bytes, dict[str, Any] | None] | None = None) -> list[dict[str, Any]]:
    only = set(differing[:max_keys])
    got: dict[bytes, int] = {}
    want: dict[bytes, int] = {}
    together(lambda: digest_table(ddb, table, key_names, DigestBuckets(size), segments=segments, only=only,
                                  keyed=got),
             lambda: digest_export(s3, export, key_names, DigestBuckets(size), workers=workers, only=only,
                                   keyed=want, changes=changes))
    found = []
    for key_json in sorted(set(got) | set(want)):
        if key_json not in got:
            found.append({"key": _key_from_json(key_json), "problem": "missing"})
        elif key_json not in want:
            found.append({"key": _key_from_json(key_json), "problem": "unexpected"})
        elif got[key_json] != want[key_json]:
            found.append({"key": _key_from_json(key_json), "problem": "changed"})
        if len(found) >= max_keys:
            break
    return found


def sample_keys(s3, export: ExportRef, key_names: tuple[str, ...], size: int, seed: str, *,
                workers: int = DEFAULT_WORKERS) -> tuple[list[dict[str, Any]], int]:
    """``size`` exported items chosen uniformly (the ``size`` smallest seeded hashes of their keys) and the
    number of items read; only ``size`` items per file are held at a time."""
    def run(key: str) -> tuple[list[tuple[bytes, bytes, dict[str, Any]]], int]:
        heap: list[tuple[bytes, bytes, dict[str, Any]]] = []
        lines = 0
        for item in export_items(s3, export.bucket, key):
            lines += 1
            key_json = canonical_json(item_key(item, key_names))
            rank = hashlib.sha256(seed.encode() + key_json).digest()
            entry = (_invert(rank), key_json, item)
            if len(heap) < size:
                heapq.heappush(heap, entry)
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, entry)
        return heap, lines

    chosen: list[tuple[bytes, bytes, dict[str, Any]]] = []
    read = 0
    for heap, lines in bounded_map(run, [(key,) for key, _ in export.files], max(1, min(workers, len(export.files)))):
        read += lines
        chosen = heapq.nlargest(size, chosen + heap, key=lambda e: e[0])
    return [item for _, _, item in sorted(chosen, key=lambda e: e[1])], read


def _invert(rank: bytes) -> bytes:
    """Reverse byte order of ranks so a min-heap keeps the smallest ranks."""
    return bytes(255 - b for b in rank)


def count_items(ddb, table: str, segments: int = DEFAULT_SEGMENTS) -> int:
    def run(segment: int) -> int:
        return sum(page["Count"] for page in scan_pages(ddb, table, segment, segments, Select="COUNT"))

    return sum(bounded_map(run, [(segment,) for segment in range(segments)], segments))


def _to_client_item(item: dict[str, Any]) -> dict[str, Any]:
    """An export-line key (binary as base64 text) in the form a boto3 client sends (binary as bytes)."""
    def value(v: dict[str, Any]) -> dict[str, Any]:
        for kind, data in v.items():
            if kind == "B":
                return {"B": base64.b64decode(data)}
            return v
        return v
    return {name: value(v) for name, v in item.items()}


def validate_sample(ddb, s3, table: str, export: ExportRef, key_names: tuple[str, ...], *, size: int, seed: str,
                    segments: int = DEFAULT_SEGMENTS, workers: int = DEFAULT_WORKERS,
                    max_keys: int = MAX_REPORTED_KEYS) -> Validation:
    """Count the restored items, then read back ``size`` exported items by key and compare them one by one."""
    started = time.monotonic()
    result = Validation(mode="sample", items_expected=export.item_count)
    result.items_restored, (items, read) = together(
        lambda: count_items(ddb, table, segments),
        lambda: sample_keys(s3, export, key_names, size, seed, workers=workers))
    if read != export.item_count:
        result.problems.append(f"export data holds {read} items, manifest itemCount {export.item_count}")
    if result.items_restored != export.item_count:
        result.problems.append(
            f"restored table holds {result.items_restored} items, manifest itemCount {export.item_count}")
    mismatches = []
    for batch in batched(items, 100):
        wanted = {canonical_json(item_key(i, key_names)): item_digest(i) for i in batch}
        request = {table: {"Keys": [_to_client_item(item_key(i, key_names)) for i in batch], "ConsistentRead": True}}
        got: dict[bytes, int] = {}
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table, []):
                got[canonical_json(item_key(item, key_names))] = item_digest(item)
            request = response.get("UnprocessedKeys") or {}
        for key_json, digest in wanted.items():
            if key_json not in got:
                mismatches.append({"key": _key_from_json(key_json), "problem": "missing"})
            elif got[key_json] != digest:
                mismatches.append({"key": _key_from_json(key_json), "problem": "changed"})
        result.items_validated += len(batch)
    if mismatches:
        result.problems.append(f"{len(mismatches)} of {len(items)} sampled items differ from the export")
        result.mismatches = mismatches[:max_keys]
    result.seconds = time.monotonic() - started
    return result

