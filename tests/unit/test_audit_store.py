"""The audit's findings in the shared store: scopes per table, and which earlier findings a run keeps open."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dynamoguard.audit.findings import Finding
from dynamoguard.audit.report import carried, findings_by_scope
from dynamoguard.findings import ACCOUNT_SCOPE, RunRef, merge

H = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def _found(**kwargs) -> dict:
    return Finding(**{"severity": "critical", "rule": "ddb-delete-table", "title": "DeleteTable orders",
                      "resource": "table/orders", "table": "orders", "event_id": "e1", **kwargs}).to_dict()


def _stored(findings: list[dict], start: datetime) -> list[dict]:
    scopes = findings_by_scope(findings, ["orders", "customers"], start, start + HOUR)
    merged, _ = merge([], [f for found in scopes.values() for f in found], RunRef("cloudtrail_audit", "r"), start)
    return merged


def test_findings_go_to_their_tables_scope_with_the_interval_and_every_table_has_one():
    health = Finding(severity="critical", rule="trail-health", title="Trail is not logging", resource="trail")
    scopes = findings_by_scope([_found(), health.to_dict()], ["orders", "customers"], H, H + HOUR)
    assert set(scopes) == {"orders", "customers", ACCOUNT_SCOPE} and scopes["customers"] == []
    [event] = scopes["orders"]
    assert event.job == "audit" and event.check == "ddb-delete-table" and event.dedup == "e1"
    assert event.evidence["interval"] == "2026-01-01T10:00:00Z/2026-01-01T11:00:00Z"
    assert [f.title for f in scopes[ACCOUNT_SCOPE]] == ["Trail is not logging"]


def test_a_run_keeps_events_of_other_recent_intervals_open_but_not_fixed_gaps_or_its_own_interval():
    health = Finding(severity="critical", rule="trail-health", title="Trail is not logging", resource="trail")
    stored = _stored([_found(), health.to_dict()], H)
    assert [f.check for f in carried(H + HOUR, H + 2 * HOUR)(stored)] == ["ddb-delete-table"]
    assert carried(H, H + HOUR)(stored) == []  # a re-audit of the same hour decides again
    week = 7 * 24 * HOUR
    assert [f.check for f in carried(H + week - HOUR, H + week)(stored)] == ["ddb-delete-table"]
    assert carried(H + week, H + week + HOUR)(stored) == []  # audited a week past its hour
    assert carried(H + HOUR, H + 2 * HOUR)([{**stored[0], "status": "resolved"}]) == []
