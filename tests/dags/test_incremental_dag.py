"""The incremental exports DAG and an incremental drill end to end with dag.test() against the emulator.

The issue's acceptance test: an item written at T1 survives the table's deletion at T2: a drill from the replica
account's full + incremental exports restores a table holding it, equal to the source as of the last window.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dynamoguard.config import load_config
from dynamoguard.drills.digest import DigestBuckets, digest_table
from tests.aws.incremental_helpers import BUCKET, HOUR, backdate, full_export, now_s, scan_all

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
REPLICA = "dynamoguard-exports-replica"
REPORTS = "dynamoguard-reports"
TABLE = "customers"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """The demo config with 1 s polls and retry delays, pointed at by DYNAMOGUARD_CONFIG."""
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["nightly"].update(poll_interval_seconds=1, retry_delay_seconds=1, retries=1)
    config["drills"].update(poll_interval_seconds=1, scan_segments=3)
    path = tmp_path / "dynamoguard.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
    return config


def dag(file: str, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / file))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def states(run) -> dict[str, tuple]:
    """{"<task id>" or, in a task group mapped over the tables, "<table>.<step>": (state, return value)}."""
    tables = load_config().table_names
    return {(f"{tables[ti.map_index]}.{ti.task_id.removeprefix('table.')}" if ti.task_id.startswith("table.")
             else ti.task_id): (ti.state, ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index))
            for ti in run.get_task_instances()}


def replicate_full_export(localaws, desc: dict) -> None:
    """The nightly job's replica step for the full export (same keys in the replica bucket)."""
    src, dst = localaws.client("s3"), localaws.client("s3", account="backup")
    folder = desc["ExportManifest"].rsplit("/", 1)[0] + "/"
    for obj in src.list_objects_v2(Bucket=BUCKET, Prefix=folder)["Contents"]:
        body = src.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        dst.put_object(Bucket=REPLICA, Key=obj["Key"], Body=body)


def stored(localaws, key: str) -> dict:
    return json.loads(localaws.client("s3").get_object(Bucket=REPORTS, Key=key)["Body"].read())


def test_an_item_written_at_t1_survives_the_table_deleted_at_t2(config_file, seeded, airflow_db):
    seeded.settings(export_seconds=0, pitr_lag_seconds=0)
    ddb = seeded.client("dynamodb")
    backdate(seeded, TABLE, 4 * 3600)
    start = now_s()
    t0 = start - 2 * HOUR
    replicate_full_export(seeded, full_export(seeded, TABLE, t0))
    seeded.settings(export_seconds=2)  # the incremental exports stay IN_PROGRESS: their wait is deferred
    # T1: inside the first hour after the full export
    ddb.put_item(TableName=TABLE, Item={"customer_id": {"S": "cust-T1"}, "name": {"S": "written at T1"},
                                        "tags": {"SS": ["a", "b"]}, "photo": {"B": b"\x89PNG"}})
    ddb.delete_item(TableName=TABLE, Key={"customer_id": {"S": "cust-003"}})
    backdate(seeded, TABLE, 90 * 60)
    ddb.update_item(TableName=TABLE, Key={"customer_id": {"S": "cust-T1"}}, UpdateExpression="SET visits = :v",
                    ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.put_item(TableName=TABLE, Item={"customer_id": {"S": "cust-late"}, "name": {"S": "second hour"}})
    backdate(seeded, TABLE, 60)

    incremental = dag("dynamodb_incremental_exports.py", "dynamodb_incremental_exports")
    for bound in (t0 + HOUR, start):
        run = incremental.test(logical_date=bound, run_after=bound)
        tasks = states(run)
        assert {t: tasks[f"{TABLE}.{t}"][0] for t in ("export", "verify", "object_lock", "replica", "record")} == \
            dict.fromkeys(("export", "verify", "object_lock", "replica", "record"), "success"), tasks
        assert tasks["orders.export"][0] == "skipped"  # no full export of orders to chain from
    assert tasks[f"{TABLE}.export"][1]["window_from"] == (t0 + HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = stored(seeded, f"reports/findings/incremental/{TABLE}.json")
    assert summary["summary"]["replicated_to"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0 <= summary["summary"]["rpo_seconds"] < 600
    assert not [f for f in summary["findings"] if f["status"] == "open"]
    orders = {f["check"] for f in stored(seeded, "reports/findings/incremental/orders.json")["findings"]}
    assert orders == {"awaiting_full_export"}  # orders has never had a verified full export: info, no alert

    source_state = scan_all(ddb, TABLE)
    assert any(i["customer_id"]["S"] == "cust-T1" for i in source_state)
    expected = DigestBuckets(256)
    digest_table(ddb, TABLE, ("customer_id",), expected, segments=2)
    ddb.delete_table(TableName=TABLE)  # T2

    drill = dag("dynamodb_restore_drill.py", "dynamodb_restore_drill")
    run = drill.test(run_conf={"table": TABLE, "source": "incremental_replica", "validation": "full",
                               "keep_minutes": 0})
    assert run.state == "success", states(run)
    record = next(r for _, r in states(run).values() if isinstance(r, dict) and r.get("record_version"))
    assert record["result"] == "passed", record["problems"]
    assert record["account"] == "backup" and record["restore_point"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [w["to"] for w in record["incremental"]["windows"]] == [
        (t0 + HOUR).strftime("%Y-%m-%dT%H:%M:%SZ"), start.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert record["restore"]["apply"]["puts"] >= 2 and record["restore"]["apply"]["deletes"] == 1
    assert record["rpo_seconds"] > 0 and record["rto_seconds"] > 0
    validation = record["validation"]
    assert validation["digest_restored"] == validation["digest_export"] == expected.total
    assert validation["items_restored"] == len(source_state) == expected.count
