"""DynamoDB export to S3 as AWS documents it (replaces moto 5.2.5's ExportTableToPointInTime,
DescribeExport and ListExports).

AWS behaviour restored (API reference ExportTableToPointInTime / DescribeExport / ListExports /
IncrementalExportSpecification and "DynamoDB table export output format",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):

* ExportArn is ``<TableArn>/export/<ExportId>``, ExportId = 14-digit epoch milliseconds + "-" + 8 hex
  (whole seconds for incremental exports, as AWS's).
* FULL_EXPORT output under ``[<S3Prefix>/]AWSDynamoDB/<ExportId>/``: ``_started`` (empty, written when the
  export starts), ``data/<26 chars>.json.gz`` (gzip JSON Lines ``{"Item": {...}}``, B/BS base64; items
  split over up to 4 files, an empty table gets one empty gzip file), ``manifest-files.json`` (one JSON line
  per data file: itemCount, md5Checksum = base64 MD5 of the object, etag = the object's S3 ETag,
  dataFileS3Key), ``manifest-summary.json`` (version 2020-06-30, exportTime) and the ``.md5`` companions
  (base64 MD5 of each manifest). Data files are stored as single-part multipart uploads, so their ETag is
  ``hex(MD5(MD5(body)))-1`` as in real exports. S3Prefix is optional.
* The items are the table's as of ExportTime (default: now), read from the item history
  (``fixes/dynamodb_history.py``).
* INCREMENTAL_EXPORT (IncrementalExportSpecification ExportFromTime inclusive, ExportToTime exclusive,
  default the latest restorable time; ExportViewType NEW_AND_OLD_IMAGES (default) or NEW_IMAGE): one line
  per item changed in the window, with its final state: ``{"Metadata":{"WriteTimestampMicros":{"N":..}},
  "Keys":{..},"OldImage":{..},"NewImage":{..}}`` - OldImage (the item before ExportFromTime) only with
  NEW_AND_OLD_IMAGES and if the item existed, NewImage only if it exists at the end; an item created and
  deleted inside the window gives no line. Data files go to the folder shared by incremental exports,
  ``[<S3Prefix>/]AWSDynamoDB/data/``; manifests to ``AWSDynamoDB/<ExportId>/``; manifest-summary.json has
  version 2023-08-01, exportFromTime, exportToTime, outputView, exportType. BilledSizeBytes is at least
  10,000,000 (every small incremental export observed on AWS bills 10 MB).
* ION: each line ``$ion_1_0 {Item:{...}}`` in ``data/<26 chars>.ion.gz``, DynamoDB types mapped as the
  output-format page documents (S string, N decimal, B blob, BOOL bool, SS/NS/BS list annotated
  ``$dynamodb_SS``/``$dynamodb_NS``/``$dynamodb_BS``, L list, M struct; NULL as ``null``).
* Every object gets the bucket's default Object Lock retention, as S3 applies it to any new version.
* The export stays IN_PROGRESS for ``LOCALAWS_EXPORT_SECONDS`` (default 5, changeable at run time via
  ``POST /_localaws/config``); the data and manifests are written when it completes.
* DescribeTable returns the table's TableId (moto has none), the same one the export reports.
* DescribeExport returns StartTime, EndTime, ExportTime (full exports), IncrementalExportSpecification with
  the resolved ExportToTime (incremental), ExportManifest, ClientToken, TableId, ExportFormat,
  BilledSizeBytes (bytes), ItemCount, FailureCode/FailureMessage; ExportType only if the request had it.
  An ARN of another account, partition or service -> AccessDeniedException; not an export ARN ->
  ValidationException "Invalid Export ARN"; unknown -> ExportNotFoundException.
* Request validation as AWS's: the API model's constraints (enum, pattern, length: "1 validation error
  detected: Value 'X' at 'exportFormat' failed to satisfy constraint: ..."), blank S3Prefix, a KMS key without
  S3SseAlgorithm KMS, the ExportType / IncrementalExportSpecification couplings; time errors are
  InvalidExportTimeException with AWS's wording.
* ClientToken: same token + same request returns the same export, same token + different request ->
  ExportConflictException, for 8 hours after the first export completes.
* A missing bucket makes the export start and then FAIL with FailureCode S3NoSuchBucket.
* ListExports works without TableArn, lists newest first, pages with MaxResults (1-25) / NextToken, gives
  ExportType in every summary, and omits exports of deleted tables.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import math
import os
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    MockValidationException,
    PointInTimeRecoveryUnavailable,
    TableNotFoundException,
)
from moto.dynamodb.responses import DynamoHandler

from include.localaws.fixes import dynamodb_history, pitr

SETTINGS: dict[str, float] = {"export_seconds": float(os.environ.get("LOCALAWS_EXPORT_SECONDS", "5"))}
MAX_DATA_FILES = 4
TOKEN_TTL_SECONDS = 8 * 3600
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 15 * 60, 24 * 3600
INCREMENTAL_MIN_BILLED_BYTES = 10_000_000
EXPORT_ARN = re.compile(r"^arn:[\w-]+:dynamodb:[\w-]+:\d{12}:table/[\w.-]+/export/\d{14}-[0-9a-f]{8}$")
ANY_ARN = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):")
REQUEST_KEYS = ("TableArn", "ExportTime", "S3Bucket", "S3BucketOwner", "S3Prefix", "S3SseAlgorithm",
                "S3SseKmsKeyId", "ExportFormat", "ExportType", "IncrementalExportSpecification")
ION_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Error(JsonRESTError):
    def __init__(self, code: str, message: str):
        super().__init__(ERROR_TYPE_PREFIX + code, message)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _iso_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _table_id(table: Any) -> str:
    """AWS tables have a stable TableId (a UUID); moto's have none, so one is attached on first use."""
    if getattr(table, "table_id", None) is None:
        table.table_id = str(uuid.uuid4())
    return table.table_id


