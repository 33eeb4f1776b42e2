"""Airflow glue of the incremental exports: plan + start + deferred wait, verification, and the per-run record
(findings and the off-account RPO). The logic lives in :mod:`dynamoguard.incremental`; Object Lock and replica
steps are the nightly job's operators. The nightly role's permissions cover every call made here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from dynamoguard.exports.start import ExportError
from dynamoguard.operators._base import DynamoguardOperator


class IncrementalExportOperator(DynamoguardOperator):
    """Plan ``table``'s next window (chained from what the backup bucket holds, bounded by the run's data-interval
    end), start its export with a deterministic ClientToken and wait deferred until it finishes.

    The plan goes to XCom ``plan``; with nothing to export (the chain already reaches the bound, or less than 15
    minutes since its end, or nothing to chain from) the task is skipped. A window ending after the latest
    restorable time waits (deferred) until PITR has caught up, at most ``incremental.max_wait_restorable_minutes``.
    """

    job = "incremental"
    permanent_errors = (*DynamoguardOperator.permanent_errors, ExportError)
    template_fields: Sequence[str] = ("table",)
    ui_color = "#d8e4f0"

    def __init__(self, *, table: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table

    def execute(self, context, event: Any = None) -> dict[str, Any]:
        from dynamoguard.exports.start import preflight
        from dynamoguard.incremental import chain
        from dynamoguard.incremental.start import start_incremental
        from dynamoguard.incremental.windows import plan_window
        from dynamoguard.layout import incremental_prefix
        from dynamoguard.timeutil import iso

        config, table = self.config, self.config.table(self.table)
        ddb, s3 = self.client("dynamodb"), self.client("s3")
        bucket, base = config.backup_bucket.name, config.backup_bucket.prefix
        with self.failures():
            state = preflight(ddb, table.name, ensure_pitr=table.ensure_pitr)
            bound = context.get("data_interval_end") or state.latest_restorable
            stored = chain.stored_windows(s3, bucket, base, table.name)
            plan = plan_window(bound=bound, interval=timedelta(minutes=config.incremental.interval_minutes),
                               window_ends=[w.window.end for w in stored if w.summary_key],
                               full_export_times=chain.full_export_times(s3, bucket, base, table.name,
                                                                         at_or_before=bound),
                               earliest_restorable=state.earliest_restorable)
        record = {"reason": plan.reason, "bound": iso(bound), "missed": plan.missed,
                  "chain_end": iso(plan.chain_end) if plan.chain_end else None,
                  "window": plan.window.as_dict() if plan.window else None}
        context["ti"].xcom_push(key="plan", value=record)
        self.log.info("Plan for %s: %s", table.name, record)
        if plan.window is None:
            raise AirflowSkipException(f"{table.name}: no window to export ({plan.reason})")
        window = plan.window
        if state.latest_restorable is None or window.end > state.latest_restorable:
            self._wait_restorable(window.end, state.latest_restorable)
        prefix = incremental_prefix(base, table.name, window.start, window.end)
        from dynamoguard.drills.schema import source_schema

        chain.put_schema(s3, bucket, prefix, source_schema(ddb.describe_table(TableName=table.name)["Table"]))
        with self.failures():
            description = start_incremental(ddb, state.table_arn, window, bucket, prefix,
                                            config.incremental.view_type)
        if description["ExportStatus"] != "IN_PROGRESS":
            return self._finish(ddb, description["ExportArn"])
        from dynamoguard.triggers import DynamoDBExportTrigger

        timeout = timedelta(minutes=config.nightly.export_timeout_minutes)
        self.defer(trigger=DynamoDBExportTrigger(export_arn=description["ExportArn"],
                                                 deadline=time.time() + timeout.total_seconds(),
                                                 waiter_delay=config.nightly.poll_interval_seconds,
                                                 aws_conn_id=self.conn_id("source"), region_name=config.region),
                   method_name="execute_complete", timeout=timeout + timedelta(minutes=5))

    def _wait_restorable(self, end, latest) -> None:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        from dynamoguard.timeutil import utcnow

        now = utcnow()
        lag = now - latest if latest else timedelta(minutes=5)
        moment = end + lag + timedelta(seconds=5)
        if moment - now > timedelta(minutes=self.config.incremental.max_wait_restorable_minutes):
            raise AirflowFailException(f"{self.table}: window end {end} would not be restorable before {moment}")
        self.log.info("Window end %s is not restorable yet; waiting until %s", end, moment)
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute")

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") in ("timeout", "error"):
            raise AirflowException(f"{self.table}: {event.get('message')}")
        return self._finish(self.client("dynamodb"), event["export_arn"])

    def _finish(self, ddb, export_arn: str) -> dict[str, Any]:
        """The finished export's facts (all from DescribeExport, so a resumed task needs nothing else)."""
        from dynamoguard.exports.start import ExportFailed, describe_export, raise_if_failed
        from dynamoguard.timeutil import iso

        description = describe_export(ddb, export_arn)
        try:
            raise_if_failed(description)
        except ExportFailed as failed:
            raise AirflowFailException(f"{self.table}: {failed}") from None
        if description["ExportStatus"] != "COMPLETED":
            raise AirflowException(f"{self.table}: export {export_arn} is {description['ExportStatus']}")
        spec = description["IncrementalExportSpecification"]
        return {"table": self.table, "table_arn": description["TableArn"], "bucket": description["S3Bucket"],
                "s3_prefix": description.get("S3Prefix") or "", "export_arn": export_arn,
                "window_from": iso(spec["ExportFromTime"]), "window_to": iso(spec["ExportToTime"]),
                "view": spec.get("ExportViewType"), "item_count": description.get("ItemCount"),
                "billed_size_bytes": description.get("BilledSizeBytes")}


