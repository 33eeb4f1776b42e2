"""The posture aggregation against the emulator's reports bucket: known keys read with GETs only, no listing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.config import load_config
from dynamoguard.findings import ACCOUNT_SCOPE, Finding, FindingsStore, RunRef
from dynamoguard.posture.aggregate import build, collect, known_pairs

pytestmark = pytest.mark.aws

NIGHTLY = RunRef("dynamodb_nightly_backup", "scheduled__2026-11-30T02:00:00+00:00", "orders.verify")


@pytest.fixture
def store(seeded):
    config = load_config()
    s3 = seeded.client("s3")
    operations: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: operations.append(model.name))
    store = FindingsStore(s3, config.reports_bucket.name, config.reports_bucket.prefix)
    store.operations = operations
    return store


def test_collect_reads_what_the_jobs_stored_and_build_shows_it(store):
    config = load_config()
    now = datetime.now(timezone.utc)
    store.record("export", "orders", [], NIGHTLY, now=now, summary={
        "export_arn": "arn:x", "export_time": (now - timedelta(hours=3)).isoformat(), "item_count": 40, "bytes": 9000,
        "files": 2, "checks_passed": 11, "ok": True}, history_point={"at": now.isoformat(), "items": 40, "bytes": 9000})
    store.record("replica", "orders", [Finding(job="replica", check="missing", severity="high", title="replica missing",
                                               resource="s3://dynamoguard-exports-replica/exports/orders/x",
                                               table="orders")], NIGHTLY, now=now, summary={"checked": 5})
    key = "reports/access-review/2026-11-30/report.json"
    report = {"run_date": "2026-11-30", "resources": [{"id": "table:orders", "name": "orders"}], "matrix": [
        {"resource": "table:orders", "principal": "arn:aws:iam::111111111111:role/admin",
         "action": "dynamodb:DeleteTable", "decision": "allowed"}], "limitations": []}
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=json.dumps(report).encode())
    store.record("access", ACCOUNT_SCOPE, [], RunRef("dynamodb_access_review", "r1", "review"), now=now,
                 summary={"report_json": key})
    store.operations.clear()

    collected = collect(store, config.table_names, workers=8)

    assert set(store.operations) == {"GetObject"}  # never a listing
    assert len(store.operations) == len(known_pairs(config.table_names)) + 1  # every known key + the report
    assert set(collected["states"]) == {("export", "orders"), ("replica", "orders"), ("access", ACCOUNT_SCOPE)}
    doc = build(config.table_names, collected, now, [config.backup_bucket.name])
    orders = doc["tables"][0]
    assert orders["cells"]["export"]["status"] == "green" and "40 items" in orders["cells"]["export"]["reason"]
    assert orders["cells"]["replica"]["status"] == "red" and orders["cells"]["replica"]["reason"] == "1 high: missing"
    assert orders["cells"]["access"]["details"]["who_can"]["delete_table"][0]["principal"].endswith("role/admin")
    assert orders["cells"]["export"]["link"] == NIGHTLY.url
    assert doc["access_review"]["key"] == key and doc["open_findings"]["high"] == 1
    assert [r["status"] for r in doc["tables"][1:]] == ["red", "red"]  # customers, inventory: nothing stored


def test_a_report_named_by_the_store_but_gone_is_said_so(store):
    store.record("access", ACCOUNT_SCOPE, [], RunRef("dynamodb_access_review", "r1", "review"),
                 summary={"report_json": "reports/access-review/1999-01-01/report.json"})
    collected = collect(store, ["orders"])
    assert collected["access_report"] == {"key": "reports/access-review/1999-01-01/report.json", "missing": True}
    assert build(["orders"], collected, datetime.now(timezone.utc))["access_review"]["missing"] is True


@pytest.fixture
def fast_config(tmp_path, monkeypatch):
    """The demo config with 1 s polls, pointed at by DYNAMOGUARD_CONFIG."""
    import yaml

    from tests.dags.test_dag_integrity import DAGS_DIR

    root = DAGS_DIR.parent
    data = yaml.safe_load((root / "include" / "dynamoguard.yaml").read_text())
    data["nightly"].update(poll_interval_seconds=1, retry_delay_seconds=1, retries=1)
    data["drills"].update(poll_interval_seconds=1)
    path = tmp_path / "dynamoguard.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
    return load_config(path)


def _dag(file: str, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / file))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


@pytest.mark.airflow
def test_every_job_on_the_demo_estate_leaves_each_row_green_but_the_seeded_access_findings(
        seeded, airflow_db, fast_config):
    """A nightly run (export, verify, Object Lock, replica), a drill of every table, the Object Lock sweep, an hour
    of CloudTrail audit (a service's own writes, digested) and the access review: every cell of every row is green
    except access, which shows what the seed deliberately grants (the over-broad platform admin among them)."""
    from dynamoguard.operators.object_lock import ObjectLockSweepOperator
    from tests.aws.audit_helpers import deliver, digest, event

    config = fast_config
    tables = config.table_names
    nightly = _dag("dynamodb_nightly_backup.py", "dynamodb_nightly_backup").test()
    assert nightly.state == "success", {ti.task_id: ti.state for ti in nightly.get_task_instances()}
    drills = _dag("dynamodb_restore_drill.py", "dynamodb_restore_drill")
    for table in tables:
        drill = drills.test(run_conf={"table": table, "source": "export", "validation": "sample", "sample_size": 5})
        assert drill.state == "success", table
    ObjectLockSweepOperator(task_id="sweep_retention").execute({})
    hour = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    deliver(seeded.endpoint, [event("PutItem", principal="arn:aws:iam::111111111111:role/orders-service",
                                    tableName="orders", n=1)], hour + timedelta(minutes=3))
    digest(seeded.endpoint, hour + timedelta(minutes=59))
    audit = _dag("cloudtrail_audit.py", "cloudtrail_audit").test(run_after=hour + timedelta(hours=1),
                                                                  logical_date=hour + timedelta(hours=1))
    assert audit.state == "success"
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    review = _dag("dynamodb_access_review.py", "dynamodb_access_review").test(logical_date=day, run_after=day)
    assert review.state == "success"

    store = FindingsStore(seeded.client("s3"), config.reports_bucket.name, config.reports_bucket.prefix)
    doc = build(tables, collect(store, tables, workers=8), datetime.now(timezone.utc),
                [config.backup_bucket.name, config.replica_bucket.name])
    for row in doc["tables"]:
        cells = {name: (cell["status"], cell["reason"]) for name, cell in row["cells"].items()}
        assert {name: status for name, (status, _) in cells.items() if name != "access"} == dict.fromkeys(
            ("export", "object_lock", "replica", "drill", "audit"), "green"), (row["table"], cells)
        assert cells["object_lock"][1].startswith("all ") and "identical and locked" in cells["replica"][1]
        assert row["cells"]["access"]["details"]["who_can"]["delete_table"], row["table"]
    access = [f for f in doc["findings"] if f["job"] == "access" and f["status"] == "open"]
    admin = [f for f in access if f["evidence"]["principal"].endswith(":role/platform-admin")]
    assert admin and {f["job"] for f in doc["findings"] if f["status"] == "open" and f.get("table")} == {"access"}
    assert doc["access_review"]["key"].endswith(f"{day:%Y-%m-%d}/report.json")
    assert {row["cells"]["access"]["status"] for row in doc["tables"]} <= {"amber", "red"}
