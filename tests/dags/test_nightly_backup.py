"""The nightly backup DAG, run with dag.test() against the emulator (exports stay IN_PROGRESS for 2 s).

Failure messages are read where an operator would read them: from the SNS topic the failure
notifier publishes to (through a subscribed SQS queue).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from dynamoguard.exports.manifest import export_folder
from dynamoguard.exports.start import list_exports
from dynamoguard.findings import FindingsStore
from dynamoguard.timeutil import iso_ms, parse_time

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "dynamodb_nightly_backup.py"
DAG_ID = "dynamodb_nightly_backup"
TOPIC = "arn:aws:sns:us-east-1:111111111111:dynamoguard-alerts"
ALL_CHECKS = {"manifest_summary", "manifest_summary_checksum", "summary_matches_request", "manifest_files",
              "manifest_files_checksum", "data_files_present", "md5", "etag", "item_counts", "no_unexpected_files"}


@pytest.fixture
def write_config(tmp_path, monkeypatch):
    """Write a fast test config (1 s polls and retry delay) and point DYNAMOGUARD_CONFIG at it."""

    def write(tables: list[str] | None = None, bucket: str | None = None) -> dict:
        config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
        config["nightly"].update(poll_interval_seconds=1, retry_delay_seconds=1, retries=1)
        if tables:
            config["tables"] = [t for t in config["tables"] if t["name"] in tables]
        if bucket:
            config["backup_bucket"]["name"] = bucket
        path = tmp_path / f"dynamoguard-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
        return config

    return write


def night(days_ago: int) -> datetime:
    """02:00 UTC ``days_ago`` days back: a scheduled run's logical date and data-interval end."""
    today = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def nightly_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def run(logical_date=None):
    """dag.test() one run; return (run state, {"<table>.<step>": (state, return value XCom)}): the task group is
    mapped over the configured tables, in their order."""
    from dynamoguard.config import load_config

    tables = load_config().table_names
    dr = nightly_dag().test(logical_date=logical_date)
    tis = dr.get_task_instances()
    assert all(ti.task_id.startswith("table.") and ti.map_index >= 0 for ti in tis)
    assert {ti.rendered_map_index for ti in tis if ti.state == "success"} <= set(tables)
    return dr.state, {f"{tables[ti.map_index]}.{ti.task_id.removeprefix('table.')}":
                      (ti.state, ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)) for ti in tis}


