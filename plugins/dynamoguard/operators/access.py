"""Airflow glue for the access review in :mod:`dynamoguard.access`.

``AccessSnapshotOperator`` reads one account (IAM authorization details, the protected tables' resource
policies, the backup buckets' policies) and stores the snapshot next to the run's report;
``AccessReviewOperator`` evaluates both snapshots, writes ``report.json`` and ``report.html`` to
``s3://<reports_bucket.name>/<reports_bucket.prefix>/access-review/<date>/``, compares with the
previous run's report, stores the findings (job ``access``: per table, the rest account-wide, each summary naming
the report the page reads) and notifies on new critical/high findings.
The source-account connection is ``access_review.aws_conn_id`` (default ``accounts.source.aws_conn_id``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from dynamoguard.operators._base import DynamoguardOperator

ACCOUNTS = ("source", "backup")


def run_date(context) -> str:
    """The run's date (YYYY-MM-DD): its logical date, or when it was due for runs without one."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.date().isoformat()


class AccessSnapshotOperator(DynamoguardOperator):
    """Collect one account's IAM state and resource policies; push the snapshot's S3 key."""

    template_fields: Sequence[str] = ("account",)
    ui_color = "#e8daef"

    def __init__(self, *, account: str, **kwargs: Any):
        super().__init__(**kwargs)
        if account not in ACCOUNTS:
            raise ValueError(f"account must be one of {ACCOUNTS}, not {account!r}")
        self.account = account

    def execute(self, context) -> str:
        from dynamoguard.access.collect import collect_account
        from dynamoguard.access.report import snapshot_key

        config = self.config
        account = "access_review" if self.account == "source" else "backup"

        def client(service):
            return self.client(service, account)

        if self.account == "source":
            tables = [config.table_arn(t) for t in config.table_names]
            buckets = [config.backup_bucket.name]
        else:
            tables, buckets = [], [config.replica_bucket.name]
        expected = getattr(config.accounts, self.account).account_id
        snapshot = collect_account(
            expected, client("iam"), ddb=client("dynamodb") if tables else None, table_arns=tables,
            s3=client("s3"), buckets=buckets, caller_account=client("sts").get_caller_identity()["Account"],
        )
        key = snapshot_key(config.reports_bucket.prefix, run_date(context), self.account)
        reports = self.client("s3", "access_review")
        reports.put_object(Bucket=config.reports_bucket.name, Key=key, Body=json.dumps(snapshot).encode(),
                           ContentType="application/json")
        self.log.info("Snapshot of the %s account %s written to s3://%s/%s", self.account, expected,
                      config.reports_bucket.name, key)
        return key


class AccessReviewOperator(DynamoguardOperator):
    """Evaluate the snapshots, write the JSON and HTML report, notify on new high-severity findings.

    ``snapshots`` maps ``source``/``backup`` to snapshot S3 keys (usually XComArgs of the collect tasks).
    Returns a summary: report keys, severity counts, new findings and new access.
    """

    job = "access"
    template_fields: Sequence[str] = ("snapshots",)
    ui_color = "#d2b4de"

    def __init__(self, *, snapshots: dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.snapshots = snapshots

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.access.report import alert_text, new_alerts, previous_report, write_report
        from dynamoguard.access.review import run_review
        from dynamoguard.notify import notify

        config = self.config
        missing = [a for a in ACCOUNTS if not self.snapshots.get(a)]
        if missing:
            raise AirflowFailException(f"no snapshot for account(s) {missing}")
        s3 = self.client("s3", "access_review")
        bucket, prefix = config.reports_bucket.name, config.reports_bucket.prefix
        snapshots = {a: json.loads(s3.get_object(Bucket=bucket, Key=self.snapshots[a])["Body"].read())
                     for a in ACCOUNTS}
        date = run_date(context)
        previous = previous_report(s3, bucket, prefix, date)
        report = run_review(config, snapshots, date, previous)
        json_key, html_key = write_report(s3, bucket, prefix, report)
        diff = report["diff"]
        self.log.info("Access review %s: %s; %d entries; report s3://%s/%s", date, report["summary"],
                      len(report["matrix"]), bucket, html_key)
        for finding in report["findings"]:
            self.log.info("[%s] %s", finding["severity"], finding["message"])
        for change in diff["new_access"] + diff["removed_access"]:
            self.log.info("Since %s: %s", diff["previous_run"], change["text"])
        self._store(context, config, report, json_key, html_key)
        alerts = new_alerts(report)
        if alerts:
            subject, message = alert_text(report, f"s3://{bucket}/{html_key}")
            notify(config, subject, message)
        return {
            "run_date": date, "report_json": json_key, "report_html": html_key, "summary": report["summary"],
            "previous_run": diff["previous_run"], "new_findings": [f["message"] for f in diff["new_findings"]],
            "new_access": [a["text"] for a in diff["new_access"]], "notified": len(alerts),
        }

    def _store(self, context, config, report: dict[str, Any], json_key: str, html_key: str) -> None:
        """Each table's findings and the account-wide ones; every summary names the report (``report_json``)."""
        from dynamoguard.access.report import store_findings
        from dynamoguard.findings import SEVERITIES

        for scope, found in sorted(store_findings(report, config.table_names).items()):
            by_severity = {s: sum(1 for f in found if f.severity == s) for s in SEVERITIES}
            self.report(context, scope, found, account="access_review", alert=False, summary={
                "run_date": report["run_date"], "report_json": json_key, "report_html": html_key,
                "findings": len(found), "by_severity": by_severity})
