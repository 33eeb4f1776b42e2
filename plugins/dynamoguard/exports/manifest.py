"""The manifests of an export: folder, manifest-summary.json, manifest-files.json and their checksum files."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dynamoguard.timeutil import parse_time

EXPORT_ARN = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):dynamodb:(?P<region>[\w-]+):(?P<account>\d{12}):"
    r"table/(?P<table>[A-Za-z0-9_.-]{3,255})/export/(?P<export_id>[0-9]+-[0-9a-fA-F]+)$"
)
SUMMARY_NAME = "manifest-summary.json"
STARTED_NAME = "_started"
CHECKSUM_SUFFIXES = (".md5", ".checksum")




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


EXPORT_ID = re.compile(r"^(?P<millis>\d{13,14})-[0-9a-f]{8}$")


def export_id_time(export_id: str) -> datetime | None:
    """The time an export was requested, from its ExportId (``<epoch millis>-<8 hex>``)."""
    match = EXPORT_ID.match(export_id)
    return datetime.fromtimestamp(int(match["millis"]) / 1000, tz=timezone.utc) if match else None


def export_time_from_summary(summary: dict[str, Any]) -> datetime:
    """``exportTime`` of a manifest-summary.json (``exportToTime`` for incremental exports)."""
    value = summary.get("exportTime") or summary.get("exportToTime")
    if value is None:
        raise ValueError("manifest-summary.json has neither exportTime nor exportToTime")
    return parse_time(value)
