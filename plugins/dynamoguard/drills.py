"""Restore drills: restore a protected table into a scratch table, prove it equals an export, clean up.

Plain functions taking boto3 clients (no Airflow). The pieces:

* names and guard rails: :func:`scratch_table_name`, :func:`check_scratch_prefix`, :func:`deletion_refusal`
  (the one rule deciding whether a table may be deleted), :func:`delete_scratch_table`, :func:`sweep`;
* the restore point: :func:`latest_verified_export` finds the newest export whose manifest verifies;
* restores: :func:`start_pitr_restore`, :func:`start_import` (ImportTable from an export's ``data/`` prefix),
  :func:`import_problem` (FAILED or ErrorCount > 0, with AWS's message), :func:`tag_table`;
* validation: :func:`compare_schema`, :func:`validate_full` (order-independent digests of every restored item
  and every exported item, compared per key bucket so that mismatching keys can be named),
  :func:`validate_sample` (N keys picked uniformly from the export, read back one by one);
* :func:`drill_record`: the JSON record of one drill (RTO, RPO, items validated, items/s, problems).

Memory stays bounded: the table is scanned in parallel segments and the export's gzip files are streamed;
only fixed-size digest buckets (and, to name mismatching keys, the items of a few buckets) are held.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import heapq
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import orjson
from botocore.exceptions import ClientError

from dynamoguard import exports

TAG_DRILL = "dynamoguard:drill"
TAG_EXPIRES = "dynamoguard:expires-at"
TAG_SOURCE = "dynamoguard:source-table"

MAX_TABLE_NAME = 255
_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")
DEFAULT_WORKERS = 32
DEFAULT_SEGMENTS = 8
MAX_REPORTED_KEYS = 20


class DrillError(RuntimeError):
    """A drill cannot go on (bad input, failed restore); the message says what and where."""


# ----------------------------------------------------------------------------- names and guard rails


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | datetime) -> datetime:
    """An ISO-8601 time (``Z`` or offset; naive means UTC) as an aware datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def tag_value(text: str) -> str:
    """``text`` reduced to the characters DynamoDB allows in a tag value (at most 256)."""
    return _TAG_UNSAFE.sub("_", text)[:256]


