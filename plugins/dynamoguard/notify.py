"""Failure notifications: the amazon provider's ``SnsHook`` publishing to ``notifications.sns_topic_arn``.

``failure_notifier(config)`` gives an ``on_failure_callback``; ``notify(config, subject, message)``
publishes from task code. With no topic configured both only log, so a missing topic never breaks a run.
The provider (and boto3) is imported only when a message is sent: every DAG file imports this module, and
the import would add about a third of a second to each parse.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

# SNS Subject: ASCII, no line breaks or control characters, fewer than 100 characters.
_SUBJECT_MAX = 99
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]+")
# SNS Message: at most 256 KB (UTF-8); keep well below it.
_MESSAGE_MAX = 200_000


def sns_subject(text: str) -> str:
    """``text`` made acceptable as an SNS Subject."""
    cleaned = _NOT_PRINTABLE_ASCII.sub(" ", text).strip() or "dynamoguard"
    return cleaned if len(cleaned) <= _SUBJECT_MAX else cleaned[: _SUBJECT_MAX - 3] + "..."


def sns_message(text: str) -> str:
    """``text`` cut to fit an SNS Message, saying so when it was cut."""
    encoded = text.encode()
    if len(encoded) <= _MESSAGE_MAX:
        return text
    return encoded[:_MESSAGE_MAX].decode(errors="ignore") + "\n[message truncated]"


class FindingsFailed(AirflowFailException):
    """A task failing because of open findings; the failure notification lists them with their evidence.

    :param findings: the stored findings (dicts, as :meth:`FindingsStore.record` returns them)
    """

    def __init__(self, message: str, findings: list[dict[str, Any]]):
        super().__init__(message)
        self.findings = findings


def failure_text(context: dict[str, Any]) -> tuple[str, str]:
    """Subject and message describing the failed task instance in ``context``."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    named = getattr(ti, "rendered_map_index", None) or map_index  # a mapped task's label (the table) if it has one
    label = f"{task_id}[{named}]" if map_index is not None and map_index >= 0 else task_id
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    lines = [
        f"DAG: {dag_id}",
        f"Task: {label}",
        f"Run: {run_id}",
        f"Try: {getattr(ti, 'try_number', '?')}",
        f"Logical date: {context.get('logical_date')}",
        f"Error: {context.get('exception')}",
    ]
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"Log: {log_url}")
    findings = getattr(context.get("exception"), "findings", None)
    if findings:
        from dynamoguard.findings import alert_lines

        lines += ["", f"Findings ({len(findings)}):", *alert_lines(findings)]
        runs = sorted({f["run"]["url"] for f in findings if isinstance(f.get("run"), dict) and f["run"].get("url")})
        lines += [f"Seen in: {url}" for url in runs]
    return sns_subject(f"dynamoguard FAILED: {dag_id}.{label}"), sns_message("\n".join(lines))


class TaskFailureSnsNotifier(BaseNotifier):
    """Publishes a subject and message describing the failed task (from the callback context) to an SNS topic."""

    template_fields = ("aws_conn_id", "target_arn", "region_name")

    def __init__(self, *, aws_conn_id: str | None, target_arn: str, region_name: str | None = None):
        super().__init__()
        self.aws_conn_id, self.target_arn, self.region_name = aws_conn_id, target_arn, region_name

    def notify(self, context):
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        subject, message = failure_text(context)
        log.info("Publishing failure notification to %s: %s", self.target_arn, subject)
        SnsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).publish_to_target(
            target_arn=self.target_arn, message=message, subject=subject)


class LogOnlyNotifier(BaseNotifier):
    """Stand-in when no SNS topic is configured: logs the failure it would have sent."""

    def notify(self, context):
        subject, message = failure_text(context)
        log.warning("No notifications.sns_topic_arn configured; not sent: %s\n%s", subject, message)


def failure_notifier(config) -> BaseNotifier:
    """An ``on_failure_callback`` publishing to the configured SNS topic (log-only without one)."""
    topic = config.notifications.sns_topic_arn
    if not topic:
        return LogOnlyNotifier()
    return TaskFailureSnsNotifier(
        aws_conn_id=config.accounts.source.aws_conn_id, target_arn=topic, region_name=config.region
    )


def notify(config, subject: str, message: str) -> str | None:
    """Publish ``subject``/``message`` to the configured topic; return the MessageId (None if no topic)."""
    topic = config.notifications.sns_topic_arn
    subject, message = sns_subject(subject), sns_message(message)
    if not topic:
        log.warning("No notifications.sns_topic_arn configured; not sent: %s\n%s", subject, message)
        return None
    log.info("Publishing notification to %s: %s", topic, subject)
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    hook = SnsHook(aws_conn_id=config.accounts.source.aws_conn_id, region_name=config.region)
    return hook.publish_to_target(target_arn=topic, message=message, subject=subject)["MessageId"]