@pytest.fixture
def inbox(seeded):
    """An SQS queue subscribed to the alerts topic; call it to read the notifications published so far."""
    sqs = seeded.client("sqs")
    url = sqs.create_queue(QueueName="nightly-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    seeded.client("sns").subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)

    def read() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def deferrals(export_arns: list[str]) -> dict[str, dict]:
    """The triggers Airflow created for deferred tasks waiting on these exports (by export ARN)."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Trigger).filter(Trigger.classpath == "dynamoguard.triggers.DynamoDBExportTrigger").all()
        found = {row.kwargs.get("export_arn"): dict(row.kwargs) for row in rows}
    return {arn: found[arn] for arn in export_arns if arn in found}


def exports_of(localaws, table: str) -> list[dict]:
    ddb = localaws.client("dynamodb")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    return [ddb.describe_export(ExportArn=s["ExportArn"])["ExportDescription"] for s in list_exports(ddb, arn)]


def test_full_run_exports_and_verifies_every_table(seeded, airflow_db, write_config, inbox):
    config = write_config()
    tables = [t["name"] for t in config["tables"]]
    state, results = run()
    assert state == "success", {k: v[0] for k, v in results.items()}
    ddb = seeded.client("dynamodb")
    for table in tables:
        assert all(results[f"{table}.{step}"][0] == "success" for step in ("preflight", "export", "verify"))
        pre, exp, ver = (results[f"{table}.{step}"][1] for step in ("preflight", "export", "verify"))
        truth = ddb.scan(TableName=table, Select="COUNT")["Count"]
        # preflight: no data interval -> latest restorable; PITR window and deletion protection recorded
        assert pre["export_time_source"] == "latest_restorable"
        assert pre["export_time"] == pre["pitr_latest_restorable"]
        assert parse_time(pre["pitr_earliest_restorable"]) < parse_time(pre["export_time"]) - timedelta(days=30)
        assert pre["deletion_protection"] is (table == "orders")
        day = pre["export_time"][:10]
        assert pre["s3_prefix"] == f"exports/{table}/{day}"
        # export: started, deferred while IN_PROGRESS, COMPLETED
        assert exp["export_status"] == "COMPLETED" and exp["reused"] is False
        assert exp["deferred"] is True and exp["statuses"][0] == "IN_PROGRESS" and exp["statuses"][-1] == "COMPLETED"
        assert exp["export_arn"].startswith(pre["table_arn"] + "/export/")
        # verify: every check passed, numbers agree with the table and DescribeExport
        assert ver["ok"] is True and ver["problems"] == []
        assert set(ver["checks_passed"]) == ALL_CHECKS
        assert ver["item_count"] == truth == exp["item_count"]
        assert ver["files"] == len(ver["data_keys"]) >= 1 and ver["bytes"] > 0
        assert ver["export_prefix"] == export_folder(exp["export_arn"], f"exports/{table}/{day}")
        assert ver["export_time"] == pre["export_time"] and ver["bucket"] == "dynamoguard-exports"
        assert set(ver["object_keys"]) >= set(ver["data_keys"]) | {ver["manifest_summary_key"],
                                                                    ver["manifest_files_key"]}
        assert len(exports_of(seeded, table)) == 1
    # the export tasks really deferred: Airflow registered our trigger for each export (the wait ran
    # in the trigger, not in a worker), with the configured poll interval
    arns = [results[f"{table}.export"][1]["export_arn"] for table in tables]
    triggers = deferrals(arns)
    assert sorted(triggers) == sorted(arns)
    assert all(t["waiter_delay"] == 1 and t["aws_conn_id"] == "aws_default" for t in triggers.values())
    # a verified export updates the table's Asset, with the result as the event's extra
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.uri == "dynamoguard://exports/orders").all()
        assert events and events[-1].extra["export_arn"] == results["orders.export"][1]["export_arn"]
    assert inbox() == []  # nothing failed, nothing notified
    # the findings store holds each table's export summary and chart point for the posture page
    store = FindingsStore(seeded.client("s3"), "dynamoguard-reports", "reports")
    for table in tables:
        ver = results[f"{table}.verify"][1]
        state = store.load("export", table)
        assert state["findings"] == []
        assert state["summary"]["ok"] is True and state["summary"]["item_count"] == ver["item_count"]
        assert state["summary"]["export_arn"] == ver["export_arn"]
        assert state["history"][-1] == {"at": ver["export_time"], "items": ver["item_count"], "bytes": ver["bytes"]}


def test_rerun_of_the_same_night_reuses_the_export_and_verification_catches_tampering(
        seeded, airflow_db, write_config, inbox):
    write_config(tables=["customers"])
    state, first = run(night(1))
    assert state == "success"
    assert first["customers.preflight"][1]["export_time_source"] == "data_interval_end"
    state, second = run(night(1))  # dag.test clears and re-runs every task of that logical date
    assert state == "success"
    assert second["customers.export"][1]["export_arn"] == first["customers.export"][1]["export_arn"]
    assert second["customers.export"][1]["reused"] is True
    assert second["customers.verify"][1]["ok"] is True
    [only] = exports_of(seeded, "customers")
    assert only["ExportTime"] == night(1)
    assert inbox() == []
    # someone plants an object in the export folder: the next run reuses the export and fails verification
    folder = second["customers.verify"][1]["export_prefix"]
    seeded.client("s3").put_object(Bucket="dynamoguard-exports", Key=folder + "data/planted.json.gz", Body=b"x")
    state, third = run(night(1))
    assert state == "failed"
    assert third["customers.export"][0] == "success" and third["customers.verify"][0] == "failed"
    assert len(exports_of(seeded, "customers")) == 1
    [message] = inbox()
    assert message["Subject"] == "dynamoguard FAILED: dynamodb_nightly_backup.table.verify[customers]"
    assert "failed verification with 1 problem(s)" in message["Message"]
    assert f"unexpected_file: {folder}data/planted.json.gz" in message["Message"]
    # the problem is an open finding of the table's export, with the object as its resource
    state = FindingsStore(seeded.client("s3"), "dynamoguard-reports", "reports").load("export", "customers")
    [finding] = state["findings"]
    assert (finding["check"], finding["severity"], finding["status"]) == ("unexpected_file", "high", "open")
    assert finding["resource"] == f"s3://dynamoguard-exports/{folder}data/planted.json.gz"
    assert state["summary"]["ok"] is False


def test_backfill_two_nights_gives_two_dated_exports_each_with_its_nights_content(seeded, airflow_db, write_config):
    import gzip

    from tests.aws.incremental_helpers import backdate

    write_config(tables=["inventory"])
    nights = [night(3), night(2)]
    # an item written an hour before the second night (after the first): only the second night's export holds it
    seeded.client("dynamodb").put_item(TableName="inventory", Item={"sku": {"S": "sku-backfill-marker"}})
    backdate(seeded, "inventory", (datetime.now(timezone.utc) - nights[1]).total_seconds() + 3600)
    results = []
    for logical_date in nights:
        state, tasks = run(logical_date)
        assert state == "success"
        results.append(tasks["inventory.verify"][1])
    assert [r["export_time"] for r in results] == [iso_ms(n) for n in nights]
    assert [r["s3_prefix"] for r in results] == [f"exports/inventory/{n.date().isoformat()}" for n in nights]
    assert all(r["ok"] for r in results)
    assert results[1]["item_count"] == results[0]["item_count"] + 1
    s3 = seeded.client("s3")
    holds_marker = [any(b"sku-backfill-marker" in gzip.decompress(s3.get_object(Bucket=r["bucket"], Key=key)[
        "Body"].read()) for key in r["data_keys"]) for r in results]
    assert holds_marker == [False, True]
    exports = exports_of(seeded, "inventory")
    assert sorted(e["ExportTime"] for e in exports) == nights
    assert len({e["ExportArn"] for e in exports}) == 2


def test_a_night_outside_the_pitr_window_fails_clearly(seeded, airflow_db, write_config, inbox):
    write_config(tables=["orders"])
    state, tasks = run(night(40))
    assert state == "failed"
    assert tasks["orders.preflight"][0] == "failed" and tasks["orders.export"][0] == "upstream_failed"
    assert exports_of(seeded, "orders") == []
    [message] = inbox()
    assert message["Subject"] == "dynamoguard FAILED: dynamodb_nightly_backup.table.preflight[orders]"
    assert f"export time {iso_ms(night(40))} is outside the point-in-time recovery window" in message["Message"]
    ddb = seeded.client("dynamodb")
    window = ddb.describe_continuous_backups(TableName="orders")["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]
    assert f"window {iso_ms(window['EarliestRestorableDateTime'])[:10]}" in message["Message"]


def test_a_failed_export_fails_with_aws_failure_code_and_message(seeded, airflow_db, write_config, inbox):
    write_config(tables=["customers"], bucket="dynamoguard-no-such-bucket")
    state, tasks = run()
    assert state == "failed"
    assert tasks["customers.export"][0] == "failed" and tasks["customers.verify"][0] == "upstream_failed"
    [export] = exports_of(seeded, "customers")
    assert export["ExportStatus"] == "FAILED" and export["FailureCode"] == "S3NoSuchBucket"
    [message] = inbox()
    assert message["Subject"] == "dynamoguard FAILED: dynamodb_nightly_backup.table.export[customers]"
    assert f"FAILED: S3NoSuchBucket: {export['FailureMessage']}" in message["Message"]
