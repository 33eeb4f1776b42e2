"""Airflow glue for the backup deadlines (:mod:`dynamoguard.deadlines`).

Reads, per protected table, the export time of its last verified export from the findings store (the export
job's summary and history) and reports a ``deadline_missed`` finding per table whose export of the due night
is not verified by ``nightly.deadline_hours`` after the night; a new one is alerted. The check itself succeeds:
its outcome is the finding, which stays open until the night's export is verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dynamoguard.operators._base import DynamoguardOperator

EXPORT_JOB = "export"


def last_verified(state: Mapping[str, Any]) -> datetime | None:
    """The export time of the newest verified export in the export job's stored state of one table."""
    from dynamoguard.timeutil import parse_time

    points = [*state.get("history", ()), state.get("summary") or {}]
    times = [parse_time(p["export_time"]) for p in points if p.get("export_time") and p.get("verified")]
    return max(times, default=None)


class BackupDeadlineOperator(DynamoguardOperator):
    """Raise a finding for every table whose nightly export is not verified by its deadline."""

    job = "deadline"
    ui_color = "#fdebd0"

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.deadlines import due_night, missed_deadlines
        from dynamoguard.timeutil import iso, utcnow

        with self.failures():
            config, now = self.config, utcnow()
            store = self.findings_store()
            verified = {table: last_verified(store.load(EXPORT_JOB, table)) for table in config.table_names}
            findings = missed_deadlines(config.table_names, verified, schedule=config.nightly.schedule,
                                        deadline_hours=config.nightly.deadline_hours, now=now, job=self.job)
            night = due_night(config.nightly.schedule, timedelta(hours=config.nightly.deadline_hours), now)
            for table in config.table_names:
                mine = [f for f in findings if f.table == table]
                self.report(context, table, mine, summary={
                    "due_night": iso(night), "last_verified_export_time": iso(verified[table]) if verified[table]
                    else None, "met": not mine, "checked_at": iso(now)})
            return {"due_night": iso(night), "missed": sorted(f.table for f in findings)}
