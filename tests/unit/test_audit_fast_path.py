"""The fast path (record heads read with msgspec, only records a rule may match parsed) finds exactly what
parsing every record finds: on the benchmark's generated mix, on the third-party fixtures, on every rule
case, and on hand-made records built to trip a byte-level or head-only reader."""

from __future__ import annotations

import copy
import gzip
import io
import json
import random
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from benchmarks.bench_audit import MIXES, _record
from dynamoguard.audit.reader import audit_stream
from tests.unit.test_audit_fixtures import CTX as FIXTURE_CTX
from tests.unit.test_audit_fixtures import FIXTURES, LOG_FILES, RECORDS
from tests.unit.test_audit_rules import CASES, CTX, SRC, ev, role, table_resource


def _gz(records) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


def _both(data: bytes, ctx=CTX):
    fast = audit_stream(io.BytesIO(data), "k.json.gz", ctx, fast=True)
    full = audit_stream(io.BytesIO(data), "k.json.gz", ctx, fast=False)
    return fast, full


def _same(fast, full, ctx=CTX) -> list:
    found = sorted((f.to_dict() for f in fast.all_findings(ctx)), key=lambda f: orjson.dumps(f, option=4))
    expected = sorted((f.to_dict() for f in full.all_findings(ctx)), key=lambda f: orjson.dumps(f, option=4))
    assert found == expected
    fast_counts, full_counts = fast.counts.to_dict(), full.counts.to_dict()
    assert fast_counts.pop("records_parsed") <= full_counts.pop("records_parsed")
    assert fast_counts == full_counts
    return found


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_generated_mix_gives_the_same_findings_parsing_a_fraction(mix):
    rng = random.Random(7)
    start = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    records = [_record(rng, start + timedelta(seconds=i), MIXES[mix]) for i in range(6000)]
    # the mix has too few attacks in 6,000 records to be a test: add each kind
    records += [copy.deepcopy(c[2]) for c in CASES]
    fast, full = _both(_gz(records))
    found = _same(fast, full)
    assert {f["rule"] for f in found} >= {c[0] for c in CASES}
    assert fast.counts.records_parsed < full.counts.records_parsed / 10  # the fast path did run


def test_fixtures_give_the_same_findings():
    records = [json.loads(p.read_text()) for p in RECORDS]
    _same(*_both(_gz(records), FIXTURE_CTX), FIXTURE_CTX)
    for path in LOG_FILES:
        _same(*_both(path.read_bytes(), FIXTURE_CTX), FIXTURE_CTX)
    assert LOG_FILES and FIXTURES.is_dir()


def _tricky() -> list:
    allowed, unlisted = role("orders-service"), role("web-frontend")
    sessionless = ev("dynamodb", "PutItem", resources=table_resource())
    sessionless["userIdentity"] = {"type": "AssumedRole", "arn": f"arn:aws:sts::{SRC}:assumed-role/web-frontend/s"}
    # the allowed role's ARN planted in attacker-controlled values must not pass for the caller
    planted = ev("dynamodb", "PutItem", principal=unlisted, resources=table_resource(),
                 key={"pk": {"S": f'"arn":"{allowed}"'}}, item=[allowed])
    planted["userAgent"] = f'"sessionIssuer":{{"arn":"{allowed}"}}'
    no_resources = ev("dynamodb", "DeleteItem", principal=unlisted, tableName="orders")
    empty_resources = ev("dynamodb", "GetItem", principal=unlisted, tableName="orders")
    empty_resources["resources"] = []
    odd_types = ev("dynamodb", "GetItem", principal=unlisted, resources=table_resource())
    odd_types["userIdentity"]["sessionContext"] = "not an object"
    odd_resource = ev("dynamodb", "GetItem", principal=unlisted, resources=["arn:aws:dynamodb:x"])
    number_name = ev("dynamodb", "GetItem", resources=table_resource())
    number_name["eventName"] = 12
    missing_id = ev("dynamodb", "DeleteTable", tableName="orders")
    del missing_id["eventID"]
    null_time = ev("dynamodb", "DeleteTable", tableName="orders")
    null_time["eventTime"] = None
    network = ev("dynamodb", "GetItem", principal=unlisted, resources=table_resource())
    network.update(eventCategory="NetworkActivity", eventType="AwsVpceEvent")
    service = ev("dynamodb", "PutItem", resources=table_resource())
    service["userIdentity"] = {"type": "AWSService", "invokedBy": "dynamodb.amazonaws.com"}
    other_region = ev("dynamodb", "Scan", principal=unlisted, resources=table_resource("orders", "eu-west-1"))
    failed = ev("dynamodb", "UpdateItem", principal=unlisted, error="ConditionalCheckFailedException",
                resources=table_resource())
    mixed_tables = ev("dynamodb", "BatchGetItem", principal=allowed,
                      resources=table_resource("orders") + table_resource("customers"))
    unicode_key = ev("dynamodb", "GetItem", principal=unlisted, resources=table_resource(),
                     key={"pk": {"S": "clé-ü-\u2603"}})
    return [sessionless, planted, no_resources, empty_resources, odd_types, odd_resource, number_name,
            missing_id, null_time, network, service, other_region, failed, mixed_tables, unicode_key,
            "not a record", 42, None, ev("dynamodb", "GetItem", principal=allowed, resources=table_resource())]


def test_records_built_to_trip_a_head_only_reader_give_the_same_findings():
    fast, full = _both(_gz(_tricky()))
    found = _same(fast, full)
    rules = {(f["rule"], f["event_name"]) for f in found}
    assert ("ddb-data-not-allowed", "PutItem") in rules  # the planted ARN did not pass
    assert ("ddb-read-not-allowed", "BatchGetItem") in rules  # customers is not the orders service's table
    assert fast.counts.records_invalid == 4  # missing eventID, and three records that are not objects


@pytest.mark.parametrize("data", [
    b'{"Records": [{"eventSource": "dynamodb.amazonaws.com", "eventName": "DeleteTable", "eventTime": "t", '
    b'"eventID": "1", "requestParameters": {"tableName": "orders", "x": "\xff"}}]}',  # invalid UTF-8
    b'{"Records": [{"eventSource": "s3.amazonaws.com"}]} trailing',
    b'{"Records": {"eventSource": "s3.amazonaws.com"}}',
    b'{"Records": [{"a": 1e999999}]}',
])
def test_malformed_files_are_judged_as_by_the_plain_path(data):
    fast, full = _both(gzip.compress(data))
    _same(fast, full)
