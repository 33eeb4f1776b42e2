"""Object Lock checks against the emulator: bucket policy, per-object retention, enforcement, sweep.

Export-like objects are written directly (the layout AWS writes: _started, data files, manifests,
checksum files), with retention set the way S3 allows it (bucket default or explicit headers).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard import object_lock as ol

pytestmark = pytest.mark.aws

UTC = timezone.utc
BUCKET = "dg-lock-test"
POLICY = ol.LockPolicy("COMPLIANCE", 35)
FILES = ("_started", "data/a1b2c3.json.gz", "data/d4e5f6.json.gz", "manifest-files.json", "manifest-files.md5",
         "manifest-summary.json", "manifest-summary.md5")


@pytest.fixture
def s3(localaws):
    return localaws.client("s3")


def locked_bucket(s3, name=BUCKET, mode="COMPLIANCE", days=35):
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if mode:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    return name


def write_export(s3, bucket, export_time, prefix="exports/orders", overrides=None, files=FILES):
    """Write one export's objects; ``overrides`` maps a file name to extra put_object arguments."""
    export_id = f"{int(export_time.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
    root = f"{prefix}/AWSDynamoDB/{export_id}/"
    summary = {"version": "2020-06-30", "exportTime": export_time.isoformat().replace("+00:00", "Z"),
               "s3Bucket": bucket, "itemCount": 2}
    for name in files:
        body = json.dumps(summary).encode() if name == "manifest-summary.json" else f"{name}\n".encode()
        s3.put_object(Bucket=bucket, Key=root + name, Body=body, **(overrides or {}).get(name, {}))
    return root


def explicit(mode, until):
    return {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until}


def now():
    return datetime.now(UTC)


def exported():
    """An export time shortly before the objects are written, as for a real export."""
    return now() - timedelta(minutes=5)


def test_compliant_export_passes(s3):
    locked_bucket(s3)
    root = write_export(s3, BUCKET, now() - timedelta(hours=1))
    s3.put_object_legal_hold(Bucket=BUCKET, Key=root + "data/a1b2c3.json.gz", LegalHold={"Status": "ON"})
    report = ol.check_export(s3, BUCKET, root, POLICY, max_concurrency=4)
    assert report.ok, report.summary()
    assert report.objects_checked == len(FILES)
    assert report.counts == {ol.LEGAL_HOLD: 1}
    assert report.shown["note"][0].key == root + "data/a1b2c3.json.gz"


def test_export_time_can_be_given(s3):
    locked_bucket(s3)
    root = write_export(s3, BUCKET, now() - timedelta(hours=1))
    # an export time 2 days in the future makes the bucket's 35-day default fall short on every object
    report = ol.check_export(s3, BUCKET, root, POLICY, export_time=now() + timedelta(days=2))
    assert report.counts == {ol.TOO_SHORT: len(FILES)}


def test_object_without_retention_in_bucket_without_default_rule(s3):
    locked_bucket(s3, mode=None)
    root = write_export(s3, BUCKET, exported())
    report = ol.check_export(s3, BUCKET, root, POLICY)
    assert not report.ok
    assert report.counts == {ol.NO_DEFAULT_RETENTION: 1, ol.NO_RETENTION: len(FILES)}
    assert {f.key for f in report.shown["violation"] if f.code == ol.NO_RETENTION} == {root + f for f in FILES}


def test_export_in_bucket_without_lock(s3):
    s3.create_bucket(Bucket=BUCKET)
    root = write_export(s3, BUCKET, exported())
    report = ol.check_export(s3, BUCKET, root, POLICY)
    assert report.counts == {ol.VERSIONING_NOT_ENABLED: 1, ol.LOCK_DISABLED: 1, ol.NO_RETENTION: len(FILES)}
    assert any("Object Lock is not enabled" in f.message for f in report.shown["violation"])


