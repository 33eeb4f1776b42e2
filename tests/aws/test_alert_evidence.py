"""Failure notifications of tasks that fail on findings carry the findings: table, object, expected and found,
and the run that saw them (read back from an SQS queue subscribed to the alerts topic)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from dynamoguard.config import load_config
from dynamoguard.findings import Finding, RunRef, merge
from dynamoguard.notify import FindingsFailed, failure_notifier
from dynamoguard.timeutil import utcnow

pytestmark = pytest.mark.aws


def subscribed_queue(localaws, topic_arn: str) -> str:
    sqs = localaws.client("sqs")
    url = sqs.create_queue(QueueName="alerts-evidence")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    localaws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(localaws, url: str) -> list[dict]:
    messages = localaws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_failure_notification_lists_the_findings_with_their_evidence_and_run(seeded):
    config = load_config()
    url = subscribed_queue(seeded, config.notifications.sns_topic_arn)
    run = RunRef("dynamodb_retention_sweep", "scheduled__2026-11-28T04:00:00+00:00", "reverify_exports")
    finding = Finding(job="reverify_exports", check="overwrite_attempt", severity="high", table="orders",
                      resource="s3://dynamoguard-exports/exports/orders/2026-11-27/AWSDynamoDB/x/data/a.json.gz",
                      title="orders: overwrite attempt on export object .../data/a.json.gz",
                      evidence={"expected": "one object version, no delete marker", "original_version": "v1",
                                "current_version": "v2"})
    stored, _ = merge([], [finding], run, utcnow())
    ti = SimpleNamespace(dag_id=run.dag_id, task_id=run.task_id, map_index=-1, run_id=run.run_id, try_number=1,
                         log_url=None)
    failure_notifier(config)({"ti": ti, "run_id": run.run_id,
                              "exception": FindingsFailed("1 critical/high finding(s) open", stored)})
    [body] = received(seeded, url)
    message = body["Message"]
    assert body["Subject"] == "dynamoguard FAILED: dynamodb_retention_sweep.reverify_exports"
    assert "Findings (1):" in message
    line = next(line for line in message.splitlines() if line.startswith("[high]"))
    assert "orders: overwrite attempt" in line and finding.resource in line
    assert '"expected": "one object version, no delete marker"' in line and '"current_version": "v2"' in line
    assert f"Seen in: {run.url}" in message
