"""DynamoDB point-in-time exports to S3: preflight, idempotent start, and verification against the manifests.

Plain logic over boto3 clients (no Airflow). Export layout and manifest formats follow
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html::

    <S3Prefix>/AWSDynamoDB/<ExportId>/_started
    <S3Prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json   (+ .md5 or .checksum)
    <S3Prefix>/AWSDynamoDB/<ExportId>/manifest-files.json     (+ .md5 or .checksum; JSON Lines, one per data file)
    <S3Prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.concurrency import bounded_map

log = logging.getLogger(__name__)

EXPORT_ARN = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):dynamodb:(?P<region>[\w-]+):(?P<account>\d{12}):"
    r"table/(?P<table>[A-Za-z0-9_.-]{3,255})/export/(?P<export_id>[0-9]+-[0-9a-fA-F]+)$"
)
SUMMARY_NAME = "manifest-summary.json"
FILES_NAME = "manifest-files.json"
STARTED_NAME = "_started"
CHECKSUM_SUFFIXES = (".md5", ".checksum")
CHUNK = 256 * 1024  # bytes read from S3 at a time, per data file
INFLATE_MAX = 1024 * 1024  # bytes inflated at a time


class ExportError(Exception):
    """An export cannot be started or used; the message says which table/export and why."""


class ExportTimeOutsideWindow(ExportError):
    """The requested export time is outside the table's point-in-time recovery window."""


class ExportNotYetRestorable(ExportError):
    """The export time has passed but is not restorable yet (PITR lags real time by a few minutes)."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


class ExportFailed(ExportError):
    """DynamoDB reports the export FAILED; carries AWS's FailureCode and FailureMessage."""

    def __init__(self, export_arn: str, code: str | None, message: str | None):
        super().__init__(f"export {export_arn} FAILED: {code}: {message}")
        self.export_arn, self.code, self.failure_message = export_arn, code, message


