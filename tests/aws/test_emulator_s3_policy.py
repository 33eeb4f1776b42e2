"""The emulator applies a bucket policy's explicit Deny as AWS does (fixes/s3_bucket_policy.py), including on
``s3:BypassGovernanceRetention``, and an active GOVERNANCE retention changes mode only with the bypass
(fixes/s3_object_lock.py).

References: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html ("Retention modes") and
object-lock-managing.html ("Bypassing governance mode").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from dynamoguard import iam_policies
from dynamoguard.config import load_config
from include.localaws import SOURCE_ACCOUNT
from include.localaws.connections import BACKUP_ROLE_ARN

pytestmark = pytest.mark.aws

BUCKET = "dynamoguard-exports"  # the demo config's backup bucket, so the rendered policy names it
KEY = "exports/orders/2026-01-01/AWSDynamoDB/1-a/data/x.json.gz"


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    return error.value.response["Error"]["Code"]


@pytest.fixture
def s3(localaws):
    client = localaws.client("s3")
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    return client


def project_policy() -> dict:
    return iam_policies.bucket_policies(load_config())[BUCKET]


def governance_object(s3, days: int = 5) -> tuple[str, datetime]:
    until = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    return version, until


def test_project_bucket_policy_lets_requests_over_tls_through_and_denies_deletes(s3):
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(project_policy()))
    # moto alone refuses every object request here: it takes "Deny s3:* if aws:SecureTransport=false" as met.
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"data")["VersionId"]
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"data"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentLength"] == 4
    with pytest.raises(ClientError) as error:  # DenyDeletes names everyone
        s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=version)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_governance_to_compliance_needs_the_bypass_and_the_policy_denies_it(s3):
    version, until = governance_object(s3)
    compliance = {"Mode": "COMPLIANCE", "RetainUntilDate": until + timedelta(days=1)}
    # Extending GOVERNANCE needs no bypass; changing its mode does (AccessDenied without the header).
    s3.put_object_retention(Bucket=BUCKET, Key=KEY, VersionId=version, ChecksumAlgorithm="SHA256",
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)})
    assert error_code(s3.put_object_retention, Bucket=BUCKET, Key=KEY, VersionId=version,
                      ChecksumAlgorithm="SHA256", Retention=compliance) == "AccessDenied"

    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(project_policy()))
    assert error_code(s3.put_object_retention, Bucket=BUCKET, Key=KEY, VersionId=version, ChecksumAlgorithm="SHA256",
                      Retention=compliance, BypassGovernanceRetention=True) == "AccessDenied"
    assert error_code(s3.delete_object, Bucket=BUCKET, Key=KEY, VersionId=version,
                      BypassGovernanceRetention=True) == "AccessDenied"
    assert s3.get_object_retention(Bucket=BUCKET, Key=KEY, VersionId=version)["Retention"]["Mode"] == "GOVERNANCE"

    s3.delete_bucket_policy(Bucket=BUCKET)
    s3.put_object_retention(Bucket=BUCKET, Key=KEY, VersionId=version, ChecksumAlgorithm="SHA256",
                            Retention=compliance, BypassGovernanceRetention=True)
    assert s3.get_object_retention(Bucket=BUCKET, Key=KEY, VersionId=version)["Retention"] == compliance


def test_deny_applies_only_to_the_principals_and_conditions_it_names(localaws, s3):
    source_root = f"arn:aws:iam::{SOURCE_ACCOUNT}:root"
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"data")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "NoBackupRoleReads", "Effect": "Deny", "Principal": {"AWS": [BACKUP_ROLE_ARN]},
         "Action": "s3:Get*", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        {"Sid": "BypassOnlyForRoot", "Effect": "Deny", "Principal": "*", "Action": "s3:BypassGovernanceRetention",
         "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": {"ArnNotEquals": {"aws:PrincipalArn": source_root}}},
    ]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"data"  # the source account's caller
    backup = localaws.client("s3", account="backup")
    with pytest.raises(ClientError) as error:
        backup.get_object(Bucket=BUCKET, Key=KEY)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    version, until = governance_object(s3)
    s3.put_object_retention(Bucket=BUCKET, Key=KEY, VersionId=version, ChecksumAlgorithm="SHA256",
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until}, BypassGovernanceRetention=True)


def test_a_deny_condition_the_emulator_cannot_decide_is_refused_loudly(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"data")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}))
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=BUCKET, Key=KEY)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
