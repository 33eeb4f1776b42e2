"""The restore-drill DAG end to end with dag.test() against the emulator, one run per source."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from dynamoguard import timeutil
from dynamoguard.drills import scratch

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "dynamodb_restore_drill.py"
DAG_ID = "dynamodb_restore_drill"
PREFIX = "dgdrill-"
REPORTS = "dynamoguard-reports"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """The demo config with 1 s polls, pointed at by DYNAMOGUARD_CONFIG."""
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["drills"].update(poll_interval_seconds=1, scan_segments=3)
    path = tmp_path / "dynamoguard.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
    return config


def export(localaws, table: str, replicate: bool = False) -> dict:
    """A finished export of ``table`` under the nightly job's prefix (and its copy in the replica bucket)."""
    ddb, s3 = localaws.client("dynamodb"), localaws.client("s3")
    latest = ddb.describe_continuous_backups(TableName=table)[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    arn = ddb.export_table_to_point_in_time(
        TableArn=f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}", S3Bucket="dynamoguard-exports",
        S3Prefix=f"exports/{table}/{latest:%Y-%m-%d}", ExportTime=latest)["ExportDescription"]["ExportArn"]
    while (desc := ddb.describe_export(ExportArn=arn)["ExportDescription"])["ExportStatus"] == "IN_PROGRESS":
        time.sleep(0.5)
    assert desc["ExportStatus"] == "COMPLETED"
    if replicate:
        dst = localaws.client("s3", account="backup")
        folder = desc["ExportManifest"].rsplit("/", 1)[0] + "/"
        for obj in s3.list_objects_v2(Bucket="dynamoguard-exports", Prefix=folder)["Contents"]:
            body = s3.get_object(Bucket="dynamoguard-exports", Key=obj["Key"])["Body"].read()
            dst.put_object(Bucket="dynamoguard-exports-replica", Key=obj["Key"], Body=body)
    return desc


def run(conf: dict, tries: dict | None = None):
    """dag.test() one manual run; (run state, {task_id: [(state, return XCom, drill_record XCom)]}); ``tries``
    (if given) gets {task_id: [try_number]}."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dr = bag.dags[DAG_ID].test(run_conf=conf)
    tasks: dict[str, list] = {}
    for ti in dr.get_task_instances():
        name = ti.task_id.rsplit(".", 1)[-1]
        tasks.setdefault(name, []).append((
            ti.state, ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index),
            ti.xcom_pull(task_ids=ti.task_id, key="drill_record", map_indexes=ti.map_index)))
        if tries is not None:
            tries.setdefault(name, []).append(ti.try_number)
    return dr.state, tasks


def scratch_tables(localaws, account: str = "source") -> list[str]:
    return [t for t in scratch.list_tables(localaws.client("dynamodb", account=account)) if t.startswith(PREFIX)]


def tamper_data_file(localaws, desc: dict) -> str:
    """Overwrite one data file of the export (a new object version with other bytes, as an attacker with
    s3:PutObject could); its key."""
    s3 = localaws.client("s3")
    folder = desc["ExportManifest"].rsplit("/", 1)[0] + "/data/"
    key = s3.list_objects_v2(Bucket="dynamoguard-exports", Prefix=folder)["Contents"][0]["Key"]
    s3.put_object(Bucket="dynamoguard-exports", Key=key, Body=b"an attacker's bytes")
    return key


def stored_findings(localaws, job: str, scope: str) -> dict:
    """The findings store's state of (job, scope): findings, summary, history."""
    key = f"reports/findings/{job}/{scope}.json"
    return json.loads(localaws.client("s3").get_object(Bucket=REPORTS, Key=key)["Body"].read())


def open_findings(state: dict) -> dict[str, dict]:
    return {f["check"]: f for f in state["findings"] if f["status"] == "open"}


def stored_record(localaws, table: str, scratch: str) -> dict:
    key = f"reports/drills/{table}/{scratch}.json"
    return json.loads(localaws.client("s3").get_object(Bucket=REPORTS, Key=key)["Body"].read())


def test_the_form_offers_the_registered_sources_and_the_file_only_declares():
    from airflow.dag_processing.dagbag import DagBag

    from dynamoguard.drills import sources

    dag = DagBag(dag_folder=str(DAG_FILE)).dags[DAG_ID]
    schema = dag.params.get_param("source").schema
    assert schema["enum"] == list(sources.names()) and schema["values_display"] == sources.labels()
    assert "dynamoguard" in dag.tags and dag.start_date.tzinfo is not None
    text = DAG_FILE.read_text()
    assert "@task\n" not in text and "def " not in text.replace("def drill(spec)", ""), "task logic in the DAG file"