# ----------------------------------------------------------------------------- ION text encoding


def _ion_decimal(number: str) -> str:
    """A DynamoDB number as an Ion decimal (``103.``, ``6d2``, ``12.5``), never an Ion int or float."""
    sign, digits, exponent = Decimal(number).normalize().as_tuple()
    text = "".join(map(str, digits)) or "0"
    prefix = "-" if sign else ""
    if exponent == 0:
        return f"{prefix}{text}."
    if exponent > 0:
        return f"{prefix}{text}d{exponent}"
    if -exponent < len(text):
        return f"{prefix}{text[:exponent]}.{text[exponent:]}"
    return f"{prefix}{text}d{exponent}"


def _ion_field(name: str) -> str:
    return name if ION_FIELD.match(name) and name not in {"null", "true", "false", "nan"} else json.dumps(name)


def _ion_struct(attrs: dict[str, Any]) -> str:
    return "{" + ",".join(f"{_ion_field(k)}:{ion_value(v)}" for k, v in attrs.items()) + "}"


def ion_value(value: dict[str, Any]) -> str:
    """One DynamoDB JSON attribute value (``{"S": "x"}``) as Ion text."""
    (kind, data), = value.items()
    if kind == "S":
        return json.dumps(data, ensure_ascii=False)
    if kind == "N":
        return _ion_decimal(data)
    if kind == "B":
        return "{{" + data + "}}"
    if kind == "BOOL":
        return "true" if data else "false"
    if kind == "NULL":
        return "null"
    if kind == "SS":
        return "$dynamodb_SS::[" + ",".join(json.dumps(s, ensure_ascii=False) for s in data) + "]"
    if kind == "NS":
        return "$dynamodb_NS::[" + ",".join(_ion_decimal(n) for n in data) + "]"
    if kind == "BS":
        return "$dynamodb_BS::[" + ",".join("{{" + b + "}}" for b in data) + "]"
    if kind == "L":
        return "[" + ",".join(ion_value(v) for v in data) + "]"
    if kind == "M":
        return _ion_struct(data)
    raise ValueError(f"unknown DynamoDB type {kind}")


