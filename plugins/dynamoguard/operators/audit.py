"""Airflow glue for the CloudTrail audit in :mod:`dynamoguard.audit`.

Every operator works on the run's data interval, so a backfill re-audits exactly that interval.
Every AWS call goes through the audit role's connection, ``config.audit_conn_id`` (``accounts.audit``
when configured, else the source account's): trail, trail bucket and reports bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from dynamoguard.operators._base import DynamoguardOperator


def _interval(context) -> tuple:
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None or not start < end:
        raise AirflowFailException(f"the run has no data interval to audit ({start} - {end})")
    return start, end


class AuditPlanOperator(DynamoguardOperator):
    """The (account, region, hour) units of the data interval, one mapped audit task each."""

    def execute(self, context) -> list[dict]:
        from dynamoguard.audit.run import plan

        start, end = _interval(context)
        units = plan(self.config, start, end)
        self.log.info("Interval %s - %s: %d unit(s)", start, end, len(units))
        return units


class AuditUnitOperator(DynamoguardOperator):
    """Audit one unit: read its log files through the rules, validate its digests, write its report part."""

    template_fields: Sequence[str] = ("unit",)

    def __init__(self, *, unit: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.unit = unit

    def execute(self, context) -> dict:
        from dynamoguard import aws
        from dynamoguard.audit.run import Unit, audit_unit

        config = self.config
        start, end = _interval(context)
        unit = Unit.from_dict(self.unit)
        workers = config.audit.max_concurrency
        logs_s3 = self.client("s3", "audit", max_pool_connections=workers)
        reports_s3 = self.client("s3", "audit")

        def cloudtrail_for_region(region: str):
            return aws.client(self.conn_id("audit"), "cloudtrail", region)

        return audit_unit(config, unit, start, end, logs_s3, reports_s3, cloudtrail_for_region)


class TrailHealthOperator(DynamoguardOperator):
    """Check the trail and its bucket; the gaps as finding dicts."""

    def execute(self, context) -> list[dict]:
        from dynamoguard.audit.run import health

        config = self.config
        findings = health(config, self.client("cloudtrail", "audit"), self.client("s3", "audit"))
        for finding in findings:
            self.log.warning("Trail health [%s] %s: %s", finding["severity"], finding["title"], finding["resource"])
        if not findings:
            self.log.info("Trail %s and bucket %s are healthy", config.audit.trail_name, config.audit.trail_bucket)
        return findings


class AuditReportOperator(DynamoguardOperator):
    """Write the interval's report, store its findings (job ``audit``: each table's, and the account-wide ones with
    the trail-health gaps); notify on critical or high findings and fail if ``audit.fail_on_high``.

    The XCom summary and the alert name the most severe findings (rule, severity, table, principal, object)."""

    job = "audit"

    template_fields: Sequence[str] = ("units", "health")

    def __init__(self, *, units: Any, health: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.health = health

    def execute(self, context) -> dict:
        import orjson

        from dynamoguard.audit.report import describe
        from dynamoguard.audit.run import finish
        from dynamoguard.notify import notify

        config = self.config
        start, end = _interval(context)
        s3 = self.client("s3", "audit")
        summary = finish(config, s3, start, end, list(self.units or []), list(self.health or []))
        self.log.info("CloudTrail audit %s - %s: %s", start, end, orjson.dumps(summary).decode())
        self._store(context, config, s3, start, end, summary)
        alerting = summary["alerting"]
        if alerting:
            counts = ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items() if n and s in ("critical", "high"))
            message = "\n".join([f"{counts} finding(s); report: {summary['report']}", "",
                                  *describe(summary["top_findings"])])
            notify(config, f"dynamoguard: {counts} CloudTrail finding(s)", message)
            if config.audit.fail_on_high:
                raise AirflowFailException(message)
        return summary

    def _store(self, context, config, s3, start, end, summary: dict) -> None:
        """Each scope's findings of the interval (with the open ones of earlier intervals) and a small summary."""
        from dynamoguard.audit.findings import count_by_severity
        from dynamoguard.audit.report import carried, findings_by_scope, read_findings

        reports = config.reports_bucket
        findings = read_findings(s3, reports.name, reports.prefix, start, end)
        interval = summary["interval"]
        for scope, found in sorted(findings_by_scope(findings, config.table_names, start, end).items()):
            self.report(context, scope, found, account="audit", alert=False, carry=carried(start, end),
                        summary={"interval": interval, "report": summary["report"], "findings": len(found),
                                 "by_severity": count_by_severity(found)})
