"""The cloudtrail_audit DAG inside Airflow (dag.test) against the seeded emulator."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.aws.audit_helpers import deliver, digest, event

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

H = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
REPORT = "reports/cloudtrail_audit/20260101T1000Z_20260101T1100Z/"


def audit_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / "cloudtrail_audit.py"))
    assert bag.import_errors == {}
    return bag.dags["cloudtrail_audit"]


def run_hour(dag):
    # A manual run infers the last complete interval before its logical date: [H, H+1h).
    dag_run = dag.test(run_after=H + timedelta(hours=1), logical_date=H + timedelta(hours=1))
    return dag_run, {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}


def test_dag_audits_the_data_interval_and_fails_on_high(seeded, airflow_db):
    s3 = seeded.client("s3")
    allowed = "arn:aws:iam::111111111111:role/orders-service"
    deliver(seeded.endpoint, [event("PutItem", principal=allowed, tableName="orders", n=1)], H + timedelta(minutes=3))
    deliver(seeded.endpoint, [event("PutItem", principal=allowed, tableName="orders", n=2)], H + timedelta(minutes=9))
    digest(seeded.endpoint, H + timedelta(minutes=59))

    dag = audit_dag()
    dag_run, tis = run_hour(dag)
    assert dag_run.state == "success", {k: ti.state for k, ti in tis.items()}
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (H, H + timedelta(hours=1))
    assert ("audit_unit", 0) in tis and ("audit_unit", 1) not in tis  # one account, one region, one hour
    summary = json.loads(s3.get_object(Bucket="dynamoguard-reports", Key=REPORT + "summary.json")["Body"].read())
    assert summary["counts"]["files_read"] == 2 and summary["counts"]["records_read"] == 2
    assert summary["counts"]["log_files_verified"] == 2
    assert summary["by_severity"]["high"] == 0

    # An attacker's hour: the same interval re-run now fails on high severity, report overwritten.
    deliver(seeded.endpoint, [event("UpdateContinuousBackups", tableName="orders", n=3,
                                    pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": False})],
            H + timedelta(minutes=30))
    dag_run, tis = run_hour(dag)
    assert dag_run.state == "failed"
    assert tis[("report", -1)].state == "failed" and tis[("audit_unit", 0)].state == "success"
    lines = s3.get_object(Bucket="dynamoguard-reports", Key=REPORT + "findings.jsonl")["Body"].read().splitlines()
    rules = [json.loads(line)["rule"] for line in lines]
    assert rules[0] == "ddb-pitr-disabled"
    assert "log-file-unlisted" in rules  # delivered after the digest of its period was written
