"""Incremental exports against the emulator: a chain planned from the bucket, started idempotently, verified, and
applied in order onto the table as it was at the full export."""

from __future__ import annotations

import gzip

import pytest

from dynamoguard.incremental import chain
from dynamoguard.incremental.apply import apply_windows
from dynamoguard.incremental.start import start_incremental
from dynamoguard.incremental.verify import verify_incremental
from tests.aws.incremental_helpers import (
    BASE,
    BUCKET,
    CONFIG,
    HOUR,
    backdate,
    full_export,
    now_s,
    run_window,
    scan_all,
)

pytestmark = pytest.mark.aws

TABLE = "inventory"


def sku(name: str, on_hand: int, barcode: bytes = b"\x00\x01") -> dict:
    return {"sku": {"S": name}, "on_hand": {"N": str(on_hand)}, "barcode": {"B": barcode},
            "warehouses": {"SS": ["wh-main"]}, "bins": {"L": [{"B": barcode}, {"M": {"x": {"BS": [barcode]}}}]}}


@pytest.fixture
def chained(seeded):
    """inventory with a full export two hours ago and two hourly windows of changes after it."""
    seeded.settings(export_seconds=0, pitr_lag_seconds=0)
    ddb = seeded.client("dynamodb")
    backdate(seeded, TABLE, 3 * 3600)
    start = now_s()
    t0 = start - 2 * HOUR
    full = full_export(seeded, TABLE, t0)
    ddb.put_item(TableName=TABLE, Item=sku("sku-new1", 5))
    ddb.update_item(TableName=TABLE, Key={"sku": {"S": "sku-0001"}}, UpdateExpression="SET on_hand = :v",
                    ExpressionAttributeValues={":v": {"N": "999"}})
    ddb.delete_item(TableName=TABLE, Key={"sku": {"S": "sku-0002"}})
    backdate(seeded, TABLE, 90 * 60)  # first hour after the full export
    ddb.put_item(TableName=TABLE, Item=sku("sku-0002", 7, b"\xff"))  # deleted, then back
    ddb.delete_item(TableName=TABLE, Key={"sku": {"S": "sku-new1"}})
    ddb.put_item(TableName=TABLE, Item=sku("sku-new2", 1))
    backdate(seeded, TABLE, 60)  # second hour
    windows = [run_window(seeded, TABLE, start - HOUR), run_window(seeded, TABLE, start)]
    return {"t0": t0, "start": start, "full": full, "windows": windows}


def test_windows_chain_from_the_full_export_and_verify(seeded, chained):
    (p1, d1, v1), (p2, d2, v2) = chained["windows"]
    t0, start = chained["t0"], chained["start"]
    assert (p1.reason, p1.window.start, p1.window.end) == ("first", t0, t0 + HOUR)
    assert (p2.reason, p2.window.start, p2.window.end) == ("next", t0 + HOUR, start)
    assert v1.ok and v2.ok, (v1.problems, v2.problems)
    assert (v1.item_count, v2.item_count) == (3, 3)
    assert "line_shape" in v1.checks_passed and "write_times" in v2.checks_passed
    assert v2.to_dict()["window_from"].startswith((t0 + HOUR).strftime("%Y-%m-%dT%H:%M:%S"))
    stored = chain.stored_windows(seeded.client("s3"), BUCKET, BASE, TABLE)
    assert [(w.window.start, w.window.end) for w in stored] == [(t0, t0 + HOUR), (t0 + HOUR, start)]
    assert all(w.summary_key for w in stored)
    # the same request again (a retried task) returns the same export, not a second one
    ddb = seeded.client("dynamodb")
    again = start_incremental(ddb, CONFIG.table_arn(TABLE), p2.window, BUCKET, v2.s3_prefix)
    assert again["ExportArn"] == d2["ExportArn"]
    assert len([s for s in ddb.list_exports(TableArn=CONFIG.table_arn(TABLE))["ExportSummaries"]
                if s["ExportType"] == "INCREMENTAL_EXPORT"]) == 2


def test_verification_finds_a_rewritten_data_file(seeded, chained):
    _, (p2, d2, v2) = chained["windows"]
    s3 = seeded.client("s3")
    s3.put_object(Bucket=BUCKET, Key=v2.data_keys[0],
                  Body=gzip.compress(b'{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"NewImage":{}}\n'))
    again = verify_incremental(s3, BUCKET, d2["ExportArn"], CONFIG.table_arn(TABLE), p2.window, v2.s3_prefix)
    codes = {p.code for p in again.problems}
    assert {"md5_mismatch", "etag_mismatch", "line_invalid"} <= codes and not again.ok
    assert "md5" not in again.checks_passed and "manifest_summary" in again.checks_passed


def test_applying_the_windows_onto_the_full_export_state_gives_the_table_at_the_last_window(seeded, chained):
    ddb, s3 = seeded.client("dynamodb"), seeded.client("s3")
    ddb.restore_table_to_point_in_time(SourceTableName=TABLE, TargetTableName="inv-at-t0",
                                       RestoreDateTime=chained["t0"])
    before = scan_all(ddb, "inv-at-t0")
    assert {i["sku"]["S"] for i in before} >= {"sku-0001", "sku-0002"}
    windows = [(w.s3_prefix, BUCKET, w.data_keys) for _, _, w in chained["windows"]]
    stats = apply_windows(ddb, s3, "inv-at-t0", windows, workers=4)
    assert (stats.windows, stats.puts, stats.deletes) == (2, 4, 2)
    assert scan_all(ddb, "inv-at-t0") == scan_all(ddb, TABLE)
    apply_windows(ddb, s3, "inv-at-t0", windows, workers=4)  # replaying changes nothing
    assert scan_all(ddb, "inv-at-t0") == scan_all(ddb, TABLE)


def test_weekly_checks_know_the_incremental_layout(seeded, chained):
    """Re-verification and the retention sweep read a window's data files in ``AWSDynamoDB/data/`` (beside, not
    inside, its export folder) and its ``table-schema.json`` as backup objects: a clean chain has no findings; a
    new version over a window's data file is an overwrite attempt and a content mismatch."""
    from dynamoguard import object_lock
    from dynamoguard.reverify import Target, reverify

    s3 = seeded.client("s3")
    (_, _, first), _ = chained["windows"]
    prefix = first.export_prefix.split("/AWSDynamoDB/")[0]
    chain.put_schema(s3, BUCKET, prefix, {"TableName": TABLE})
    target = Target(BUCKET, BASE, CONFIG.backup_bucket.min_retention_days, "reverify_exports")
    policy = object_lock.LockPolicy.from_config(CONFIG.backup_bucket)

    clean = reverify(s3, target, max_concurrency=8)
    assert clean.findings_for(TABLE) == [], [f.title for f in clean.findings_for(TABLE)]
    swept = object_lock.sweep(s3, BUCKET, BASE, policy, max_concurrency=4)
    assert swept.ok and not swept.counts, swept.summary()

    data_key = sorted(first.data_keys)[0]
    assert "/AWSDynamoDB/data/" in data_key
    s3.put_object(Bucket=BUCKET, Key=data_key, Body=gzip.compress(b"{}\n"))
    checks = {f.check for f in reverify(s3, target, max_concurrency=8).findings_for(TABLE)
              if f.resource == f"s3://{BUCKET}/{data_key}"}
    assert {"overwrite_attempt", "content_mismatch"} <= checks
