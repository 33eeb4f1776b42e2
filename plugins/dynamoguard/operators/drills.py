"""Airflow glue of the restore drill: one thin operator per step, the logic in :mod:`dynamoguard.drills.service`.

Accounts come from the restore source (:mod:`dynamoguard.drills.sources`): ``pitr`` and ``export`` drills run
through the drill connection in the source account, ``replica`` drills entirely in the backup account.
Every drill ends in one report (job ``drill``, scope the table, through the drill connection): when validation
passes, or when a step fails for good (at once) or on its last try. Failures a retry cannot change
(DrillFailedForGood, bad params) fail the task without retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dynamoguard.drills import DrillFailed, DrillFailedForGood
from dynamoguard.operators._base import DynamoguardOperator


class _DrillStep(DynamoguardOperator):
    job = "drill"
    permanent_errors = (*DynamoguardOperator.permanent_errors, DrillFailedForGood)
    ui_color = "#f0e4d8"

    def report_drill(self, context, record: dict[str, Any]) -> None:
        """The drill's findings, the table's drill summary and a history point."""
        from dynamoguard.drills import report
        from dynamoguard.drills.record import record_key

        key = record_key(self.config.reports_bucket.prefix, record["table"], record["scratch_table"])
        self.report(context, record["table"], report.drill_findings(record), account="drill",
                    summary=report.summary(record, key), history_point=report.history_point(record))

    def step(self, context, run: Callable[[], Any]) -> Any:
        """``run()``; a failed drill's record goes to XCom ``drill_record`` and is reported unless a retry follows."""
        with self.failures():
            try:
                return run()
            except DrillFailed as failed:
                ti = context["ti"]
                ti.xcom_push(key="drill_record", value=failed.record)
                if isinstance(failed, DrillFailedForGood) or ti.try_number > self.retries:
                    self.report_drill(context, failed.record)
                raise


class DrillSweepOperator(_DrillStep):
    """Delete expired scratch tables (left by crashed runs) in every account drills restore into; report tables
    with the scratch prefix but no drill tag (medium, notified, never deleted) and what was deleted (info)."""

    job = "drill_sweep"

    def execute(self, context) -> list[dict[str, Any]]:
        from dynamoguard.drills import report, service
        from dynamoguard.findings import ACCOUNT_SCOPE, alert_lines
        from dynamoguard.notify import notify

        with self.failures():
            results = service.sweep(self.config, self)
        findings = report.sweep_findings(results)
        changes = self.report(context, ACCOUNT_SCOPE, findings, account="drill",
                              summary={"tables": len(results), "deleted": sum(r["deleted"] for r in results),
                                       "findings": len(findings)})
        impostors = [f for f in changes.new if f["check"] == "scratch_impostor"]
        if impostors:  # medium: the base alerts only on critical/high
            notify(self.config, f"dynamoguard {self.job}: {len(impostors)} table(s) posing as drill scratch tables",
                   "\n".join(alert_lines(impostors)))
        return results


class DrillPlanOperator(_DrillStep):
    """The drills of this run: the form's params for a manual run, rotation or all tables when scheduled."""

    def execute(self, context) -> list[dict[str, Any]]:
        from dynamoguard.drills.plan import plan_drills
        from dynamoguard.timeutil import utcnow

        run = context["dag_run"]
        run_type = getattr(run.run_type, "value", run.run_type)
        with self.failures():
            return plan_drills(self.config, dict(context["params"]), run_type=str(run_type), run_id=run.run_id,
                               started=utcnow(), interval_start=context.get("data_interval_start"),
                               interval_end=context.get("data_interval_end"))


class DrillPrepareOperator(_DrillStep):
    """Resolve one planned drill: the restore point (newest verified export), schema, scratch table name."""

    template_fields: Sequence[str] = ("spec",)

    def __init__(self, *, spec: Any, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context, event: Any = None) -> dict[str, Any]:
        from dynamoguard.drills import ExportNotYet, service

        try:
            return self.step(context, lambda: service.prepare(self.config, self, self.spec))
        except ExportNotYet as waiting:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("%s; looking again at %s", waiting, waiting.until)
            self.defer(trigger=DateTimeTrigger(moment=waiting.until), method_name="execute")


class DrillRestoreOperator(_DrillStep):
    """Start the restore of ``drill`` into its scratch table, tag it, and wait deferred until it is usable.

    FAILED, CANCELLED or ErrorCount > 0 fail the task with AWS's message (and a failed drill record).
    """

    template_fields: Sequence[str] = ("drill",)

    def __init__(self, *, drill: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill

    def execute(self, context) -> None:
        from dynamoguard.drills import service

        trigger, timeout = self.step(context, lambda: service.start_restore(self.config, self, self.drill))
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        from dynamoguard.drills import service

        return self.step(context, lambda: service.finish_restore(self.config, self, self.drill, event))


class DrillValidateOperator(_DrillStep):
    """Validate the scratch table against the export and report the drill; the drill record (XCom
    ``drill_record`` when validation failed, which fails the task without retry)."""

    template_fields: Sequence[str] = ("drill", "restore")

    def __init__(self, *, drill: Any, restore: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill
        self.restore = restore

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.drills import service

        record = self.step(context, lambda: service.validate(self.config, self, self.drill, self.restore))
        self.report_drill(context, record)
        return record


class DrillCleanupOperator(_DrillStep):
    """Teardown: delete this run's scratch table (after ``keep_minutes``, waiting deferred), guarded by
    :func:`dynamoguard.drills.scratch.deletion_refusal`. A scratch table that exists but may not be deleted fails."""

    template_fields: Sequence[str] = ("drill",)

    def __init__(self, *, drill: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.drills import service

        with self.failures():
            until = service.keep_until(self.config, self, self.drill)
        if until:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=until), method_name="execute_complete")
        return self.execute_complete(context)

    def execute_complete(self, context, event: Any = None) -> dict[str, Any]:
        from dynamoguard.drills import service

        with self.failures():
            return service.cleanup(self.config, self, self.drill)