def _line(record: dict[str, Any], export_format: str) -> str:
    """One output line: JSON (DynamoDB JSON) or ``$ion_1_0 {...}`` (ION); ``record`` maps top-level names to
    items (DynamoDB JSON attribute maps)."""
    if export_format == "ION":
        return "$ion_1_0 {" + ",".join(f"{name}:{_ion_struct(attrs)}" for name, attrs in record.items()) + "}"
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


# ----------------------------------------------------------------------------- request validation


def _camel(name: str) -> str:
    return name[0].lower() + name[1:]


def _model_errors(shape: Any, value: Any, path: str) -> list[str]:
    """AWS's constraint messages for ``value`` against the botocore model ``shape``."""
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return []
        return [error for name, member in shape.members.items() if name in value and value[name] is not None
                for error in _model_errors(member, value[name], f"{path}.{_camel(name)}" if path else _camel(name))]
    if shape.type_name != "string" or not isinstance(value, str):
        return []
    meta, prefix = shape.metadata, f"Value '{value}' at '{path}' failed to satisfy constraint: Member must"
    if shape.enum and value not in shape.enum:
        return [f"{prefix} satisfy enum value set: [{', '.join(shape.enum)}]"]
    if "min" in meta and len(value) < meta["min"]:
        return [f"{prefix} have length greater than or equal to {meta['min']}"]
    if "max" in meta and len(value) > meta["max"]:
        return [f"{prefix} have length less than or equal to {meta['max']}"]
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        return [f"{prefix} satisfy regular expression pattern: {meta['pattern']}"]
    return []


def _validation(errors: list[str]) -> MockValidationException:
    count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
    return MockValidationException(f"{count}: {'; '.join(errors)}")


@functools.cache
def _request_shape() -> Any:
    """ExportTableToPointInTime's input shape in the API model shipped with botocore."""
    from botocore.session import get_session

    return get_session().get_service_model("dynamodb").operation_model("ExportTableToPointInTime").input_shape


def _validate_request(request: dict[str, Any]) -> None:
    """The checks AWS makes before looking at the table (all ValidationException)."""
    shape = _request_shape()
    errors = [f"Value null at '{_camel(name)}' failed to satisfy constraint: Member must not be null"
              for name in shape.required_members if name not in request]
    errors += _model_errors(shape, request, "")
    prefix = request.get("S3Prefix")
    if isinstance(prefix, str) and not prefix.strip():
        errors.append(f"Value '{prefix}' at 's3Prefix' failed to satisfy constraint: Member must not be blank")
    if errors:
        raise _validation(errors)
    if not ANY_ARN.match(request["TableArn"]) or "table/" not in request["TableArn"]:
        raise MockValidationException("One or more parameter values were invalid: tableArn is not a valid ARN")
    if request.get("S3SseKmsKeyId") is not None and request.get("S3SseAlgorithm") != "KMS":
        raise MockValidationException("Invalid Request: KMS Key Id is not supported for this encryption type")
    export_type, spec = request.get("ExportType"), request.get("IncrementalExportSpecification")
    if export_type == "INCREMENTAL_EXPORT" and spec is None:
        raise MockValidationException("Invalid Request: Incremental Export Specification expected when export type "
                                      "is set as Incremental Export")
    if spec is not None and export_type is None:
        raise MockValidationException("Invalid Request: Export Type expected to be Incremental Export when "
                                      "incremental export specification is provided")
    if spec is not None and export_type == "FULL_EXPORT":
        raise MockValidationException("Invalid Request: When Export Type is Full Export , Incremental Export "
                                      "Specification should not be provided")
    if spec is not None and spec.get("ExportFromTime") is None:
        raise MockValidationException("Invalid Request: ExportFromTime must be provided in "
                                      "IncrementalExportSpecification")


