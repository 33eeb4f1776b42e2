"""Starting one window's incremental export idempotently."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.exports.start import ExportError, ExportTimeOutsideWindow
from dynamoguard.incremental.windows import Window
from dynamoguard.timeutil import iso_ms

log = logging.getLogger(__name__)


def client_token(table_arn: str, window: Window, bucket: str, prefix: str, view: str) -> str:
    """Deterministic ClientToken for one table, window, destination and view: a retried task gets the same
    export back (DynamoDB keeps a token 8 hours), never a second one."""
    material = "\n".join(["INCREMENTAL_EXPORT", table_arn, iso_ms(window.start), iso_ms(window.end), bucket, prefix,
                          view])
    return hashlib.sha256(material.encode()).hexdigest()


def start_incremental(ddb, table_arn: str, window: Window, bucket: str, prefix: str,
                      view: str = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    """ExportTableToPointInTime of ``window`` to ``s3://bucket/prefix``; the export description (a replay of the
    same request returns the export already started)."""
    token = client_token(table_arn, window, bucket, prefix, view)
    try:
        description = ddb.export_table_to_point_in_time(
            TableArn=table_arn, ClientToken=token, S3Bucket=bucket, S3Prefix=prefix, ExportFormat="DYNAMODB_JSON",
            ExportType="INCREMENTAL_EXPORT",
            IncrementalExportSpecification={"ExportFromTime": window.start, "ExportToTime": window.end,
                                            "ExportViewType": view},
        )["ExportDescription"]
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code == "InvalidExportTimeException":
            raise ExportTimeOutsideWindow(f"{table_arn}: DynamoDB rejected the window {iso_ms(window.start)} .. "
                                          f"{iso_ms(window.end)}: {message}") from None
        if code in ("ExportConflictException", "PointInTimeRecoveryUnavailableException"):
            raise ExportError(f"{table_arn}: {code}: {message}") from None
        raise
    log.info("Incremental export %s of %s, %s .. %s: %s (ClientToken %s)", description["ExportArn"], table_arn,
             iso_ms(window.start), iso_ms(window.end), description["ExportStatus"], token)
    return description
