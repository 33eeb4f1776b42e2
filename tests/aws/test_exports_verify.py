"""The export verifier against objects in the emulator's S3, laid out exactly as DynamoDB writes them.

The real AWS sample (reference notes, section 2) is written verbatim; the other exports are built
the same way (gzip JSON Lines data uploaded as a one-part multipart upload, so its ETag is the
``<md5-of-md5>-1`` form AWS reports) and then tampered with, one way per test.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from dynamoguard.exports.manifest import export_folder
from dynamoguard.exports.verify import verify_export
from dynamoguard.timeutil import iso_ms
from tests.fixtures import real_export as real

pytestmark = pytest.mark.aws

UTC = timezone.utc
BUCKET = "verify-exports"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
EXPORT_ARN = TABLE_ARN + "/export/01764208800000-1a2b3c4d"
EXPORT_TIME = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
PREFIX = "exports/orders/2026-11-27"



def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put_single_part_multipart(s3, bucket: str, key: str, body: bytes) -> str:
    """Upload as DynamoDB does (one-part multipart upload); return the ETag S3 assigned."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=body)
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    return done["ETag"].strip('"')


def items(n: int, start: int = 0) -> bytes:
    return b"".join(json.dumps({"Item": {"customer_id": {"S": f"c{i}"}, "order_id": {"S": f"o{i}"}}},
                               separators=(",", ":")).encode() + b"\n" for i in range(start, start + n))


@dataclass
class FakeExport:
    """An export's objects, built the way DynamoDB writes them; edit before ``upload`` to tamper."""

    arn: str = EXPORT_ARN
    prefix: str = PREFIX
    data: dict[str, bytes] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    extra: dict[str, bytes] = field(default_factory=dict)
    summary_bytes: bytes | None = None
    files_bytes: bytes | None = None
    companions: dict[str, str | None] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return export_folder(self.arn, self.prefix)

    @classmethod
    def build(cls, counts=(120, 0, 37)) -> FakeExport:
        export = cls()
        start = 0
        for n, name in zip(counts, ("a3kf9", "b8q2x", "zz01m"), strict=True):
            body = gzip.compress(items(n, start)) if n else b""  # an empty partition gives an empty file
            key = f"{export.folder}data/{name}{n:04d}.json.gz"
            export.data[key] = body
            export.files.append({"itemCount": n, "md5Checksum": b64_md5(body),
                                 "etag": hashlib.md5(hashlib.md5(body).digest()).hexdigest() + "-1",
                                 "dataFileS3Key": key})
            start += n
        export.summary = {
            "version": "2020-06-30", "exportArn": export.arn, "startTime": iso_ms(EXPORT_TIME),
            "endTime": "2026-11-27T02:09:12.345Z", "tableArn": TABLE_ARN,
            "tableId": "5e1b7c1e-1111-4222-8333-944445555666", "exportTime": iso_ms(EXPORT_TIME),
            "s3Bucket": BUCKET, "s3Prefix": PREFIX, "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None,
            "manifestFilesS3Key": export.folder + "manifest-files.json", "billedSizeBytes": 52111,
            "itemCount": sum(counts), "outputFormat": "DYNAMODB_JSON",
        }
        return export

    def upload(self, s3, bucket: str = BUCKET) -> None:
        s3.put_object(Bucket=bucket, Key=self.folder + "_started", Body=b"")
        for key, body in self.data.items():
            put_single_part_multipart(s3, bucket, key, body)
        files = self.files_bytes
        if files is None:
            files = b"".join(json.dumps(f, separators=(",", ":")).encode() + b"\n" for f in self.files)
        summary = self.summary_bytes
        if summary is None:
            summary = json.dumps(self.summary, separators=(",", ":")).encode()
        for name, body in (("manifest-files", files), ("manifest-summary", summary)):
            s3.put_object(Bucket=bucket, Key=f"{self.folder}{name}.json", Body=body)
            companion = self.companions.get(name, b64_md5(body))
            if companion is not None:
                s3.put_object(Bucket=bucket, Key=f"{self.folder}{name}.md5", Body=companion.encode())
        for key, body in self.extra.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def s3(localaws):
    client = localaws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def verify(s3, export: FakeExport | None = None, **overrides):
    args = {"bucket": BUCKET, "export_arn": EXPORT_ARN, "table_arn": TABLE_ARN, "export_time": EXPORT_TIME,
            "s3_prefix": PREFIX, "max_workers": 4}
    args.update(overrides)
    return verify_export(s3, **args)