def _full_export_time(table: Any, requested: Any) -> float:
    """ExportTime (default now) checked against the PITR window, with AWS's InvalidExportTimeException texts."""
    now = time.time()
    if requested is None:
        return now
    export_time = _epoch(requested)
    earliest, latest = pitr.window(table, now)
    if export_time > now or export_time < earliest:
        raise _Error("InvalidExportTimeException", "Export Time is invalid")
    if export_time > latest:
        raise _Error("InvalidExportTimeException", "Point in Time Recovery is not available for specified export time")
    return export_time


def _incremental_window(table: Any, request: dict[str, Any]) -> tuple[float, float]:
    """(ExportFromTime, ExportToTime) checked as AWS does (From inside the PITR window, To not in the future,
    15 minutes to 24 hours apart); To defaults to the latest restorable time."""
    now, spec = time.time(), request["IncrementalExportSpecification"]
    start = _epoch(spec["ExportFromTime"])
    span = pitr.window(table, now)
    if span is None or request.get("ExportTime") is not None or start < span[0]:
        raise _Error("InvalidExportTimeException", "Incremental export period from time cannot be less than the "
                                                   f"table creation time : {_iso_seconds(start)}")
    end = _epoch(spec["ExportToTime"]) if spec.get("ExportToTime") is not None else span[1]
    if end > now:
        raise _Error("InvalidExportTimeException", "Incremental export period to time cannot be greater than the "
                                                   f"current time : {_iso_seconds(end)}")
    if end - start < MIN_WINDOW_SECONDS:
        raise _Error("InvalidExportTimeException", "Difference between export period from time and export period "
                                                   "to time is less than 15 minutes")
    if end - start > MAX_WINDOW_SECONDS:
        raise _Error("InvalidExportTimeException", "Difference between export period from time and export period "
                                                   "to time is greater than 24 hours")
    return start, end


# ----------------------------------------------------------------------------- the export


