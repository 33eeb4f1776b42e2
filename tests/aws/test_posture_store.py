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
