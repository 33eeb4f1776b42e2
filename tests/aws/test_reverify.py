"""Re-verification of retained exports and replicas against the emulator, tampered with as an attacker would.

Exports are real emulator exports (DynamoDB's layout, data files as one-part multipart uploads) of past
nights, copied into the backup account by the replica step's own code; the attacker then writes over,
deletes or plants objects with plain boto3 calls in the account that holds them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard import layout, replicas
from dynamoguard.config import load_config
from dynamoguard.reverify import Expected, Target, etag_decides, reverify
from tests.aws.test_exports_verify import put_single_part_multipart

pytestmark = pytest.mark.aws

UTC = timezone.utc
CONFIG = load_config()
BUCKET = CONFIG.backup_bucket.name
REPLICA = CONFIG.replica_bucket.name


def fast_exports(localaws) -> None:
    request = urllib.request.Request(f"{localaws.endpoint}/_localaws/config", method="POST",
                                     data=json.dumps({"export_seconds": 0}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


def nightly_export(localaws, table: str, nights_ago: int, base: str) -> dict:
    """A real export of ``table`` at 02:00 UTC ``nights_ago`` nights back, in the nightly layout under ``base``."""
    ddb = localaws.client("dynamodb")
    night = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=nights_ago)
    latest = ddb.describe_continuous_backups(TableName=table)[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    export_time = min(night, latest)
    prefix = layout.export_prefix(base, table, export_time)
    arn = ddb.export_table_to_point_in_time(
        TableArn=CONFIG.table_arn(table), S3Bucket=BUCKET, S3Prefix=prefix, ExportTime=export_time,
        ExportFormat="DYNAMODB_JSON")["ExportDescription"]["ExportArn"]
    deadline = time.monotonic() + 60
    while (desc := ddb.describe_export(ExportArn=arn)["ExportDescription"])["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert desc["ExportStatus"] == "COMPLETED", desc
    root = desc["ExportManifest"].rsplit("/", 1)[0] + "/"
    return {"table": table, "root": root, "export_time": export_time, "manifest": desc["ExportManifest"]}


def replicate(localaws, export: dict) -> replicas.ReplicaResult:
    """The nightly replica step's copy, into the backup account."""
    replicator = replicas.Replicator(
        source_s3=localaws.client("s3"), backup_s3=localaws.client("s3", account="backup"),
        source_bucket=BUCKET, replica_bucket=REPLICA,
        lock=replicas.LockPolicy.from_export_time("COMPLIANCE", 35, export["export_time"]), max_workers=8,
        source_account="111111111111", backup_account="222222222222")
    result = replicas.copy_export(replicator, export["table"], export["root"])
    assert result.ok, result.summary()
    return result


@pytest.fixture(scope="module")
def demo_estate(localaws_server):
    """The seeded demo estate, once for this module: each test writes its exports under a prefix of its own."""
    localaws_server.reset()
    localaws_server.seed()
    fast_exports(localaws_server)
    return localaws_server


_bases = iter(range(1_000_000))


@pytest.fixture
def estate(demo_estate):
    """Three retained nightly exports under a fresh base prefix: orders two nights back and last night,
    customers last night."""
    base = f"reverify-{next(_bases)}"
    exports = [nightly_export(demo_estate, "orders", 2, base), nightly_export(demo_estate, "orders", 1, base),
               nightly_export(demo_estate, "customers", 1, base)]
    return demo_estate, exports, base


@pytest.fixture
def replicated(estate):
    """The same, copied into the backup account by the replica step."""
    for export in estate[1]:
        replicate(estate[0], export)
    return estate


def exports_target(base: str) -> Target:
    return Target(BUCKET, base, CONFIG.backup_bucket.min_retention_days, "reverify_exports")


def replicas_target(base: str) -> Target:
    return Target(REPLICA, base, CONFIG.replica_bucket.min_retention_days, "reverify_replicas", label="replica",
                  expected_owner="222222222222")


def data_key(s3, bucket: str, export: dict, index: int = 0) -> str:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=export["root"] + "data/")["Contents"]]
    return sorted(keys)[index]


def findings(report, scope: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for finding in report.findings_for(scope):
        out.setdefault(finding.check, []).append(finding)
    return out


def test_untouched_estate_has_no_findings_in_either_bucket(replicated):
    localaws, exports, base = replicated
    report = reverify(localaws.client("s3"), exports_target(base), max_concurrency=8)
    assert report.findings.total() == 0, [f.title for s in report.scopes for f in report.findings_for(s)]
    assert report.stats["orders"].exports_checked == 2
    assert report.stats["customers"].exports_checked == 1
    objects = sum(len(localaws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=e["root"])["Contents"])
                  for e in exports)
    assert report.totals()["objects"] == objects
    assert report.totals()["md5_streamed"] == 0  # every ETag decided
    replica_report = reverify(localaws.client("s3", account="backup"), replicas_target(base), max_concurrency=8)
    assert replica_report.findings.total() == 0
    assert replica_report.totals()["objects"] == objects
    # replica copies have plain-MD5 ETags, which the manifest's md5Checksum decides without reading them
    assert replica_report.totals()["md5_streamed"] == 0


