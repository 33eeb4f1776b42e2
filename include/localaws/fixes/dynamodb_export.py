"""DynamoDB export to S3 as AWS documents it (replaces moto 5.2.5's ExportTableToPointInTime,
DescribeExport and ListExports).

AWS behaviour restored (API reference ExportTableToPointInTime / DescribeExport / ListExports and
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):

* ExportArn is ``<TableArn>/export/<ExportId>``, ExportId = 14-digit epoch milliseconds + "-" + 8 hex.
* Output under ``[<S3Prefix>/]AWSDynamoDB/<ExportId>/``: ``_started`` (empty, written when the export
  starts), ``data/<random>.json.gz`` (gzip JSON Lines ``{"Item": {...}}``, B/BS base64; items split over
  up to 4 files, an empty table gets one empty gzip file), ``manifest-files.json`` (one JSON line per
  data file: itemCount, md5Checksum = base64 MD5 of the object, etag = the object's S3 ETag,
  dataFileS3Key), ``manifest-summary.json`` and the ``.md5`` companions (base64 MD5 of each manifest).
  Data files are stored as single-part multipart uploads, so their ETag is ``hex(MD5(MD5(body)))-1``
  as in real exports. S3Prefix is optional.
* Every object gets the bucket's default Object Lock retention, as S3 applies it to any new version.
* The export stays IN_PROGRESS for ``LOCALAWS_EXPORT_SECONDS`` (default 5, changeable at run time via
  ``POST /_localaws/config``); the data and manifests are written when it completes.
* DescribeTable returns the table's TableId (moto has none), the same one the export reports.
* DescribeExport returns StartTime, EndTime, ExportTime, ExportManifest (key of manifest-summary.json),
  ClientToken, TableId, ExportFormat, BilledSizeBytes (bytes), ItemCount, FailureCode/FailureMessage.
  Unknown ARN -> ExportNotFoundException; malformed ARN -> ValidationException.
* ClientToken: same token + same request returns the same export, same token + different request ->
  ExportConflictException, for 8 hours after the first export completes.
* A missing bucket makes the export start and then FAIL with FailureCode S3NoSuchBucket.
* ExportTime must lie within the PITR window (see ``fixes/pitr.py``) and not in the future, else
  InvalidExportTimeException.
* ListExports works without TableArn, pages with MaxResults (1-25) / NextToken, and omits exports of
  deleted tables.

Limitations: the emulator keeps no item history, so an export contains the table's items as of the
request, whatever ExportTime says (ExportTime is still validated and reported everywhere).
Only FULL_EXPORT in DYNAMODB_JSON is produced; ION and INCREMENTAL_EXPORT are refused with a
ValidationException rather than answered with a file in the wrong format.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    MockValidationException,
    PointInTimeRecoveryUnavailable,
    TableNotFoundException,
)
from moto.dynamodb.models.utilities import DynamoJsonEncoder
from moto.dynamodb.responses import DynamoHandler

from include.localaws.fixes import pitr

SETTINGS: dict[str, float] = {"export_seconds": float(os.environ.get("LOCALAWS_EXPORT_SECONDS", "5"))}
MAX_DATA_FILES = 4
TOKEN_TTL_SECONDS = 8 * 3600
EXPORT_ARN = re.compile(r"^arn:[\w-]+:dynamodb:[\w-]+:\d{12}:table/[\w.-]+/export/\d{14}-[0-9a-f]{8}$")
REQUEST_KEYS = ("TableArn", "ExportTime", "S3Bucket", "S3BucketOwner", "S3Prefix", "S3SseAlgorithm",
                "S3SseKmsKeyId", "ExportFormat", "ExportType", "IncrementalExportSpecification")


class _Error(JsonRESTError):
    def __init__(self, code: str, message: str):
        super().__init__(ERROR_TYPE_PREFIX + code, message)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _table_id(table: Any) -> str:
    """AWS tables have a stable TableId (a UUID); moto's have none, so one is attached on first use."""
    if getattr(table, "table_id", None) is None:
        table.table_id = str(uuid.uuid4())
    return table.table_id


