"""The emulator's S3 Object Lock behaves as AWS documents it (fixes/s3_object_lock.py).

References: https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html, object-lock-managing.html and the
API reference of CopyObject, CreateMultipartUpload, GetObjectRetention, PutObjectRetention,
PutObjectLockConfiguration and PutBucketVersioning.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.aws

LOCKED, PLAIN = "locked-bucket", "plain-bucket"
BODY = b"export bytes " * 1000


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    return error.value.response["Error"]["Code"]


def locked_bucket(s3, name: str, mode: str | None = "COMPLIANCE", days: int = 3) -> None:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    rule = {"Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}} if mode else {}
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", **rule})


@pytest.fixture
def s3(localaws):
    client = localaws.client("s3")
    locked_bucket(client, LOCKED)
    client.create_bucket(Bucket=PLAIN)
    client.put_object(Bucket=PLAIN, Key="src", Body=BODY)
    return client


def retention(s3, key: str, bucket: str = LOCKED, **kwargs) -> tuple[str, timedelta]:
    got = s3.get_object_retention(Bucket=bucket, Key=key, **kwargs)["Retention"]
    head = s3.head_object(Bucket=bucket, Key=key, **kwargs)
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == (got["Mode"], got["RetainUntilDate"])
    return got["Mode"], got["RetainUntilDate"] - datetime.now(UTC)


def about(days: float) -> tuple[timedelta, timedelta]:
    return timedelta(days=days) - timedelta(minutes=5), timedelta(days=days) + timedelta(minutes=1)


def test_copy_object_gets_default_or_explicit_retention(s3):
    s3.copy_object(Bucket=LOCKED, Key="copied", CopySource={"Bucket": PLAIN, "Key": "src"})
    mode, left = retention(s3, "copied")
    low, high = about(3)
    assert mode == "COMPLIANCE" and low < left < high
    assert s3.get_object(Bucket=LOCKED, Key="copied")["Body"].read() == BODY

    until = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    s3.copy_object(Bucket=LOCKED, Key="explicit", CopySource={"Bucket": PLAIN, "Key": "src"},
                   ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    got = s3.get_object_retention(Bucket=LOCKED, Key="explicit")["Retention"]
    assert got == {"Mode": "GOVERNANCE", "RetainUntilDate": until}

    version = s3.head_object(Bucket=LOCKED, Key="copied")["VersionId"]
    assert error_code(s3.delete_object, Bucket=LOCKED, Key="copied", VersionId=version) == "AccessDenied"
    assert error_code(s3.copy_object, Bucket=PLAIN, Key="x", CopySource={"Bucket": PLAIN, "Key": "src"},
                      ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until) == "InvalidRequest"


def test_copy_object_with_sha256_checksum_into_locked_bucket(s3):
    result = s3.copy_object(Bucket=LOCKED, Key="summed", CopySource={"Bucket": PLAIN, "Key": "src"},
                            ChecksumAlgorithm="SHA256")["CopyObjectResult"]
    assert result["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(BODY).digest()).decode()


def test_multipart_uploads_get_default_or_explicit_retention(s3):
    upload = s3.create_multipart_upload(Bucket=LOCKED, Key="mpu")["UploadId"]
    part = s3.upload_part_copy(Bucket=LOCKED, Key="mpu", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": PLAIN, "Key": "src"})["CopyPartResult"]
    s3.complete_multipart_upload(Bucket=LOCKED, Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    mode, left = retention(s3, "mpu")
    assert mode == "COMPLIANCE" and about(3)[0] < left < about(3)[1]
    assert s3.head_object(Bucket=LOCKED, Key="mpu")["ETag"].endswith('-1"')

    until = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    upload = s3.create_multipart_upload(Bucket=LOCKED, Key="mpu2", ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=until)["UploadId"]
    part = s3.upload_part(Bucket=LOCKED, Key="mpu2", UploadId=upload, PartNumber=1, Body=BODY)
    s3.complete_multipart_upload(Bucket=LOCKED, Key="mpu2", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object_retention(Bucket=LOCKED, Key="mpu2")["Retention"] == {"Mode": "GOVERNANCE",
                                                                              "RetainUntilDate": until}


def test_get_object_retention(s3):
    first = s3.put_object(Bucket=LOCKED, Key="k", Body=b"1")["VersionId"]
    until = (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0)
    s3.put_object(Bucket=LOCKED, Key="k", Body=b"2", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    assert s3.get_object_retention(Bucket=LOCKED, Key="k")["Retention"]["Mode"] == "GOVERNANCE"
    assert s3.get_object_retention(Bucket=LOCKED, Key="k", VersionId=first)["Retention"]["Mode"] == "COMPLIANCE"
    assert error_code(s3.get_object_retention, Bucket=LOCKED, Key="missing") == "NoSuchKey"
    assert error_code(s3.get_object_retention, Bucket=PLAIN, Key="src") == "InvalidRequest"
    locked_bucket(s3, "no-default", mode=None)
    s3.put_object(Bucket="no-default", Key="bare", Body=b"x")
    assert error_code(s3.get_object_retention, Bucket="no-default", Key="bare") == "NoSuchObjectLockConfiguration"


def test_put_object_retention_protects_compliance_and_governance(s3):
    def put(key, mode, days, **kwargs):
        until = datetime.now(UTC) + timedelta(days=days)
        return s3.put_object_retention(Bucket=LOCKED, Key=key, Retention={"Mode": mode, "RetainUntilDate": until},
                                       **kwargs)

    s3.put_object(Bucket=LOCKED, Key="c", Body=b"c")  # default: COMPLIANCE 3 days
    assert error_code(put, "c", "COMPLIANCE", 1) == "AccessDenied"
    assert error_code(put, "c", "GOVERNANCE", 30) == "AccessDenied"
    assert error_code(s3.put_object_retention, Bucket=LOCKED, Key="c", Retention={},
                      BypassGovernanceRetention=True) == "AccessDenied"
    put("c", "COMPLIANCE", 30)
    assert retention(s3, "c")[0] == "COMPLIANCE" and retention(s3, "c")[1] > timedelta(days=29)

    until = datetime.now(UTC) + timedelta(days=10)
    s3.put_object(Bucket=LOCKED, Key="g", Body=b"g", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    assert error_code(put, "g", "GOVERNANCE", 1) == "AccessDenied"
    put("g", "GOVERNANCE", 1, BypassGovernanceRetention=True)
    assert retention(s3, "g")[1] < timedelta(days=1)
    assert error_code(put, "g", "COMPLIANCE", 2) == "AccessDenied"  # a mode change needs the bypass too
    put("g", "COMPLIANCE", 2, BypassGovernanceRetention=True)
    assert retention(s3, "g")[0] == "COMPLIANCE"

    assert error_code(put, "missing", "GOVERNANCE", 1) == "NoSuchKey"
    assert error_code(put, "g", "GOVERNANCE", 5, VersionId="no-such-version") == "NoSuchVersion"


def test_default_retention_can_change_on_a_bucket_holding_objects(s3):
    s3.put_object(Bucket=LOCKED, Key="before", Body=b"x")
    s3.put_object_lock_configuration(Bucket=LOCKED, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 40}}})
    s3.put_object(Bucket=LOCKED, Key="after", Body=b"x")
    assert retention(s3, "before")[0] == "COMPLIANCE"
    mode, left = retention(s3, "after")
    assert mode == "GOVERNANCE" and about(40)[0] < left < about(40)[1]
    rule = s3.get_object_lock_configuration(Bucket=LOCKED)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 40}}


def test_versioning_cannot_be_suspended_on_an_object_lock_bucket(s3):
    code = error_code(s3.put_bucket_versioning, Bucket=LOCKED, VersioningConfiguration={"Status": "Suspended"})
    assert code == "InvalidBucketState"
    assert s3.get_bucket_versioning(Bucket=LOCKED)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=PLAIN, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=PLAIN, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=PLAIN)["Status"] == "Suspended"


def test_cross_account_copy_into_replica_bucket_gets_its_default_retention(seeded):
    source, backup = seeded.client("s3"), seeded.client("s3", account="backup")
    source.put_object(Bucket="dynamoguard-exports", Key="exports/x/data/a.json.gz", Body=BODY)
    backup.copy_object(Bucket="dynamoguard-exports-replica", Key="exports/x/data/a.json.gz",
                       CopySource={"Bucket": "dynamoguard-exports", "Key": "exports/x/data/a.json.gz"})
    mode, left = retention(backup, "exports/x/data/a.json.gz", bucket="dynamoguard-exports-replica")
    assert mode == "COMPLIANCE" and about(35)[0] < left < about(35)[1]


def test_governance_bypass_only_when_requested(s3):
    until = datetime.now(UTC) + timedelta(days=5)
    version = s3.put_object(Bucket=LOCKED, Key="g", Body=b"g", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    assert error_code(s3.delete_object, Bucket=LOCKED, Key="g", VersionId=version,
                      BypassGovernanceRetention=False) == "AccessDenied"
    assert error_code(s3.delete_object, Bucket=LOCKED, Key="g", VersionId=version) == "AccessDenied"
    s3.delete_object(Bucket=LOCKED, Key="g", VersionId=version, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket=LOCKED, Prefix="g")