def codes(result) -> list[str]:
    return sorted(p.code for p in result.problems)


def test_real_aws_sample_manifests_verify_and_the_unknown_data_file_is_flagged(localaws):
    """The verbatim real manifests pass every manifest check; we cannot have the original data object,
    so the stand-in written in its place is caught by its MD5 and ETag (and nothing else)."""
    s3 = localaws.client("s3")
    s3.create_bucket(Bucket="outroslivros")
    folder = "AWSDynamoDB/01668227450456-b6733290/"
    s3.put_object(Bucket="outroslivros", Key=folder + "_started", Body=b"")
    s3.put_object(Bucket="outroslivros", Key=folder + "manifest-summary.json", Body=real.SUMMARY)
    s3.put_object(Bucket="outroslivros", Key=folder + "manifest-summary.md5", Body=b"iLBzJYa4HPixvLRk02MXZw==")
    s3.put_object(Bucket="outroslivros", Key=folder + "manifest-files.json", Body=real.FILES)
    s3.put_object(Bucket="outroslivros", Key=folder + "manifest-files.md5", Body=b"eF9XArdBefG4NFSVs2U2ow==")
    put_single_part_multipart(s3, "outroslivros", real.DATA_KEY, gzip.compress(items(6)))

    result = verify_export(s3, "outroslivros", real.EXPORT_ARN, real.TABLE_ARN, real.EXPORT_TIME, None)
    assert codes(result) == ["etag_mismatch", "md5_mismatch"]
    assert [p.key for p in result.problems] == [real.DATA_KEY, real.DATA_KEY]
    assert result.checks_passed == ["manifest_summary", "manifest_summary_checksum", "summary_matches_request",
                                    "manifest_files", "manifest_files_checksum", "data_files_present",
                                    "item_counts", "no_unexpected_files"]
    assert (result.item_count, result.files) == (6, 1)


