"""Preflight, idempotent start and the deferred wait against the emulator's DynamoDB (exports IN_PROGRESS 2 s)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.exports.start import (
    ExportError,
    ExportTimeOutsideWindow,
    client_token,
    describe_export,
    list_exports,
    preflight,
    start_export,
)
from dynamoguard.triggers import DynamoDBExportTrigger

pytestmark = pytest.mark.aws

BUCKET = "dynamoguard-exports"


def table_arn(localaws, name: str) -> str:
    return localaws.client("dynamodb").describe_table(TableName=name)["Table"]["TableArn"]


def night(days_ago: int) -> datetime:
    return datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def wait_done(ddb, arn: str) -> dict:
    for _ in range(60):
        description = describe_export(ddb, arn)
        if description["ExportStatus"] != "IN_PROGRESS":
            return description
        time.sleep(0.5)
    raise AssertionError(f"{arn} still IN_PROGRESS")


def test_preflight_reads_window_and_protection(seeded):
    ddb = seeded.client("dynamodb")
    state = preflight(ddb, "orders")
    assert state.table_arn == table_arn(seeded, "orders")
    assert state.deletion_protection is True and state.pitr_status == "ENABLED"
    assert state.latest_restorable - state.earliest_restorable > timedelta(days=30)
    assert preflight(ddb, "customers").deletion_protection is False


def test_preflight_fails_clearly_or_enables_pitr(localaws):
    ddb = localaws.client("dynamodb")
    with pytest.raises(ExportError, match="table 'ghosts' does not exist"):
        preflight(ddb, "ghosts")
    ddb.create_table(TableName="nopitr", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    with pytest.raises(ExportError, match="point-in-time recovery is DISABLED; enable it or set ensure_pitr"):
        preflight(ddb, "nopitr")
    state = preflight(ddb, "nopitr", ensure_pitr=True)
    assert state.pitr_enabled_now and state.pitr_status == "ENABLED"
    assert ddb.describe_continuous_backups(TableName="nopitr")["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_starting_twice_gives_one_export(seeded):
    ddb = seeded.client("dynamodb")
    arn, when, prefix = table_arn(seeded, "customers"), night(1), "exports/customers/x"
    first = start_export(ddb, arn, when, BUCKET, prefix)
    assert first.status == "IN_PROGRESS" and not first.reused
    assert first.description["ClientToken"] == client_token(arn, when, BUCKET, prefix)
    again = start_export(ddb, arn, when, BUCKET, prefix)  # a retry while it runs
    assert again.export_arn == first.export_arn and again.reused
    wait_done(ddb, first.export_arn)
    later = start_export(ddb, arn, when, BUCKET, prefix)  # a clear after it finished
    assert later.export_arn == first.export_arn and later.status == "COMPLETED"
    other_night = start_export(ddb, arn, night(2), BUCKET, prefix)
    assert other_night.export_arn != first.export_arn
    assert len(list(list_exports(ddb, arn))) == 2


def test_an_export_started_elsewhere_is_found_without_the_token(seeded):
    """Beyond the 8-hour ClientToken window only ListExports can find the export: started here with
    another token, it must still be reused rather than duplicated."""
    ddb = seeded.client("dynamodb")
    arn, when, prefix = table_arn(seeded, "inventory"), night(1), "exports/inventory/y"
    arn_other = ddb.export_table_to_point_in_time(TableArn=arn, ExportTime=when, S3Bucket=BUCKET, S3Prefix=prefix,
                                                  ClientToken="someone-else")["ExportDescription"]["ExportArn"]
    started = start_export(ddb, arn, when, BUCKET, prefix)
    assert started.reused and started.export_arn == arn_other
    assert started.client_token == "someone-else"
    assert len(list(list_exports(ddb, arn))) == 1


def test_after_a_failed_export_a_new_attempt_is_a_new_request(seeded):
    ddb = seeded.client("dynamodb")
    arn, when, prefix = table_arn(seeded, "customers"), night(1), "p"
    failed = start_export(ddb, arn, when, "no-such-bucket-here", prefix)
    assert wait_done(ddb, failed.export_arn)["FailureCode"] == "S3NoSuchBucket"
    retry = start_export(ddb, arn, when, "no-such-bucket-here", prefix)
    assert retry.export_arn != failed.export_arn and not retry.reused
    assert retry.client_token == client_token(arn, when, "no-such-bucket-here", prefix, attempt=1)
    # while that retry runs, starting again reuses it
    assert start_export(ddb, arn, when, "no-such-bucket-here", prefix).export_arn == retry.export_arn


def test_time_outside_window_is_refused_by_dynamodb(seeded):
    ddb = seeded.client("dynamodb")
    with pytest.raises(ExportTimeOutsideWindow, match="DynamoDB rejected export time"):
        start_export(ddb, table_arn(seeded, "orders"), night(60), BUCKET, "p")


@pytest.fixture
def slow_exports(seeded):
    """Exports stay IN_PROGRESS for 8 s during the test (emulator setting), so a loaded machine still
    sees the trigger poll while the export runs."""

    def set_seconds(seconds: float) -> None:
        request = urllib.request.Request(f"{seeded.endpoint}/_localaws/config", method="POST",
                                         data=json.dumps({"export_seconds": seconds}).encode())
        urllib.request.urlopen(request).read()

    set_seconds(8)
    yield seeded
    set_seconds(2)


def _run_trigger(trigger) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first_event())


def _trigger(arn: str, deadline: float) -> DynamoDBExportTrigger:
    trigger = DynamoDBExportTrigger(export_arn=arn, deadline=deadline, waiter_delay=1, aws_conn_id="aws_default",
                                    region_name="us-east-1")
    classpath, kwargs = trigger.serialize()
    assert classpath == "dynamoguard.triggers.DynamoDBExportTrigger"
    return DynamoDBExportTrigger(**kwargs)  # as the triggerer rebuilds it


def test_trigger_waits_for_completion(slow_exports):
    ddb = slow_exports.client("dynamodb")
    started = start_export(ddb, table_arn(slow_exports, "orders"), night(1), BUCKET, "exports/orders/t")
    event = _run_trigger(_trigger(started.export_arn, time.time() + 60))
    assert event["status"] == "success" and event["export_arn"] == started.export_arn
    assert event["statuses"][0] == "IN_PROGRESS" and event["statuses"][-1] == "COMPLETED"
    assert describe_export(ddb, started.export_arn)["ExportStatus"] == "COMPLETED"


def test_trigger_reports_aws_failure(seeded):
    ddb = seeded.client("dynamodb")
    started = start_export(ddb, table_arn(seeded, "orders"), night(1), "missing-bucket-zz", "p")
    event = _run_trigger(_trigger(started.export_arn, time.time() + 60))
    description = describe_export(ddb, started.export_arn)
    assert event["status"] == "failed"
    assert (event["failure_code"], event["failure_message"]) == ("S3NoSuchBucket", description["FailureMessage"])


def test_trigger_stops_at_the_deadline(slow_exports):
    ddb = slow_exports.client("dynamodb")
    started = start_export(ddb, table_arn(slow_exports, "orders"), night(1), BUCKET, "exports/orders/d")
    event = _run_trigger(_trigger(started.export_arn, time.time() - 1))
    assert event["status"] == "timeout" and event["statuses"] == ["IN_PROGRESS"]
    assert "still IN_PROGRESS at the deadline" in event["message"]


def test_trigger_reports_an_unknown_export(seeded):
    bogus = table_arn(seeded, "orders") + "/export/01700000000000-deadbeef"
    event = _run_trigger(_trigger(bogus, time.time() + 60))
    assert event["status"] == "error" and "DescribeExport failed" in event["message"]