def test_bucket_with_versioning_suspended(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    findings = ol.check_bucket(s3, BUCKET, POLICY)
    assert [f.code for f in findings] == [ol.VERSIONING_NOT_ENABLED, ol.LOCK_DISABLED]
    assert "versioning is Suspended" in findings[0].message


def test_bucket_default_rule_weaker_and_shorter(s3):
    locked_bucket(s3, mode="GOVERNANCE", days=7)
    findings = ol.check_bucket(s3, BUCKET, POLICY)
    assert [f.code for f in findings] == [ol.WEAKER_MODE, ol.TOO_SHORT]
    lenient = ol.check_bucket(s3, BUCKET, ol.LockPolicy("COMPLIANCE", 7, allow_governance=True))
    assert [(f.code, f.severity) for f in lenient] == [(ol.GOVERNANCE_ALLOWED, "warning")]


def test_governance_object_and_too_short_object_are_reported_specifically(s3):
    locked_bucket(s3)
    far = now() + timedelta(days=400)
    root = write_export(s3, BUCKET, exported(), overrides={
        "data/a1b2c3.json.gz": explicit("GOVERNANCE", far),
        "manifest-files.json": explicit("COMPLIANCE", now() + timedelta(days=5)),
    })
    report = ol.check_export(s3, BUCKET, root, POLICY)
    assert report.counts == {ol.WEAKER_MODE: 1, ol.TOO_SHORT: 1}
    by_code = {f.code: f for f in report.shown["violation"]}
    assert by_code[ol.WEAKER_MODE].key == root + "data/a1b2c3.json.gz"
    assert "GOVERNANCE" in by_code[ol.WEAKER_MODE].message
    assert by_code[ol.TOO_SHORT].key == root + "manifest-files.json"
    assert by_code[ol.TOO_SHORT].version_id
    assert "2 violation(s)" in report.summary()


def test_empty_export_prefix_fails(s3):
    locked_bucket(s3)
    report = ol.check_export(s3, BUCKET, "exports/orders/AWSDynamoDB/01764290000000-0badf00d/", POLICY,
                             export_time=now())
    assert report.counts == {ol.NO_OBJECTS: 1} and not report.ok


def test_enforce_extends_short_retention_then_recheck_passes(s3):
    locked_bucket(s3, mode=None)  # no default rule: objects land without retention
    export_time = now()
    long_until = (now() + timedelta(days=400)).replace(microsecond=0)
    root = write_export(s3, BUCKET, export_time, overrides={
        "data/a1b2c3.json.gz": explicit("COMPLIANCE", now() + timedelta(days=3)),
        "data/d4e5f6.json.gz": explicit("COMPLIANCE", long_until),
        "manifest-files.json": explicit("GOVERNANCE", now() + timedelta(days=1)),
    })
    sent = []
    s3.meta.events.register("before-send.s3.PutObjectRetention",
                            lambda request, **_: sent.append(dict(request.headers)))

    report = ol.check_export(s3, BUCKET, root, POLICY, enforce=True, max_concurrency=4)

    required = POLICY.required_until(export_time)
    assert report.changes_count == len(FILES) - 1  # all but the one already retained long enough
    changed = {c.key: c for c in report.changes}
    assert root + "data/d4e5f6.json.gz" not in changed
    governance = changed.pop(root + "manifest-files.json")  # extended, but its mode needs the bypass
    assert (governance.old_mode, governance.new_mode) == ("GOVERNANCE", "GOVERNANCE")
    assert {c.new_mode for c in changed.values()} == {"COMPLIANCE"}
    assert all(abs((c.new_until - required).total_seconds()) < 1 for c in report.changes)
    # left: the bucket's missing default rule, which enforcement does not touch, and the GOVERNANCE mode
    assert report.counts == {ol.NO_DEFAULT_RETENTION: 1, ol.WEAKER_MODE: 1}
    assert len(sent) == len(FILES) - 1
    assert all("x-amz-checksum-sha256" in {k.lower() for k in headers} for headers in sent)
    assert not any("x-amz-bypass-governance-retention" in {k.lower() for k in headers} for headers in sent)

    recheck = ol.check_export(s3, BUCKET, root, POLICY, export_time=export_time, check_bucket_policy=False)
    assert recheck.counts == {ol.WEAKER_MODE: 1}, recheck.summary()
    untouched = s3.head_object(Bucket=BUCKET, Key=root + "data/d4e5f6.json.gz")
    assert untouched["ObjectLockRetainUntilDate"] == long_until  # never shortened


def test_enforce_never_bypasses_governance_and_reports_the_exact_fix(s3):
    """Moving GOVERNANCE to COMPLIANCE needs s3:BypassGovernanceRetention, which the project's bucket policy denies
    to everyone: enforcement extends the GOVERNANCE retention it may extend and reports the mode with the command
    that fixes it, instead of ending in AccessDenied."""
    from dynamoguard import iam_policies
    from dynamoguard.config import load_config

    config = load_config()
    config = config.model_copy(update={
        "backup_bucket": config.backup_bucket.model_copy(update={"name": BUCKET, "enforce_retention": True})})
    locked_bucket(s3)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(iam_policies.bucket_policies(config)[BUCKET]))
    export_time = exported()
    short = (now() + timedelta(days=2)).replace(microsecond=0)
    root = write_export(s3, BUCKET, export_time, overrides={"data/a1b2c3.json.gz": explicit("GOVERNANCE", short)})
    key = root + "data/a1b2c3.json.gz"
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]

    report = ol.check_export(s3, BUCKET, root, POLICY, enforce=True, max_concurrency=4)

    assert report.counts == {ol.WEAKER_MODE: 1}, report.summary()  # no retention_not_extended: nothing denied
    (change,) = report.changes
    assert (change.key, change.old_mode, change.new_mode) == (key, "GOVERNANCE", "GOVERNANCE")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] >= POLICY.required_until(export_time) - timedelta(seconds=1)
    (finding,) = [f for f in report.shown["violation"] if f.code == ol.WEAKER_MODE]
    assert "s3:BypassGovernanceRetention" in finding.message
    assert (f"aws s3api put-object-retention --bucket {BUCKET} --key {key} --version-id {version} "
            f"--bypass-governance-retention --retention Mode=COMPLIANCE,RetainUntilDate=") in finding.message


