"""The streaming reader: bad files become unreadable-log findings naming the object; the rest continues.
Log discovery: every object belongs to exactly one interval."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamoguard.audit import discovery
from dynamoguard.audit.reader import UnreadableLog, audit_stream, gunzip_stream
from dynamoguard.audit.rules import context_from_config
from tests.unit.test_audit_rules import CONFIG, ev

CTX = context_from_config(CONFIG)
GOOD = [ev("dynamodb", "DeleteTable", tableName="orders"), ev("dynamodb", "GetItem", tableName="orders")]


def _log(records) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


def _audit(data: bytes, key: str = "AWSLogs/x.json.gz"):
    return audit_stream(io.BytesIO(data), key, CTX)


def test_good_file_counts_and_findings():
    result = _audit(_log(GOOD))
    assert result.counts.files_read == 1 and result.counts.records_read == 2
    assert result.counts.records_matched == 2
    assert result.counts.records_parsed == 2  # mallory's GetItem may match the read rule: parsed
    assert [f.rule for f in result.all_findings(CTX)] == ["ddb-delete-table", "ddb-read-not-allowed"]
    assert result.findings[0].log_key == "AWSLogs/x.json.gz"


@pytest.mark.parametrize("data,reason", [
    (_log(GOOD)[:-30], "truncated"),
    (_log(GOOD) + b"garbage after the member", "not a valid gzip"),
    (gzip.compress(b'{"Records": [{"eventName": '), "not valid JSON"),
    (gzip.compress(b'{"records": []}'), "no \"Records\" list"),
    (gzip.compress(b"[1, 2]"), "no \"Records\" list"),
    (b"", "empty object"),
    (b"plain text, not gzip", "not a valid gzip"),
])
def test_unreadable_file_is_a_finding_naming_the_object(data, reason):
    result = _audit(data, "AWSLogs/bad.json.gz")
    assert result.counts.files_unreadable == 1 and result.counts.files_read == 0
    [finding] = result.findings
    assert (finding.rule, finding.resource, finding.log_key) == ("unreadable-log", "AWSLogs/bad.json.gz",
                                                                 "AWSLogs/bad.json.gz")
    assert reason in finding.detail["reason"]


def test_records_missing_fields_are_reported_and_the_others_still_audited():
    broken = dict(GOOD[0])
    del broken["eventTime"]
    records = [broken, "not an object", None, *GOOD]
    result = _audit(_log(records), "AWSLogs/mixed.json.gz")
    assert result.counts.records_read == 5 and result.counts.records_invalid == 3
    rules = sorted(f.rule for f in result.findings)
    assert rules == ["ddb-delete-table", "unreadable-log"]
    bad = next(f for f in result.findings if f.rule == "unreadable-log")
    assert bad.detail["first_bad_record"] == 0 and bad.detail["bad_records"] == 3
    assert bad.log_key == "AWSLogs/mixed.json.gz"


def test_multi_member_gzip_is_read_whole_in_small_chunks():
    raw = orjson.dumps({"Records": GOOD})
    data = gzip.compress(raw[:10]) + gzip.compress(raw[10:])
    assert gunzip_stream(io.BytesIO(data), chunk_size=7) == raw
    with pytest.raises(UnreadableLog):
        gunzip_stream(io.BytesIO(data[:-3]), chunk_size=7)


# ---------------------------------------------------------------- discovery

H = datetime(2026, 3, 6, 10, tzinfo=timezone.utc)


def test_key_layout_and_timestamps():
    base = discovery.base_prefix("logs/", "o-1234abcde", "222222222222")
    assert base == "logs/AWSLogs/o-1234abcde/222222222222/"
    prefix = discovery.log_prefix(base, "222222222222", "us-east-1", H)
    assert prefix == ("logs/AWSLogs/o-1234abcde/222222222222/CloudTrail/us-east-1/2026/03/06/"
                      "222222222222_CloudTrail_us-east-1_20260306T10")
    key = prefix + "07Z_QF6qcgyiaVnSueXa.json.gz"
    assert discovery.key_time(key) == H + timedelta(minutes=7)
    digest = ("AWSLogs/1/CloudTrail-Digest/us-east-1/2026/03/06/111111111111_CloudTrail-Digest_us-east-1_my_trail_"
              "us-east-1_20260306T105959Z.json.gz")
    assert discovery.key_time(digest) == H + timedelta(minutes=59, seconds=59)
    assert discovery.key_time("AWSLogs/whatever.txt") is None
    assert discovery.in_interval(key, H, H + timedelta(hours=1))
    assert not discovery.in_interval(key, H + timedelta(hours=1), H + timedelta(hours=2))


def test_plan_units_cover_the_interval_once():
    units = discovery.plan(["111111111111", "222222222222"], ["us-east-1"], H, H + timedelta(hours=3))
    assert len(units) == 6 and len(set(units)) == 6
    assert {u.start for u in units} == {H, H + timedelta(hours=1), H + timedelta(hours=2)}
    assert discovery.Unit.from_dict(units[0].to_dict()) == units[0]


def test_units_of_a_sub_hour_interval_are_clipped_to_it():
    [unit] = discovery.plan(["111111111111"], ["us-east-1"], H + timedelta(minutes=15), H + timedelta(minutes=30))
    assert (unit.start, unit.end) == (H + timedelta(minutes=15), H + timedelta(minutes=30))
    units = discovery.plan(["111111111111"], ["us-east-1"], H + timedelta(minutes=30), H + timedelta(hours=2,
                                                                                                        minutes=10))
    assert [(u.start.minute, u.end - u.start) for u in units] == [
        (30, timedelta(minutes=30)), (0, timedelta(hours=1)), (0, timedelta(minutes=10))]


@settings(deadline=None)  # pure and quick; a shared machine must not make it flaky
@given(st.lists(st.integers(min_value=0, max_value=24 * 60 - 1), min_size=1, max_size=50))
def test_each_log_file_belongs_to_exactly_one_hourly_interval(minutes):
    day = datetime(2026, 3, 6, tzinfo=timezone.utc)
    keys = [f"111111111111_CloudTrail_us-east-1_{day + timedelta(minutes=m):%Y%m%dT%H%MZ}_abcdefghijklmnop.json.gz"
            for m in minutes]
    intervals = [(day + timedelta(hours=h), day + timedelta(hours=h + 1)) for h in range(24)]
    for key in keys:
        assert sum(discovery.in_interval(key, start, end) for start, end in intervals) == 1