@pytest.mark.parametrize("source,validation,table,items", [
    ("export", "full", "orders", 250),
    ("pitr", "sample", "customers", 10),
    ("replica", "full", "inventory", 60),
    ("replica", "sample", "customers", 10),
])
def test_drill_from_each_source_passes_and_cleans_up(seeded, airflow_db, config_file, source, validation, table,
                                                     items):
    desc = export(seeded, table, replicate=source == "replica")
    state, tasks = run({"table": table, "source": source, "validation": validation, "sample_size": 10})
    assert state == "success", tasks
    (_, record, _), = tasks["validate"]
    assert record["result"] == "passed" and record["problems"] == []
    assert record["export"]["export_arn"] == desc["ExportArn"]
    assert record["items_validated"] == items and record["validation"]["items_restored"] == record[
        "validation"]["items_expected"]
    assert record["rto_seconds"] >= 0 and record["rpo_seconds"] >= 0
    account = "backup" if source == "replica" else "source"
    assert record["account"] == account and record["scratch_table"].startswith(f"{PREFIX}{table}-")
    assert stored_record(seeded, table, record["scratch_table"]) == json.loads(json.dumps(record))
    (cleanup_state, cleanup, _), = tasks["cleanup"]
    assert cleanup_state == "success" and cleanup["deleted"]
    assert scratch_tables(seeded, account) == []


def test_planted_change_fails_with_its_key_and_still_cleans_up(seeded, airflow_db, config_file, monkeypatch):
    from dynamoguard.drills import service

    export(seeded, "orders")
    original = service.validate
    planted = {"customer_id": {"S": "cust-005"}, "order_id": {"S": "ord-000005"}}

    def plant_then_validate(config, aws, drill, restore):
        seeded.client("dynamodb").update_item(
            TableName=drill["scratch_table"], Key=planted, UpdateExpression="SET #t = :t",
            ExpressionAttributeNames={"#t": "total"}, ExpressionAttributeValues={":t": {"N": "1234.5"}})
        return original(config, aws, drill, restore)

    monkeypatch.setattr(service, "validate", plant_then_validate)
    tries: dict = {}
    state, tasks = run({"table": "orders", "source": "export", "validation": "full"}, tries)
    assert state == "failed"
    (validate_state, _, record), = tasks["validate"]
    assert validate_state == "failed"
    assert record["result"] == "failed"
    assert record["validation"]["mismatches"] == [{"key": planted, "problem": "changed"}]
    assert stored_record(seeded, "orders", record["scratch_table"])["validation"]["mismatches"][0]["key"] == planted
    (cleanup_state, cleanup, _), = tasks["cleanup"]
    assert cleanup_state == "success" and cleanup["deleted"]
    assert scratch_tables(seeded) == []
    assert tries["validate"] == [1], "a validation mismatch must fail without retry"
    stored = stored_findings(seeded, "drill", "orders")
    mismatch = open_findings(stored)["validation_mismatch"]
    assert mismatch["severity"] == "critical" and mismatch["evidence"]["keys"] == [{"key": planted,
                                                                                     "problem": "changed"}]
    assert mismatch["evidence"]["expected"]["digest"] != mismatch["evidence"]["found"]["digest"]
    assert mismatch["evidence"]["export"]["export_arn"] == record["export"]["export_arn"]
    assert stored["summary"]["result"] == "failed" and stored["history"][-1]["result"] == "failed"


def test_no_verified_export_fails_prepare_and_records_it(seeded, airflow_db, config_file):
    state, tasks = run({"table": "customers", "source": "export", "validation": "sample"})
    assert state == "failed"
    assert [s for s, _, _ in tasks["prepare"]] == ["failed"]
    assert "restore" in tasks and all(s != "success" for s, _, _ in tasks["restore"])
    records = seeded.client("s3").list_objects_v2(Bucket=REPORTS, Prefix="reports/drills/customers/")["Contents"]
    record = json.loads(seeded.client("s3").get_object(Bucket=REPORTS, Key=records[0]["Key"])["Body"].read())
    assert record["result"] == "failed" and "no verified export" in record["problems"][0]
    assert scratch_tables(seeded) == []


def test_no_verified_export_fails_at_once_with_a_critical_finding(seeded, airflow_db, config_file):
    first = export(seeded, "customers")
    tamper_data_file(seeded, first)
    tries: dict = {}
    state, tasks = run({"table": "customers", "source": "export", "validation": "sample"}, tries)
    assert state == "failed" and tries["prepare"] == [1], "no verified export must fail without retry"
    (_, _, record), = tasks["prepare"]
    assert record["failure"]["check"] == "no_verified_export"
    assert record["skipped_exports"][0]["export_arn"] == first["ExportArn"]
    finding = open_findings(stored_findings(seeded, "drill", "customers"))["no_verified_export"]
    assert finding["severity"] == "critical" and finding["evidence"]["skipped"][0]["export_arn"] == first["ExportArn"]


