"""The Object Lock operators inside Airflow (dag.test) against the seeded emulator."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
BUCKET = "dynamoguard-exports"  # the seeded backup bucket: Object Lock, COMPLIANCE 35 days


def write_export(s3, export_time, table="orders", short_key=None):
    export_id = f"{int(export_time.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
    root = f"exports/{table}/AWSDynamoDB/{export_id}/"
    summary = {"exportTime": export_time.isoformat().replace("+00:00", "Z"), "s3Bucket": BUCKET}
    for name in ("_started", "data/x1.json.gz", "manifest-files.json", "manifest-files.md5",
                 "manifest-summary.json", "manifest-summary.md5"):
        extra = {}
        if name == short_key:
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=1)}
        body = json.dumps(summary).encode() if name == "manifest-summary.json" else name.encode()
        s3.put_object(Bucket=BUCKET, Key=root + name, Body=body, **extra)
    return root


def run(dag):
    run = dag.test()
    return run.state, {ti.task_id: ti for ti in run.get_task_instances()}


def sweep_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / "dynamodb_retention_sweep.py"))
    assert bag.import_errors == {}
    return bag.dags["dynamodb_retention_sweep"]


def check(exports):
    """Run the check operator's execute (the nightly DAG passes the verification XCom as ``exports``)."""
    from dynamoguard.operators.object_lock import ObjectLockCheckOperator

    return ObjectLockCheckOperator(task_id="check_object_lock", exports=exports).execute({})


@pytest.mark.airflow
def test_sweep_dag_passes_then_fails_on_tampered_old_export(seeded, airflow_db):
    s3 = seeded.client("s3")
    write_export(s3, datetime.now(UTC) - timedelta(hours=3))
    _, tis = run(sweep_dag())  # (the re-verification tasks beside it judge these hand-made exports on their own)
    assert tis["sweep_retention"].state == "success"

    write_export(s3, datetime.now(UTC) - timedelta(days=10), table="customers", short_key="data/x1.json.gz")
    state, tis = run(sweep_dag())
    assert state == "failed"
    assert tis["sweep_retention"].state == "failed"


def test_check_operator_reports_and_fails(seeded):
    from airflow.sdk.exceptions import AirflowFailException

    s3 = seeded.client("s3")
    export_time = datetime.now(UTC) - timedelta(minutes=10)
    good = write_export(s3, export_time)
    result = {"bucket": BUCKET, "export_prefix": good, "export_time": export_time.isoformat(), "ok": True}
    report = check(result)
    assert report["ok"] and report["objects_checked"] == 6 and report["violations"] == 0

    bad = write_export(s3, export_time, table="inventory", short_key="manifest-files.json")
    with pytest.raises(AirflowFailException, match="retention_too_short=1") as failure:
        check([result, {**result, "export_prefix": bad}])
    assert bad + "manifest-files.json" in str(failure.value)


def test_check_operator_refuses_other_bucket_and_incomplete_input(seeded):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="someone-elses-bucket"):
        check({"bucket": "someone-elses-bucket", "export_prefix": "x/AWSDynamoDB/1-a/",
               "export_time": "2026-11-28T02:00:00Z"})
    with pytest.raises(AirflowFailException, match="export_time"):
        check({"bucket": BUCKET, "export_prefix": "x/AWSDynamoDB/1-a/"})


def _store():
    """The findings store, read through the source account's connection as the operators write it."""
    from dynamoguard import aws
    from dynamoguard.config import load_config
    from dynamoguard.findings import FindingsStore

    config = load_config()
    s3 = aws.client(config.accounts.source.aws_conn_id, "s3", config.region)
    return FindingsStore(s3, config.reports_bucket.name, config.reports_bucket.prefix)


def _open(state):
    return {f["check"]: f for f in state["findings"] if f["status"] == "open"}


def test_check_operator_stores_each_tables_findings_and_a_clean_run_resolves_them(seeded):
    from dynamoguard.notify import FindingsFailed

    s3 = seeded.client("s3")
    export_time = datetime.now(UTC) - timedelta(minutes=10)
    good = {"table": "orders", "bucket": BUCKET, "export_prefix": write_export(s3, export_time),
            "export_time": export_time.isoformat()}
    check(good)
    state = _store().load("object_lock", "orders")
    assert state["findings"] == [] and state["summary"]["objects"] == 6 and state["summary"]["ok"] is True

    short = write_export(s3, export_time, short_key="data/x1.json.gz")
    with pytest.raises(FindingsFailed) as failure:
        check({**good, "export_prefix": short})
    assert [f["check"] for f in failure.value.findings] == ["retention_too_short"]
    state = _store().load("object_lock", "orders")
    finding = _open(state)["retention_too_short"]
    assert finding["severity"] == "high" and finding["table"] == "orders"
    assert finding["resource"] == f"s3://{BUCKET}/{short}data/x1.json.gz"
    assert finding["evidence"]["found"].startswith(f"{short}data/x1.json.gz: ")
    assert state["summary"]["ok"] is False and state["summary"]["violations"] == 1

    check(good)  # tonight's export is locked as required again
    state = _store().load("object_lock", "orders")
    assert _open(state) == {} and [f["status"] for f in state["findings"]] == ["resolved"]


def test_sweep_stores_findings_per_table_folder_and_reports_the_retentions_it_extended(seeded, tmp_path,
                                                                                         monkeypatch):
    import yaml

    from dynamoguard.notify import FindingsFailed
    from dynamoguard.operators.object_lock import ObjectLockSweepOperator

    s3 = seeded.client("s3")
    write_export(s3, datetime.now(UTC) - timedelta(hours=3))
    write_export(s3, datetime.now(UTC) - timedelta(days=10), table="customers", short_key="data/x1.json.gz")
    with pytest.raises(FindingsFailed, match="retention_too_short=1"):
        ObjectLockSweepOperator(task_id="sweep", enforce=False).execute({})
    store = _store()
    customers = store.load("object_lock_sweep", "customers")
    assert list(_open(customers)) == ["retention_too_short"] and customers["summary"]["objects"] == 6
    orders = store.load("object_lock_sweep", "orders")
    assert orders["findings"] == [] and orders["summary"]["ok"] is True and orders["summary"]["objects"] == 6

    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["backup_bucket"]["enforce_retention"] = True  # the nightly role then grants s3:PutObjectRetention
    (tmp_path / "enforce.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(tmp_path / "enforce.yaml"))
    ObjectLockSweepOperator(task_id="sweep").execute({})  # extends the short retention
    customers = store.load("object_lock_sweep", "customers")
    extended = _open(customers)["retention_extended"]
    assert list(_open(customers)) == ["retention_extended"] and extended["severity"] == "medium"
    assert extended["evidence"]["new_mode"] == "COMPLIANCE" and customers["summary"]["extended"] == 1

    ObjectLockSweepOperator(task_id="sweep").execute({})  # nothing left to repair
    assert _open(store.load("object_lock_sweep", "customers")) == {}
