"""Object Lock rules: bucket settings, per-object retention, enforcement planning, report."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamoguard import object_lock as ol
from dynamoguard.config import BackupBucket

UTC = timezone.utc
EXPORT_TIME = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
STRICT = ol.LockPolicy(ol.COMPLIANCE, 35)
LENIENT = ol.LockPolicy(ol.COMPLIANCE, 35, allow_governance=True)
LOCK = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 35}}}


def codes(findings):
    return [f.code for f in findings]


def state(mode="COMPLIANCE", until=EXPORT_TIME + timedelta(days=36), hold=False, key="p/AWSDynamoDB/x/data/a"):
    return ol.ObjectLockState(key, "v1", mode, until, hold)


def test_policy_from_config_and_required_until():
    policy = ol.LockPolicy.from_config(BackupBucket(name="bucket-a", min_retention_days=40, allow_governance=True))
    assert policy == ol.LockPolicy("COMPLIANCE", 40, True)
    assert policy.required_until(datetime(2026, 1, 1)) == datetime(2026, 2, 10, tzinfo=UTC)


def test_policy_rejects_governance_without_allowance():
    with pytest.raises(ValueError, match="allow_governance"):
        ol.LockPolicy("GOVERNANCE", 35)


@pytest.mark.parametrize("rule, days", [
    ({"Mode": "COMPLIANCE", "Days": 35}, 35),
    ({"Mode": "COMPLIANCE", "Years": 1}, 365),
    ({"Mode": "COMPLIANCE", "Days": 0, "Years": 2}, 730),
    ({"Mode": "COMPLIANCE"}, None),
    (None, None),
])
def test_default_retention_days(rule, days):
    assert ol.default_retention_days(rule) == days


def test_compliant_bucket_has_no_findings():
    assert ol.check_bucket_settings("b", "Enabled", LOCK, STRICT) == []


def test_bucket_without_lock_and_versioning():
    findings = ol.check_bucket_settings("b", None, None, STRICT)
    assert codes(findings) == [ol.VERSIONING_NOT_ENABLED, ol.LOCK_DISABLED]
    assert "never enabled" in findings[0].message


def test_bucket_with_versioning_suspended():
    findings = ol.check_bucket_settings("b", "Suspended", LOCK, STRICT)
    assert codes(findings) == [ol.VERSIONING_NOT_ENABLED]
    assert "Suspended" in findings[0].message


def test_bucket_without_default_rule():
    assert codes(ol.check_bucket_settings("b", "Enabled", {"ObjectLockEnabled": "Enabled"}, STRICT)) == [
        ol.NO_DEFAULT_RETENTION]


def test_bucket_governance_rule_is_weaker_or_refused():
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}}}
    refused = ol.check_bucket_settings("b", "Enabled", lock, STRICT)
    allowed = ol.check_bucket_settings("b", "Enabled", lock, LENIENT)
    assert codes(refused) == [ol.WEAKER_MODE] and refused[0].severity == "violation"
    assert codes(allowed) == [ol.GOVERNANCE_ALLOWED] and allowed[0].severity == "warning"


def test_bucket_default_too_short():
    lock = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 7}}}
    findings = ol.check_bucket_settings("b", "Enabled", lock, STRICT)
    assert codes(findings) == [ol.TOO_SHORT]
    assert "7 days" in findings[0].message and "35" in findings[0].message


def test_object_checks():
    required = STRICT.required_until(EXPORT_TIME)
    assert ol.check_object(state(), required, STRICT) == []
    assert ol.check_object(state(until=required), required, STRICT) == []  # exactly the minimum is enough
    assert codes(ol.check_object(state(mode=None, until=None), required, STRICT)) == [ol.NO_RETENTION]
    assert codes(ol.check_object(state(mode="GOVERNANCE"), required, STRICT)) == [ol.WEAKER_MODE]
    assert codes(ol.check_object(state(mode="GOVERNANCE"), required, LENIENT)) == [ol.GOVERNANCE_ALLOWED]
    short = ol.check_object(state(until=required - timedelta(seconds=1)), required, STRICT)
    assert codes(short) == [ol.TOO_SHORT] and short[0].key.endswith("data/a") and short[0].version_id == "v1"
    assert codes(ol.check_object(state(hold=True), required, STRICT)) == [ol.LEGAL_HOLD]


def test_object_state_from_head_naive_and_missing_fields():
    head = {"VersionId": "v", "ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": datetime(2030, 1, 1),
            "ObjectLockLegalHoldStatus": "ON"}
    parsed = ol.ObjectLockState.from_head("k", head)
    assert parsed.retain_until == datetime(2030, 1, 1, tzinfo=UTC) and parsed.legal_hold
    bare = ol.ObjectLockState.from_head("k", {})
    assert (bare.mode, bare.retain_until, bare.legal_hold, bare.version_id) == (None, None, False, None)


def test_planned_retention_cases():
    required = STRICT.required_until(EXPORT_TIME)
    assert ol.planned_retention(state(), required, STRICT) is None
    assert ol.planned_retention(state(mode=None, until=None), required, STRICT) == {
        "Mode": "COMPLIANCE", "RetainUntilDate": required}
    assert ol.planned_retention(state(until=required - timedelta(days=3)), required, STRICT) == {
        "Mode": "COMPLIANCE", "RetainUntilDate": required}
    # GOVERNANCE is never changed to COMPLIANCE (that needs the governance bypass), only extended, whether the
    # policy accepts it or not; the mode the policy refuses is reported with the fix (check_object)
    longer = required + timedelta(days=100)
    assert ol.planned_retention(state(mode="GOVERNANCE", until=longer), required, STRICT) is None
    for policy in (STRICT, LENIENT):
        assert ol.planned_retention(state(mode="GOVERNANCE", until=required - timedelta(1)), required, policy) == {
            "Mode": "GOVERNANCE", "RetainUntilDate": required}
    refused = ol.check_object(state(mode="GOVERNANCE", until=longer), required, STRICT, bucket="b")
    assert [f.code for f in refused] == [ol.WEAKER_MODE]
    assert "--bypass-governance-retention --retention Mode=COMPLIANCE,RetainUntilDate=2027-" in refused[0].message
    governance_policy = ol.LockPolicy("GOVERNANCE", 35, allow_governance=True)
    assert ol.planned_retention(state(until=required - timedelta(1)), required, governance_policy) == {
        "Mode": "COMPLIANCE", "RetainUntilDate": required}


MODES = st.sampled_from([None, "GOVERNANCE", "COMPLIANCE"])
OFFSETS = st.integers(min_value=-400 * 86400, max_value=400 * 86400)


@given(mode=MODES, offset=OFFSETS, allow=st.booleans(), policy_mode=st.sampled_from(["GOVERNANCE", "COMPLIANCE"]))
def test_planned_retention_never_shortens_never_downgrades_and_satisfies(mode, offset, allow, policy_mode):
    if policy_mode == "GOVERNANCE" and not allow:
        return
    policy = ol.LockPolicy(policy_mode, 35, allow)
    required = policy.required_until(EXPORT_TIME)
    current = state(mode=mode, until=None if mode is None else required + timedelta(seconds=offset))
    plan = ol.planned_retention(current, required, policy)
    if plan is None:
        left = {f.code for f in ol.check_object(current, required, policy) if f.severity == "violation"}
        assert left <= {ol.WEAKER_MODE}
        return
    if current.retain_until is not None:
        assert plan["RetainUntilDate"] >= current.retain_until
    if current.mode is not None:
        assert plan["Mode"] == current.mode  # never downgraded, never moved off GOVERNANCE (no bypass)
    fixed = ol.ObjectLockState(current.key, "v1", plan["Mode"], plan["RetainUntilDate"], False)
    left = {f.code for f in ol.check_object(fixed, required, policy) if f.severity == "violation"}
    # what is left is only a GOVERNANCE mode the policy refuses, which needs the bypass
    assert left == ({ol.WEAKER_MODE} if current.mode == "GOVERNANCE" and not policy.accepts("GOVERNANCE") else set())


def test_export_root_and_id_time():
    assert ol.export_root("exports/orders/AWSDynamoDB/01668227450456-b6733290/data/x.json.gz") == (
        "exports/orders/AWSDynamoDB/01668227450456-b6733290/", "01668227450456-b6733290")
    assert ol.export_root("AWSDynamoDB/01668227450456-b6733290/_started")[1] == "01668227450456-b6733290"
    assert ol.export_root("exports/orders/readme.txt") is None
    assert ol.export_id_time("01668227450456-b6733290") == datetime(2022, 11, 12, 4, 30, 50, 456000, tzinfo=UTC)
    assert ol.export_id_time("not-an-id") is None


def test_export_time_from_summary():
    assert ol.export_time_from_summary({"exportTime": "2022-11-12T04:30:50.456Z"}) == datetime(
        2022, 11, 12, 4, 30, 50, 456000, tzinfo=UTC)
    assert ol.export_time_from_summary({"exportFromTime": "x", "exportToTime": 1700000000}) == datetime.fromtimestamp(
        1700000000, UTC)
    with pytest.raises(ValueError, match="exportTime"):
        ol.export_time_from_summary({"tableArn": "x"})


def test_report_counts_all_shows_first_n():
    report = ol.Report("b", STRICT, max_shown=3)
    for i in range(10):
        report.add(ol.Finding(ol.TOO_SHORT, f"k{i}: short", key=f"k{i}"))
    report.add(ol.Finding(ol.LEGAL_HOLD, "k0: legal hold ON", key="k0"))
    report.add(ol.Finding(ol.GOVERNANCE_ALLOWED, "k1: governance", key="k1"))
    assert report.violations == 10 and not report.ok
    assert [f.key for f in report.shown["violation"]] == ["k0", "k1", "k2"]
    text = report.summary()
    assert "10 violation(s)" in text and "... and 7 more violation(s)" in text and "NOTE: k0: legal hold ON" in text
    data = report.as_dict()
    assert data["counts"] == {ol.TOO_SHORT: 10, ol.LEGAL_HOLD: 1, ol.GOVERNANCE_ALLOWED: 1}
    assert data["ok"] is False and len(data["shown"]["violation"]) == 3


def test_report_with_only_warnings_and_notes_is_ok():
    report = ol.Report("b", LENIENT)
    report.add(ol.Finding(ol.GOVERNANCE_ALLOWED, "w"))
    report.add(ol.Finding(ol.LEGAL_HOLD, "n"))
    assert report.ok and report.violations == 0