def test_a_newest_export_failing_verification_is_skipped_named_and_warned(seeded, airflow_db, config_file):
    older = export(seeded, "inventory")
    time.sleep(1.5)
    newest = export(seeded, "inventory")
    assert newest["ExportArn"] != older["ExportArn"]
    data_key = tamper_data_file(seeded, newest)
    state, tasks = run({"table": "inventory", "source": "export", "validation": "sample", "sample_size": 5})
    assert state == "success", tasks
    (_, record, _), = tasks["validate"]
    assert record["result"] == "passed_with_warnings" and record["problems"] == []
    assert record["export"]["export_arn"] == older["ExportArn"]
    (skipped,) = record["skipped_exports"]
    assert skipped["export_arn"] == newest["ExportArn"] and data_key in skipped["reason"]
    assert skipped["location"] == f"s3://dynamoguard-exports/{newest['ExportManifest']}"
    assert record["warnings"] and newest["ExportManifest"] in record["warnings"][0]
    stored = stored_findings(seeded, "drill", "inventory")
    finding = open_findings(stored)["skipped_export"]
    assert finding["severity"] == "high" and finding["evidence"]["skipped"]["export_arn"] == newest["ExportArn"]
    assert finding["evidence"]["restored_instead"]["export_arn"] == older["ExportArn"]
    assert stored["summary"]["result"] == "passed_with_warnings" and stored["summary"]["source"] == "export"
    assert stored["summary"]["record_key"] == f"reports/drills/inventory/{record['scratch_table']}.json"
    assert stored["history"][-1] == {"at": record["recorded_at"], "rto_seconds": record["rto_seconds"],
                                     "rpo_seconds": record["rpo_seconds"], "result": "passed_with_warnings",
                                     "source": "export"}


def test_sweep_task_removes_expired_scratch_tables_in_both_accounts(seeded, airflow_db, config_file):
    from datetime import timedelta

    export(seeded, "inventory")
    past = timeutil.utcnow() - timedelta(hours=1)
    for account in ("source", "backup"):
        ddb = seeded.client("dynamodb", account=account)
        ddb.create_table(TableName=f"{PREFIX}inventory-crashed", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
                         Tags=scratch.drill_tags("crashed-run", "inventory", past))
    state, tasks = run({"table": "inventory", "source": "export", "validation": "sample"})
    assert state == "success"
    (_, swept, _), = tasks["sweep"]
    assert sorted((r["account"], r["table"], r["deleted"]) for r in swept) == [
        ("backup", f"{PREFIX}inventory-crashed", True), ("source", f"{PREFIX}inventory-crashed", True)]
    assert scratch_tables(seeded) == [] and scratch_tables(seeded, "backup") == []
    swept_finding = open_findings(stored_findings(seeded, "drill_sweep", "account"))["scratch_swept"]
    assert swept_finding["severity"] == "info" and sorted(
        (d["account"], d["table"]) for d in swept_finding["evidence"]["deleted"]) == [
        ("backup", f"{PREFIX}inventory-crashed"), ("source", f"{PREFIX}inventory-crashed")]


def test_failed_import_fails_the_drill_with_aws_message_and_cleans_up(seeded, airflow_db, config_file, monkeypatch):
    import dataclasses

    from dynamoguard.drills.sources import _imports as logic

    export(seeded, "inventory")
    original = logic.start_import

    def import_a_corrupt_file(ddb, export_ref, creation, token, bucket_owner=None):
        bad = export_ref.data_prefix.replace("/data/", "/corrupt-data/")
        seeded.client("s3").put_object(Bucket=export_ref.bucket, Key=bad + "part.json.gz", Body=b"not gzip")
        return original(ddb, dataclasses.replace(export_ref, data_prefix=bad), creation, token, bucket_owner)

    monkeypatch.setattr(logic, "start_import", import_a_corrupt_file)
    state, tasks = run({"table": "inventory", "source": "export", "validation": "sample"})
    assert state == "failed"
    assert [s for s, _, _ in tasks["restore"]] == ["failed"]
    records = seeded.client("s3").list_objects_v2(Bucket=REPORTS, Prefix="reports/drills/inventory/")["Contents"]
    record = json.loads(seeded.client("s3").get_object(Bucket=REPORTS, Key=records[-1]["Key"])["Body"].read())
    assert record["result"] == "failed" and record["restore"]["ImportStatus"] == "FAILED"
    problem = record["problems"][0]
    assert problem.startswith("restore: import arn:aws:dynamodb:") and " FAILED: " in problem
    (cleanup_state, cleanup, _), = tasks["cleanup"]
    assert cleanup_state == "success"
    assert scratch_tables(seeded) == []