class Export:
    """One export: its request, its state, and the S3 objects it writes when it completes."""

    def __init__(self, handler: DynamoHandler, table: Any, request: dict[str, Any], export_time: float):
        now = time.time()
        self.account_id = handler.current_account
        self.table = table
        self.table_arn = table.table_arn
        self.table_id = _table_id(table)
        self.request = request
        self.export_id = f"{int(now * 1000):014d}-{secrets.token_hex(4)}"
        self.arn = f"{self.table_arn}/export/{self.export_id}"
        self.client_token = request.get("ClientToken") or str(uuid.uuid4())
        self.bucket = request["S3Bucket"]
        self.prefix = request.get("S3Prefix")
        self.sse_algorithm = request.get("S3SseAlgorithm") or "AES256"
        self.sse_kms_key_id = request.get("S3SseKmsKeyId")
        self.start_time = now
        self.export_time = export_time
        self.end_time: float | None = None
        self.status = "IN_PROGRESS"
        self.failure: tuple[str, str] | None = None
        self.item_count = 0
        self.billed_size = 0
        self.root = "/".join(p for p in ((self.prefix or "").rstrip("/"), "AWSDynamoDB", self.export_id) if p)
        self.manifest_key = f"{self.root}/manifest-summary.json"
        # The emulator has no history: the export holds the items as of the request.
        self.items = [(json.dumps(item.to_json(root_attr_name="Item"), cls=DynamoJsonEncoder, separators=(",", ":")),
                       item.size()) for item in table.all_items()]
        self.due = now + SETTINGS["export_seconds"]
        self._lock = threading.Lock()
        self._ddb = handler.dynamodb_backend
        self._ddb.table_exports[self.arn] = self  # on the moto backend, so that a moto reset forgets it
        self._s3 = self._s3_backend()
        if self._s3 is not None:
            self._put("_started", b"")
        timer = threading.Timer(max(0.0, self.due - time.time()), self.settle)
        timer.daemon = True
        timer.start()

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

    def _put(self, name: str, body: bytes, etag: str | None = None) -> Any:
        bucket = self._s3.get_bucket(self.bucket)
        lock_mode = lock_until = None
        if bucket.object_lock_enabled and bucket.has_default_lock:
            lock_mode, lock_until = bucket.default_lock_mode, bucket.default_retention()
        kms = self.sse_algorithm == "KMS"
        return self._s3.put_object(
            self.bucket, f"{self.root}/{name}", body, etag=etag,
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
            self.items = []

    def _write(self) -> None:
        count = len(self.items)
        files = max(1, min(MAX_DATA_FILES, count))
        lines = []
        for n in range(files):
            chunk = self.items[n * count // files:(n + 1) * count // files]
            body = gzip.compress("".join(f"{line}\n" for line, _ in chunk).encode(), mtime=0)
            key = f"data/{base64.b32encode(os.urandom(16)).decode().rstrip('=').lower()}.json.gz"
            etag = hashlib.md5(hashlib.md5(body).digest()).hexdigest() + "-1"
            self._put(key, body, etag=etag)
            lines.append(json.dumps({"itemCount": len(chunk), "md5Checksum": _b64md5(body), "etag": etag,
                                     "dataFileS3Key": f"{self.root}/{key}"}, separators=(",", ":")) + "\n")
        self.item_count = count
        self.billed_size = sum(size for _, size in self.items)
        files_body = "".join(lines).encode()
        self._put("manifest-files.json", files_body)
        self._put("manifest-files.md5", _b64md5(files_body).encode())
        summary = json.dumps({
            "version": "2020-06-30", "exportArn": self.arn, "startTime": _iso(self.start_time),
            "endTime": _iso(time.time()), "tableArn": self.table_arn, "tableId": self.table_id,
            "exportTime": _iso(self.export_time), "s3Bucket": self.bucket, "s3Prefix": self.prefix,
            "s3SseAlgorithm": self.sse_algorithm, "s3SseKmsKeyId": self.sse_kms_key_id,
            "manifestFilesS3Key": f"{self.root}/manifest-files.json", "billedSizeBytes": self.billed_size,
            "itemCount": count, "outputFormat": "DYNAMODB_JSON",
        }, separators=(",", ":")).encode()
        self._put("manifest-summary.json", summary)
        self._put("manifest-summary.md5", _b64md5(summary).encode())

    def describe(self) -> dict[str, Any]:
        self.settle()
        desc = {
            "ExportArn": self.arn, "ExportStatus": self.status, "StartTime": _dt(self.start_time),
            "TableArn": self.table_arn, "TableId": self.table_id, "ExportTime": _dt(self.export_time),
            "ClientToken": self.client_token, "S3Bucket": self.bucket,
            "S3BucketOwner": self.request.get("S3BucketOwner") or self.account_id,
            "S3SseAlgorithm": self.sse_algorithm, "ExportFormat": "DYNAMODB_JSON",
        }
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


def _validate_export_time(table: Any, requested: Any) -> float:
    now = time.time()
    if requested is None:
        return now
    if isinstance(requested, datetime):
        export_time = (requested if requested.tzinfo else requested.replace(tzinfo=UTC)).timestamp()
    else:
        export_time = float(requested)
    if export_time > now:
        raise _Error("InvalidExportTimeException", f"ExportTime {_iso(export_time)} is in the future")
    earliest, latest = pitr.window(table, now)
    if not earliest <= export_time <= latest:
        raise _Error("InvalidExportTimeException",
                     f"ExportTime {_iso(export_time)} is outside the point-in-time recovery window "
                     f"[{_iso(earliest)}, {_iso(latest)}] of table {table.name}")
    return export_time


def export_table_to_point_in_time(self: DynamoHandler) -> ActionResult:
    request = {k: v for k, v in self.body.items() if v is not None}
    table_arn = request.get("TableArn", "")
    if not table_arn.startswith("arn:"):
        raise MockValidationException(f"Invalid TableArn: {table_arn!r} is not an ARN")
    if not request.get("S3Bucket"):
        raise MockValidationException("1 validation error detected: Value null at 's3Bucket' failed to satisfy "
                                      "constraint: Member must not be null")
    if request.get("ExportFormat", "DYNAMODB_JSON") != "DYNAMODB_JSON":
        raise MockValidationException(f"ExportFormat {request['ExportFormat']} is not supported by the local "
                                      "emulator (only DYNAMODB_JSON)")
    if request.get("ExportType", "FULL_EXPORT") != "FULL_EXPORT":
        raise MockValidationException(f"ExportType {request['ExportType']} is not supported by the local "
                                      "emulator (only FULL_EXPORT)")
    table = next((t for t in self.dynamodb_backend.tables.values() if t.table_arn == table_arn), None)
    if table is None:
        raise TableNotFoundException(name=table_arn)
    if pitr.window(table) is None:
        raise PointInTimeRecoveryUnavailable(name=table.name)
    export_time = _validate_export_time(table, request.get("ExportTime"))

    token = request.get("ClientToken")
    tokens = _tokens(self)
    previous = tokens.get(token) if token else None
    if previous is not None and previous.end_time is not None and time.time() - previous.end_time > TOKEN_TTL_SECONDS:
        previous = None
    if previous is not None:
        if {k: previous.request.get(k) for k in REQUEST_KEYS} != {k: request.get(k) for k in REQUEST_KEYS}:
            raise _Error("ExportConflictException",
                         f"There was a conflict when writing to the specified S3 bucket. Duplicate request detected "
                         f"with ClientToken {token}")
        return ActionResult({"ExportDescription": previous.describe()})

    export = Export(self, table, request, export_time)
    if token:
        tokens[token] = export
    return ActionResult({"ExportDescription": export.describe()})


def describe_export(self: DynamoHandler) -> ActionResult:
    arn = self.body.get("ExportArn", "")
    if not EXPORT_ARN.match(arn):
        raise MockValidationException(f"Invalid Export ARN: {arn}")
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
    live = {id(t) for t in self.dynamodb_backend.tables.values()}
    exports = [e for e in _exports(self).values()
               if id(e.table) in live and (table_arn is None or e.table_arn == table_arn)]
    start = 0
    if token := self.body.get("NextToken"):
        arns = [e.arn for e in exports]
        if token not in arns:
            raise MockValidationException(f"Invalid NextToken: {token}")
        start = arns.index(token) + 1
    page = exports[start:start + max_results]
    result: dict[str, Any] = {"ExportSummaries": []}
    for export in page:
        export.settle()
        summary = {"ExportArn": export.arn, "ExportStatus": export.status}
        if export.request.get("ExportType"):
            summary["ExportType"] = export.request["ExportType"]
        result["ExportSummaries"].append(summary)
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