class VerifyIncrementalExportOperator(DynamoguardOperator):
    """Verify one window's export against its manifests (:func:`dynamoguard.incremental.verify.verify_incremental`).

    Returns the verification record in the nightly verify's shape (``bucket``, ``export_prefix`` = the window's
    folder, ``export_time`` = the window's end, ``object_keys``, ``checksums``) for the Object Lock and replica
    steps; problems go to XCom ``verification`` and fail the task.
    """

    job = "incremental"
    template_fields: Sequence[str] = ("table", "export")
    ui_color = "#d5f0dc"

    def __init__(self, *, table: str, export: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table
        self.export = export

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.exports.start import describe_export
        from dynamoguard.incremental.verify import verify_incremental
        from dynamoguard.incremental.windows import Window
        from dynamoguard.timeutil import parse_time

        exp = self.require_export(self.export, keys=("bucket", "s3_prefix", "export_arn", "window_from", "window_to"))
        concurrency = self.config.nightly.max_concurrency
        with self.failures():
            result = verify_incremental(
                self.client("s3", max_pool_connections=concurrency), exp["bucket"], exp["export_arn"],
                exp["table_arn"], Window(parse_time(exp["window_from"]), parse_time(exp["window_to"])),
                exp["s3_prefix"], view=exp.get("view"),
                description=describe_export(self.client("dynamodb"), exp["export_arn"]))
        record = {"table": self.table, **result.to_dict(), "export_prefix": exp["s3_prefix"].rstrip("/") + "/",
                  "manifest_folder": result.export_prefix}
        self.log.info("Verification of %s window %s .. %s: %s; %d lines in %d files", self.table,
                      exp["window_from"], exp["window_to"], "OK" if result.ok else "FAILED", result.item_count,
                      result.files)
        if not result.ok:
            context["ti"].xcom_push(key="verification", value=record)
            raise AirflowFailException(f"{self.table}: window {exp['window_from']} .. {exp['window_to']} failed "
                                       "verification:\n" + "\n".join(f"  - {p}" for p in record["problems"][:20]))
        return record


class IncrementalRecordOperator(DynamoguardOperator):
    """Runs whatever the steps before it did (trigger rule ``all_done``): records the run's findings (missed,
    failed or impossible window, RPO above ``incremental.max_rpo_minutes``) and the table's summary with its
    off-account RPO, the age of the newest window end that is verified and replicated.

    ``steps`` maps export, verify, object_lock and replica to their task ids.
    """

    job = "incremental"
    template_fields: Sequence[str] = ("table",)
    ui_color = "#f0e4d8"

    def __init__(self, *, table: str, steps: Mapping[str, str], **kwargs: Any):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.table = table
        self.steps = dict(steps)

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.incremental import rpo
        from dynamoguard.timeutil import iso, utcnow

        ti = context["ti"]
        mine = {"map_indexes": ti.map_index} if ti.map_index >= 0 else {}  # this table's steps in a mapped group
        plan = ti.xcom_pull(task_ids=self.steps["export"], key="plan", **mine)
        results = {step: ti.xcom_pull(task_ids=task_id, **mine) for step, task_id in self.steps.items()}
        failed_check = ti.xcom_pull(task_ids=self.steps["verify"], key="verification", **mine) or {}
        previous = self.findings_store().load(rpo.JOB, self.table).get("summary") or {}
        window = (plan or {}).get("window") or {}
        replicated = rpo.replicated_to(previous, results.get("replica"), window.get("to"))
        now = utcnow()
        age = rpo.rpo_seconds(replicated, now)
        limit = self.config.incremental.rpo_limit_minutes * 60
        full = self.findings_store().load("export", self.table).get("summary") or {}
        findings = rpo.run_findings(self.table, plan, results, failed_check.get("problems") or [], age, limit,
                                    first_full_pending=not full.get("export_time"))
        export = results.get("export") or {}
        summary = {"replicated_to": replicated, "rpo_seconds": age, "rpo_limit_seconds": limit,
                   "chain_end": (plan or {}).get("chain_end"), "plan": (plan or {}).get("reason"),
                   "last_window": window or previous.get("last_window"),
                   "last_export_arn": export.get("export_arn") or previous.get("last_export_arn"),
                   "last_window_items": export.get("item_count"), "findings": len(findings)}
        self.report(context, self.table, findings, summary=summary,
                    history_point={"at": iso(now), "rpo_seconds": age})
        self.log.info("%s: off-account RPO %s s (replicated to %s)", self.table, age, replicated)
        return summary