class Export:
    """One export: its request, its state, and the S3 objects it writes when it completes."""

    def __init__(self, handler: DynamoHandler, table: Any, request: dict[str, Any],
                 export_time: float | None, window: tuple[float, float] | None = None):
        now = time.time()
        self.account_id = handler.current_account
        self.table = table
        self.table_arn = table.table_arn
        self.table_id = _table_id(table)
        self.request = request
        self.incremental = window is not None
        started_ms = math.floor(now) * 1000 if self.incremental else int(now * 1000)
        self.export_id = f"{started_ms:014d}-{secrets.token_hex(4)}"
        self.arn = f"{self.table_arn}/export/{self.export_id}"
        self.client_token = request.get("ClientToken") or str(uuid.uuid4())
        self.bucket = request["S3Bucket"]
        self.prefix = request.get("S3Prefix")
        self.sse_algorithm = request.get("S3SseAlgorithm") or "AES256"
        self.sse_kms_key_id = request.get("S3SseKmsKeyId")
        self.format = request.get("ExportFormat") or "DYNAMODB_JSON"
        self.view = (request.get("IncrementalExportSpecification") or {}).get("ExportViewType") or "NEW_AND_OLD_IMAGES"
        self.start_time = started_ms / 1000
        self.export_time = export_time
        self.window = window
        self.end_time: float | None = None
        self.status = "IN_PROGRESS"
        self.failure: tuple[str, str] | None = None
        self.item_count = 0
        self.billed_size = 0
        base = "/".join(p for p in ((self.prefix or "").rstrip("/"), "AWSDynamoDB") if p)
        self.root = f"{base}/{self.export_id}"
        self.data_root = f"{base}/data" if self.incremental else f"{self.root}/data"
        self.manifest_key = f"{self.root}/manifest-summary.json"
        # Read from the item history now: the table may change or be deleted while the export runs.
        self.lines = self._incremental_lines(table) if self.incremental else self._full_lines(table)
        self.due = now + SETTINGS["export_seconds"]
        self._lock = threading.Lock()
        self._ddb = handler.dynamodb_backend
        self._ddb.table_exports[self.arn] = self  # on the moto backend, so that a moto reset forgets it
        self._s3 = self._s3_backend()
        if self._s3 is not None:
            self._put(f"{self.root}/_started", b"")
        timer = threading.Timer(max(0.0, self.due - time.time()), self.settle)
        timer.daemon = True
        timer.start()

    def _full_lines(self, table: Any) -> list[tuple[str, int]]:
        history = dynamodb_history.history_of(table)
        return [(_line({"Item": json.loads(item)}, self.format), dynamodb_history.make_item(table, item).size())
                for _, item in history.state_at(int(self.export_time * 1_000_000))]

    def _incremental_lines(self, table: Any) -> list[tuple[str, int]]:
        history = dynamodb_history.history_of(table)
        start, end = (int(t * 1_000_000) for t in self.window)
        lines = []
        for key, when, old, new in history.changes(start, end):
            record: dict[str, Any] = {"Keys": json.loads(key)}
            if old is not None and self.view == "NEW_AND_OLD_IMAGES":
                record["OldImage"] = dict(sorted(json.loads(old).items()))
            if new is not None:
                record["NewImage"] = dict(sorted(json.loads(new).items()))
            line = _line({"Metadata": {"WriteTimestampMicros": {"N": str(when)}}, **record}, self.format)
            lines.append((line, len(line)))
        return lines

    def _s3_backend(self) -> Any:
        """The S3 backend of the account that owns the bucket, or None if the bucket is unusable."""
        from moto.s3.models import s3_backends

        located = s3_backends.bucket_accounts.get(self.bucket)
        if located is None:
            self.failure = ("S3NoSuchBucket", f"The specified bucket does not exist (Bucket: {self.bucket}; "
                                              "Service: Amazon S3; Status Code: 404; Error Code: NoSuchBucket)")
            return None
        partition, owner = located
        if owner != self.account_id and self.request.get("S3BucketOwner") != owner:
            self.failure = ("S3AccessDenied", f"Access Denied (Bucket: {self.bucket}; Service: Amazon S3; "
                                              "Status Code: 403; Error Code: AccessDenied)")
            return None
        return s3_backends[owner][partition]

    def _put(self, key: str, body: bytes, etag: str | None = None) -> Any:
        bucket = self._s3.get_bucket(self.bucket)
        lock_mode = lock_until = None
        if bucket.object_lock_enabled and bucket.has_default_lock:
            lock_mode, lock_until = bucket.default_lock_mode, bucket.default_retention()
        kms = self.sse_algorithm == "KMS"
        return self._s3.put_object(
            self.bucket, key, body, etag=etag,
            encryption="aws:kms" if kms else self.sse_algorithm, kms_key_id=self.sse_kms_key_id if kms else None,
            lock_mode=lock_mode, lock_until=lock_until,
        )

    def settle(self) -> None:
        """Complete (or fail) the export once it is due; idempotent."""
        with self._lock:
            if self.status != "IN_PROGRESS" or time.time() < self.due:
                return
            if self._ddb.table_exports.get(self.arn) is not self:
                self.status = "FAILED"  # the emulator was reset: write nothing into the new state
                return
            if self.failure is None:
                self._s3 = self._s3_backend()
                if self._s3 is not None:
                    try:
                        self._write()
                    except Exception as error:  # reported like AWS reports an internal failure
                        self.failure = ("UNKNOWN", f"{type(error).__name__}: {error}")
            self.end_time = time.time()
            self.status = "FAILED" if self.failure else "COMPLETED"
            self.lines = []

    def _write(self) -> None:
        count = len(self.lines)
        files = max(1, min(MAX_DATA_FILES, count))
        suffix = "ion.gz" if self.format == "ION" else "json.gz"
        entries = []
        for n in range(files):
            chunk = self.lines[n * count // files:(n + 1) * count // files]
            body = gzip.compress("".join(f"{line}\n" for line, _ in chunk).encode(), mtime=0)
            key = f"{self.data_root}/{base64.b32encode(os.urandom(16)).decode().rstrip('=').lower()}.{suffix}"
            etag = hashlib.md5(hashlib.md5(body).digest()).hexdigest() + "-1"
            self._put(key, body, etag=etag)
            entries.append(json.dumps({"itemCount": len(chunk), "md5Checksum": _b64md5(body), "etag": etag,
                                       "dataFileS3Key": key}, separators=(",", ":")) + "\n")
        self.item_count = count
        self.billed_size = sum(size for _, size in self.lines)
        if self.incremental:
            self.billed_size = max(INCREMENTAL_MIN_BILLED_BYTES, self.billed_size)
        files_body = "".join(entries).encode()
        self._put(f"{self.root}/manifest-files.json", files_body)
        self._put(f"{self.root}/manifest-files.md5", _b64md5(files_body).encode())
        summary: dict[str, Any] = {
            "version": "2023-08-01" if self.incremental else "2020-06-30", "exportArn": self.arn,
            "startTime": _iso(self.start_time), "endTime": _iso(time.time()), "tableArn": self.table_arn,
            "tableId": self.table_id,
        }
        if self.incremental:
            summary.update(exportFromTime=_iso(self.window[0]), exportToTime=_iso(self.window[1]))
        else:
            summary["exportTime"] = _iso(self.export_time)
        summary.update({
            "s3Bucket": self.bucket, "s3Prefix": self.prefix, "s3SseAlgorithm": self.sse_algorithm,
            "s3SseKmsKeyId": self.sse_kms_key_id, "manifestFilesS3Key": f"{self.root}/manifest-files.json",
            "billedSizeBytes": self.billed_size, "itemCount": count, "outputFormat": self.format,
        })
        if self.incremental:
            summary.update(outputView=self.view, exportType="INCREMENTAL_EXPORT")
        summary_body = json.dumps(summary, separators=(",", ":")).encode()
        self._put(f"{self.root}/manifest-summary.json", summary_body)
        self._put(f"{self.root}/manifest-summary.md5", _b64md5(summary_body).encode())

    def describe(self) -> dict[str, Any]:
        self.settle()
        desc = {
            "ExportArn": self.arn, "ExportStatus": self.status, "StartTime": _dt(self.start_time),
            "TableArn": self.table_arn, "TableId": self.table_id, "ClientToken": self.client_token,
            "S3Bucket": self.bucket, "S3BucketOwner": self.request.get("S3BucketOwner") or self.account_id,
            "S3SseAlgorithm": self.sse_algorithm, "ExportFormat": self.format,
        }
        if self.incremental:
            desc["IncrementalExportSpecification"] = {
                "ExportFromTime": _dt(self.window[0]), "ExportToTime": _dt(self.window[1]),
                "ExportViewType": self.view}
        else:
            desc["ExportTime"] = _dt(self.export_time)
        optional = {"S3Prefix": self.prefix, "S3SseKmsKeyId": self.sse_kms_key_id,
                    "ExportType": self.request.get("ExportType")}
        desc.update({k: v for k, v in optional.items() if v})
        if self.end_time is not None:
            desc["EndTime"] = _dt(self.end_time)
        if self.status == "COMPLETED":
            desc.update(ExportManifest=self.manifest_key, ItemCount=self.item_count, BilledSizeBytes=self.billed_size)
        if self.failure:
            desc["FailureCode"], desc["FailureMessage"] = self.failure
        return desc


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _exports(handler: DynamoHandler) -> dict[str, Export]:
    """This account+region's exports."""
    return handler.dynamodb_backend.table_exports


def _tokens(handler: DynamoHandler) -> dict[str, Export]:
    backend = handler.dynamodb_backend
    if not hasattr(backend, "localaws_export_tokens"):
        backend.localaws_export_tokens = {}
    return backend.localaws_export_tokens


def _access_denied(handler: DynamoHandler, arn: str) -> bool:
    """An ARN in another account, partition or service than the caller's DynamoDB (AWS: AccessDeniedException)."""
    parts = ANY_ARN.match(arn)
    return bool(parts) and (parts["account"] != handler.current_account or parts["partition"] != "aws"
                            or parts["service"] != "dynamodb")


def export_table_to_point_in_time(self: DynamoHandler) -> ActionResult:
    request = {k: v for k, v in self.body.items() if v is not None}
    _validate_request(request)
    table_arn = request["TableArn"]
    if _access_denied(self, table_arn):
        raise _Error("AccessDeniedException", "Access is denied")
    table = next((t for t in self.dynamodb_backend.tables.values() if t.table_arn == table_arn), None)
    if table is None:
        raise TableNotFoundException(name=table_arn)
    window = None
    if request.get("ExportType") == "INCREMENTAL_EXPORT":
        window, export_time = _incremental_window(table, request), None
    else:
        if pitr.window(table) is None:
            raise PointInTimeRecoveryUnavailable(name=table.name)
        export_time = _full_export_time(table, request.get("ExportTime"))

    token = request.get("ClientToken")
    tokens = _tokens(self)
    previous = tokens.get(token) if token else None
    if previous is not None and previous.end_time is not None and time.time() - previous.end_time > TOKEN_TTL_SECONDS:
        previous = None
    if previous is not None:
        if {k: previous.request.get(k) for k in REQUEST_KEYS} != {k: request.get(k) for k in REQUEST_KEYS}:
            raise _Error("ExportConflictException",
                         "Export conflict: Duplicate request detected with conflicting parameters")
        return ActionResult({"ExportDescription": previous.describe()})

    export = Export(self, table, request, export_time, window)
    if token:
        tokens[token] = export
    return ActionResult({"ExportDescription": export.describe()})


def describe_export(self: DynamoHandler) -> ActionResult:
    arn = self.body.get("ExportArn", "")
    if _access_denied(self, arn):
        raise _Error("AccessDeniedException", "Access is denied")
    if not EXPORT_ARN.match(arn):
        raise MockValidationException("Invalid Export ARN")
    export = _exports(self).get(arn)
    if export is None:
        raise _Error("ExportNotFoundException", f"Export not found: {arn}")
    return ActionResult({"ExportDescription": export.describe()})


def list_exports(self: DynamoHandler) -> ActionResult:
    table_arn = self.body.get("TableArn")
    max_results = int(self.body.get("MaxResults") or 25)
    if not 1 <= max_results <= 25:
        raise MockValidationException(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                                      "satisfy constraint: Member must have value between 1 and 25")
    live = {_table_id(t) for t in self.dynamodb_backend.tables.values()}
    exports = sorted((e for e in _exports(self).values()
                      if e.table_id in live and (table_arn is None or e.table_arn == table_arn)),
                     key=lambda e: e.export_id, reverse=True)  # newest first, as AWS lists them
    start = 0
    if token := self.body.get("NextToken"):
        arns = [e.arn for e in exports]
        if token not in arns:
            raise MockValidationException(f"Invalid Request: Provided nextToken is invalid: {token}")
        start = arns.index(token) + 1
    page = exports[start:start + max_results]
    result: dict[str, Any] = {"ExportSummaries": []}
    for export in page:
        export.settle()
        result["ExportSummaries"].append({"ExportArn": export.arn, "ExportStatus": export.status,
                                          "ExportType": "INCREMENTAL_EXPORT" if export.incremental
                                          else "FULL_EXPORT"})
    if start + max_results < len(exports):
        result["NextToken"] = page[-1].arn
    return ActionResult(result)


def apply() -> None:
    from moto.dynamodb.models.table import Table

    original_describe = Table.describe

    def describe(self, base_key: str = "TableDescription") -> dict[str, Any]:
        result = original_describe(self, base_key)
        result[base_key]["TableId"] = _table_id(self)
        return result

    Table.describe = describe
    DynamoHandler.export_table_to_point_in_time = export_table_to_point_in_time
    DynamoHandler.describe_export = describe_export
    DynamoHandler.list_exports = list_exports
