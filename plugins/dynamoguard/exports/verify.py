"""Verification of a finished export against its manifests, checksum files and DescribeExport."""

from __future__ import annotations

import base64
import hashlib
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.concurrency import ordered_map
from dynamoguard.exports.manifest import (
    CHECKSUM_SUFFIXES,
    STARTED_NAME,
    SUMMARY_NAME,
    DataFile,
    ManifestError,
    ManifestSummary,
    b64_md5,
    checksum_matches,
    export_folder,
    parse_manifest_files,
)
from dynamoguard.timeutil import iso_ms, same_ms, utc

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # bytes read from S3 at a time, per data file
INFLATE_MAX = 1024 * 1024  # bytes inflated at a time


@dataclass(frozen=True)
class Problem:
    """One failed check: ``code`` says what, ``key`` which object, ``detail`` the evidence."""

    code: str
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.key}: {self.detail}"


# Which check each problem code fails.
CHECK_OF = {
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
        failed = {CHECK_OF[p.code] for p in self.problems}
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


def read_object(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise


def list_folder(s3, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
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
        if error_code(error) in ("NoSuchKey", "404"):
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
    listed = list_folder(s3, bucket, folder)
    result.object_keys = sorted(listed)
    expected_keys = {folder + STARTED_NAME}

    result.checks_run.append("manifest_summary")
    summary_key = result.manifest_summary_key
    raw = read_object(s3, bucket, summary_key)
    if raw is None:
        result.problem("manifest_summary_missing", summary_key, "no manifest-summary.json in the export folder")
        return result
    expected_keys |= {summary_key}
    result.checksum(summary_key, listed.get(summary_key, {}).get("ETag"), raw)
    result.checks_run.append("manifest_summary_checksum")
    expected_keys |= check_companion(s3, result, listed, summary_key, raw, "manifest_summary")
    try:
        summary = ManifestSummary.parse(raw, summary_key)
    except ManifestError as error:
        result.problem("manifest_summary_invalid", summary_key, str(error))
        return result

    result.checks_run.append("summary_matches_request")
    check_summary(result, summary, description)

    result.checks_run.append("manifest_files")
    files_key = summary.manifest_files_key
    result.manifest_files_key = files_key
    if not files_key.startswith(folder):
        result.problem("manifest_files_invalid", summary_key,
                       f"manifestFilesS3Key {files_key!r} is outside the export folder {folder!r}")
        return result
    data_files = read_files_manifest(s3, bucket, result, listed, files_key, expected_keys)
    if data_files is None:
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

    scans = list(ordered_map(scan_data_file, ((s3, bucket, f.key) for f in to_scan),
                             min(max_workers, len(to_scan) or 1), "verify"))
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

    report_unexpected(result, listed, expected_keys)
    return result


def read_files_manifest(s3, bucket: str, result: VerificationResult, listed: dict, files_key: str,
                        expected: set[str]) -> list[DataFile] | None:
    """manifest-files.json read, checked against its checksum files (both added to ``expected``) and parsed;
    None, with the problem recorded, when it is missing or invalid."""
    raw = read_object(s3, bucket, files_key)
    if raw is None:
        result.problem("manifest_files_missing", files_key, "listed in the summary but not in the bucket")
        return None
    expected.add(files_key)
    result.checksum(files_key, listed.get(files_key, {}).get("ETag"), raw)
    result.checks_run.append("manifest_files_checksum")
    expected |= check_companion(s3, result, listed, files_key, raw, "manifest_files")
    try:
        return parse_manifest_files(raw, files_key)
    except ManifestError as error:
        result.problem("manifest_files_invalid", files_key, str(error))
        return None


def check_companion(s3, result: VerificationResult, listed: dict, key: str, raw: bytes, what: str) -> set[str]:
    """Check the .md5/.checksum companions of manifest ``key``; return the companion keys present."""
    stem = key[: -len(".json")]
    present = [stem + suffix for suffix in CHECKSUM_SUFFIXES if stem + suffix in listed]
    if not present:
        result.problem(f"{what}_checksum_missing", key, "no .md5 or .checksum companion next to it")
    for companion_key in present:
        companion = read_object(s3, result.bucket, companion_key) or b""
        result.checksum(companion_key, listed[companion_key].get("ETag"), companion)
        text = companion.decode(errors="replace")
        if not checksum_matches(text, raw):
            result.problem(f"{what}_checksum_mismatch", companion_key,
                           f"holds {text.strip()[:64]!r}, but the MD5 of {key.rsplit('/', 1)[-1]} is {b64_md5(raw)}")
    return set(present)


def check_summary(result: VerificationResult, summary: ManifestSummary, description: dict[str, Any] | None) -> None:
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


def report_unexpected(result: VerificationResult, listed: dict, expected: set[str]) -> None:
    result.checks_run.append("no_unexpected_files")
    for key in sorted(set(listed) - expected):
        result.problem("unexpected_file", key, f"not part of the export's manifests ({listed[key].get('Size')} bytes)")
