"""Failure notifications reach the configured SNS topic (checked through a subscribed SQS queue)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from dynamoguard.config import Notifications, load_config
from dynamoguard.notify import LogOnlyNotifier, failure_notifier, notify, sns_subject

pytestmark = pytest.mark.aws


def _subscribe_queue(localaws, topic_arn: str) -> str:
    sqs = localaws.client("sqs")
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    localaws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _received(localaws, url: str) -> list[dict]:
    messages = localaws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_notify_publishes_to_the_configured_topic(seeded):
    config = load_config()
    url = _subscribe_queue(seeded, config.notifications.sns_topic_arn)
    message_id = notify(config, "export of orders failed\n(line two)", "FailureCode: S3NoSuchBucket")
    [body] = _received(seeded, url)
    assert body["MessageId"] == message_id
    assert body["Subject"] == "export of orders failed (line two)"
    assert body["Message"] == "FailureCode: S3NoSuchBucket"


def test_failure_notifier_describes_the_failed_task(seeded):
    config = load_config()
    url = _subscribe_queue(seeded, config.notifications.sns_topic_arn)
    ti = SimpleNamespace(dag_id="dynamodb_nightly_backup", task_id="orders.wait_export", map_index=-1,
                         run_id="scheduled__2026-11-27", try_number=2, log_url=None)
    failure_notifier(config)({"ti": ti, "run_id": ti.run_id, "exception": RuntimeError("FailureCode S3NoSuchBucket")})
    [body] = _received(seeded, url)
    assert body["Subject"] == "dynamoguard FAILED: dynamodb_nightly_backup.orders.wait_export"
    assert "Error: FailureCode S3NoSuchBucket" in body["Message"]
    assert "Try: 2" in body["Message"]


def test_without_a_topic_notifications_only_log(caplog):
    config = load_config().model_copy(update={"notifications": Notifications()})
    notifier = failure_notifier(config)
    assert isinstance(notifier, LogOnlyNotifier)
    with caplog.at_level(logging.WARNING, logger="dynamoguard.notify"):
        notifier({"ti": SimpleNamespace(dag_id="d", task_id="t", map_index=3), "exception": "boom"})
        assert notify(config, "subject", "body") is None
    assert "not sent: dynamoguard FAILED: d.t[3]" in caplog.text
    assert "Error: boom" in caplog.text


def test_subject_is_made_valid_for_sns():
    assert sns_subject("a" * 150) == "a" * 96 + "..."
    assert sns_subject("tab\there – dash\n") == "tab here   dash"
    assert sns_subject("\n") == "dynamoguard"