def test_new_version_over_an_older_exports_data_file_is_an_overwrite_attempt_and_a_content_mismatch(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    old = exports[0]
    key = data_key(s3, BUCKET, old)
    original = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    forged = s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b'{"Item":{"forged":{"S":"1"}}}\n'))
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"  # the forgery is locked too

    report = reverify(s3, exports_target(base), max_concurrency=8)
    found = findings(report, "orders")
    [overwrite] = found["overwrite_attempt"]
    assert overwrite.severity == "high" and overwrite.resource == f"s3://{BUCKET}/{key}"
    assert overwrite.evidence["original_version"] == original
    assert overwrite.evidence["current_version"] == forged["VersionId"]
    assert {v["version_id"] for v in overwrite.evidence["history"]} == {original, forged["VersionId"]}
    [mismatch] = found["content_mismatch"]
    assert mismatch.severity == "critical"
    assert mismatch.evidence["found"]["version_id"] == forged["VersionId"]
    assert mismatch.evidence["expected"]["version_id"] == original
    assert mismatch.evidence["expected"]["md5"] != mismatch.evidence["found"]["md5"]
    assert set(found) == {"overwrite_attempt", "content_mismatch"}
    assert findings(report, "customers") == {}
    assert report.totals()["md5_streamed"] == 1


def test_delete_marker_over_an_export_object_is_a_delete_attempt(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    key = data_key(s3, BUCKET, exports[2])
    original = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]

    found = findings(reverify(s3, exports_target(base), max_concurrency=8), "customers")
    assert set(found) == {"delete_attempt"}
    [attempt] = found["delete_attempt"]
    assert attempt.severity == "high" and attempt.table == "customers"
    assert attempt.evidence["original_version"] == original
    assert attempt.evidence["current_version"] is None
    assert attempt.evidence["history"][0] == {**attempt.evidence["history"][0], "version_id": marker,
                                              "delete_marker": True}
    assert "restore would miss it" in attempt.title


