"""Preflight of a table (PITR window, export time) and the idempotent start or reuse of its export."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.concurrency import bounded_map
from dynamoguard.timeutil import iso_ms, same_ms, utc

log = logging.getLogger(__name__)


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



def _fmt(value: datetime | None) -> str | None:
    return iso_ms(value) if value else None


def preflight(ddb, table_name: str, ensure_pitr: bool = False) -> TableState:
    """Check the table exists and has PITR on (turning it on if ``ensure_pitr``); read its PITR window."""
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
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
        code = error_code(error)
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