# ---------------------------------------------------------------------------------------------------------------
# Time helpers


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso_ms(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds, the form export manifests use (``2022-11-12T04:30:50.456Z``)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(value).microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset) into aware UTC."""
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def same_ms(a: datetime, b: datetime) -> bool:
    """Equal to the millisecond (the precision DynamoDB keeps for export times)."""
    return abs((utc(a) - utc(b)).total_seconds()) < 0.001


# ---------------------------------------------------------------------------------------------------------------
# Preflight


@dataclass(frozen=True)
class TableState:
    """What preflight found out about a table."""

    table_name: str
    table_arn: str
    table_status: str
    deletion_protection: bool
    pitr_status: str
    earliest_restorable: datetime | None
    latest_restorable: datetime | None
    pitr_enabled_now: bool = False

    def window_text(self) -> str:
        return f"{_fmt(self.earliest_restorable)} .. {_fmt(self.latest_restorable)}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["earliest_restorable"] = _fmt(self.earliest_restorable)
        data["latest_restorable"] = _fmt(self.latest_restorable)
        return data


def _fmt(value: datetime | None) -> str | None:
    return iso_ms(value) if value else None


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def preflight(ddb, table_name: str, ensure_pitr: bool = False) -> TableState:
    """Check the table exists and has PITR on (turning it on if ``ensure_pitr``); read its PITR window."""
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            raise ExportError(f"table {table_name!r} does not exist") from None
        raise
    pitr = _pitr(ddb, table_name)
    enabled_now = False
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        if not ensure_pitr:
            raise ExportError(
                f"table {table_name!r}: point-in-time recovery is {pitr.get('PointInTimeRecoveryStatus', 'DISABLED')};"
                " enable it or set ensure_pitr: true for this table in the config"
            )
        log.warning("Table %s: PITR is off; enabling it (ensure_pitr: true)", table_name)
        ddb.update_continuous_backups(
            TableName=table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        pitr, enabled_now = _pitr(ddb, table_name), True
    earliest = pitr.get("EarliestRestorableDateTime")
    latest = pitr.get("LatestRestorableDateTime")
    return TableState(
        table_name=table_name,
        table_arn=table["TableArn"],
        table_status=table.get("TableStatus", ""),
        deletion_protection=bool(table.get("DeletionProtectionEnabled", False)),
        pitr_status=pitr.get("PointInTimeRecoveryStatus", "DISABLED"),
        earliest_restorable=utc(earliest) if earliest else None,
        latest_restorable=utc(latest) if latest else None,
        pitr_enabled_now=enabled_now,
    )


def _pitr(ddb, table_name: str) -> dict[str, Any]:
    description = ddb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    return description.get("PointInTimeRecoveryDescription", {})


def choose_export_time(state: TableState, requested: datetime | None, now: datetime) -> datetime:
    """The export time for a run: ``requested`` (the data-interval end) or, without one, latest restorable.

    Raises ExportNotYetRestorable when ``requested`` has passed but PITR has not caught up with it yet,
    and ExportTimeOutsideWindow (naming the window) when it can never be exported.
    """
    earliest, latest = state.earliest_restorable, state.latest_restorable
    if earliest is None or latest is None:
        raise ExportError(f"table {state.table_name!r}: PITR window unknown ({state.pitr_status}); cannot export")
    if requested is None:
        return latest
    requested = utc(requested)
    if earliest <= requested <= latest:
        return requested
    if latest < requested <= utc(now):
        lag = utc(now) - latest
        raise ExportNotYetRestorable(
            f"table {state.table_name!r}: export time {iso_ms(requested)} is not restorable yet"
            f" (PITR window {state.window_text()})",
            retry_at=requested + lag,
        )
    raise ExportTimeOutsideWindow(
        f"table {state.table_name!r}: export time {iso_ms(requested)} is outside the point-in-time recovery"
        f" window {state.window_text()}"
    )


def export_prefix(base_prefix: str, table_name: str, export_time: datetime) -> str:
    """The S3Prefix of a nightly export: ``<base>/<table>/<YYYY-MM-DD>`` (UTC date of the export time)."""
    day: date = utc(export_time).date()
    return "/".join(p for p in (base_prefix.strip("/"), table_name, day.isoformat()) if p)


# ---------------------------------------------------------------------------------------------------------------
# Idempotent start


def client_token(table_arn: str, export_time: datetime, bucket: str, prefix: str, attempt: int = 0) -> str:
    """Deterministic ClientToken (64 hex chars) for one table, export time and destination.

    ``attempt`` counts earlier FAILED exports of the same request, so that a new try after a failure
    is a new request rather than a replay of the failed one.
    """
    material = "\n".join([table_arn, iso_ms(export_time), bucket, prefix, str(attempt)])
    return hashlib.sha256(material.encode()).hexdigest()


DESCRIBE_WORKERS = 8


def list_exports(ddb, table_arn: str) -> Iterator[dict[str, Any]]:
    """Every ExportSummary DynamoDB lists for the table (ListExports has no boto3 paginator)."""
    kwargs: dict[str, Any] = {"TableArn": table_arn, "MaxResults": 25}
    while True:
        page = ddb.list_exports(**kwargs)
        yield from page.get("ExportSummaries", [])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def describe_export(ddb, export_arn: str) -> dict[str, Any]:
    return ddb.describe_export(ExportArn=export_arn)["ExportDescription"]


def matching_exports(ddb, table_arn: str, export_time: datetime, bucket: str, prefix: str,
                     workers: int = DESCRIBE_WORKERS) -> list[dict[str, Any]]:
    """Descriptions of this table's exports for the same export time, bucket and prefix (any status).

    ListExports gives no export time, so every full export listed (up to 90 days of them) is described,
    ``workers`` at a time.
    """
    full_exports = ((summary["ExportArn"],) for summary in list_exports(ddb, table_arn)
                    if summary.get("ExportType", "FULL_EXPORT") == "FULL_EXPORT")
    matches = []
    for description in bounded_map(lambda arn: describe_export(ddb, arn), full_exports, workers):
        when = description.get("ExportTime")
        if (
            when is not None
            and same_ms(when, export_time)
            and description.get("TableArn") == table_arn
            and description.get("S3Bucket") == bucket
            and (description.get("S3Prefix") or "") == prefix
        ):
            matches.append(description)
    return matches


@dataclass(frozen=True)
class StartedExport:
    description: dict[str, Any]
    reused: bool
    client_token: str

    @property
    def export_arn(self) -> str:
        return self.description["ExportArn"]

    @property
    def status(self) -> str:
        return self.description["ExportStatus"]


def start_export(ddb, table_arn: str, export_time: datetime, bucket: str, prefix: str) -> StartedExport:
    """Start the export of ``table_arn`` at ``export_time`` to ``s3://bucket/prefix``, or reuse the one running.

    An existing IN_PROGRESS or COMPLETED export of the same table, time and destination is reused
    (this covers retries after the 8-hour ClientToken window); otherwise the export is started with
    a deterministic ClientToken, so a retry racing a first attempt gets the same export back.
    """
    existing = matching_exports(ddb, table_arn, export_time, bucket, prefix)
    usable = [d for d in existing if d.get("ExportStatus") in ("IN_PROGRESS", "COMPLETED")]
    if usable:
        usable.sort(key=lambda d: (d["ExportStatus"] != "COMPLETED", d.get("StartTime") or export_time))
        if len(usable) > 1:
            log.warning("Table %s has %d exports for %s: %s; using %s", table_arn, len(usable), iso_ms(export_time),
                        [d["ExportArn"] for d in usable], usable[0]["ExportArn"])
        chosen = usable[0]
        log.info("Reusing export %s (%s) of %s at %s", chosen["ExportArn"], chosen["ExportStatus"], table_arn,
                 iso_ms(export_time))
        return StartedExport(chosen, reused=True, client_token=chosen.get("ClientToken", ""))
    failed = len(existing)
    token = client_token(table_arn, export_time, bucket, prefix, attempt=failed)
    request: dict[str, Any] = {
        "TableArn": table_arn,
        "ExportTime": utc(export_time),
        "ClientToken": token,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
    }
    try:
        description = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    except ClientError as error:
        code = _error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code == "InvalidExportTimeException":
            raise ExportTimeOutsideWindow(f"{table_arn}: DynamoDB rejected export time {iso_ms(export_time)}: "
                                          f"{message}") from None
        if code == "ExportConflictException":
            raise ExportError(f"{table_arn}: ClientToken {token} was already used for a different export request"
                              f" ({message}); not starting a second export") from None
        if code == "PointInTimeRecoveryUnavailableException":
            raise ExportError(f"{table_arn}: point-in-time recovery is not enabled ({message})") from None
        raise
    log.info("Started export %s of %s at %s to s3://%s/%s (ClientToken %s, %d earlier failed)",
             description["ExportArn"], table_arn, iso_ms(export_time), bucket, prefix, token, failed)
    return StartedExport(description, reused=False, client_token=token)


def raise_if_failed(description: dict[str, Any]) -> None:
    """ExportFailed with AWS's FailureCode/FailureMessage when the export FAILED."""
    if description.get("ExportStatus") == "FAILED":
        raise ExportFailed(description["ExportArn"], description.get("FailureCode"), description.get("FailureMessage"))