def test_forged_manifest_with_matching_checksum_file_is_caught_by_history_and_original(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    export = exports[1]
    files_key = export["root"] + "manifest-files.json"
    body = s3.get_object(Bucket=BUCKET, Key=files_key)["Body"].read()
    forged = body.replace(b'"itemCount":', b'"itemCount":1', 1)
    s3.put_object(Bucket=BUCKET, Key=files_key, Body=forged)
    s3.put_object(Bucket=BUCKET, Key=export["root"] + "manifest-files.md5",
                  Body=base64.b64encode(hashlib.md5(forged).digest()))

    found = findings(reverify(s3, exports_target(base), max_concurrency=8), "orders")
    assert {f.resource.rsplit("/", 1)[-1] for f in found["overwrite_attempt"]} == {"manifest-files.json",
                                                                                  "manifest-files.md5"}
    assert {f.resource.rsplit("/", 1)[-1] for f in found["content_mismatch"]} == {"manifest-files.json",
                                                                                 "manifest-files.md5"}
    assert all(f.severity == "critical" for f in found["content_mismatch"])


def test_planted_objects_inside_and_outside_export_folders(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    planted = exports[0]["root"] + "data/extra.json.gz"
    s3.put_object(Bucket=BUCKET, Key=planted, Body=gzip.compress(b'{"Item":{"pk":{"S":"evil"}}}\n'))
    s3.put_object(Bucket=BUCKET, Key=f"{base}/orders/notes.txt", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"{base}/stray.bin", Body=b"x")

    report = reverify(s3, exports_target(base), max_concurrency=8)
    orders = findings(report, "orders")
    [unexpected] = orders["unexpected_object"]
    assert unexpected.severity == "high" and unexpected.resource == f"s3://{BUCKET}/{planted}"
    [outside] = orders["outside_export"]
    assert outside.resource.endswith("/orders/notes.txt") and outside.severity == "medium"
    assert [f.resource for f in report.findings_for("account")] == [f"s3://{BUCKET}/{base}/stray.bin"]


def test_exports_past_retention_are_skipped(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    key = data_key(s3, BUCKET, exports[0])
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged")
    later = exports[0]["export_time"] + timedelta(days=CONFIG.backup_bucket.min_retention_days, hours=12)
    report = reverify(s3, exports_target(base), now=later, max_concurrency=8)
    # two nights back is past its 35 days then; last night's exports are not
    assert report.stats["orders"].exports_expired == 1 and report.stats["orders"].exports_checked == 1
    assert report.findings.total() == 0


def test_replica_deleted_or_overwritten_in_the_backup_account(replicated):
    localaws, exports, base = replicated
    backup = localaws.client("s3", account="backup")
    deleted = data_key(backup, REPLICA, exports[0])
    overwritten = data_key(backup, REPLICA, exports[2])
    backup.delete_object(Bucket=REPLICA, Key=deleted)
    backup.put_object(Bucket=REPLICA, Key=overwritten, Body=b"ransom note")

    report = reverify(backup, replicas_target(base), max_concurrency=8)
    orders, customers = findings(report, "orders"), findings(report, "customers")
    assert set(orders) == {"delete_attempt"} and orders["delete_attempt"][0].resource == f"s3://{REPLICA}/{deleted}"
    assert set(customers) == {"overwrite_attempt", "content_mismatch"}
    assert "replica" in customers["overwrite_attempt"][0].title
    assert customers["content_mismatch"][0].evidence["found"]["size"] == len(b"ransom note")


def test_an_etag_that_cannot_decide_is_settled_by_streaming_the_md5(replicated):
    """An SSE-KMS object's ETag is no MD5 of its bytes: a manifest ETag that S3 does not report for the same
    bytes is settled by reading the object, and equal bytes are no finding."""
    localaws, exports, base = replicated
    backup = localaws.client("s3", account="backup")
    export = exports[2]
    files_key = export["root"] + "manifest-files.json"
    # a replica export whose data files are recorded with ETags S3 will not report for them
    root = export["root"].replace("/customers/", "/customers-kms/")
    lines = []
    for line in backup.get_object(Bucket=REPLICA, Key=files_key)["Body"].read().splitlines():
        entry = json.loads(line)
        body = backup.get_object(Bucket=REPLICA, Key=entry["dataFileS3Key"])["Body"].read()
        entry["dataFileS3Key"] = entry["dataFileS3Key"].replace(export["root"], root)
        entry["etag"] = "0" * 32 + "-1"
        put_single_part_multipart(backup, REPLICA, entry["dataFileS3Key"], body)  # ETag: MD5 of MD5s, "-1"
        lines.append(json.dumps(entry))
    files = ("\n".join(lines) + "\n").encode()
    summary = json.loads(backup.get_object(Bucket=REPLICA, Key=export["manifest"])["Body"].read())
    summary["manifestFilesS3Key"] = root + "manifest-files.json"
    summary_bytes = json.dumps(summary).encode()
    for name, body in (("manifest-files", files), ("manifest-summary", summary_bytes)):
        backup.put_object(Bucket=REPLICA, Key=f"{root}{name}.json", Body=body)
        backup.put_object(Bucket=REPLICA, Key=f"{root}{name}.md5", Body=base64.b64encode(hashlib.md5(body).digest()))
    backup.put_object(Bucket=REPLICA, Key=root + "_started", Body=b"")

    report = reverify(backup, replicas_target(base), max_concurrency=8)
    assert report.findings.total() == 0
    # every data file was read once: its ETag is not the one the manifest lists nor a plain MD5, but streaming
    # the bytes shows they are the listed ones
    assert report.stats["customers-kms"].md5_streamed == len(lines)


def test_findings_beyond_the_limit_are_counted_in_one_finding(estate):
    localaws, exports, base = estate
    s3 = localaws.client("s3")
    for i in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"{exports[0]['root']}data/planted-{i}.json.gz", Body=b"x")
    report = reverify(s3, exports_target(base), max_concurrency=8, max_per_check=3)
    unexpected = findings(report, "orders")["unexpected_object"]
    assert [f.dedup for f in unexpected] == ["", "", "", "more"]
    assert [f.resource.rsplit("-", 1)[-1] for f in unexpected[:3]] == ["0.json.gz", "1.json.gz", "2.json.gz"]
    assert unexpected[3].evidence["more"] == 2 and unexpected[3].severity == "high"
    assert report.findings.counts["unexpected_object"] == 5


def test_etag_decides_only_for_the_manifest_etag_or_the_listed_md5():
    md5_hex = "0cc175b9c0f1b6a831c399e269772661"  # MD5 of b"a"
    wanted = Expected(etag="5e1f3d2c9a8b7c6d5e4f3a2b1c0d9e8f-1", md5="DMF1ucDxtqgxw5niaXcmYQ==")
    assert etag_decides("5e1f3d2c9a8b7c6d5e4f3a2b1c0d9e8f-1", wanted)
    assert etag_decides(md5_hex, wanted)
    assert not etag_decides("ffffffffffffffffffffffffffffffff", wanted)
    assert not etag_decides("0cc175b9c0f1b6a831c399e269772661-2", wanted)
    assert not etag_decides("not-hex", wanted)
