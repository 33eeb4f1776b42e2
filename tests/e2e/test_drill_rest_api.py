"""Restore drills triggered through Airflow's REST API (airflow standalone against the emulator).

A manual run with params from the form's schema runs to success; bad params are refused with 400
at trigger time, naming the param, and create no run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.distributed import ApiError, Topology, copy_dag

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "dynamodb_restore_drill"


@pytest.fixture(scope="module")
def estate(localaws_server):
    localaws_server.reset()
    localaws_server.seed()
    ddb = localaws_server.client("dynamodb")
    latest = ddb.describe_continuous_backups(TableName="customers")[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    arn = ddb.export_table_to_point_in_time(
        TableArn="arn:aws:dynamodb:us-east-1:111111111111:table/customers", S3Bucket="dynamoguard-exports",
        S3Prefix=f"exports/customers/{latest:%Y-%m-%d}", ExportTime=latest)["ExportDescription"]["ExportArn"]
    while ddb.describe_export(ExportArn=arn)["ExportDescription"]["ExportStatus"] == "IN_PROGRESS":
        time.sleep(0.5)
    return localaws_server


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, estate):
    work = tmp_path_factory.mktemp("drill-e2e")
    dags = work / "dags"
    copy_dag(ROOT / "dags" / f"{DAG_ID}.py", dags)
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["drills"].update(poll_interval_seconds=2)
    config_path = work / "dynamoguard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with Topology(work, dags, estate.endpoint, standalone=True, config_path=config_path) as topo:
        topo.rest.wait_for_dag(DAG_ID, timeout=300)
        yield topo
    assert topo.leftovers() == [], "processes survived the teardown"


@pytest.mark.parametrize("conf,param", [
    ({"table": "not-a-table"}, "table"),
    ({"table": "orders", "source": "tape"}, "source"),
    ({"table": "orders", "sample_size": 0}, "sample_size"),
    ({"table": "orders", "restore_point": "last tuesday"}, "restore_point"),
])
def test_bad_params_are_rejected_at_trigger_time(airflow, conf, param):
    with pytest.raises(ApiError) as error:
        airflow.rest.trigger(DAG_ID, None, conf)
    assert error.value.status == 400
    assert f"param {param}" in str(error.value)
    runs = airflow.rest.get(f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
    assert all(r["conf"] != conf for r in runs)


def test_manual_trigger_with_params_runs_a_drill(airflow, estate):
    details = airflow.rest.get(f"/api/v2/dags/{DAG_ID}/details")
    assert details["params"]["table"]["schema"]["enum"] == ["orders", "customers", "inventory"]
    run = airflow.rest.trigger(DAG_ID, None, {"table": "customers", "source": "export", "validation": "sample",
                                              "sample_size": 7})
    finished = airflow.rest.wait_for_run(DAG_ID, run["dag_run_id"], timeout=600)
    states = {(t["task_id"], t["map_index"]): t["state"]
              for t in airflow.rest.task_instances(DAG_ID, run["dag_run_id"])}
    assert finished["state"] == "success", f"{states}\n{airflow.log_tail()}"
    record = airflow.rest.xcom(DAG_ID, run["dag_run_id"], "drill.validate", map_index=0)
    assert (record["table"], record["source"], record["result"]) == ("customers", "export", "passed")
    assert record["items_validated"] == 7 and record["validation"]["items_restored"] == 40
    assert [t for t in estate.client("dynamodb").list_tables()["TableNames"] if t.startswith("dgdrill-")] == []
