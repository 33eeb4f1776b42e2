"""Emulated S3 replication (include/localaws/fixes/s3_replication.py) behaves as AWS documents it."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.aws

SOURCE, REPLICA = "repl-source", "repl-replica"


def _config(localaws, **settings) -> None:
    request = urllib.request.Request(f"{localaws.endpoint}/_localaws/config", method="POST",
                                     data=json.dumps(settings).encode())
    urllib.request.urlopen(request, timeout=10).read()


def _rule(prefix: str = "exports/", bucket: str = REPLICA, account: str = "222222222222", **extra) -> dict:
    return {"ID": f"to-{bucket}", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": prefix},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{bucket}", "Account": account,
                            "AccessControlTranslation": {"Owner": "Destination"}}, **extra}


@pytest.fixture
def buckets(localaws):
    source, backup = localaws.client("s3"), localaws.client("s3", account="backup")
    source.create_bucket(Bucket=SOURCE, ObjectLockEnabledForBucket=True)
    backup.create_bucket(Bucket=REPLICA, ObjectLockEnabledForBucket=True)
    backup.put_object_lock_configuration(Bucket=REPLICA, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}})
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration={
        "Role": "arn:aws:iam::111111111111:role/replication", "Rules": [_rule()]})
    return source, backup


def _status(s3, key: str, timeout: float = 10.0) -> str | None:
    deadline = time.monotonic() + timeout
    while (status := s3.head_object(Bucket=SOURCE, Key=key).get("ReplicationStatus")) == "PENDING":
        assert time.monotonic() < deadline, f"{key} still PENDING"
        time.sleep(0.1)
    return status


def test_new_object_is_pending_then_replicated_to_the_other_account(localaws, buckets):
    source, backup = buckets
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    put = source.put_object(Bucket=SOURCE, Key="exports/a.json", Body=b'{"a": 1}', Metadata={"origin": "test"},
                            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    assert source.head_object(Bucket=SOURCE, Key="exports/a.json")["ReplicationStatus"] == "PENDING"

    assert _status(source, "exports/a.json") == "COMPLETED"
    replica = backup.head_object(Bucket=REPLICA, Key="exports/a.json")
    assert replica["ReplicationStatus"] == "REPLICA"
    assert replica["ETag"] == put["ETag"]
    assert replica["Metadata"] == {"origin": "test"}
    assert (replica["ObjectLockMode"], replica["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)
    assert backup.get_object(Bucket=REPLICA, Key="exports/a.json")["Body"].read() == b'{"a": 1}'


def test_replica_without_source_retention_gets_the_destination_default(localaws, buckets):
    source, backup = buckets
    source.put_object(Bucket=SOURCE, Key="exports/b.json", Body=b"b")
    assert _status(source, "exports/b.json") == "COMPLETED"
    replica = backup.head_object(Bucket=REPLICA, Key="exports/b.json")
    assert replica["ObjectLockMode"] == "COMPLIANCE"
    assert replica["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=29)


def test_objects_outside_the_rule_prefix_are_not_replicated(localaws, buckets):
    source, backup = buckets
    source.put_object(Bucket=SOURCE, Key="reports/r.json", Body=b"r")
    assert "ReplicationStatus" not in source.head_object(Bucket=SOURCE, Key="reports/r.json")
    time.sleep(1.5)
    assert backup.list_objects_v2(Bucket=REPLICA).get("KeyCount") == 0


def test_missing_destination_bucket_fails_the_replication(localaws, buckets):
    source, _ = buckets
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration={
        "Role": "arn:aws:iam::111111111111:role/replication", "Rules": [_rule(bucket="no-such-bucket")]})
    source.put_object(Bucket=SOURCE, Key="exports/c.json", Body=b"c")
    assert _status(source, "exports/c.json") == "FAILED"


def test_get_bucket_replication_returns_the_rule_filter(localaws, buckets):
    source, _ = buckets
    [rule] = source.get_bucket_replication(Bucket=SOURCE)["ReplicationConfiguration"]["Rules"]
    assert rule["Filter"] == {"Prefix": "exports/"}
    assert rule["Destination"]["Account"] == "222222222222"
    assert rule["Destination"]["AccessControlTranslation"] == {"Owner": "Destination"}


def test_replication_delay_is_a_run_time_setting(localaws, buckets):
    source, _ = buckets
    _config(localaws, replication_seconds=3600)
    try:
        source.put_object(Bucket=SOURCE, Key="exports/slow.json", Body=b"s")
        time.sleep(1.5)
        assert source.head_object(Bucket=SOURCE, Key="exports/slow.json")["ReplicationStatus"] == "PENDING"
    finally:
        _config(localaws, replication_seconds=1)
