"""Backup deadlines: every protected table's nightly export must be verified a set time after its night.

A nightly run that never started (scheduler down, DAG paused), hangs, or fails before verifying leaves a
table without a fresh verified backup; nothing in that run can report it. This check runs on its own
schedule and compares, per table, the export time of the last verified export (from the findings store)
with the latest night whose deadline (the schedule's tick + ``deadline_hours``) has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from croniter import croniter

from dynamoguard.findings import Finding
from dynamoguard.timeutil import iso, utc

DEADLINE_MISSED = "deadline_missed"


def due_night(schedule: str, deadline: timedelta, now: datetime) -> datetime:
    """The latest tick of the cron ``schedule`` (UTC) whose deadline (tick + ``deadline``) is not after ``now``.

    The nightly export time is the run's data-interval end, which is that tick.
    """
    latest = utc(now) - deadline + timedelta(seconds=1)  # get_prev is strictly before its start: include a tick there
    return utc(croniter(schedule, latest).get_prev(datetime))


def missed_deadlines(tables: Iterable[str], last_verified: Mapping[str, datetime | None], *, schedule: str,
                     deadline_hours: float, now: datetime, job: str = "deadline") -> list[Finding]:
    """A high finding per table whose last verified export is older than the night now due."""
    deadline = timedelta(hours=deadline_hours)
    night = due_night(schedule, deadline, now)
    findings = []
    for table in tables:
        verified = last_verified.get(table)
        if verified is not None and utc(verified) >= night - timedelta(milliseconds=1):
            continue
        findings.append(Finding(
            job=job, check=DEADLINE_MISSED, severity="high", table=table, resource=f"table/{table}",
            dedup=iso(night),
            title=f"{table}: no verified export of the night {iso(night)} by its deadline {iso(night + deadline)}"
                  + (f"; the last verified export is of {iso(verified)}" if verified else "; no verified export"),
            evidence={"expected": f"a verified export of {iso(night)} by {iso(night + deadline)}",
                      "found": iso(verified) if verified else None, "schedule": schedule,
                      "deadline_hours": deadline_hours, "checked_at": iso(now)},
        ))
    return findings