def test_a_correct_export_passes_every_check(s3):
    export = FakeExport.build()
    export.upload(s3)
    result = verify(s3, description={"ExportManifest": export.folder + "manifest-summary.json", "ItemCount": 157})
    assert result.ok, result.problems
    assert set(result.checks_passed) == {
        "manifest_summary", "manifest_summary_checksum", "summary_matches_request", "manifest_files",
        "manifest_files_checksum", "data_files_present", "md5", "etag", "item_counts", "no_unexpected_files"}
    assert (result.item_count, result.files) == (157, 3)
    assert result.bytes == sum(len(b) for b in export.data.values())
    assert result.data_keys == list(export.data)
    assert len(result.object_keys) == 8  # _started, 2 manifests, 2 .md5, 3 data files
    # the SHA-256 of every object read whole, computed in the same pass, for the replica step
    assert set(result.checksums) == set(result.object_keys) - {export.folder + "_started"}
    for key, body in export.data.items():
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert result.checksums[key] == {"etag": head["ETag"].strip('"'),
                                         "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}
    record = result.to_dict()
    assert record["ok"] and record["export_prefix"] == export.folder and record["problems"] == []
    assert json.loads(json.dumps(record)) == record


def test_dot_checksum_companions_are_accepted_and_checked(s3):
    export = FakeExport.build()
    export.companions = {"manifest-files": None, "manifest-summary": None}
    export.upload(s3)
    files = s3.get_object(Bucket=BUCKET, Key=export.folder + "manifest-files.json")["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=export.folder + "manifest-files.checksum", Body=b64_md5(files).encode())
    s3.put_object(Bucket=BUCKET, Key=export.folder + "manifest-summary.checksum", Body=b"not-the-checksum")
    result = verify(s3)
    assert codes(result) == ["manifest_summary_checksum_mismatch"]
    assert result.problems[0].key == export.folder + "manifest-summary.checksum"


def _tamper_md5(e):
    e.files[0]["md5Checksum"] = b64_md5(b"something else")


def _tamper_etag(e):
    e.files[2]["etag"] = "0" * 32 + "-1"


def _tamper_missing(e):
    e.data.pop(next(iter(e.data)))


def _tamper_extra(e):
    e.extra[e.folder + "data/intruder.json.gz"] = gzip.compress(items(3))


def _tamper_summary_count(e):
    e.summary["itemCount"] += 1


def _tamper_file_count(e):
    e.files[0]["itemCount"] -= 2
    e.files[2]["itemCount"] += 2


def _tamper_truncated_files(e):
    text = b"".join(json.dumps(f, separators=(",", ":")).encode() + b"\n" for f in e.files)
    e.files_bytes = text[: len(text) - 60]


def _tamper_truncated_summary(e):
    e.summary_bytes = json.dumps(e.summary).encode()[:150]


def _tamper_table(e):
    e.summary["tableArn"] = TABLE_ARN.replace("orders", "customers")


def _tamper_time(e):
    e.summary["exportTime"] = "2026-11-26T02:00:00.000Z"


def _tamper_companion(e):
    e.companions["manifest-files"] = b64_md5(b"other")


def _tamper_no_companion(e):
    e.companions["manifest-summary"] = None


def _tamper_corrupt_gzip(e):
    key = next(iter(e.data))
    e.data[key] = e.data[key][:-30]
    e.files[0]["md5Checksum"] = b64_md5(e.data[key])
    e.files[0]["etag"] = hashlib.md5(hashlib.md5(e.data[key]).digest()).hexdigest() + "-1"


def _tamper_outside(e):
    outside = PREFIX + "/elsewhere/b8q2x0000.json.gz"
    e.data[outside] = e.data.pop(e.files[1]["dataFileS3Key"])
    e.files[1]["dataFileS3Key"] = outside


@pytest.mark.parametrize("tamper, expected", [
    (_tamper_md5, ["md5_mismatch"]),
    (_tamper_etag, ["etag_mismatch"]),
    (_tamper_missing, ["data_file_missing"]),
    (_tamper_extra, ["unexpected_file"]),
    (_tamper_summary_count, ["item_count_mismatch"]),
    (_tamper_file_count, ["file_item_count_mismatch", "file_item_count_mismatch"]),
    (_tamper_truncated_files, ["manifest_files_invalid"]),
    (_tamper_truncated_summary, ["manifest_summary_invalid"]),
    (_tamper_table, ["wrong_table_arn"]),
    (_tamper_time, ["wrong_export_time"]),
    (_tamper_companion, ["manifest_files_checksum_mismatch"]),
    (_tamper_no_companion, ["manifest_summary_checksum_missing"]),
    (_tamper_corrupt_gzip, ["data_file_unreadable"]),
    (_tamper_outside, ["data_file_outside_export"]),
], ids=lambda v: v.__name__.removeprefix("_tamper_") if callable(v) else None)
def test_each_tampering_gives_its_own_problem(s3, tamper, expected):
    export = FakeExport.build()
    tamper(export)
    export.upload(s3)
    result = verify(s3)
    assert not result.ok
    assert codes(result) == expected, result.problems


def test_a_manifest_changed_after_its_checksum_fails_both_checks(s3):
    export = FakeExport.build()
    export.upload(s3)
    s3.put_object(Bucket=BUCKET, Key=export.folder + "manifest-files.json", Body=b'{"itemCount":1}\n')
    result = verify(s3)
    assert codes(result) == ["manifest_files_checksum_mismatch", "manifest_files_invalid"]
    assert "line 1: field 'dataFileS3Key' is missing" in str(result.problems[1])
    # What could not be checked is not reported as passed.
    assert result.checks_passed == ["manifest_summary", "manifest_summary_checksum", "summary_matches_request"]


def test_missing_summary_and_wrong_request(s3):
    export = FakeExport.build()
    export.upload(s3)
    other = EXPORT_ARN.replace("1a2b3c4d", "99999999")
    assert codes(verify(s3, export_arn=other)) == ["manifest_summary_missing"]
    result = verify(s3, description={"ItemCount": 150, "ExportManifest": export.folder + "manifest-summary.json"})
    assert codes(result) == ["export_description_mismatch"]
    assert "DescribeExport's ItemCount is 150, summary itemCount is 157" in result.problems[0].detail


def test_problems_name_the_evidence(s3):
    export = FakeExport.build()
    _tamper_md5(export)
    export.upload(s3)
    [problem] = verify(s3).problems
    key = next(iter(export.data))
    assert problem.key == key
    expected = b64_md5(b"something else")
    assert problem.detail == f"MD5 of the object is {b64_md5(export.data[key])}, manifest says {expected}"
