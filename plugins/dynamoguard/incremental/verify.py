"""Verification of one incremental export against its manifests (AWS's incremental layout).

The layout differs from a full export's: the manifests lie in ``<prefix>/AWSDynamoDB/<ExportId>/`` but the data
files in ``<prefix>/AWSDynamoDB/data/`` (shared by the incrementals of a prefix; each window has its own prefix
here), and each line is ``{"Metadata":{"WriteTimestampMicros":…},"Keys":…,"OldImage"?:…,"NewImage"?:…}``.
Checked: both manifests and their .md5, the summary against the request (ARN, table, window, bucket, prefix,
INCREMENTAL_EXPORT, view), every listed data file's MD5, ETag and line count, the counts adding up, every line's
shape (Keys present, images are maps, NEW_IMAGE has no OldImage) and write time inside the window, and nothing
else under the window's folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.exports.manifest import STARTED_NAME, SUMMARY_NAME, ManifestError, export_folder
from dynamoguard.exports.verify import (
    CHECK_OF,
    CHUNK,
    VerificationResult,
    check_companion,
    list_folder,
    read_files_manifest,
    read_object,
    report_unexpected,
)
from dynamoguard.incremental.windows import Window
from dynamoguard.timeutil import iso_ms, parse_time, same_ms

_CHECK_OF = {**CHECK_OF, "wrong_window": "summary_matches_request",
             "not_incremental": "summary_matches_request", "line_invalid": "line_shape",
             "write_time_outside_window": "write_times"}


class IncrementalVerification(VerificationResult):
    """A :class:`~dynamoguard.exports.verify.VerificationResult` whose export time is the window's end."""

    window_start: datetime | None = None

    @property
    def checks_passed(self) -> list[str]:
        failed = {_CHECK_OF[p.code] for p in self.problems}
        return [c for c in self.checks_run if c not in failed]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(export_type="INCREMENTAL_EXPORT", window_from=iso_ms(self.window_start),
                    window_to=data["export_time"])
        return data


