"""Airflow glue of the restore drill: one thin operator per step, the logic in :mod:`dynamoguard.drills.service`.

Accounts come from the restore source (:mod:`dynamoguard.drills.sources`): ``pitr`` and ``export`` drills run
through the drill connection in the source account, ``replica`` drills entirely in the backup account.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dynamoguard.operators._base import DynamoguardOperator


class _DrillStep(DynamoguardOperator):
    job = "drill"
    ui_color = "#f0e4d8"


class DrillSweepOperator(_DrillStep):
    """Delete expired scratch tables (left by crashed runs) in every account drills restore into."""

    def execute(self, context) -> list[dict[str, Any]]:
        from dynamoguard.drills import service

        return service.sweep(self.config, self)


class DrillPlanOperator(_DrillStep):
    """The drills of this run: the form's params for a manual run, rotation or all tables when scheduled."""

    def execute(self, context) -> list[dict[str, Any]]:
        from dynamoguard.drills.plan import plan_drills
        from dynamoguard.timeutil import utcnow

        run = context["dag_run"]
        run_type = getattr(run.run_type, "value", run.run_type)
        return plan_drills(self.config, dict(context["params"]), run_type=str(run_type), run_id=run.run_id,
                           started=utcnow(), interval_start=context.get("data_interval_start"),
                           interval_end=context.get("data_interval_end"))


class DrillPrepareOperator(_DrillStep):
    """Resolve one planned drill: the restore point (newest verified export), schema, scratch table name."""

    template_fields: Sequence[str] = ("spec",)

    def __init__(self, *, spec: Any, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.drills import service

        return service.prepare(self.config, self, self.spec)


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

        trigger, timeout = service.start_restore(self.config, self, self.drill)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        from dynamoguard.drills import service

        return service.finish_restore(self.config, self, self.drill, event)


class DrillValidateOperator(_DrillStep):
    """Validate the scratch table against the export; the drill record (pushed as ``drill_record`` on failure)."""

    template_fields: Sequence[str] = ("drill", "restore")

    def __init__(self, *, drill: Any, restore: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill
        self.restore = restore

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.drills import DrillError, service

        record = service.validate(self.config, self, self.drill, self.restore)
        if record["result"] != "passed":
            context["ti"].xcom_push(key="drill_record", value=record)
            raise DrillError(f"drill of {self.drill['table']} failed: " + "; ".join(record["problems"])
                             + f"; mismatching keys: {record['validation']['mismatches']}")
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

        until = service.keep_until(self.config, self, self.drill)
        if until:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=until), method_name="execute_complete")
        return self.execute_complete(context)

    def execute_complete(self, context, event: Any = None) -> dict[str, Any]:
        from dynamoguard.drills import service

        return service.cleanup(self.config, self, self.drill)