def run_stamp(run_id: str, started: datetime) -> str:
    """Short, unique per run: start time to the second plus 8 hex characters of the run id."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{started.astimezone(timezone.utc):%Y%m%dT%H%M%S}-{digest}"


def scratch_table_name(prefix: str, table: str, run_id: str, started: datetime) -> str:
    """``<prefix><table>-<run stamp>``, shortening the table part if the whole would exceed 255 characters."""
    suffix = f"-{run_stamp(run_id, started)}"
    room = MAX_TABLE_NAME - len(prefix) - len(suffix)
    if room < 1:
        raise DrillError(f"drills.scratch_prefix {prefix!r} is too long to build a scratch table name")
    name = f"{prefix}{table[:room]}{suffix}"
    if not _TABLE_NAME.match(name):
        raise DrillError(f"scratch table name {name!r} is not a valid DynamoDB table name")
    return name


def check_scratch_prefix(prefix: str, protected: Iterable[str]) -> None:
    """Refuse a scratch prefix that could ever name a protected table."""
    if len(prefix) < 3 or not re.match(r"^[a-zA-Z0-9_.-]+$", prefix):
        raise DrillError(f"scratch prefix {prefix!r} must be at least 3 characters of [a-zA-Z0-9_.-]")
    clashing = sorted(name for name in protected if name.startswith(prefix))
    if clashing:
        raise DrillError(f"scratch prefix {prefix!r} matches protected tables {clashing}; refusing to run drills")


def name_refusal(name: str, *, prefix: str, protected: Iterable[str]) -> str | None:
    """Why no table called ``name`` may ever be deleted by a drill, or None if the name is a scratch name."""
    protected = set(protected)
    if len(prefix) < 3 or any(p.startswith(prefix) for p in protected):
        return f"scratch prefix {prefix!r} is unsafe (too short or matches a protected table)"
    if name in protected:
        return f"{name} is a protected table"
    if not name.startswith(prefix):
        return f"{name} does not start with the scratch prefix {prefix!r}"
    return None


def deletion_refusal(name: str, tags: dict[str, str], *, prefix: str, protected: Iterable[str],
                     run_id: str | None = None, now: datetime | None = None,
                     deletion_protection: bool = False) -> str | None:
    """Why ``name`` must NOT be deleted, or None when it provably is a drill's scratch table.

    A table may be deleted only if: the prefix cannot match a protected table; the name starts with the
    prefix and is not protected; it has no deletion protection; it carries a drill tag, and that tag is
    ``run_id``'s (cleanup of one run) or, when ``run_id`` is None (sweeper), its expiry tag is in the past.
    """
    refusal = name_refusal(name, prefix=prefix, protected=protected)
    if refusal:
        return refusal
    if deletion_protection:
        return f"{name} has deletion protection enabled"
    drill = tags.get(TAG_DRILL)
    if not drill:
        return f"{name} has no {TAG_DRILL} tag"
    if run_id is not None:
        if drill != tag_value(run_id):
            return f"{name} belongs to drill {drill!r}, not {tag_value(run_id)!r}"
        return None
    expires = tags.get(TAG_EXPIRES)
    try:
        expires_at = parse_time(expires) if expires else None
    except ValueError:
        expires_at = None
    if expires_at is None:
        return f"{name} has no valid {TAG_EXPIRES} tag"
    if expires_at > (now or utcnow()):
        return f"{name} expires at {iso(expires_at)}"
    return None


def table_tags(ddb, table_arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"ResourceArn": table_arn}
    while True:
        page = ddb.list_tags_of_resource(**kwargs)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def delete_scratch_table(ddb, name: str, *, prefix: str, protected: Iterable[str],
                         run_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Delete ``name`` if :func:`deletion_refusal` allows it; the result says what happened and why."""
    protected = list(protected)
    refusal = name_refusal(name, prefix=prefix, protected=protected)
    if refusal:
        return {"table": name, "deleted": False, "reason": refusal}
    try:
        table = ddb.describe_table(TableName=name)["Table"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return {"table": name, "deleted": False, "reason": "does not exist"}
        raise
    tags = table_tags(ddb, table["TableArn"])
    refusal = deletion_refusal(name, tags, prefix=prefix, protected=protected, run_id=run_id, now=now,
                               deletion_protection=bool(table.get("DeletionProtectionEnabled")))
    if refusal:
        return {"table": name, "deleted": False, "reason": refusal}
    try:
        ddb.delete_table(TableName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return {"table": name, "deleted": False, "reason": "does not exist"}
        raise
    return {"table": name, "deleted": True, "reason": "scratch table of drill " + tags[TAG_DRILL]}


def sweep(ddb, *, prefix: str, protected: Iterable[str], now: datetime | None = None) -> list[dict[str, Any]]:
    """Delete expired drill scratch tables (left by crashed runs); one result per prefixed table."""
    protected = list(protected)
    check_scratch_prefix(prefix, protected)
    results = []
    for name in list_tables(ddb):
        if name.startswith(prefix):
            results.append(delete_scratch_table(ddb, name, prefix=prefix, protected=protected, now=now))
    return results


def list_tables(ddb) -> Iterator[str]:
    kwargs: dict[str, Any] = {}
    while True:
        page = ddb.list_tables(**kwargs)
        yield from page.get("TableNames", [])
        if not page.get("LastEvaluatedTableName"):
            return
        kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


def drill_tags(run_id: str, source_table: str, expires_at: datetime) -> list[dict[str, str]]:
    return [
        {"Key": TAG_DRILL, "Value": tag_value(run_id)},
        {"Key": TAG_EXPIRES, "Value": iso(expires_at)},
        {"Key": TAG_SOURCE, "Value": source_table},
    ]


def tag_table(ddb, table_arn: str, tags: list[dict[str, str]], timeout: float = 120.0) -> None:
    """Tag a new table; DynamoDB may refuse while the table is still being created, so retry a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ddb.tag_resource(ResourceArn=table_arn, Tags=tags)
            return
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code not in ("ResourceInUseException", "ResourceNotFoundException") or time.monotonic() > deadline:
                raise
            time.sleep(2)


# ----------------------------------------------------------------------------- exports (restore points)


@dataclass(frozen=True)
class ExportRef:
    """One finished export, as its manifests describe it."""

    bucket: str
    summary_key: str
    export_arn: str
    export_time: str
    table_arn: str
    item_count: int
    data_prefix: str
    files: tuple[tuple[str, int], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("files")
        data["data_files"] = len(self.files)
        return data


def read_export(s3, bucket: str, summary_key: str) -> ExportRef:
    """Read ``manifest-summary.json`` and ``manifest-files.json``; DrillError names the object on bad input."""
    try:
        summary = exports.ManifestSummary.parse(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read(),
                                                summary_key)
        files_key = summary.manifest_files_key
        files = exports.parse_manifest_files(s3.get_object(Bucket=bucket, Key=files_key)["Body"].read(), files_key)
    except exports.ManifestError as error:
        raise DrillError(f"s3://{bucket}/{error}") from None
    export_root = summary_key.rsplit("/", 1)[0]
    return ExportRef(bucket=bucket, summary_key=summary_key, export_arn=summary.export_arn,
                     export_time=exports.iso_ms(summary.export_time), table_arn=summary.table_arn,
                     item_count=summary.item_count, data_prefix=f"{export_root}/data/",
                     files=tuple((f.key, f.item_count) for f in files))


def export_problems(s3, export: ExportRef, table_arn: str, *, copied: bool = False,
                    workers: int = DEFAULT_WORKERS) -> list[str]:
    """What is wrong with an export as a restore point, by the nightly job's full verification (manifest
    checksums, every data file's MD5, ETag and line count, counts adding up, nothing extra).

    ``copied``: the export was copied to another bucket (the replica): its manifest names the original bucket, and
    a copied object gets a new ETag (the MD5 of each object is still checked).
    """
    summary_prefix = export.summary_key.split("/AWSDynamoDB/", 1)[0] if "/AWSDynamoDB/" in export.summary_key else None
    result = exports.verify_export(s3, export.bucket, export.export_arn, table_arn, parse_time(export.export_time),
                                   summary_prefix, max_workers=workers)
    ignored = {"wrong_bucket", "etag_mismatch"} if copied else set()
    return [str(p) for p in result.problems if p.code not in ignored]


def export_summary_keys(s3, bucket: str, table_prefix: str) -> list[str]:
    """Keys of every ``manifest-summary.json`` under ``<table_prefix>/<date>/AWSDynamoDB/<id>/``, newest date first."""
    table_prefix = table_prefix.rstrip("/") + "/"
    keys = []
    for date_prefix in sorted(_common_prefixes(s3, bucket, table_prefix), reverse=True):
        for export_prefix in _common_prefixes(s3, bucket, date_prefix + "AWSDynamoDB/"):
            keys.append(export_prefix + "manifest-summary.json")
    return keys


def _common_prefixes(s3, bucket: str, prefix: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found


def latest_verified_export(s3, bucket: str, table_prefix: str, table_arn: str, *, at_or_before: datetime | None = None,
                           copied: bool = False, verify: Callable[[ExportRef], list[str]] | None = None
                           ) -> tuple[ExportRef, list[str]]:
    """The newest export (by exportTime, at or before ``at_or_before``) whose manifest verifies.

    Returns the export and the exports skipped on the way (each with its reason). ``verify`` returns a list
    of problems (default :func:`export_problems`; ``copied`` as there). DrillError when none qualifies.
    """
    verify = verify or (lambda export: export_problems(s3, export, table_arn, copied=copied))
    candidates = []
    skipped = []
    for key in export_summary_keys(s3, bucket, table_prefix):
        try:
            export = read_export(s3, bucket, key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                skipped.append(f"s3://{bucket}/{key}: no manifest (export unfinished?)")
                continue
            raise
        except DrillError as error:
            skipped.append(str(error))
            continue
        if at_or_before is None or parse_time(export.export_time) <= at_or_before:
            candidates.append(export)
    for export in sorted(candidates, key=lambda e: parse_time(e.export_time), reverse=True):
        problems = verify(export)
        if not problems:
            return export, skipped
        skipped.append(f"s3://{bucket}/{export.summary_key}: " + "; ".join(problems))
    when = f" at or before {iso(at_or_before)}" if at_or_before else ""
    detail = ("; skipped: " + " | ".join(skipped)) if skipped else ""
    raise DrillError(f"no verified export of {table_arn} under s3://{bucket}/{table_prefix}{when}{detail}")


# ----------------------------------------------------------------------------- restores


def _key_attribute_names(description: dict[str, Any]) -> set[str]:
    names = {k["AttributeName"] for k in description["KeySchema"]}
    for index in description.get("GlobalSecondaryIndexes", []) + description.get("LocalSecondaryIndexes", []):
        names.update(k["AttributeName"] for k in index["KeySchema"])
    return names


def table_creation_parameters(description: dict[str, Any], table_name: str) -> dict[str, Any]:
    """ImportTable's TableCreationParameters copying the source's keys and GSIs, on-demand billing.

    ImportTable cannot create local secondary indexes (AWS); :func:`compare_schema` reports their absence.
    """
    used = _key_attribute_names({**description, "LocalSecondaryIndexes": []})
    params: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": [a for a in description["AttributeDefinitions"] if a["AttributeName"] in used],
        "KeySchema": description["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    gsis = [{"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in description.get("GlobalSecondaryIndexes", [])]
    if gsis:
        params["GlobalSecondaryIndexes"] = gsis
    return params


def client_token(*parts: str) -> str:
    """A deterministic idempotency token (so that a retried task does not start a second import)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:36]


def start_import(ddb, export: ExportRef, creation: dict[str, Any], token: str,
                 bucket_owner: str | None = None) -> dict[str, Any]:
    """ImportTable of the export's ``data/`` files (DynamoDB JSON, gzip) into a new table; the import description."""
    source: dict[str, Any] = {"S3Bucket": export.bucket, "S3KeyPrefix": export.data_prefix}
    if bucket_owner:
        source["S3BucketOwner"] = bucket_owner
    return ddb.import_table(
        ClientToken=token,
        S3BucketSource=source,
        InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP",
        TableCreationParameters=creation,
    )["ImportTableDescription"]


def start_pitr_restore(ddb, source_table: str, target: str, restore_time: datetime) -> dict[str, Any]:
    """RestoreTableToPointInTime at ``restore_time`` into a new on-demand table; its table description."""
    return ddb.restore_table_to_point_in_time(
        SourceTableName=source_table,
        TargetTableName=target,
        RestoreDateTime=restore_time,
        BillingModeOverride="PAY_PER_REQUEST",
    )["TableDescription"]


def import_problem(description: dict[str, Any]) -> str | None:
    """AWS's reason when an import did not load everything (FAILED/CANCELLED, or ErrorCount > 0)."""
    status = description.get("ImportStatus")
    if status != "COMPLETED":
        return (f"import {description.get('ImportArn')} {status}: "
                f"{description.get('FailureCode', '')} {description.get('FailureMessage', '')}".strip())
    errors = int(description.get("ErrorCount") or 0)
    if errors:
        log_group = description.get("CloudWatchLogGroupArn") or "the import's CloudWatch log group"
        return (f"import {description.get('ImportArn')} COMPLETED with ErrorCount {errors} "
                f"(processed {description.get('ProcessedItemCount')}, imported {description.get('ImportedItemCount')};"
                f" see {log_group})")
    return None


# ----------------------------------------------------------------------------- schema


def _indexes(description: dict[str, Any], kind: str) -> dict[str, Any]:
    return {i["IndexName"]: {"KeySchema": i["KeySchema"], "Projection": _projection(i.get("Projection", {}))}
            for i in description.get(kind, [])}


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    result = {"ProjectionType": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        result["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return result


def compare_schema(source: dict[str, Any], restored: dict[str, Any], *, imported: bool) -> tuple[list[str], list[str]]:
    """Problems (and notes) comparing the restored table's key schema and indexes with the source's.

    ``imported``: ImportTable cannot create LSIs, so missing LSIs are a note, not a problem.
    """
    problems, notes = [], []
    if source["KeySchema"] != restored["KeySchema"]:
        problems.append(f"key schema {restored['KeySchema']} != source {source['KeySchema']}")
    types = {a["AttributeName"]: a["AttributeType"] for a in restored.get("AttributeDefinitions", [])}
    for attr in source.get("AttributeDefinitions", []):
        name = attr["AttributeName"]
        if name in _key_attribute_names(restored) and types.get(name) != attr["AttributeType"]:
            problems.append(f"attribute {name} has type {types.get(name)} != source {attr['AttributeType']}")
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        want, got = _indexes(source, kind), _indexes(restored, kind)
        if imported and kind == "LocalSecondaryIndexes" and want and not got:
            notes.append(f"source LSIs {sorted(want)} not restored: ImportTable cannot create LSIs")
            continue
        for name in sorted(set(want) | set(got)):
            if name not in got:
                problems.append(f"{kind} {name} missing from the restored table")
            elif name not in want:
                problems.append(f"{kind} {name} exists in the restored table but not in the source")
            elif want[name] != got[name]:
                problems.append(f"{kind} {name} differs: {got[name]} != source {want[name]}")
    return problems, notes


# ----------------------------------------------------------------------------- item digests

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
                  only: set[int] | None, keyed: dict[bytes, int] | None) -> list[tuple[int, int]]:
    batch = []
    sha256 = hashlib.sha256
    for item in items:
        canon = canonical_item(item)
        key_json = canonical_json({n: canon[n] for n in key_names if n in canon})
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


def _batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
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

    with wire_items(ddb), ThreadPoolExecutor(max_workers=segments) as pool:
        list(pool.map(run, range(segments)))


def digest_export(s3, export: ExportRef, key_names: tuple[str, ...], buckets: DigestBuckets, *, workers: int,
                  only: set[int] | None = None, keyed: dict[bytes, int] | None = None) -> dict[str, int]:
    """Add every item of the export's data files to ``buckets`` (files streamed concurrently); lines per file."""
    def run(key: str) -> tuple[str, int]:
        local: dict[bytes, int] | None = {} if keyed is not None else None
        lines = 0
        for batch in _batched(export_items(s3, export.bucket, key), 1000):
            lines += len(batch)
            buckets.add(_digest_batch(batch, key_names, buckets, only, local))
        if keyed is not None:
            with buckets._lock:
                keyed.update(local)
        return key, lines

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(export.files)))) as pool:
        return dict(pool.map(run, [key for key, _ in export.files]))


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
                  max_keys: int = MAX_REPORTED_KEYS) -> Validation:
    """Compare every restored item with every exported item, by digest; name up to ``max_keys`` differing keys.

    Pass 1 digests both sides concurrently into key buckets. Only if buckets differ, pass 2 re-reads the
    items of the first few differing buckets (per-key digests) to name the keys: ``changed``, ``missing``
    (in the export, not restored) or ``unexpected`` (restored, not in the export).
    """
    started = time.monotonic()
    result = Validation(mode="full", items_expected=export.item_count)
    restored, exported = DigestBuckets(bucket_count(export.item_count)), DigestBuckets(bucket_count(export.item_count))
    with ThreadPoolExecutor(max_workers=2) as pool:
        scan = pool.submit(digest_table, ddb, table, key_names, restored, segments=segments)
        lines = pool.submit(digest_export, s3, export, key_names, exported, workers=workers)
        scan.result()
        per_file = lines.result()
    result.items_restored = restored.count
    result.items_validated = restored.count
    result.digest_restored, result.digest_export = restored.total, exported.total
    for key, expected in export.files:
        if per_file.get(key) != expected:
            result.problems.append(f"export file s3://{export.bucket}/{key} has {per_file.get(key)} items, "
                                   f"manifest says {expected}")
    if exported.count != export.item_count:
        result.problems.append(f"export data holds {exported.count} items, manifest itemCount {export.item_count}")
    if restored.count != export.item_count:
        result.problems.append(f"restored table holds {restored.count} items, manifest itemCount {export.item_count}")
    differing = restored.differing(exported)
    if differing:
        result.problems.append(f"content differs from the export in {len(differing)} of {restored.size} key buckets")
        result.mismatches = _name_mismatches(ddb, s3, table, export, key_names, restored.size, differing,
                                             segments=segments, workers=workers, max_keys=max_keys)
    result.seconds = time.monotonic() - started
    return result