@dataclass(frozen=True)
class IncrementalSummary:
    """The fields of an incremental manifest-summary.json this project relies on."""

    export_arn: str
    table_arn: str
    start: datetime
    end: datetime
    bucket: str
    prefix: str | None
    files_key: str
    item_count: int
    view: str | None
    export_type: str | None

    @classmethod
    def parse(cls, raw: bytes, key: str) -> IncrementalSummary:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ManifestError(f"{key}: expected a JSON object")
            count = data["itemCount"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ManifestError(f"{key}: field 'itemCount' is not a count ({count!r})")
            return cls(export_arn=data["exportArn"], table_arn=data["tableArn"],
                       start=parse_time(data["exportFromTime"]), end=parse_time(data["exportToTime"]),
                       bucket=data["s3Bucket"], prefix=data.get("s3Prefix"), files_key=data["manifestFilesS3Key"],
                       item_count=count, view=data.get("outputView"), export_type=data.get("exportType"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(f"{key}: not valid JSON ({error})") from None
        except KeyError as missing:
            raise ManifestError(f"{key}: field {missing} is missing") from None
        except (TypeError, ValueError) as error:
            raise ManifestError(f"{key}: {error}") from None


def data_prefix(s3_prefix: str | None) -> str:
    """``[<prefix>/]AWSDynamoDB/data/``: where an incremental export's data files are."""
    prefix = (s3_prefix or "").strip("/")
    return f"{prefix + '/' if prefix else ''}AWSDynamoDB/data/"


@dataclass(frozen=True)
class _Scan:
    found: bool
    md5: str = ""
    sha256: str = ""
    etag: str = ""
    size: int = 0
    lines: int = 0
    problems: tuple[tuple[str, str], ...] = ()


def _line_problem(line: bytes, view: str | None, start_us: int, end_us: int) -> tuple[str, str] | None:
    try:
        record = json.loads(line)
        stamp = int(record["Metadata"]["WriteTimestampMicros"]["N"])
    except (ValueError, KeyError, TypeError):
        return "line_invalid", "no Metadata.WriteTimestampMicros"
    if not isinstance(record.get("Keys"), dict) or not record["Keys"]:
        return "line_invalid", "no Keys"
    for image in ("OldImage", "NewImage"):
        if image in record and not isinstance(record[image], dict):
            return "line_invalid", f"{image} is not a map"
    if view == "NEW_IMAGE" and "OldImage" in record:
        return "line_invalid", "OldImage in a NEW_IMAGE export"
    if not start_us <= stamp < end_us:
        return "write_time_outside_window", f"WriteTimestampMicros {stamp} outside [{start_us}, {end_us})"
    return None


def scan_incremental_file(s3, bucket: str, key: str, view: str | None, window: Window) -> _Scan:
    """One data object streamed once: MD5 and SHA-256 of its bytes, ETag, size, line count, line problems."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return _Scan(found=False)
        raise
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    inflater, rest, lines, problems = zlib.decompressobj(wbits=31), b"", 0, []
    start_us, end_us = int(window.start.timestamp() * 1e6), int(window.end.timestamp() * 1e6)
    body = response["Body"]
    try:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            md5.update(chunk)
            sha256.update(chunk)
            data = chunk
            while data:
                out = inflater.decompress(data)
                data = inflater.unused_data if inflater.eof else b""
                if inflater.eof:
                    inflater = zlib.decompressobj(wbits=31)
                *complete, rest = (rest + out).split(b"\n")
                for line in complete:
                    lines += 1
                    problem = _line_problem(line, view, start_us, end_us)
                    if problem and len(problems) < 5:
                        problems.append(problem)
        if rest.strip():
            lines += 1
            problem = _line_problem(rest, view, start_us, end_us)
            if problem and len(problems) < 5:
                problems.append(problem)
    except zlib.error as error:
        problems.append(("data_file_unreadable", f"not a readable gzip stream ({error})"))
    finally:
        body.close()
    return _Scan(True, base64.b64encode(md5.digest()).decode(), base64.b64encode(sha256.digest()).decode(),
                 response["ETag"].strip('"'), response["ContentLength"], lines, tuple(problems))


def verify_incremental(s3, bucket: str, export_arn: str, table_arn: str, window: Window, s3_prefix: str | None,
                       view: str | None = None, description: dict[str, Any] | None = None,
                       copied: bool = False) -> IncrementalVerification:
    """Verify one finished incremental export of ``window`` in ``bucket`` (see the module doc).

    ``copied``: the objects are copies in another bucket (the replica): the summary names the original bucket
    and the ETags differ; MD5s are still checked.
    """
    folder = export_folder(export_arn, s3_prefix)
    data = data_prefix(s3_prefix)
    result = IncrementalVerification(
        export_arn=export_arn, table_arn=table_arn, export_time=window.end, bucket=bucket,
        s3_prefix=(s3_prefix or "").strip("/"), export_prefix=folder,
        manifest_summary_key=folder + SUMMARY_NAME)
    result.window_start = window.start
    listed = {**list_folder(s3, bucket, folder), **list_folder(s3, bucket, data)}
    result.object_keys = sorted(listed)
    expected = {folder + STARTED_NAME}
    result.checks_run.append("manifest_summary")
    raw = read_object(s3, bucket, result.manifest_summary_key)
    if raw is None:
        result.problem("manifest_summary_missing", result.manifest_summary_key, "no manifest-summary.json")
        return result
    expected.add(result.manifest_summary_key)
    result.checksum(result.manifest_summary_key, listed.get(result.manifest_summary_key, {}).get("ETag"), raw)
    result.checks_run.append("manifest_summary_checksum")
    expected |= check_companion(s3, result, listed, result.manifest_summary_key, raw, "manifest_summary")
    try:
        summary = IncrementalSummary.parse(raw, result.manifest_summary_key)
    except ManifestError as error:
        result.problem("manifest_summary_invalid", result.manifest_summary_key, str(error))
        return result
    result.checks_run.append("summary_matches_request")
    _check_summary(result, summary, window, view, description, copied)

    result.checks_run.append("manifest_files")
    files_key = summary.files_key
    result.manifest_files_key = files_key
    if not files_key.startswith(folder):
        result.problem("manifest_files_missing", files_key, f"not in the bucket under {folder}")
        return result
    files = read_files_manifest(s3, bucket, result, listed, files_key, expected)
    if files is None:
        return result
    result.checks_run += ["data_files_present", "md5", "etag", "item_counts", "line_shape", "write_times"]
    for data_file in files:
        if not data_file.key.startswith(data):
            result.problem("data_file_outside_export", data_file.key, f"{files_key} lists a file outside {data}")
            continue
        expected.add(data_file.key)
        scan = scan_incremental_file(s3, bucket, data_file.key, summary.view, window)
        if not scan.found:
            result.problem("data_file_missing", data_file.key, f"listed in {files_key} but not in the bucket")
            continue
        result.data_keys.append(data_file.key)
        result.files += 1
        result.bytes += scan.size
        result.item_count += scan.lines
        result.checksum(data_file.key, scan.etag, scan.sha256)
        if scan.md5 != data_file.md5_checksum:
            result.problem("md5_mismatch", data_file.key, f"MD5 is {scan.md5}, manifest says {data_file.md5_checksum}")
        if not copied and scan.etag != data_file.etag.strip('"'):
            result.problem("etag_mismatch", data_file.key, f"ETag is {scan.etag}, manifest says {data_file.etag}")
        if scan.lines != data_file.item_count:
            result.problem("file_item_count_mismatch", data_file.key,
                           f"{scan.lines} lines in the object, manifest says {data_file.item_count}")
        for code, detail in scan.problems:
            result.problem(code, data_file.key, detail)
    listed_total = sum(f.item_count for f in files)
    if listed_total != summary.item_count:
        result.problem("item_count_mismatch", files_key,
                       f"data files list {listed_total} lines in total, summary itemCount is {summary.item_count}")
    report_unexpected(result, listed, expected)
    return result


def _check_summary(result: IncrementalVerification, summary: IncrementalSummary, window: Window, view: str | None,
                   description: dict[str, Any] | None, copied: bool) -> None:
    key = result.manifest_summary_key
    if summary.export_type != "INCREMENTAL_EXPORT":
        result.problem("not_incremental", key, f"exportType is {summary.export_type!r}")
    if summary.export_arn != result.export_arn:
        result.problem("wrong_export_arn", key, f"exportArn is {summary.export_arn}, expected {result.export_arn}")
    if summary.table_arn != result.table_arn:
        result.problem("wrong_table_arn", key, f"tableArn is {summary.table_arn}, expected {result.table_arn}")
    if not (same_ms(summary.start, window.start) and same_ms(summary.end, window.end)):
        result.problem("wrong_window", key, f"window is {iso_ms(summary.start)} .. {iso_ms(summary.end)}, expected "
                                            f"{iso_ms(window.start)} .. {iso_ms(window.end)}")
    if view and summary.view != view:
        result.problem("wrong_window", key, f"outputView is {summary.view}, expected {view}")
    if not copied and summary.bucket != result.bucket:
        result.problem("wrong_bucket", key, f"s3Bucket is {summary.bucket}, expected {result.bucket}")
    if (summary.prefix or "").strip("/") != result.s3_prefix:
        result.problem("wrong_prefix", key, f"s3Prefix is {summary.prefix!r}, expected {result.s3_prefix!r}")
    if description and description.get("ItemCount") is not None and description["ItemCount"] != summary.item_count:
        result.problem("export_description_mismatch", key,
                       f"DescribeExport's ItemCount is {description['ItemCount']}, summary says {summary.item_count}")
