"""The audit against the emulator: logs delivered by "CloudTrail", digests signed by its key, real S3 reads."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dynamoguard.audit import discovery, run
from dynamoguard.audit.findings import count_by_severity
from dynamoguard.config import load_config
from tests.aws.audit_helpers import deliver, digest, event

pytestmark = pytest.mark.aws

H = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
END = H + timedelta(hours=1)
TRAIL_BUCKET = "dynamoguard-cloudtrail"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudtrail" / "logfiles"


@pytest.fixture
def config():
    return load_config()


def _clients(localaws):
    s3 = localaws.client("s3")
    return s3, (lambda region: localaws.client("cloudtrail", region_name=region))


def _audit(localaws, config, hour=H):
    s3, cloudtrail_for = _clients(localaws)
    unit = discovery.Unit.hour("111111111111", "us-east-1", hour)
    return run.audit_unit(config, unit, hour, hour + timedelta(hours=1), s3, s3, cloudtrail_for)


def _part(localaws, summary):
    body = localaws.client("s3").get_object(Bucket="dynamoguard-reports", Key=summary["part_key"])["Body"].read()
    return json.loads(body)


def _rules(part):
    return sorted(f["rule"] for f in part["findings"])


def test_unit_audit_reads_delivered_logs_and_reports_unreadable_ones(seeded, config):
    s3 = seeded.client("s3")
    first = deliver(seeded.endpoint, [event("DeleteTable", tableName="orders", n=1),
                                      event("GetItem", tableName="orders", n=2)], H + timedelta(minutes=4))
    # Delivered after the hour ended but holding an event of the hour: belongs to the next interval.
    late = deliver(seeded.endpoint, [event("StopLogging", "cloudtrail.amazonaws.com", name="dynamoguard-trail",
                                           at="2026-01-01T10:59:00Z", n=3)], END + timedelta(minutes=6))
    # Delivered at 10:06 with an event of 09:58: audited with 10:00-11:00.
    early = deliver(seeded.endpoint, [event("PutItem", tableName="orders", at="2026-01-01T09:58:00Z", n=4)],
                    H + timedelta(minutes=6))
    bad_key = first.rsplit("_", 1)[0] + "_truncatedgzip001.json.gz"
    s3.put_object(Bucket=TRAIL_BUCKET, Key=bad_key, Body=gzip.compress(b'{"Records": []}')[:-9])
    digest(seeded.endpoint, H + timedelta(minutes=59))

    summary = run.audit_unit(config, discovery.Unit.hour("111111111111", "us-east-1", H), H, END, s3, s3,
                             lambda region: seeded.client("cloudtrail", region_name=region))
    counts = summary["counts"]
    assert (counts["files_listed"], counts["files_read"], counts["files_unreadable"]) == (3, 2, 1)
    assert (counts["records_read"], counts["records_matched"], counts["records_invalid"]) == (3, 3, 0)
    assert counts["digests_read"] == 1 and counts["log_files_verified"] == 2

    part = _part(seeded, summary)
    by_rule = {f["rule"]: f for f in part["findings"]}
    assert _rules(part) == ["ddb-data-not-allowed", "ddb-delete-table", "ddb-read-not-allowed", "digest-chain-start",
                            "log-file-unlisted", "unreadable-log"]
    deleted = by_rule["ddb-delete-table"]
    assert (deleted["severity"], deleted["resource"], deleted["log_key"], deleted["event_id"]) == (
        "critical", "orders", first, "00000000-0000-0000-0000-000000000001")
    assert deleted["table"] == "orders"
    assert deleted["principal"] == "arn:aws:iam::111111111111:user/mallory"
    assert by_rule["ddb-data-not-allowed"]["log_key"] == early
    assert by_rule["unreadable-log"]["log_key"] == bad_key and "truncated" in by_rule["unreadable-log"]["detail"][
        "reason"]
    assert by_rule["log-file-unlisted"]["log_key"] == bad_key  # written straight into the bucket, not by CloudTrail

    next_hour = _part(seeded, _audit(seeded, config, END))
    assert [(f["rule"], f["log_key"]) for f in next_hour["findings"] if f["rule"] == "trail-stopped"] == [
        ("trail-stopped", late)]


def test_tampered_log_file_and_deleted_digest_are_detected(seeded, config):
    s3 = seeded.client("s3")
    log_key = deliver(seeded.endpoint, [event("PutItem", principal="arn:aws:iam::111111111111:role/orders-service",
                                              tableName="orders")], H + timedelta(minutes=10))
    first = digest(seeded.endpoint, H + timedelta(minutes=59))
    second = digest(seeded.endpoint, END + timedelta(minutes=59))

    clean = _part(seeded, _audit(seeded, config))
    assert _rules(clean) == ["digest-chain-start"]
    assert _rules(_part(seeded, _audit(seeded, config, END))) == []

    original = gzip.decompress(s3.get_object(Bucket=TRAIL_BUCKET, Key=log_key)["Body"].read())
    s3.put_object(Bucket=TRAIL_BUCKET, Key=log_key, Body=gzip.compress(original.replace(b"orders", b"ordera")))
    tampered = _part(seeded, _audit(seeded, config))
    modified = [f for f in tampered["findings"] if f["rule"] == "log-file-modified"]
    assert [(f["severity"], f["log_key"]) for f in modified] == [("high", log_key)]

    s3.delete_object(Bucket=TRAIL_BUCKET, Key=first)
    assert _rules(_part(seeded, _audit(seeded, config))) == ["digest-missing"]
    after = _part(seeded, _audit(seeded, config, END))
    assert [(f["rule"], f["severity"], f["resource"], f["log_key"]) for f in after["findings"]] == [
        ("digest-missing", "high", f"s3://{TRAIL_BUCKET}/{first}", second)]


def test_late_log_file_listed_in_a_backfill_digest_is_not_unlisted(seeded, config):
    # CloudTrail user guide, "CloudTrail digest file structure"; aws-cli customizations/cloudtrail/validation.py
    deliver(seeded.endpoint, [event("PutItem", principal="arn:aws:iam::111111111111:role/orders-service",
                                    tableName="orders", n=1)], H + timedelta(minutes=5))
    digest(seeded.endpoint, H + timedelta(minutes=50))
    late = deliver(seeded.endpoint, [event("DeleteTable", tableName="orders", n=2)], H + timedelta(minutes=30))
    assert "log-file-unlisted" in _rules(_part(seeded, _audit(seeded, config)))
    backfill = digest(seeded.endpoint, H + timedelta(minutes=55), backfill=True)

    summary = _audit(seeded, config)
    part = _part(seeded, summary)
    assert _rules(part) == ["ddb-delete-table", "digest-chain-start", "digest-chain-start"]
    starts = {f["log_key"]: f["severity"] for f in part["findings"] if f["rule"] == "digest-chain-start"}
    assert starts[backfill] == "info"
    assert summary["counts"]["backfill_digests_read"] == 1 and summary["counts"]["log_files_verified"] == 2

    s3 = seeded.client("s3")
    s3.put_object(Bucket=TRAIL_BUCKET, Key=late, Body=gzip.compress(b'{"Records":[]}'))  # hide the deletion
    modified = [f for f in _part(seeded, _audit(seeded, config))["findings"] if f["rule"] == "log-file-modified"]
    assert [f["log_key"] for f in modified] == [late]


def test_forged_digest_signature_is_detected(seeded, config):
    s3 = seeded.client("s3")
    deliver(seeded.endpoint, [event("PutItem", tableName="orders")], H + timedelta(minutes=10))
    key = digest(seeded.endpoint, H + timedelta(minutes=59))
    obj = s3.get_object(Bucket=TRAIL_BUCKET, Key=key)
    document = json.loads(gzip.decompress(obj["Body"].read()))
    document["logFiles"] = []  # hide the log file, keep the old signature
    s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=gzip.compress(json.dumps(document).encode()),
                  Metadata=obj["Metadata"])
    rules = _rules(_part(seeded, _audit(seeded, config)))
    assert "digest-signature-invalid" in rules and "log-file-unlisted" in rules


def test_real_log_files_in_an_organization_layout_are_discovered_and_read(seeded, config):
    s3 = seeded.client("s3")
    for path in FIXTURES.rglob("*.json.gz"):
        s3.put_object(Bucket=TRAIL_BUCKET, Key=str(path.relative_to(FIXTURES)), Body=path.read_bytes())
    org = config.model_copy(update={"audit": config.audit.model_copy(update={"organization_id": "o-1234abcde"})})
    hour = datetime(2025, 3, 6, 2, tzinfo=timezone.utc)
    s3c, cloudtrail_for = _clients(seeded)
    summary = run.audit_unit(org, discovery.Unit.hour("222222222222", "us-east-1", hour), hour,
                             hour + timedelta(hours=1), s3c, s3c, cloudtrail_for)
    counts = summary["counts"]
    assert (counts["files_listed"], counts["files_read"], counts["records_read"]) == (1, 1, 20)
    assert _rules(_part(seeded, summary)) == ["digest-missing"]  # the sample has no digest files


def test_trail_health_flags_each_gap(seeded, config):
    s3, cloudtrail = seeded.client("s3"), seeded.client("cloudtrail")
    healthy = run.health(config, cloudtrail, s3)
    assert [(f["severity"], f["title"]) for f in healthy] == [("low", "Trail bucket has no Object Lock")]

    cloudtrail.stop_logging(Name="dynamoguard-trail")
    cloudtrail.update_trail(Name="dynamoguard-trail", IsMultiRegionTrail=False, EnableLogFileValidation=False)
    cloudtrail.put_event_selectors(TrailName="dynamoguard-trail", EventSelectors=[{
        "ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "DataResources": [
            {"Type": "AWS::DynamoDB::Table", "Values": [config.table_arn("orders")]}]}])
    s3.put_bucket_lifecycle_configuration(Bucket=TRAIL_BUCKET, LifecycleConfiguration={"Rules": [
        {"ID": "short", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}}]})
    titles = [f["title"] for f in run.health(config, cloudtrail, s3)]
    for expected in ("Trail is not logging", "Trail is not multi-region", "Log file validation is off",
                     "Trail bucket lifecycle expires logs too soon"):
        assert expected in titles
    uncovered = sorted(f["resource"] for f in run.health(config, cloudtrail, s3)
                       if f["title"] == "Event selectors do not log required data events")
    assert f"{config.table_arn('orders')} (reads)" in uncovered
    assert f"{config.table_arn('orders')} (writes)" not in uncovered
    assert "arn:aws:s3:::dynamoguard-exports/ (writes)" in uncovered
    assert len(uncovered) == 2 * 5 - 1  # 3 tables + 2 buckets, reads and writes, minus orders writes

    cloudtrail.delete_trail(Name="dynamoguard-trail")
    assert [f["title"] for f in run.health(config, cloudtrail, s3)] == ["Trail does not exist"]


def _full_interval(localaws, config):
    s3, cloudtrail_for = _clients(localaws)
    units = [discovery.Unit.from_dict(u) for u in run.plan(config, H, END)]
    summaries = [run.audit_unit(config, u, H, END, s3, s3, cloudtrail_for) for u in units]
    health = run.health(config, localaws.client("cloudtrail"), s3)
    return run.finish(config, s3, H, END, summaries, health)


def test_backfilled_interval_gives_the_same_report_overwritten(seeded, config):
    s3 = seeded.client("s3")
    deliver(seeded.endpoint, [event("DeleteTable", tableName="orders", n=1),
                              event("DeleteBucket", "s3.amazonaws.com", bucketName="dynamoguard-exports", n=2)],
            H + timedelta(minutes=4))
    digest(seeded.endpoint, H + timedelta(minutes=59))

    def report_objects():
        listing = s3.list_object_versions(Bucket="dynamoguard-reports", Prefix="reports/cloudtrail_audit/")
        return {v["Key"] for v in listing.get("Versions", [])}, s3.get_object(
            Bucket="dynamoguard-reports", Key="reports/cloudtrail_audit/20260101T1000Z_20260101T1100Z/findings.jsonl"
        )["Body"].read()

    first = _full_interval(seeded, config)
    keys_first, body_first = report_objects()
    second = _full_interval(seeded, config)
    keys_second, body_second = report_objects()
    assert first == second and body_first == body_second and keys_first == keys_second
    assert keys_first == {"reports/cloudtrail_audit/20260101T1000Z_20260101T1100Z/" + name for name in (
        "findings.jsonl", "summary.json", "parts/111111111111_us-east-1_20260101T1000Z.json")}
    lines = [json.loads(line) for line in body_first.splitlines()]
    assert first["by_severity"] == count_by_severity(lines) and first["by_severity"]["critical"] == 2
    assert [(f["rule"], f["table"]) for f in first["top_findings"][:2]] == [("ddb-delete-table", "orders"),
                                                                          ("s3-bucket-deleted", None)]
    assert [f["rule"] for f in lines[:2]] == ["ddb-delete-table", "s3-bucket-deleted"]
    for key in ("severity", "rule", "event_time", "principal", "source_ip", "resource", "event_id", "log_key"):
        assert lines[0][key], key


def test_report_task_notifies_and_fails_on_high_and_respects_fail_on_high(seeded, config, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from dynamoguard.operators.audit import AuditReportOperator, AuditUnitOperator

    sqs, sns = seeded.client("sqs"), seeded.client("sns")
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=config.notifications.sns_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    deliver(seeded.endpoint, [event("DeleteBackup", backupArn=f"{config.table_arn('orders')}/backup/0170-a1",
                                    n=7)], H + timedelta(minutes=12))
    context = {"data_interval_start": H, "data_interval_end": END}
    unit = AuditUnitOperator(task_id="audit_unit", unit=run.plan(config, H, END)[0]).execute(context)

    with pytest.raises(AirflowFailException, match="1 critical finding") as failure:
        AuditReportOperator(task_id="report", units=[unit], health=[]).execute(context)
    assert "ddb-delete-backup" in str(failure.value) and "table orders" in str(failure.value)
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    body = json.loads(messages[0]["Body"])
    assert body["Subject"] == "dynamoguard: 1 critical CloudTrail finding(s)"
    assert "ddb-delete-backup" in body["Message"] and "00000000-0000-0000-0000-000000000007" in body["Message"]
    assert "principal arn:aws:iam::111111111111:user/mallory" in body["Message"]

    lenient = config.model_copy(update={"audit": config.audit.model_copy(update={"fail_on_high": False})})
    monkeypatch.setattr("dynamoguard.config.load_config", lambda *a, **k: lenient)
    summary = AuditReportOperator(task_id="report", units=[unit], health=[]).execute(context)
    assert summary["by_severity"]["critical"] == 1 and summary["alerting"] == 1
    assert summary["top_findings"][0]["rule"] == "ddb-delete-backup"


def test_report_task_stores_findings_per_table_keeps_events_open_and_resolves_fixed_gaps(seeded, config, monkeypatch):
    from dynamoguard.findings import ACCOUNT_SCOPE, FindingsStore
    from dynamoguard.operators.audit import AuditReportOperator, AuditUnitOperator, TrailHealthOperator

    lenient = config.model_copy(update={"audit": config.audit.model_copy(update={"fail_on_high": False})})
    monkeypatch.setattr("dynamoguard.config.load_config", lambda *a, **k: lenient)
    store = FindingsStore(seeded.client("s3"), config.reports_bucket.name, config.reports_bucket.prefix)
    cloudtrail = seeded.client("cloudtrail")
    deliver(seeded.endpoint, [event("DeleteBackup", backupArn=f"{config.table_arn('orders')}/backup/0170-a1",
                                    n=7)], H + timedelta(minutes=12))

    def audit(start):
        context = {"data_interval_start": start, "data_interval_end": start + timedelta(hours=1)}
        units = [AuditUnitOperator(task_id="audit_unit", unit=u).execute(context)
                 for u in run.plan(config, start, start + timedelta(hours=1))]
        health = TrailHealthOperator(task_id="trail_health").execute(context)
        AuditReportOperator(task_id="report", units=units, health=health).execute(context)
        opened = [[f for f in store.load("audit", scope)["findings"] if f["status"] == "open"]
                  for scope in ("orders", ACCOUNT_SCOPE)]
        return {f["check"]: f for f in opened[0]}, {f["title"]: f for f in opened[1]}

    cloudtrail.stop_logging(Name=config.audit.trail_name)
    orders, account = audit(H)
    deleted = orders["ddb-delete-backup"]
    assert deleted["severity"] == "critical" and deleted["table"] == "orders"
    assert deleted["evidence"]["event_id"] == "00000000-0000-0000-0000-000000000007"
    assert deleted["evidence"]["principal"] == "arn:aws:iam::111111111111:user/mallory"
    assert deleted["evidence"]["interval"] == "2026-01-01T10:00:00Z/2026-01-01T11:00:00Z"
    assert account["Trail is not logging"]["severity"] == "critical"
    assert store.load("audit", "orders")["summary"]["findings"] == 1
    assert store.load("audit", "customers")["findings"] == []  # a configured table without findings is recorded

    cloudtrail.start_logging(Name=config.audit.trail_name)
    orders, account = audit(H + timedelta(hours=1))  # the next hour: the event stays open, the fixed gap resolves
    assert orders["ddb-delete-backup"]["id"] == deleted["id"] and "Trail is not logging" not in account
    assert store.load("audit", "orders")["summary"]["findings"] == 0

    orders, _ = audit(H + timedelta(days=8))  # a week past the event's hour
    assert orders == {}
    assert [f["status"] for f in store.load("audit", "orders")["findings"]] == ["resolved"]