def _name_mismatches(ddb, s3, table: str, export: ExportRef, key_names: tuple[str, ...], size: int,
                     differing: list[int], *, segments: int, workers: int, max_keys: int) -> list[dict[str, Any]]:
    only = set(differing[:max_keys])
    got: dict[bytes, int] = {}
    want: dict[bytes, int] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        scan = pool.submit(digest_table, ddb, table, key_names, DigestBuckets(size), segments=segments,
                           only=only, keyed=got)
        lines = pool.submit(digest_export, s3, export, key_names, DigestBuckets(size), workers=workers,
                            only=only, keyed=want)
        scan.result()
        lines.result()
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
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(export.files)))) as pool:
        for heap, lines in pool.map(run, [key for key, _ in export.files]):
            read += lines
            chosen = heapq.nlargest(size, chosen + heap, key=lambda e: e[0])
    return [item for _, _, item in sorted(chosen, key=lambda e: e[1])], read


def _invert(rank: bytes) -> bytes:
    """Reverse byte order of ranks so a min-heap keeps the smallest ranks."""
    return bytes(255 - b for b in rank)


def count_items(ddb, table: str, segments: int = DEFAULT_SEGMENTS) -> int:
    def run(segment: int) -> int:
        return sum(page["Count"] for page in scan_pages(ddb, table, segment, segments, Select="COUNT"))

    with ThreadPoolExecutor(max_workers=segments) as pool:
        return sum(pool.map(run, range(segments)))


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
    with ThreadPoolExecutor(max_workers=2) as pool:
        counted = pool.submit(count_items, ddb, table, segments)
        sampled = pool.submit(sample_keys, s3, export, key_names, size, seed, workers=workers)
        result.items_restored = counted.result()
        items, read = sampled.result()
    if read != export.item_count:
        result.problems.append(f"export data holds {read} items, manifest itemCount {export.item_count}")
    if result.items_restored != export.item_count:
        result.problems.append(
            f"restored table holds {result.items_restored} items, manifest itemCount {export.item_count}")
    mismatches = []
    for batch in _batched(items, 100):
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


