"""Restore points: the newest export at or before a time whose manifests pass the nightly job's verification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.drills import DrillError, NoVerifiedExport
from dynamoguard.exports.manifest import ManifestError, ManifestSummary, parse_manifest_files
from dynamoguard.exports.verify import verify_export
from dynamoguard.timeutil import iso, iso_ms, parse_time

DEFAULT_WORKERS = 32


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


@dataclass(frozen=True)
class SkippedExport:
    """An export passed over as a restore point: where it is, why, and (if its manifest was readable) which."""

    location: str
    reason: str
    export_arn: str | None = None
    export_time: str | None = None
    unfinished: bool = False  # no manifest-summary.json yet: an export still being written (or abandoned)

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_export(s3, bucket: str, summary_key: str) -> ExportRef:
    """Read ``manifest-summary.json`` and ``manifest-files.json``; DrillError names the object on bad input."""
    try:
        summary = ManifestSummary.parse(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read(),
                                                summary_key)
        files_key = summary.manifest_files_key
        files = parse_manifest_files(s3.get_object(Bucket=bucket, Key=files_key)["Body"].read(), files_key)
    except ManifestError as error:
        raise DrillError(f"s3://{bucket}/{error}") from None
    export_root = summary_key.rsplit("/", 1)[0]
    return ExportRef(bucket=bucket, summary_key=summary_key, export_arn=summary.export_arn,
                     export_time=iso_ms(summary.export_time), table_arn=summary.table_arn,
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
    result = verify_export(s3, export.bucket, export.export_arn, table_arn, parse_time(export.export_time),
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
                           ) -> tuple[ExportRef, list[SkippedExport]]:
    """The newest export (by exportTime, at or before ``at_or_before``) whose manifest verifies.

    Returns the export and the exports skipped on the way (each with its reason). ``verify`` returns a list
    of problems (default :func:`export_problems`; ``copied`` as there). NoVerifiedExport when none qualifies.
    """
    verify = verify or (lambda export: export_problems(s3, export, table_arn, copied=copied))
    candidates = []
    skipped = []
    for key in export_summary_keys(s3, bucket, table_prefix):
        location = f"s3://{bucket}/{key}"
        try:
            export = read_export(s3, bucket, key)
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                skipped.append(SkippedExport(location, "no manifest (export unfinished?)", unfinished=True))
                continue
            raise
        except DrillError as error:
            skipped.append(SkippedExport(location, str(error)))
            continue
        if at_or_before is None or parse_time(export.export_time) <= at_or_before:
            candidates.append(export)
    for export in sorted(candidates, key=lambda e: parse_time(e.export_time), reverse=True):
        problems = verify(export)
        if not problems:
            return export, skipped
        skipped.append(SkippedExport(f"s3://{bucket}/{export.summary_key}", "; ".join(problems), export.export_arn,
                                     export.export_time))
    when = f" at or before {iso(at_or_before)}" if at_or_before else ""
    detail = ("; skipped: " + " | ".join(map(str, skipped))) if skipped else ""
    raise NoVerifiedExport(f"no verified export of {table_arn} under s3://{bucket}/{table_prefix}{when}{detail}",
                           skipped)
