"""Pure drill logic: scratch names, the deletion guard (property-tested), canonical digests, params, rotation."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dynamoguard import drills
from dynamoguard.config import load_config
from dynamoguard.drills import digest, record, report, schema, scratch
from dynamoguard.drills.plan import check_params, plan_drills
from dynamoguard.drills.sources import _imports as imports

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
PREFIX = "dgdrill-"
PROTECTED = ["orders", "customers", "inventory"]
NAME_CHARS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_.-", min_size=1, max_size=60)
TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")


def tags(run_id: str = "run-1", expires: datetime = NOW - timedelta(minutes=1)) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in scratch.drill_tags(run_id, "orders", expires)}


# ----------------------------------------------------------------------------- names


@given(table=NAME_CHARS.filter(lambda n: len(n) >= 3), run_id=st.text(min_size=1, max_size=300),
       prefix=st.sampled_from(["dgdrill-", "x" * 200, "drill."]))
def test_scratch_names_are_valid_unique_per_run_and_prefixed(table, run_id, prefix):
    name = scratch.scratch_table_name(prefix, table, run_id, NOW)
    assert TABLE_NAME.match(name) and len(name) <= 255 and name.startswith(prefix)
    assert name != scratch.scratch_table_name(prefix, table, run_id + "x", NOW)


def test_long_table_names_are_shortened_to_255():
    name = scratch.scratch_table_name(PREFIX, "t" * 255, "manual__2026", NOW)
    assert len(name) == 255 and name.endswith(scratch.run_stamp("manual__2026", NOW))
    with pytest.raises(drills.DrillError, match="too long"):
        scratch.scratch_table_name("p" * 250, "orders", "r", NOW)


def test_prefix_matching_a_protected_table_is_refused():
    with pytest.raises(drills.DrillError, match=r"matches protected tables \['orders-archive'\]"):
        scratch.check_scratch_prefix("orders-", ["orders-archive", "customers"])
    with pytest.raises(drills.DrillError, match="at least 3"):
        scratch.check_scratch_prefix("d", [])
    scratch.check_scratch_prefix(PREFIX, PROTECTED)


def test_tag_values_keep_only_allowed_characters():
    assert scratch.tag_value("manual__2026-11-28T18:46:39.123+00:00") == "manual__2026-11-28T18:46:39.123+00:00"
    assert scratch.tag_value("run#1 ~ok") == "run_1 _ok"


# ----------------------------------------------------------------------------- the guard


@settings(max_examples=400)
@given(name=NAME_CHARS, protected=st.lists(NAME_CHARS, max_size=5), prefix=NAME_CHARS,
       run_id=st.one_of(st.none(), st.text(max_size=20)), tag_run=st.text(max_size=20),
       expires_minutes=st.integers(-10_000, 10_000), protection=st.booleans(), has_tags=st.booleans())
def test_guard_never_allows_deleting_a_table_that_is_not_provably_scratch(
        name, protected, prefix, run_id, tag_run, expires_minutes, protection, has_tags):
    table_tags = tags(tag_run, NOW + timedelta(minutes=expires_minutes)) if has_tags else {}
    refusal = scratch.deletion_refusal(name, table_tags, prefix=prefix, protected=protected, run_id=run_id, now=NOW,
                                      deletion_protection=protection)
    if refusal is None:
        assert name.startswith(prefix) and len(prefix) >= 3
        assert name not in protected and not any(p.startswith(prefix) for p in protected)
        assert not protection and has_tags
        if run_id is None:
            assert expires_minutes <= 0  # expired at or before now
        else:
            assert scratch.tag_value(run_id) == scratch.tag_value(tag_run)


@given(protected=st.lists(NAME_CHARS.filter(lambda n: len(n) >= 3), min_size=1, max_size=5), data=st.data())
def test_guard_refuses_every_protected_table_even_with_drill_tags(protected, data):
    name = data.draw(st.sampled_from(protected))
    prefix = data.draw(st.sampled_from([name[:3], name, PREFIX]))
    assert scratch.deletion_refusal(name, tags(), prefix=prefix, protected=protected, now=NOW) is not None
    assert scratch.deletion_refusal(name, tags(), prefix=prefix, protected=protected, run_id="run-1",
                                   now=NOW) is not None


@given(suffix=NAME_CHARS)
def test_guard_allows_an_expired_or_own_scratch_table(suffix):
    name = PREFIX + suffix
    assume(name not in PROTECTED)
    assert scratch.deletion_refusal(name, tags(), prefix=PREFIX, protected=PROTECTED, now=NOW) is None
    assert scratch.deletion_refusal(name, tags("run-1", NOW + timedelta(hours=1)), prefix=PREFIX,
                                   protected=PROTECTED, run_id="run-1", now=NOW) is None
    assert "expires at" in scratch.deletion_refusal(name, tags("run-1", NOW + timedelta(hours=1)), prefix=PREFIX,
                                                   protected=PROTECTED, now=NOW)
    assert "belongs to drill" in scratch.deletion_refusal(name, tags("run-2"), prefix=PREFIX, protected=PROTECTED,
                                                         run_id="run-1", now=NOW)
    assert "no valid" in scratch.deletion_refusal(name, {scratch.TAG_DRILL: "r", scratch.TAG_EXPIRES: "soon"},
                                                 prefix=PREFIX, protected=PROTECTED, now=NOW)


# ----------------------------------------------------------------------------- digests


def test_canonical_item_is_the_same_for_client_and_export_spellings():
    client_item = {"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x02", b"\x01"]},
                   "ss": {"SS": ["b", "a"]}, "ns": {"NS": ["10", "2.50"]}, "n": {"N": "1.500"},
                   "m": {"M": {"z": {"N": "1E+2"}, "a": {"L": [{"NULL": True}, {"BOOL": False}]}}}}
    export_item = {"m": {"M": {"a": {"L": [{"NULL": True}, {"BOOL": False}]}, "z": {"N": "100"}}},
                   "n": {"N": "1.5"}, "ns": {"NS": ["2.5", "10"]}, "ss": {"SS": ["a", "b"]},
                   "bs": {"BS": [base64.b64encode(b"\x01").decode(), base64.b64encode(b"\x02").decode()]},
                   "b": {"B": base64.b64encode(b"\x00\xff").decode()}, "pk": {"S": "a"}}
    assert digest.item_digest(client_item) == digest.item_digest(export_item)
    changed = {**export_item, "m": {"M": {"a": {"L": [{"NULL": True}, {"BOOL": True}]}, "z": {"N": "100"}}}}
    assert digest.item_digest(changed) != digest.item_digest(export_item)


def test_numbers_keep_38_significant_digits():
    high = "3.1415926535897932384626433832795028841"
    assert digest._number(high) == high
    assert digest._number(high[:-1] + "2") != digest._number(high)
    assert digest._number("9" * 38) == "9" * 38
    assert digest._number("-0.000") == "0" and digest._number("1.2E-130") == "0." + "0" * 129 + "12"


def test_digest_buckets_are_order_independent_and_see_one_change():
    items = [{"pk": {"S": f"k{i}"}, "v": {"N": str(i)}} for i in range(500)]
    a, b, c = digest.DigestBuckets(64), digest.DigestBuckets(64), digest.DigestBuckets(64)
    a.add(digest._digest_batch(items, ("pk",), a, None, None))
    b.add(digest._digest_batch(list(reversed(items)), ("pk",), b, None, None))
    assert a.total == b.total and a.differing(b) == [] and a.count == 500
    tampered = items[:250] + [{"pk": {"S": "k250"}, "v": {"N": "-1"}}] + items[251:]
    c.add(digest._digest_batch(tampered, ("pk",), c, None, None))
    key_bucket = a.bucket_of(digest.canonical_json({"pk": {"S": "k250"}}))
    assert a.differing(c) == [key_bucket]


def test_duplicated_items_do_not_cancel_out():
    item = {"pk": {"S": "a"}}
    once, twice = digest.DigestBuckets(8), digest.DigestBuckets(8)
    once.add(digest._digest_batch([item], ("pk",), once, None, None))
    twice.add(digest._digest_batch([item, item, item], ("pk",), twice, None, None))
    assert once.differing(twice)


def test_import_problem_reports_aws_messages():
    assert imports.import_problem({"ImportStatus": "COMPLETED", "ErrorCount": 0}) is None
    failed = imports.import_problem({"ImportArn": "arn:i", "ImportStatus": "FAILED", "FailureCode": "S3NoSuchBucket",
                                    "FailureMessage": "The specified bucket does not exist"})
    assert failed == "import arn:i FAILED: S3NoSuchBucket The specified bucket does not exist"
    errors = imports.import_problem({"ImportArn": "arn:i", "ImportStatus": "COMPLETED", "ErrorCount": 2,
                                    "ProcessedItemCount": 10, "ImportedItemCount": 8,
                                    "CloudWatchLogGroupArn": "arn:logs"})
    assert "ErrorCount 2" in errors and "imported 8" in errors and "arn:logs" in errors


def test_table_creation_parameters_copy_keys_and_gsis_on_demand():
    description = {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "g", "AttributeType": "N"},
                                 {"AttributeName": "l", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "KEYS_ONLY"}, "IndexStatus": "ACTIVE",
                                    "ProvisionedThroughput": {"ReadCapacityUnits": 5}}],
        "LocalSecondaryIndexes": [{"IndexName": "li", "KeySchema": [{"AttributeName": "l", "KeyType": "RANGE"}],
                                   "Projection": {"ProjectionType": "ALL"}}],
    }
    params = schema.table_creation_parameters(description, "dgdrill-x")
    assert params == {
        "TableName": "dgdrill-x", "BillingMode": "PAY_PER_REQUEST", "KeySchema": description["KeySchema"],
        "AttributeDefinitions": description["AttributeDefinitions"][:2],
        "GlobalSecondaryIndexes": [{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    }


def test_drill_record_measures_rto_rpo_and_result():
    drill = {"table": "orders", "run_id": "r", "source": "export", "account": "source", "scratch_table": "s",
             "restore_point": "2026-11-28T10:00:00.000Z", "export": {"export_arn": "a"}}
    restore = {"started_at": "2026-11-28T11:00:00Z", "rto_seconds": 42.0}
    passed = record.drill_record(drill=drill, restore=restore, now=NOW,
                                 validation={"ok": True, "problems": [], "items_validated": 5,
                                             "items_per_second": 5.0})
    assert (passed["result"], passed["rto_seconds"], passed["rpo_seconds"]) == ("passed", 42.0, 3600.0)
    failed = record.drill_record(drill=drill, restore=restore, validation=None, failure="restore: boom")
    assert failed["result"] == "failed" and failed["problems"] == ["restore: boom"]
    assert record.record_key("reports/", "orders", "dgdrill-orders-1") == "reports/drills/orders/dgdrill-orders-1.json"


# ----------------------------------------------------------------------------- params and scheduling


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_check_params_accepts_the_form_and_rejects_each_bad_value(config):
    good = check_params(config, {"table": "orders", "source": "pitr", "validation": "sample", "sample_size": 5,
                                 "keep_minutes": 0, "restore_point": "2026-11-27T02:00:00+01:00"})
    assert good == {"table": "orders", "source": "pitr", "validation": "sample", "sample_size": 5,
                    "keep_minutes": 0, "restore_point": "2026-11-27T01:00:00Z"}
    defaults = check_params(config, {"table": "customers"})
    assert (defaults["source"], defaults["validation"], defaults["sample_size"], defaults["keep_minutes"]) == (
        config.drills.default_source, config.drills.validation, config.drills.sample_size, config.drills.keep_minutes)
    for bad, key in (({"table": "nope"}, "table"), ({"table": "orders", "source": "tape"}, "source"),
                     ({"table": "orders", "validation": "most"}, "validation"),
                     ({"table": "orders", "sample_size": 0}, "sample_size"),
                     ({"table": "orders", "keep_minutes": -1}, "keep_minutes"),
                     ({"table": "orders", "keep_minutes": True}, "keep_minutes"),
                     ({"table": "orders", "restore_point": "yesterday"}, "restore_point")):
        with pytest.raises(drills.DrillError, match=f"param {key}:"):
            check_params(config, bad)


def test_scheduled_runs_rotate_one_table_per_period_or_take_all(config):
    week = timedelta(days=7)
    start = datetime(2026, 11, 1, 5, tzinfo=timezone.utc)
    rotating = config.model_copy(update={"drills": config.drills.model_copy(update={"all_tables": False})})
    picked = [plan_drills(rotating, {}, run_type="scheduled", run_id=f"s{i}", started=NOW,
                          interval_start=start + i * week, interval_end=start + (i + 1) * week)[0]["table"]
              for i in range(6)]
    assert sorted(picked[:3]) == sorted(config.table_names) and picked[3:] == picked[:3]
    everything = plan_drills(config.model_copy(update={"drills": config.drills.model_copy(
        update={"all_tables": True})}), {}, run_type="scheduled", run_id="s", started=NOW,
        interval_start=start, interval_end=start + week)
    assert [d["table"] for d in everything] == config.table_names
    assert everything[0]["source"] == "export" and everything[0]["validation"] == "full"
    manual = plan_drills(config, {"table": "inventory", "source": "replica"}, run_type="manual", run_id="m",
                         started=NOW)
    assert [(d["table"], d["source"], d["run_id"]) for d in manual] == [("inventory", "replica", "m")]


# ----------------------------------------------------------------------------- record and findings


DRILL = {"table": "orders", "run_id": "r", "source": "export", "account": "source", "scratch_table": "s",
         "restore_point": "2026-11-28T10:00:00.000Z", "export": {"export_arn": "arn:e1", "export_time": "t1"}}
RESTORE = {"started_at": "2026-11-28T11:00:00Z", "rto_seconds": 42.0}
OK = {"ok": True, "problems": [], "items_validated": 5}


def test_a_skipped_newer_export_makes_a_passed_drill_a_warning_and_a_finding():
    skipped = {"location": "s3://b/exports/orders/x/manifest-summary.json", "reason": "md5 mismatch of data/1.gz",
               "export_arn": "arn:e2", "export_time": "t2"}
    record_ = record.drill_record(drill={**DRILL, "skipped_exports": [skipped]}, restore=RESTORE, validation=OK)
    assert record_["result"] == "passed_with_warnings" and record_["skipped_exports"] == [skipped]
    assert record_["warnings"] == [f"skipped export {skipped['location']}: {skipped['reason']}"]
    (finding,) = report.drill_findings(record_)
    assert (finding.job, finding.check, finding.severity, finding.resource) == (
        "drill", "skipped_export", "high", skipped["location"])
    assert finding.evidence["restored_instead"]["export_arn"] == "arn:e1"
    assert report.drill_findings(record.drill_record(drill=DRILL, restore=RESTORE, validation=OK)) == []
    assert report.summary(record_, "k")["result"] == "passed_with_warnings"


def test_failures_and_mismatches_become_findings_on_the_severity_scale():
    failed = record.drill_record(drill=DRILL, restore=None, validation=None, failure="prepare: none",
                                 check="no_verified_export")
    assert [(f.check, f.severity) for f in report.drill_findings(failed)] == [("no_verified_export", "critical")]
    validation = {"ok": False, "mode": "full", "items_expected": 3, "items_restored": 2, "digest_export": "a",
                  "digest_restored": "b", "mismatches": [{"key": {"pk": {"S": "k"}}, "problem": "missing"}],
                  "problems": ["schema: GlobalSecondaryIndexes g missing", "content differs in 1 of 256 buckets"]}
    mismatched = record.drill_record(drill=DRILL, restore=RESTORE, validation=validation)
    assert mismatched["result"] == "failed"
    found = {f.check: f for f in report.drill_findings(mismatched)}
    assert (found["schema_mismatch"].severity, found["validation_mismatch"].severity) == ("high", "critical")
    evidence = found["validation_mismatch"].evidence
    assert evidence["expected"] == {"items": 3, "digest": "a"} and evidence["found"] == {"items": 2, "digest": "b"}
    assert evidence["keys"] == validation["mismatches"] and evidence["export"]["export_arn"] == "arn:e1"


def test_sweep_findings_tell_impostors_from_swept_and_stuck_drill_tables():
    def result(table, deleted, reason, tag):
        return {"table": table, "deleted": deleted, "reason": reason, "drill_tag": tag, "account": "source",
                "table_arn": f"arn:t/{table}"}

    found = report.sweep_findings([
        result("dgdrill-a", True, "scratch table of drill r1", "r1"),
        result("dgdrill-b", False, "dgdrill-b has no dynamoguard:drill tag", None),
        result("dgdrill-c", False, "dgdrill-c expires at 2099-01-01T00:00:00Z", "r2"),
        result("dgdrill-d", False, "dgdrill-d has deletion protection enabled", "r3"),
    ])
    assert sorted((f.check, f.severity, f.resource) for f in found) == [
        ("scratch_impostor", "medium", "arn:t/dgdrill-b"), ("scratch_left", "low", "arn:t/dgdrill-d"),
        ("scratch_swept", "info", "scratch tables")]
    assert all(f.job == "drill_sweep" for f in found)
