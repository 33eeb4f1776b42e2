"""The finding model: identity (dedup), merge across runs (first/last seen, resolve, reopen), severities."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.findings import Finding, RunRef, alert_lines, merge

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
RUN1 = RunRef("dynamodb_nightly_backup", "scheduled__1", "orders.verify")
RUN2 = RunRef("dynamodb_nightly_backup", "scheduled__2", "orders.verify")


def finding(check="md5_mismatch", resource="s3://b/exports/orders/data/1.json.gz", severity="high", **kw):
    return Finding(job="export", check=check, severity=severity, title=f"{check} on {resource}", resource=resource,
                   table="orders", **kw)


def test_same_problem_seen_every_night_is_one_finding():
    stored, first = merge([], [finding()], RUN1, T0)
    stored, second = merge(stored, [finding(evidence={"found": "x"})], RUN2, T0 + timedelta(days=1))
    assert len(stored) == 1
    assert [f["id"] for f in first.new] == [stored[0]["id"]] and second.new == []
    assert stored[0]["first_seen"] == "2026-11-01T02:00:00Z" and stored[0]["last_seen"] == "2026-11-02T02:00:00Z"
    assert stored[0]["times_seen"] == 2 and stored[0]["run"]["run_id"] == "scheduled__2"
    assert stored[0]["evidence"] == {"found": "x"}


def test_not_seen_again_is_resolved_and_seen_later_is_reopened():
    stored, _ = merge([], [finding()], RUN1, T0)
    stored, changes = merge(stored, [], RUN2, T0 + timedelta(days=1))
    assert [f["status"] for f in stored] == ["resolved"] and len(changes.resolved) == 1
    assert stored[0]["resolved_by"]["run_id"] == "scheduled__2"
    stored, changes = merge(stored, [finding()], RUN1, T0 + timedelta(days=2))
    assert stored[0]["status"] == "open" and len(changes.new) == 1 and changes.alerts
    assert stored[0]["first_seen"] == "2026-11-03T02:00:00Z"


def test_resolved_findings_age_out():
    stored, _ = merge([], [finding()], RUN1, T0)
    stored, _ = merge(stored, [], RUN2, T0 + timedelta(days=1))
    stored, _ = merge(stored, [], RUN2, T0 + timedelta(days=40))
    assert stored == []


def test_identity_uses_job_check_resource_and_dedup():
    assert finding().id == finding(severity="low", evidence={"a": 1}).id
    assert finding().id != finding(check="etag_mismatch").id
    assert finding().id != finding(dedup="arn:aws:iam::1:role/x").id


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        finding(severity="urgent")


def test_open_findings_sort_by_severity_and_alerts_only_new_high():
    stored, changes = merge([], [finding(severity="low", check="a"), finding(severity="critical", check="b")],
                            RUN1, T0)
    assert [f["severity"] for f in stored] == ["critical", "low"]
    assert [f["check"] for f in changes.alerts] == ["b"]


def test_alert_lines_carry_evidence():
    line = alert_lines([finding(evidence={"expected": "abc", "found": "def"}).to_dict()])[0]
    assert line.startswith("[high] md5_mismatch") and '"expected": "abc"' in line and "orders/data/1" in line


def test_run_url_is_relative():
    assert RunRef("d", "r", "t", 3).url == "dags/d/runs/r/tasks/t/mapped/3"
