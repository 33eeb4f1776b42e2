"""Replicas in the backup account, against the emulator with both accounts (logic module, boto3 clients)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from dynamoguard.replicas import LockPolicy, Replicator, copy_export, list_objects, verify_export

pytestmark = pytest.mark.aws

SOURCE = "dynamoguard-exports"
REPLICA = "dynamoguard-exports-replica"
EXPORT_ID = "01764300000000-a1b2c3d4"
PREFIX = f"exports/orders/AWSDynamoDB/{EXPORT_ID}/"
EXPORT_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
MiB = 1024 * 1024


@pytest.fixture
def estate(localaws):
    """The buckets of the demo estate the replica step uses: the locked exports bucket (readable by the backup
    role), the locked replica bucket in the backup account, the reports bucket (findings) and the alerts topic."""
    from dynamoguard.config import load_config
    from include.localaws.connections import BACKUP_ROLE_ARN
    from include.localaws.seed import create_bucket, create_locked_bucket, export_read_policy

    source = localaws.client("s3")
    create_bucket(source, load_config().reports_bucket.name, versioned=True)
    localaws.client("sns").create_topic(Name=load_config().notifications.sns_topic_arn.rsplit(":", 1)[1])
    create_locked_bucket(source, SOURCE, "COMPLIANCE", 35)
    source.put_bucket_policy(Bucket=SOURCE, Policy=json.dumps(export_read_policy(SOURCE, "exports", BACKUP_ROLE_ARN)))
    create_locked_bucket(localaws.client("s3", account="backup"), REPLICA, "COMPLIANCE", 35)
    return localaws


def make_export(s3, data_files: int = 6, prefix: str = PREFIX) -> dict[str, bytes]:
    """An export-like set of objects in the source bucket: data files, manifests and their checksums."""
    objects: dict[str, bytes] = {f"{prefix}_started": b""}
    lines = []
    for i in range(data_files):
        body = gzip.compress(b"".join(b'{"Item":{"pk":{"S":"k%d-%d"}}}\n' % (i, j) for j in range(50 + i)), mtime=0)
        key = f"{prefix}data/file{i:03d}.json.gz"
        objects[key] = body
        lines.append(json.dumps({"itemCount": 50 + i, "md5Checksum": _md5(body), "dataFileS3Key": key}))
    files = ("\n".join(lines) + "\n").encode()
    summary = json.dumps({"version": "2020-06-30", "exportTime": EXPORT_TIME.isoformat(),
                          "manifestFilesS3Key": f"{prefix}manifest-files.json"}).encode()
    objects.update({
        f"{prefix}manifest-files.json": files, f"{prefix}manifest-files.md5": _md5(files).encode(),
        f"{prefix}manifest-summary.json": summary, f"{prefix}manifest-summary.md5": _md5(summary).encode(),
    })
    for key, body in objects.items():
        s3.put_object(Bucket=SOURCE, Key=key, Body=body)
    return objects


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def _sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def replicator(localaws, bucket: str = REPLICA, **kwargs) -> Replicator:
    return Replicator(
        source_s3=localaws.client("s3"), backup_s3=localaws.client("s3", account="backup"),
        source_bucket=SOURCE, replica_bucket=bucket,
        lock=LockPolicy.from_export_time("COMPLIANCE", 35, EXPORT_TIME), max_workers=8,
        source_account="111111111111", backup_account="222222222222", **kwargs,
    )


def versions(s3, bucket: str, prefix: str = PREFIX) -> list[dict]:
    return s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])


def test_fresh_copy_copies_every_object_checksummed_and_locked(estate):
    objects = make_export(estate.client("s3"))
    result = copy_export(replicator(estate), "orders", PREFIX)

    assert result.ok, result.summary()
    assert result.checked == len(objects) == result.counts["copied"]
    backup = estate.client("s3", account="backup")
    until = EXPORT_TIME + timedelta(days=35)
    for key, body in objects.items():
        head = backup.head_object(Bucket=REPLICA, Key=key, ChecksumMode="ENABLED")
        assert backup.get_object(Bucket=REPLICA, Key=key)["Body"].read() == body
        assert head["ChecksumSHA256"] == _sha256(body)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] >= until


def test_rerun_copies_nothing_and_writes_nothing(estate):
    objects = make_export(estate.client("s3"))
    copy_export(replicator(estate), "orders", PREFIX)
    backup = estate.client("s3", account="backup")
    before = versions(backup, REPLICA)

    again = copy_export(replicator(estate), "orders", PREFIX)

    assert again.ok, again.summary()
    assert again.counts["copied"] == 0
    assert again.counts["skipped"] == again.checked == len(objects)
    assert versions(backup, REPLICA) == before


def test_half_finished_copy_resumes_with_only_the_missing_objects(estate):
    objects = make_export(estate.client("s3"), data_files=10)
    rep = replicator(estate)
    done = list(list_objects(rep.source_s3, SOURCE, PREFIX))[:5]  # a run that stopped after five copies
    assert [rep.copy_one(src, None)[0] for src in done] == ["copied"] * 5

    result = copy_export(replicator(estate), "orders", PREFIX)

    assert result.ok, result.summary()
    assert result.counts["skipped"] == 5
    assert result.counts["copied"] == len(objects) - 5
    assert len(versions(estate.client("s3", account="backup"), REPLICA)) == len(objects)


@pytest.mark.parametrize("tampered", [b"X" * 20, None], ids=["other-size", "same-size"])
def test_replica_with_different_content_is_reported_and_not_overwritten(estate, tampered):
    objects = make_export(estate.client("s3"))
    key = f"{PREFIX}data/file002.json.gz"
    tampered = tampered or bytes(b ^ 0xFF for b in objects[key])
    backup = estate.client("s3", account="backup")
    backup.put_object(Bucket=REPLICA, Key=key, Body=tampered)

    result = copy_export(replicator(estate), "orders", PREFIX)

    assert not result.ok
    assert result.counts["different"] == 1
    assert result.counts["copied"] == len(objects) - 1
    [finding] = result.findings
    assert (finding.kind, finding.key) == ("different", key)
    assert key in result.summary()
    assert backup.get_object(Bucket=REPLICA, Key=key)["Body"].read() == tampered
    assert len(versions(backup, REPLICA, key)) == 1


def test_replica_without_lock_is_reported(estate):
    objects = make_export(estate.client("s3"))
    backup = estate.client("s3", account="backup")
    backup.create_bucket(Bucket="replica-no-default-lock", ObjectLockEnabledForBucket=True)
    key = f"{PREFIX}manifest-files.json"
    backup.put_object(Bucket="replica-no-default-lock", Key=key, Body=objects[key])  # identical, no retention

    result = copy_export(replicator(estate, bucket="replica-no-default-lock"), "orders", PREFIX)

    assert result.counts["unlocked"] == 1
    assert result.counts["copied"] == len(objects) - 1
    [finding] = result.findings
    assert (finding.kind, finding.key) == ("unlocked", key)
    assert "no Object Lock retention" in finding.detail


def test_weaker_retention_is_reported_as_unlocked(estate):
    objects = make_export(estate.client("s3"))
    key = f"{PREFIX}_started"
    backup = estate.client("s3", account="backup")
    backup.put_object(Bucket=REPLICA, Key=key, Body=objects[key], ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1))

    result = copy_export(replicator(estate), "orders", PREFIX)

    [finding] = result.findings
    assert (finding.kind, finding.key) == ("unlocked", key)
    assert "GOVERNANCE" in finding.detail


def test_large_object_is_copied_in_parts_and_compared(estate):
    source = estate.client("s3")
    body = bytes(range(256)) * (11 * MiB // 256) + b"tail"
    key = f"{PREFIX}data/big.json.gz"
    source.put_object(Bucket=SOURCE, Key=key, Body=body)
    rep = replicator(estate, multipart_threshold=5 * MiB, part_size=5 * MiB)

    result = copy_export(rep, "orders", PREFIX)
    assert result.ok and result.counts["copied"] == 1, result.summary()
    backup = estate.client("s3", account="backup")
    assert backup.get_object(Bucket=REPLICA, Key=key)["Body"].read() == body
    assert backup.head_object(Bucket=REPLICA, Key=key)["ObjectLockMode"] == "COMPLIANCE"

    again = copy_export(rep, "orders", PREFIX)
    assert again.ok and again.counts["skipped"] == 1, again.summary()


def test_copy_with_the_verified_checksums_is_one_request_per_object_and_still_compared(estate):
    """The SHA-256 the export verification computed is what each copy is compared with: no read of the source
    (except _started, which the verification does not read), and a copy that does not match it is reported."""
    source = estate.client("s3")
    objects = make_export(source)
    etags = {o.key: o.etag for o in list_objects(source, SOURCE, PREFIX)}
    verified = {k: {"etag": etags[k], "sha256": _sha256(b)} for k, b in objects.items() if not k.endswith("_started")}
    reads = []
    source.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: reads.append(params["Key"]))
    rep = Replicator(source_s3=source, backup_s3=estate.client("s3", account="backup"), source_bucket=SOURCE,
                     replica_bucket=REPLICA, lock=LockPolicy.from_export_time("COMPLIANCE", 35, EXPORT_TIME),
                     max_workers=8, source_account="111111111111", backup_account="222222222222", verified=verified)
    result = copy_export(rep, "orders", PREFIX)
    assert result.ok and result.counts["copied"] == len(objects), result.summary()
    assert reads == [f"{PREFIX}_started"]

    other = PREFIX.replace(EXPORT_ID, "01764300000001-a1b2c3d4")
    objects = make_export(source, data_files=1, prefix=other)
    etags = {o.key: o.etag for o in list_objects(source, SOURCE, other)}
    wrong = f"{other}data/file000.json.gz"
    rep.verified = {wrong: {"etag": etags[wrong], "sha256": _sha256(b"what the verification read")}}
    result = copy_export(rep, "orders", other)
    assert [(f.kind, f.key) for f in result.findings] == [("different", wrong)]


def inject_conflicts(estate, key: str, count: int) -> None:
    body = json.dumps({"bucket": REPLICA, "key": key, "count": count, "account": "222222222222"}).encode()
    request = urllib.request.Request(f"{estate.endpoint}/_localaws/s3/conflicts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_copy_retries_a_conditional_request_conflict(estate):
    """CopyObject with If-None-Match can answer 409 ConditionalRequestConflict ("you should retry")."""
    objects = make_export(estate.client("s3"), data_files=2)
    key = f"{PREFIX}data/file000.json.gz"
    inject_conflicts(estate, key, 1)
    result = copy_export(replicator(estate), "orders", PREFIX)
    assert result.ok, result.summary()
    assert result.counts["copied"] == len(objects)
    replica = estate.client("s3", account="backup").get_object(Bucket=REPLICA, Key=key)["Body"].read()
    assert replica == objects[key]


def test_copy_reports_an_error_when_conflicts_persist(estate):
    make_export(estate.client("s3"), data_files=1)
    key = f"{PREFIX}data/file000.json.gz"
    inject_conflicts(estate, key, 20)
    result = copy_export(replicator(estate), "orders", PREFIX)
    assert result.counts["error"] == 1 and not result.ok
    (finding,) = result.findings
    assert finding.key == key and "ConditionalRequestConflict" in finding.detail
    assert versions(estate.client("s3", account="backup"), REPLICA, key) == []


def test_copy_never_overwrites_a_replica_written_after_the_listing(estate):
    """The copy is conditional on the key not existing (If-None-Match: *): a replica that appears between the
    listing and the copy answers 412, and is compared, not replaced."""
    source, backup = estate.client("s3"), estate.client("s3", account="backup")
    make_export(source, data_files=1)
    key = f"{PREFIX}data/file000.json.gz"
    other = estate.client("s3", account="backup")

    def write_first(params, **_):
        if params.get("Key") == key:
            other.put_object(Bucket=REPLICA, Key=key, Body=b"written by someone else")

    backup.meta.events.register("before-parameter-build.s3.CopyObject", write_first)
    rep = Replicator(source_s3=source, backup_s3=backup, source_bucket=SOURCE, replica_bucket=REPLICA,
                     lock=LockPolicy.from_export_time("COMPLIANCE", 35, EXPORT_TIME), max_workers=4,
                     source_account="111111111111", backup_account="222222222222")
    result = copy_export(rep, "orders", PREFIX)
    assert result.counts["different"] == 1, result.summary()
    assert [f.key for f in result.findings] == [key]
    assert backup.get_object(Bucket=REPLICA, Key=key)["Body"].read() == b"written by someone else"
    assert len(versions(backup, REPLICA, key)) == 1


def test_copy_needs_the_export_time_zone():
    with pytest.raises(ValueError, match="time zone"):
        LockPolicy.from_export_time("COMPLIANCE", 35, datetime(2026, 11, 28, 2, 0))


# -- verify mode --------------------------------------------------------------------------------------------

def replication_config(account: str = "222222222222", translate: bool = True, prefix: str = "exports/") -> dict:
    destination = {"Bucket": f"arn:aws:s3:::{REPLICA}", "Account": account}
    if translate:
        destination["AccessControlTranslation"] = {"Owner": "Destination"}
    return {
        "Role": "arn:aws:iam::111111111111:role/dynamoguard-replication",
        "Rules": [{"ID": "exports-to-backup", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": prefix},
                   "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": destination}],
    }


def wait_replicated(s3, keys, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    for key in keys:
        while s3.head_object(Bucket=SOURCE, Key=key).get("ReplicationStatus") == "PENDING":
            assert time.monotonic() < deadline, f"{key} still PENDING"
            time.sleep(0.2)


def test_verify_without_replication_configuration_fails(estate):
    make_export(estate.client("s3"))
    result = verify_export(replicator(estate), "orders", PREFIX, pending_is_missing=True)
    assert not result.ok
    assert result.config_problems == [f"bucket {SOURCE} has no replication configuration"]
    assert result.counts["missing"] == result.checked


@pytest.mark.parametrize(("config", "problem"), [
    (replication_config(account="333333333333"), "Destination.Account is '333333333333'"),
    (replication_config(translate=False), "AccessControlTranslation.Owner=Destination"),
    (replication_config(prefix="reports/"), "replicates only prefix 'reports/'"),
    ({**replication_config(), "Rules": [{**replication_config()["Rules"][0], "Status": "Disabled"}]},
     f"no enabled rule of bucket {SOURCE} replicates to arn:aws:s3:::{REPLICA}"),
    ({**replication_config(), "Rules": [{**replication_config()["Rules"][0], "Filter": {
        "And": {"Prefix": "exports/", "Tags": [{"Key": "replicate", "Value": "yes"}]}}}]},
     "replicates only tagged objects"),
])
def test_verify_reports_a_replication_rule_that_does_not_cover_the_export(estate, config, problem):
    source = estate.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=config)
    make_export(source, data_files=1)
    result = verify_export(replicator(estate), "orders", PREFIX, pending_is_missing=True)
    assert not result.ok
    assert any(problem in p for p in result.config_problems), result.config_problems


def test_verify_accepts_any_enabled_rule_that_covers_the_export(estate):
    config = replication_config(prefix="reports/")
    config["Rules"].append({**replication_config()["Rules"][0], "ID": "exports", "Priority": 2})
    estate.client("s3").put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=config)
    make_export(estate.client("s3"), data_files=0)
    assert verify_export(replicator(estate), "orders", PREFIX, pending_is_missing=True).config_problems == []


def own_replica_bucket(estate, ownership: str) -> None:
    estate.client("s3", account="backup").put_bucket_ownership_controls(
        Bucket=REPLICA, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})


def test_verify_accepts_bucket_owner_enforced_instead_of_owner_translation(estate):
    """AWS recommends S3 Object Ownership "bucket owner enforced" on the destination instead of
    AccessControlTranslation (S3 user guide, "Changing the replica owner")."""
    own_replica_bucket(estate, "BucketOwnerEnforced")
    source = estate.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config(translate=False))
    make_export(source, data_files=1)
    assert verify_export(replicator(estate), "orders", PREFIX, pending_is_missing=True).config_problems == []


def test_verify_without_owner_translation_or_enforced_ownership_names_both_fixes(estate):
    own_replica_bucket(estate, "BucketOwnerPreferred")
    source = estate.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config(translate=False))
    make_export(source, data_files=1)
    (problem,) = verify_export(replicator(estate), "orders", PREFIX, pending_is_missing=True).config_problems
    assert "AccessControlTranslation.Owner=Destination" in problem and "BucketOwnerEnforced" in problem
    assert "BucketOwnerPreferred" in problem


def test_verify_with_every_replica_present(estate):
    source = estate.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    objects = make_export(source)
    wait_replicated(source, objects)

    result = verify_export(replicator(estate), "orders", PREFIX)

    assert result.ok, result.summary()
    assert result.counts["skipped"] == result.checked == len(objects)


def test_verify_reports_the_one_missing_replica(estate):
    source = estate.client("s3")
    late = f"{PREFIX}data/written-before-replication.json.gz"
    source.put_object(Bucket=SOURCE, Key=late, Body=b"not replicated")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    objects = make_export(source)
    wait_replicated(source, objects)

    result = verify_export(replicator(estate), "orders", PREFIX)

    assert not result.ok
    assert result.counts["skipped"] == len(objects)
    [finding] = result.findings
    assert (finding.kind, finding.key) == ("missing", late)
    assert "ReplicationStatus absent" in finding.detail


def replication_delay(localaws, seconds: float) -> None:
    """How long the emulator's S3 replication takes for objects written from now on."""
    request = urllib.request.Request(f"{localaws.endpoint}/_localaws/config", method="POST",
                                     data=json.dumps({"replication_seconds": seconds}).encode())
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def slow_replication(estate):
    replication_delay(estate, 3600)
    yield estate
    replication_delay(estate, 1)


def test_verify_counts_pending_replicas_as_pending_until_the_lag_is_over(slow_replication):
    source = slow_replication.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    objects = make_export(source, data_files=2)

    early = verify_export(replicator(slow_replication), "orders", PREFIX)
    assert early.counts["pending"] == len(objects), early.summary()
    assert early.counts["missing"] == 0 and not early.ok
    assert early.findings[0].detail == "ReplicationStatus PENDING"
    overdue = verify_export(replicator(slow_replication), "orders", PREFIX, pending_is_missing=True)
    assert overdue.counts["missing"] == len(objects)
    assert overdue.counts["pending"] == 0


def test_verify_detects_a_tampered_replica(estate):
    source = estate.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    objects = make_export(source, data_files=2)
    wait_replicated(source, objects)
    key = f"{PREFIX}manifest-summary.json"
    estate.client("s3", account="backup").put_object(Bucket=REPLICA, Key=key, Body=objects[key].upper())

    result = verify_export(replicator(estate), "orders", PREFIX)

    [finding] = result.findings
    assert (finding.kind, finding.key) == ("different", key)
