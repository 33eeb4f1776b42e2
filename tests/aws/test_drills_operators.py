"""The drill operators run alone against the emulator: the sweep's findings and notification for a table posing as
a scratch table, and a scheduled drill waiting (deferred) for its table's first export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from dynamoguard.config import load_config
from dynamoguard.drills.scratch import drill_tags, list_tables
from dynamoguard.operators.drills import DrillPrepareOperator, DrillSweepOperator
from dynamoguard.timeutil import iso, utcnow
from tests.aws.test_drills import make_export

pytestmark = pytest.mark.aws

CONFIG = load_config()
PREFIX = CONFIG.drills.scratch_prefix
REPORTS = CONFIG.reports_bucket.name


def findings(localaws, job: str, scope: str) -> dict[str, dict]:
    key = f"{CONFIG.reports_bucket.prefix}/findings/{job}/{scope}.json"
    state = json.loads(localaws.client("s3").get_object(Bucket=REPORTS, Key=key)["Body"].read())
    return {f["check"]: f for f in state["findings"] if f["status"] == "open"}


def alerts_inbox(localaws) -> str:
    sqs = localaws.client("sqs")
    url = sqs.create_queue(QueueName="drill-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    localaws.client("sns").subscribe(TopicArn=CONFIG.notifications.sns_topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def test_sweep_leaves_an_impostor_alone_reports_and_notifies_it(seeded):
    ddb = seeded.client("dynamodb")
    key = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
           "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}], "BillingMode": "PAY_PER_REQUEST"}
    impostor = f"{PREFIX}orders-lookalike"
    ddb.create_table(TableName=impostor, **key)  # scratch prefix, no drill tag: not ours
    expired = f"{PREFIX}orders-crashed"
    ddb.create_table(TableName=expired, Tags=drill_tags("run-old", "orders", utcnow() - timedelta(hours=1)), **key)
    inbox = alerts_inbox(seeded)

    results = DrillSweepOperator(task_id="sweep").execute({"run_id": "sweep-test"})
    by_table = {r["table"]: r for r in results}
    assert by_table[expired]["deleted"] and not by_table[impostor]["deleted"]
    tables = set(list_tables(ddb))
    assert impostor in tables and expired not in tables

    found = findings(seeded, "drill_sweep", "account")
    assert found["scratch_impostor"]["severity"] == "medium"
    assert found["scratch_impostor"]["resource"] == f"arn:aws:dynamodb:us-east-1:111111111111:table/{impostor}"
    assert found["scratch_swept"]["severity"] == "info"
    assert found["scratch_swept"]["evidence"]["deleted"] == [{"account": "source", "table": expired,
                                                               "drill": "run-old"}]
    messages = [json.loads(m["Body"]) for m in seeded.client("sqs").receive_message(
        QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])]
    assert any("posing as drill scratch tables" in m["Subject"] and impostor in m["Message"] for m in messages)


def _scheduled_spec(started) -> dict:
    return {"table": "customers", "source": "export", "validation": "sample", "sample_size": 5, "keep_minutes": 0,
            "restore_point": None, "wait_for_export": True, "run_id": "scheduled__x", "started_at": iso(started)}


def test_a_scheduled_drill_waits_deferred_for_the_first_export(seeded):
    operator = DrillPrepareOperator(task_id="prepare", spec=_scheduled_spec(utcnow()))
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"run_id": "scheduled__x"})
    assert deferred.value.method_name == "execute" and deferred.value.trigger.moment > utcnow()
    assert [t for t in list_tables(seeded.client("dynamodb")) if t.startswith(PREFIX)] == []

    export = make_export(seeded, "customers")
    drill = operator.execute({"run_id": "scheduled__x"})
    assert drill["export"]["export_arn"] == export.export_arn and drill["skipped_exports"] == []


def test_a_scheduled_drill_waits_while_the_first_export_is_still_being_written(seeded):
    """The nightly export has started (its folder holds ``_started``) but has no manifest yet: wait, not fail."""
    s3 = seeded.client("s3")
    s3.put_object(Bucket=CONFIG.backup_bucket.name, Body=b"",
                  Key=f"{CONFIG.backup_bucket.prefix}/customers/2026-12-01/AWSDynamoDB/01796000000000-0123abcd/_started")
    operator = DrillPrepareOperator(task_id="prepare", spec=_scheduled_spec(utcnow()))
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"run_id": "scheduled__x"})
    assert deferred.value.method_name == "execute"

    manual = DrillPrepareOperator(task_id="prepare", spec={**_scheduled_spec(utcnow()), "wait_for_export": False})
    with pytest.raises(AirflowFailException, match="no verified export"):  # a manual drill is told at once
        manual.execute({"run_id": "scheduled__x", "ti": _Ti()})


def test_a_scheduled_drill_that_waited_too_long_fails_for_good(seeded):
    started = utcnow() - timedelta(hours=CONFIG.drills.max_drill_hours, minutes=1)
    operator = DrillPrepareOperator(task_id="prepare", spec=_scheduled_spec(started))
    with pytest.raises(AirflowFailException, match="no verified export"):
        operator.execute({"run_id": "scheduled__x", "ti": _Ti()})
    assert findings(seeded, "drill", "customers")["no_verified_export"]["severity"] == "critical"


class _Ti:
    """The task-instance calls the operator makes on failure (XCom push, try number)."""

    dag_id, run_id, task_id, map_index, try_number = "dynamodb_restore_drill", "scheduled__x", "drill.prepare", 0, 1

    def xcom_push(self, key, value):
        self.pushed = (key, value)