# ---------------------------------------------------------------------------------------------------------------
# Manifest model


class ManifestError(ValueError):
    """A manifest object is not what DynamoDB writes; the message names the key and the field or line."""


def export_folder(export_arn: str, s3_prefix: str | None) -> str:
    """``[<prefix>/]AWSDynamoDB/<ExportId>/``, the folder holding one export's objects."""
    match = EXPORT_ARN.match(export_arn)
    if not match:
        raise ManifestError(f"{export_arn!r} is not a DynamoDB export ARN (…:table/<name>/export/<ExportId>)")
    prefix = (s3_prefix or "").strip("/")
    return f"{prefix + '/' if prefix else ''}AWSDynamoDB/{match['export_id']}/"


@dataclass(frozen=True)
class ManifestSummary:
    """manifest-summary.json of a full export."""

    version: str
    export_arn: str
    table_arn: str
    table_id: str | None
    export_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    s3_bucket: str
    s3_prefix: str | None
    manifest_files_key: str
    item_count: int
    billed_size_bytes: int | None
    output_format: str
    export_type: str | None

    @classmethod
    def parse(cls, raw: bytes, key: str) -> ManifestSummary:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(f"{key}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{key}: expected a JSON object")
        if data.get("exportType") == "INCREMENTAL_EXPORT":
            raise ManifestError(f"{key}: an incremental export; only full exports are verified")

        def need(name: str, kind: type | tuple[type, ...]):
            if name not in data:
                raise ManifestError(f"{key}: field {name!r} is missing")
            value = data[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ManifestError(f"{key}: field {name!r} has the wrong type ({value!r})")
            return value

        def when(name: str, required: bool) -> datetime | None:
            value = need(name, str) if required else data.get(name)
            if value is None:
                return None
            try:
                return parse_time(value)
            except (TypeError, ValueError):
                raise ManifestError(f"{key}: field {name!r} is not a timestamp ({value!r})") from None

        prefix = data.get("s3Prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise ManifestError(f"{key}: field 's3Prefix' has the wrong type ({prefix!r})")
        item_count = need("itemCount", int)
        if item_count < 0:
            raise ManifestError(f"{key}: field 'itemCount' is negative")
        billed = data.get("billedSizeBytes")
        return cls(
            version=need("version", str),
            export_arn=need("exportArn", str),
            table_arn=need("tableArn", str),
            table_id=data.get("tableId"),
            export_time=when("exportTime", True),
            start_time=when("startTime", False),
            end_time=when("endTime", False),
            s3_bucket=need("s3Bucket", str),
            s3_prefix=prefix,
            manifest_files_key=need("manifestFilesS3Key", str),
            item_count=item_count,
            billed_size_bytes=billed if isinstance(billed, int) else None,
            output_format=need("outputFormat", str),
            export_type=data.get("exportType"),
        )


@dataclass(frozen=True)
class DataFile:
    """One line of manifest-files.json."""

    key: str
    item_count: int
    md5_checksum: str
    etag: str


def parse_manifest_files(raw: bytes, key: str) -> list[DataFile]:
    """Parse manifest-files.json (JSON Lines); ManifestError names the line."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise ManifestError(f"{key}: not UTF-8 ({error})") from None
    files = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{key}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{key}: line {number} is not a JSON object")
        for name, kind in (("dataFileS3Key", str), ("itemCount", int), ("md5Checksum", str), ("etag", str)):
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                raise ManifestError(f"{key}: line {number}: field {name!r} is missing or has the wrong type")
        if data["itemCount"] < 0:
            raise ManifestError(f"{key}: line {number}: field 'itemCount' is negative")
        files.append(DataFile(data["dataFileS3Key"], data["itemCount"], data["md5Checksum"], data["etag"]))
    return files


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def checksum_matches(companion: str, data: bytes) -> bool:
    """Whether a ``.md5``/``.checksum`` companion's text is a checksum of ``data``.

    Observed ``.md5`` files hold base64 MD5; the ``.checksum`` content format is not documented,
    so hex MD5 and base64/hex SHA-256 are accepted as well.
    """
    value = companion.strip()
    md5, sha256 = hashlib.md5(data).digest(), hashlib.sha256(data).digest()
    candidates = {base64.b64encode(md5).decode(), md5.hex(), base64.b64encode(sha256).decode(), sha256.hex()}
    return value in candidates or value.lower() in candidates


# ---------------------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class Problem:
    """One failed check: ``code`` says what, ``key`` which object, ``detail`` the evidence."""

    code: str
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.key}: {self.detail}"


CHECKS = (
    "manifest_summary", "manifest_summary_checksum", "summary_matches_request", "manifest_files",
    "manifest_files_checksum", "data_files_present", "md5", "etag", "item_counts", "no_unexpected_files",
)
# Which check each problem code fails.
_CHECK_OF = {
    "manifest_summary_missing": "manifest_summary", "manifest_summary_invalid": "manifest_summary",
    "manifest_summary_checksum_missing": "manifest_summary_checksum",
    "manifest_summary_checksum_mismatch": "manifest_summary_checksum",
    "wrong_export_arn": "summary_matches_request", "wrong_table_arn": "summary_matches_request",
    "wrong_export_time": "summary_matches_request", "wrong_bucket": "summary_matches_request",
    "wrong_prefix": "summary_matches_request", "export_description_mismatch": "summary_matches_request",
    "manifest_files_missing": "manifest_files", "manifest_files_invalid": "manifest_files",
    "manifest_files_checksum_missing": "manifest_files_checksum",
    "manifest_files_checksum_mismatch": "manifest_files_checksum",
    "data_file_missing": "data_files_present", "data_file_outside_export": "data_files_present",
    "duplicate_data_file": "data_files_present",
    "md5_mismatch": "md5", "etag_mismatch": "etag",
    "data_file_unreadable": "item_counts", "file_item_count_mismatch": "item_counts",
    "item_count_mismatch": "item_counts",
    "unexpected_file": "no_unexpected_files",
}


@dataclass
class VerificationResult:
    """The outcome of verifying one export; ``ok`` when no problem was found."""

    export_arn: str
    table_arn: str
    export_time: datetime
    bucket: str
    s3_prefix: str
    export_prefix: str
    manifest_summary_key: str
    manifest_files_key: str | None = None
    data_keys: list[str] = field(default_factory=list)
    object_keys: list[str] = field(default_factory=list)
    # key -> {"etag", "sha256"}: the SHA-256 (base64) of every object read whole, computed here, for the replica step
    checksums: dict[str, dict[str, str]] = field(default_factory=dict)
    item_count: int = 0
    bytes: int = 0
    files: int = 0
    checks_run: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def checks_passed(self) -> list[str]:
        failed = {_CHECK_OF[p.code] for p in self.problems}
        return [c for c in self.checks_run if c not in failed]

    def problem(self, code: str, key: str, detail: str) -> None:
        self.problems.append(Problem(code, key, detail))

    def checksum(self, key: str, etag: str | None, sha256: bytes | str) -> None:
        """Record the SHA-256 of ``key`` (raw bytes hashed here, or a base64 digest) with the ETag it was read at."""
        if etag:
            value = sha256 if isinstance(sha256, str) else base64.b64encode(hashlib.sha256(sha256).digest()).decode()
            self.checksums[key] = {"etag": etag.strip('"'), "sha256": value}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record (XCom, logs, notifications)."""
        return {
            "ok": self.ok,
            "export_arn": self.export_arn,
            "table_arn": self.table_arn,
            "export_time": iso_ms(self.export_time),
            "bucket": self.bucket,
            "s3_prefix": self.s3_prefix,
            "export_prefix": self.export_prefix,
            "manifest_summary_key": self.manifest_summary_key,
            "manifest_files_key": self.manifest_files_key,
            "item_count": self.item_count,
            "bytes": self.bytes,
            "files": self.files,
            "checks_passed": self.checks_passed,
            "problems": [str(p) for p in self.problems],
            "data_keys": self.data_keys,
            "object_keys": self.object_keys,
            "checksums": self.checksums,
        }


def _get(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if _error_code(error) in ("NoSuchKey", "404"):
            return None
        raise


def _list(s3, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = obj
    return objects


@dataclass(frozen=True)
class _FileScan:
    key: str
    found: bool
    md5: str = ""
    sha256: str = ""
    etag: str = ""
    size: int = 0
    lines: int = 0
    error: str = ""


def count_json_lines(chunks: Iterator[bytes]) -> int:
    """Lines in a gzip stream of JSON Lines (concatenated gzip members allowed; empty input = 0 lines).

    Inflates at most INFLATE_MAX bytes at a time, so memory stays bounded whatever the compression ratio.
    zlib.error if the stream is not gzip or ends inside a member.
    """
    lines, last = 0, b"\n"
    inflater, in_member = zlib.decompressobj(wbits=31), False
    for chunk in chunks:
        data = chunk
        while data:
            in_member = True
            out = inflater.decompress(data, INFLATE_MAX)
            if out:
                lines += out.count(b"\n")
                last = out[-1:]
            if inflater.eof:
                data = inflater.unused_data
                inflater, in_member = zlib.decompressobj(wbits=31), False
            else:
                data = inflater.unconsumed_tail
    if in_member:
        raise zlib.error("truncated gzip stream")
    return lines + (0 if last == b"\n" else 1)


def scan_data_file(s3, bucket: str, key: str) -> _FileScan:
    """Stream one data object: base64 MD5 and SHA-256 of its bytes (one pass), its ETag and size, and its item
    (line) count. The SHA-256 lets the replica step compare a server-side copy without reading the object again."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) in ("NoSuchKey", "404"):
            return _FileScan(key, found=False)
        raise
    digest, sha256 = hashlib.md5(), hashlib.sha256()
    body = response["Body"]

    def chunks() -> Iterator[bytes]:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            sha256.update(chunk)
            yield chunk

    error = ""
    lines = 0
    try:
        lines = count_json_lines(chunks())
    except zlib.error as exc:
        error = f"not a readable gzip stream ({exc})"
        for _ in chunks():  # finish hashing
            pass
    finally:
        body.close()
    return _FileScan(
        key, found=True, md5=base64.b64encode(digest.digest()).decode(),
        sha256=base64.b64encode(sha256.digest()).decode(), etag=response["ETag"].strip('"'),
        size=response["ContentLength"], lines=lines, error=error,
    )


def verify_export(s3, bucket: str, export_arn: str, table_arn: str, export_time: datetime, s3_prefix: str | None,
                  description: dict[str, Any] | None = None, max_workers: int = 32) -> VerificationResult:
    """Verify a finished export in ``bucket`` against its manifests and the request that produced it.

    Checks: manifest summary and files manifest parse and match their .md5/.checksum companions; the
    summary names the requested export ARN, table ARN, export time, bucket and prefix (and agrees with
    DescribeExport's ItemCount/ExportManifest when ``description`` is given); every listed data file
    exists, with the listed MD5 and ETag and as many JSON lines as its itemCount; the counts add up to
    the summary's itemCount; nothing else is stored under the export's folder. Checks that need an
    unreadable manifest are not run (and not reported as passed).
    """
    folder = export_folder(export_arn, s3_prefix)
    result = VerificationResult(
        export_arn=export_arn, table_arn=table_arn, export_time=utc(export_time), bucket=bucket,
        s3_prefix=(s3_prefix or "").strip("/"), export_prefix=folder, manifest_summary_key=folder + SUMMARY_NAME,
    )
    listed = _list(s3, bucket, folder)
    result.object_keys = sorted(listed)
    expected_keys = {folder + STARTED_NAME}

    result.checks_run.append("manifest_summary")
    summary_key = result.manifest_summary_key
    raw = _get(s3, bucket, summary_key)
    if raw is None:
        result.problem("manifest_summary_missing", summary_key, "no manifest-summary.json in the export folder")
        return result
    expected_keys |= {summary_key}
    result.checksum(summary_key, listed.get(summary_key, {}).get("ETag"), raw)
    result.checks_run.append("manifest_summary_checksum")
    expected_keys |= _check_companion(s3, result, listed, summary_key, raw, "manifest_summary")
    try:
        summary = ManifestSummary.parse(raw, summary_key)
    except ManifestError as error:
        result.problem("manifest_summary_invalid", summary_key, str(error))
        return result

    result.checks_run.append("summary_matches_request")
    _check_summary(result, summary, description)

    result.checks_run.append("manifest_files")
    files_key = summary.manifest_files_key
    result.manifest_files_key = files_key
    if not files_key.startswith(folder):
        result.problem("manifest_files_invalid", summary_key,
                       f"manifestFilesS3Key {files_key!r} is outside the export folder {folder!r}")
        return result
    raw_files = _get(s3, bucket, files_key)
    if raw_files is None:
        result.problem("manifest_files_missing", files_key, "listed in the summary but not in the bucket")
        return result
    expected_keys |= {files_key}
    result.checksum(files_key, listed.get(files_key, {}).get("ETag"), raw_files)
    result.checks_run.append("manifest_files_checksum")
    expected_keys |= _check_companion(s3, result, listed, files_key, raw_files, "manifest_files")
    try:
        data_files = parse_manifest_files(raw_files, files_key)
    except ManifestError as error:
        result.problem("manifest_files_invalid", files_key, str(error))
        return result

    result.checks_run += ["data_files_present", "md5", "etag", "item_counts"]
    seen: set[str] = set()
    to_scan = []
    for data_file in data_files:
        if data_file.key in seen:
            result.problem("duplicate_data_file", data_file.key, f"listed more than once in {files_key}")
            continue
        seen.add(data_file.key)
        if not data_file.key.startswith(folder + "data/"):
            result.problem("data_file_outside_export", data_file.key,
                           f"{files_key} lists a data file outside {folder}data/")
            continue
        to_scan.append(data_file)
    expected_keys |= seen
    result.data_keys = [f.key for f in data_files if f.key in seen]
    listed_total = sum(f.item_count for f in data_files)

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(to_scan) or 1))) as pool:
        scans = list(pool.map(lambda f: scan_data_file(s3, bucket, f.key), to_scan))
    counted_total = 0
    for data_file, scan in zip(to_scan, scans, strict=True):
        if not scan.found:
            result.problem("data_file_missing", data_file.key, f"listed in {files_key} but not in the bucket")
            continue
        result.files += 1
        result.bytes += scan.size
        result.checksum(data_file.key, scan.etag, scan.sha256)
        if scan.md5 != data_file.md5_checksum:
            result.problem("md5_mismatch", data_file.key,
                           f"MD5 of the object is {scan.md5}, manifest says {data_file.md5_checksum}")
        if scan.etag != data_file.etag.strip('"'):
            result.problem("etag_mismatch", data_file.key, f"ETag is {scan.etag}, manifest says {data_file.etag}")
        if scan.error:
            result.problem("data_file_unreadable", data_file.key, scan.error)
        elif scan.lines != data_file.item_count:
            result.problem("file_item_count_mismatch", data_file.key,
                           f"{scan.lines} items in the object, manifest says {data_file.item_count}")
        counted_total += scan.lines
    result.item_count = counted_total
    if listed_total != summary.item_count:
        result.problem("item_count_mismatch", files_key,
                       f"data files list {listed_total} items in total, summary itemCount is {summary.item_count}")
    # With every file's line count equal to its itemCount, the counted total equals the summary's too.

    _unexpected(result, listed, expected_keys)
    return result


def _check_companion(s3, result: VerificationResult, listed: dict, key: str, raw: bytes, what: str) -> set[str]:
    """Check the .md5/.checksum companions of manifest ``key``; return the companion keys present."""
    stem = key[: -len(".json")]
    present = [stem + suffix for suffix in CHECKSUM_SUFFIXES if stem + suffix in listed]
    if not present:
        result.problem(f"{what}_checksum_missing", key, "no .md5 or .checksum companion next to it")
    for companion_key in present:
        companion = _get(s3, result.bucket, companion_key) or b""
        result.checksum(companion_key, listed[companion_key].get("ETag"), companion)
        text = companion.decode(errors="replace")
        if not checksum_matches(text, raw):
            result.problem(f"{what}_checksum_mismatch", companion_key,
                           f"holds {text.strip()[:64]!r}, but the MD5 of {key.rsplit('/', 1)[-1]} is {b64_md5(raw)}")
    return set(present)


def _check_summary(result: VerificationResult, summary: ManifestSummary, description: dict[str, Any] | None) -> None:
    key = result.manifest_summary_key
    if summary.export_arn != result.export_arn:
        result.problem("wrong_export_arn", key, f"exportArn is {summary.export_arn}, expected {result.export_arn}")
    if summary.table_arn != result.table_arn:
        result.problem("wrong_table_arn", key, f"tableArn is {summary.table_arn}, expected {result.table_arn}")
    if not same_ms(summary.export_time, result.export_time):
        result.problem("wrong_export_time", key,
                       f"exportTime is {iso_ms(summary.export_time)}, expected {iso_ms(result.export_time)}")
    if summary.s3_bucket != result.bucket:
        result.problem("wrong_bucket", key, f"s3Bucket is {summary.s3_bucket}, expected {result.bucket}")
    if (summary.s3_prefix or "").strip("/") != result.s3_prefix:
        result.problem("wrong_prefix", key, f"s3Prefix is {summary.s3_prefix!r}, expected {result.s3_prefix!r}")
    if description:
        manifest = description.get("ExportManifest")
        if manifest and manifest != key:
            result.problem("export_description_mismatch", key, f"DescribeExport's ExportManifest is {manifest}")
        count = description.get("ItemCount")
        if count is not None and count != summary.item_count:
            result.problem("export_description_mismatch", key,
                           f"DescribeExport's ItemCount is {count}, summary itemCount is {summary.item_count}")


def _unexpected(result: VerificationResult, listed: dict, expected: set[str]) -> None:
    result.checks_run.append("no_unexpected_files")
    for key in sorted(set(listed) - expected):
        result.problem("unexpected_file", key, f"not part of the export's manifests ({listed[key].get('Size')} bytes)")
