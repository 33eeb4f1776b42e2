"""Third-party CloudTrail records (tests/fixtures/cloudtrail, see SOURCES.md) parse and fire the right rules,
and the two real log files are read end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynamoguard.audit.reader import LogResult, audit_records, audit_stream
from dynamoguard.audit.rules import Context

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudtrail"
RECORDS = sorted(FIXTURES.glob("*.json"))

# What the fixtures' authors attack, treated as ours: their buckets and trails in their accounts.
CTX = Context(
    accounts=frozenset({"123456789012", "111111111111", "111122223333", "958312252124", "847129010505",
                        "143434273843"}),
    source_account="123456789012",
    tables={},
    allowed_principals=frozenset(),
    buckets=frozenset({"example-bucket", "critical-data-bucket", "important-files-bucket", "production-backup-bucket",
                       "sample-cloudtrail-bucket-name", "secrets"}),
    export_buckets=frozenset(),
    trail_names=frozenset({"example-trail", "sample-cloudtrail-name", "stratus-red-team-ct-stop-trail-buykxbqejv",
                           "stratus-red-team-cloudtraild-trail-kvrwohmiai",
                           "stratus-red-team-ctes-trail-khlvciwdor"}),
    bucket_retention_days={"sample-cloudtrail-bucket-name": 365},  # a trail bucket keeping logs a year
)

DROPS_SELECTORS = ("trail-selectors-drop-events", "critical")  # management events turned off
EXPECTED = {
    "stratus-red-team__cloudtrail.amazonaws.com__StopLogging__1.json": ("trail-stopped", "critical"),
    "stratus-red-team__cloudtrail.amazonaws.com__DeleteTrail__1.json": ("trail-stopped", "critical"),
    "stratus-red-team__cloudtrail.amazonaws.com__PutEventSelectors__1.json": DROPS_SELECTORS,
    "panther-analysis__cloudtrail.amazonaws.com__StopLogging__1.json": ("trail-stopped", "critical"),
    "panther-analysis__cloudtrail.amazonaws.com__DeleteTrail__1.json": ("trail-stopped", "critical"),
    "panther-analysis__cloudtrail.amazonaws.com__PutEventSelectors__1.json": DROPS_SELECTORS,
    "panther-analysis__kms.amazonaws.com__DisableKey__1.json": ("kms-key-loss", "medium"),
    "panther-analysis__kms.amazonaws.com__ScheduleKeyDeletion__1.json": ("kms-key-loss", "medium"),
    "panther-analysis__s3.amazonaws.com__DeleteObject__1.json": ("s3-object-deleted", "medium"),
    "panther-analysis__s3.amazonaws.com__DeleteObjects__1.json": ("s3-object-deleted", "high"),
    "panther-analysis__s3.amazonaws.com__DeleteBucketReplication__1.json": ("s3-replication-changed", "medium"),
    "panther-analysis__s3.amazonaws.com__PutBucketReplication__1.json": ("s3-replication-changed", "medium"),
    "panther-analysis__s3.amazonaws.com__PutBucketVersioning__1.json": ("s3-versioning-suspended", "high"),
    "panther-analysis__s3.amazonaws.com__PutBucketVersioning__3.json": ("s3-versioning-suspended", "medium"),
    "panther-analysis__s3.amazonaws.com__PutBucketLifecycle__1.json": ("s3-lifecycle-changed", "high"),
    "panther-analysis__s3.amazonaws.com__PutBucketPolicy__1.json": ("s3-bucket-policy-changed", "high"),
    "panther-analysis__s3.amazonaws.com__PutBucketPolicy__2.json": ("s3-bucket-policy-changed", "medium"),
    "panther-analysis__s3.amazonaws.com__DeleteBucket__1.json": ("s3-bucket-deleted", "critical"),
}
# Records lacking a required field (the Panther GetObject test event has no eventID).
INCOMPLETE = {"panther-analysis__s3.amazonaws.com__GetObject__1.json"}


@pytest.mark.parametrize("path", RECORDS, ids=[p.name for p in RECORDS])
def test_fixture_record_fires_exactly_the_expected_rule(path):
    result = LogResult()
    audit_records([json.loads(path.read_text())], path.name, CTX, result)
    assert result.counts.records_read == 1
    if path.name in INCOMPLETE:
        assert result.counts.records_invalid == 1
        assert [(f.rule, f.log_key) for f in result.findings] == [("unreadable-log", path.name)]
        return
    got = [(f.rule, f.severity) for f in result.findings]
    expected = EXPECTED.get(path.name)
    assert got == ([expected] if expected else [])
    if expected:
        finding = result.findings[0]
        record = json.loads(path.read_text())
        assert finding.event_id == record["eventID"] and finding.log_key == path.name
        assert finding.event_time == record["eventTime"] and finding.source_ip == record["sourceIPAddress"]


def test_failed_stop_logging_is_not_a_finding_but_a_denied_one_is():
    record = json.loads((FIXTURES / "panther-analysis__cloudtrail.amazonaws.com__StopLogging__2.json").read_text())
    assert record["errorCode"] == "InvalidTrailNameException"
    record["requestParameters"]["name"] = "example-trail"
    result = LogResult()
    audit_records([record], "k", CTX, result)
    assert result.findings == []
    record["errorCode"] = "AccessDenied"
    audit_records([record], "k", CTX, result)
    assert [(f.rule, f.severity, f.outcome) for f in result.findings] == [("trail-stopped", "high", "denied")]


def test_every_expected_fixture_exists():
    assert set(EXPECTED) | INCOMPLETE <= {p.name for p in RECORDS}


LOG_FILES = sorted((FIXTURES / "logfiles").rglob("*.json.gz"))


@pytest.mark.parametrize("path", LOG_FILES, ids=[p.name for p in LOG_FILES])
def test_real_log_files_read_end_to_end(path):
    with path.open("rb") as stream:
        result = audit_stream(stream, str(path.relative_to(FIXTURES)), CTX)
    expected_records = {"333333333333": 1, "222222222222": 20}[path.name[:12]]
    assert result.counts.to_dict() == {
        "files_listed": 1, "files_read": 1, "files_unreadable": 0, "records_read": expected_records,
        "records_matched": 0, "records_invalid": 0, "records_parsed": 0, "bytes_read": result.counts.bytes_read}
    assert result.counts.bytes_read > 1000
    assert result.findings == []
