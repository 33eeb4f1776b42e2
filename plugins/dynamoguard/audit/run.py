"""One audit interval, in the steps the DAG runs: plan units, audit each unit, check trail health, report.

Plain functions over boto3 clients; ``operators/audit.py`` builds the clients from Airflow connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from dynamoguard.audit import discovery, report
from dynamoguard.audit.context import Context, context_from_config
from dynamoguard.audit.discovery import Unit
from dynamoguard.audit.findings import Finding, count_by_severity
from dynamoguard.audit.health import trail_health
from dynamoguard.audit.integrity import DigestValidator
from dynamoguard.audit.reader import audit_objects
from dynamoguard.timeutil import iso

log = logging.getLogger(__name__)


def audited_accounts(config) -> list[str]:
    return list(config.audit.accounts) or [config.accounts.source.account_id]


def audited_regions(config) -> list[str]:
    return list(config.audit.regions) or [config.region]


def plan(config, start: datetime, end: datetime) -> list[dict]:
    """The (account, region, hour) units of ``[start, end)`` as XCom-friendly dicts."""
    units = discovery.plan(audited_accounts(config), audited_regions(config), start, end)
    return [u.to_dict() for u in units]


def audit_unit(config, unit: Unit, start: datetime, end: datetime, logs_s3, reports_s3,
               cloudtrail_for_region: Callable[[str], object], ctx: Context | None = None) -> dict:
    """Audit one unit's log files and digests, write its part of the report; return a small summary."""
    ctx = ctx or context_from_config(config)
    audit = config.audit
    bucket = audit.trail_bucket
    base = discovery.base_prefix(audit.trail_prefix, audit.organization_id, unit.account)
    workers = audit.max_concurrency

    logs, strange = discovery.discover_logs(logs_s3, bucket, base, unit)
    result = audit_objects(logs_s3, bucket, [o["Key"] for o in logs], ctx, max_workers=workers)
    findings: list[Finding] = result.all_findings(ctx)
    findings.extend(Finding(severity="low", rule="unexpected-object", title="Object under the log prefix is not a "
                            "CloudTrail log file", resource=f"s3://{bucket}/{key}", log_key=key,
                            account=unit.account, region=unit.region) for key in strange)
    counts = result.counts.to_dict()
    counts["bytes_listed"] = sum(o["Size"] for o in logs)

    validator = DigestValidator(logs_s3, cloudtrail_for_region, bucket, base, max_workers=workers)
    integrity_findings, integrity_counts = validator.validate(unit)
    findings.extend(integrity_findings)
    counts.update(integrity_counts)

    key = report.part_key(config.reports_bucket.prefix, start, end, unit)
    report.write_part(reports_s3, config.reports_bucket.name, key, unit, counts, findings)
    summary = {"unit": unit.to_dict(), "part_key": key, "counts": counts,
               "by_severity": count_by_severity(findings)}
    log.info("Audited %s %s %s: %s; findings %s", unit.account, unit.region, iso(unit.start),
             counts, summary["by_severity"])
    return summary


def health(config, cloudtrail, s3) -> list[dict]:
    """Trail-health findings as dicts."""
    audit = config.audit
    ctx = context_from_config(config)
    findings = trail_health(cloudtrail, s3, audit.trail_name, audit.trail_bucket, ctx.required_data_resources,
                            audit.min_log_retention_days)
    return [f.to_dict() for f in findings]


def finish(config, reports_s3, start: datetime, end: datetime, unit_summaries: list[dict],
           health_findings: list[dict]) -> dict:
    """Write the interval's report from the units' parts and the health findings; the summary."""
    keys = [s["part_key"] for s in unit_summaries]
    return report.assemble(reports_s3, config.reports_bucket.name, config.reports_bucket.prefix, start, end, keys,
                           health_findings, config.audit.max_top_findings)

