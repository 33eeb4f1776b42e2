"""
### CloudTrail audit of the protected estate

Runs on `audit.schedule` (hourly by default) over the run's **data interval**, so a backfill
re-audits past hours and overwrites their reports with identical ones.

1. `trail_health`: the trail exists, is logging, multi-region, validates log files, its event
   selectors log management events and the data events of every protected table and of the
   backup and replica buckets; the trail bucket is versioned, locked, and keeps logs long enough.
2. `settle` waits (deferred, no worker held) until `audit.settle_minutes` after the interval ends,
   so the files CloudTrail delivered in its last minutes have landed.
   `plan` -> `audit_unit` (mapped, one per account, region and hour): lists the log files
   *delivered* in the hour (a file belongs to the interval holding the timestamp in its key, so no
   file is read twice and late deliveries are read once), streams and parses each, runs the rules
   for each record's `(eventSource, eventName)` (parsing only records a rule may match), validates
   the hour's digest files (signature, chain, SHA-256 of every log file, backfill digests), and
   writes its part of the report.
3. `report`: `findings.jsonl` + `summary.json` in the reports bucket under
   `<prefix>/cloudtrail_audit/<start>_<end>/`; summary with the top findings (rule, severity,
   table, principal, object) in the log and XCom; the findings stored per table and account-wide
   (job `audit`, with the trail-health gaps); notification on critical or high findings;
   fails if `audit.fail_on_high`, naming them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, CronDataIntervalTimetable

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.audit import (
    AuditPlanOperator,
    AuditReportOperator,
    AuditUnitOperator,
    TrailHealthOperator,
)

config = load_config()

with DAG(
    dag_id="cloudtrail_audit",
    schedule=CronDataIntervalTimetable(config.audit.schedule, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=tags("cloudtrail", "audit", "security"),
    default_args=default_args(config),
):
    health = TrailHealthOperator(task_id="trail_health")
    settle = TimeDeltaSensor(task_id="settle", delta=timedelta(minutes=config.audit.settle_minutes), deferrable=True)
    units = AuditPlanOperator(task_id="plan")
    settle >> units
    audited = AuditUnitOperator.partial(task_id="audit_unit", execution_timeout=timedelta(hours=1)).expand(
        unit=units.output)
    AuditReportOperator(task_id="report", units=audited.output, health=health.output)