# ----------------------------------------------------------------------------- record


def drill_record(*, drill: dict[str, Any], restore: dict[str, Any] | None, validation: dict[str, Any] | None,
                 failure: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The JSON record of one drill: what was restored from where, RTO, RPO, validation outcome."""
    now = now or utcnow()
    restore = restore or {}
    restore_point = drill.get("restore_point")
    started = restore.get("started_at")
    rpo = (parse_time(started) - parse_time(restore_point)).total_seconds() if started and restore_point else None
    problems = list((validation or {}).get("problems", []))
    if failure:
        problems.insert(0, failure)
    return {
        "record_version": 1,
        "table": drill["table"],
        "run_id": drill["run_id"],
        "source": drill["source"],
        "account": drill["account"],
        "scratch_table": drill["scratch_table"],
        "restore_point": restore_point,
        "export": drill.get("export"),
        "restore": restore,
        "rto_seconds": restore.get("rto_seconds"),
        "rpo_seconds": rpo,
        "validation": validation,
        "items_validated": (validation or {}).get("items_validated", 0),
        "items_per_second": (validation or {}).get("items_per_second"),
        "result": "passed" if not problems and validation and validation.get("ok") else "failed",
        "problems": problems,
        "recorded_at": iso(now),
    }


def record_key(prefix: str, table: str, scratch_table: str) -> str:
    """``<prefix>/drills/<table>/<scratch table>.json`` (the scratch name ends with the run stamp)."""
    return f"{prefix.strip('/')}/drills/{table}/{scratch_table}.json"


def expiry(started: datetime, max_drill_hours: int, keep_minutes: int) -> datetime:
    """When a scratch table counts as abandoned: after the longest drill plus the time it should be kept."""
    return started + timedelta(hours=max_drill_hours, minutes=keep_minutes)
