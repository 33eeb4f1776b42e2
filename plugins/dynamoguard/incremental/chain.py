"""What a bucket holds of a table's chain: its incremental windows (by the layout's folder names) and the
ExportTime of its full exports (from their manifest summaries)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.exports.manifest import SUMMARY_NAME, ManifestError, ManifestSummary
from dynamoguard.incremental.windows import Window
from dynamoguard.layout import incremental_root, incremental_window, table_prefix

SCHEMA_NAME = "table-schema.json"  # beside each window's AWSDynamoDB/ folder: restorable without the table


def schema_key(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/{SCHEMA_NAME}"


def put_schema(s3, bucket: str, prefix: str, schema: dict[str, Any]) -> None:
    """Keep the table's key schema and indexes with the window, so a restore needs no DescribeTable of the
    (perhaps deleted) table."""
    s3.put_object(Bucket=bucket, Key=schema_key(prefix), Body=json.dumps(schema, sort_keys=True).encode(),
                  ContentType="application/json")


def stored_schema(s3, bucket: str, base_prefix: str, table: str) -> dict[str, Any] | None:
    """The schema kept with the newest completed window of ``table``, or None."""
    for window in reversed(stored_windows(s3, bucket, base_prefix, table)):
        if window.summary_key and _exists(s3, bucket, schema_key(window.prefix)):
            return json.loads(s3.get_object(Bucket=bucket, Key=schema_key(window.prefix))["Body"].read())
    return None


@dataclass(frozen=True)
class StoredWindow:
    """One window's folder and, when the export completed, its manifest summary key."""

    window: Window
    prefix: str
    summary_key: str | None


def _prefixes(s3, bucket: str, prefix: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found


def stored_windows(s3, bucket: str, base_prefix: str, table: str) -> list[StoredWindow]:
    """Every window folder under ``<base>/<table>/incremental/``, in window order; ``summary_key`` is None for a
    window whose export never completed (FAILED, or still running)."""
    found = []
    for folder in _prefixes(s3, bucket, incremental_root(base_prefix, table)):
        try:
            start, end = incremental_window(folder)
        except ValueError:
            continue
        summaries = [p + SUMMARY_NAME for p in _prefixes(s3, bucket, folder + "AWSDynamoDB/")
                     if not p.endswith("/data/")]
        present = [key for key in summaries if _exists(s3, bucket, key)]
        found.append(StoredWindow(Window(start, end), folder.rstrip("/"), present[-1] if present else None))
    return sorted(found, key=lambda w: (w.window.start, w.window.end))


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def full_export_times(s3, bucket: str, base_prefix: str, table: str, at_or_before: datetime | None = None,
                      newest_only: bool = True) -> list[datetime]:
    """ExportTime of the completed full exports of ``table`` (at or before ``at_or_before``), newest first; only the
    newest one with ``newest_only`` (the dated folders are read newest first, so this reads one or two summaries)."""
    times: list[datetime] = []
    root = table_prefix(base_prefix, table)
    for day in sorted(_prefixes(s3, bucket, root), reverse=True):
        if day == incremental_root(base_prefix, table):
            continue
        for folder in _prefixes(s3, bucket, day + "AWSDynamoDB/"):
            key = folder + SUMMARY_NAME
            try:
                raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                summary = ManifestSummary.parse(raw, key)
            except ClientError as error:
                if error_code(error) in ("NoSuchKey", "404"):
                    continue
                raise
            except ManifestError:
                continue
            if at_or_before is None or summary.export_time <= at_or_before:
                times.append(summary.export_time)
        if times and newest_only:
            return [max(times)]
    return sorted(times, reverse=True)