def test_iter_keys_pages_through_the_listing(s3):
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"p/k{i:03d}" for i in range(23)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    s3.put_object(Bucket=BUCKET, Key="other/k", Body=b"")
    assert list(ol.iter_keys(s3, BUCKET, "p/", page_size=5, prefetch_pages=1)) == keys


def test_sweep_finds_violation_planted_in_an_old_export(s3):
    locked_bucket(s3)
    current = write_export(s3, BUCKET, now() - timedelta(hours=2))
    old_time = now() - timedelta(days=20)
    # written today with the bucket default except one file whose retention ends before old_time + 35 days
    old = write_export(s3, BUCKET, old_time, prefix="exports/customers", overrides={
        "data/d4e5f6.json.gz": explicit("COMPLIANCE", now() + timedelta(days=2))})
    # an export whose retention period is over: not checked, even with a short retention
    write_export(s3, BUCKET, now() - timedelta(days=60), prefix="exports/inventory", overrides={
        "data/a1b2c3.json.gz": explicit("COMPLIANCE", now() + timedelta(days=1))})
    s3.put_object(Bucket=BUCKET, Key="exports/README.txt", Body=b"stray")

    report = ol.sweep(s3, BUCKET, "exports", POLICY, max_concurrency=4)

    assert report.exports_checked == 2 and report.exports_skipped == 1
    assert report.objects_checked == 2 * len(FILES)
    assert report.counts == {ol.TOO_SHORT: 1, ol.OUTSIDE_EXPORT: 1}
    assert report.shown["violation"][0].key == old + "data/d4e5f6.json.gz"
    assert report.shown["warning"][0].key == "exports/README.txt"
    assert current.startswith("exports/orders/")


def test_sweep_without_summary_uses_export_id_time(s3):
    locked_bucket(s3)
    files = tuple(f for f in FILES if not f.startswith("manifest-summary"))
    root = write_export(s3, BUCKET, now() - timedelta(days=1), files=files)
    report = ol.sweep(s3, BUCKET, "exports", POLICY)
    assert report.ok and report.exports_checked == 1
    assert report.counts == {ol.EXPORT_TIME_GUESSED: 1}
    assert root in report.shown["note"][0].message


def test_missing_and_unreadable_objects_are_counted_not_dropped(s3):
    locked_bucket(s3)
    s3.put_object(Bucket=BUCKET, Key="denied/x", Body=b"x")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/denied/*"}]}))
    required = POLICY.required_until(exported())
    report = ol.scan(s3, BUCKET, [("gone/x", required), ("denied/x", required)], POLICY, ol.Report(BUCKET, POLICY))
    assert report.objects_checked == 2
    assert report.counts == {ol.MISSING: 1, ol.UNREADABLE: 1}
    by_code = {f.code: f for f in report.shown["violation"]}
    assert by_code[ol.MISSING].key == "gone/x" and by_code[ol.UNREADABLE].key == "denied/x"
    assert "403" in by_code[ol.UNREADABLE].message
