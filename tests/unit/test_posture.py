"""The posture page without AWS: cells from stored states, the document, the HTML and the app's auth and cache."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from dynamoguard.findings import ACCOUNT_SCOPE, Finding, RunRef
from dynamoguard.posture import aggregate
from dynamoguard.posture.aggregate import build, known_pairs
from dynamoguard.posture.app import PostureCache, create_app, reader
from dynamoguard.posture.render import filter_findings, line_chart, posture_page, table_page
from tests.fixtures.posture_estate import access_report, estate, healthy_table, stored

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
BUCKETS = ["dynamoguard-exports"]


def posture(states, tables=("orders",), report=None):
    return build(list(tables), {"states": states, "access_report": report}, NOW, BUCKETS)


def row(doc, table="orders"):
    return next(r for r in doc["tables"] if r["table"] == table)


def finding(job, check, severity, table="orders", resource=None, **evidence):
    return Finding(job=job, check=check, severity=severity, title=f"{check} on {table}",
                   resource=resource or f"table/{table}", table=table, evidence=evidence)


def test_known_pairs_cover_every_job_for_each_table_and_the_account():
    pairs = known_pairs(["orders", "customers"])
    assert ("export", "orders") in pairs and ("drill", "customers") in pairs and ("audit", ACCOUNT_SCOPE) in pairs
    assert len(pairs) == len(set(pairs)) == 3 * len(aggregate.JOBS)


def test_healthy_table_is_green_in_every_cell_with_reasons_links_and_charts():
    doc = posture(healthy_table("orders", NOW), report=access_report(["orders"]))
    orders = row(doc, "orders")
    assert {c: cell["status"] for c, cell in orders["cells"].items()} == dict.fromkeys(aggregate.CELLS, "green")
    assert orders["status"] == "green" and doc["totals"] == {"green": 1, "amber": 0, "red": 0}
    export = orders["cells"]["export"]
    assert export["reason"] == "verified 7 h ago: 1340 items, 274.8 KiB, 12 checks passed"
    assert export["details"]["export_time"] == "2026-11-30T02:00:00Z" and export["details"]["age_seconds"] == 7 * 3600
    assert export["link"].startswith("dags/dynamodb_nightly_backup/runs/")
    drill = orders["cells"]["drill"]
    assert drill["reason"].startswith("passed 0 min ago from export: RTO 42 s, RPO 60 min")
    assert drill["link"].endswith("/tasks/drill.record/mapped/0")
    assert len(orders["charts"]["exports"]) == 35 and len(orders["charts"]["drills"]) == 6
    assert orders["jobs"]["export"] == {"last_run": "2026-11-30T09:00:00Z", "ok": True,
                                        "last_success": "2026-11-30T09:00:00Z", "run_url": export["link"], "open": 0}


def test_nothing_stored_yet_says_so_in_words():
    cells = row(posture({}))["cells"]
    assert {c: cells[c]["status"] for c in cells} == {"export": "red", "object_lock": "amber", "replica": "amber",
                                                      "drill": "amber", "audit": "amber", "access": "amber"}
    assert cells["export"]["reason"] == "no verified export recorded yet"
    assert cells["drill"]["reason"].startswith("never drilled")
    assert cells["export"]["link"] is None


@pytest.mark.parametrize("hours,status,words", [(20, "green", "verified 18 h ago"),
                                                (30, "amber", "28 h old: tonight's is late"),
                                                (80, "red", "3 d old: nightly exports missed")])
def test_export_age_decides_its_colour(hours, status, words):
    states = healthy_table("orders", NOW)
    states[("export", "orders")]["summary"]["export_time"] = (NOW - timedelta(hours=hours - 2)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    cell = row(posture(states))["cells"]["export"]
    assert cell["status"] == status and words in cell["reason"]


def test_failed_verification_is_red_and_names_the_problem_and_the_last_good_export():
    states = healthy_table("orders", NOW)
    history = states[("export", "orders")]["history"]
    states[("export", "orders")] = stored("export", "orders", NOW, history=history, summary={
        "export_time": "2026-11-30T02:00:00Z", "ok": False, "item_count": 5},
        findings=[finding("export", "md5_mismatch", "high", key="exports/orders/data/1.json.gz")])
    doc = posture(states)
    cell = row(doc)["cells"]["export"]
    assert cell["status"] == "red"
    assert cell["reason"].startswith("last export failed verification: 1 high: md5_mismatch; last verified export")
    assert cell["details"]["item_count"] == history[-1]["items"]  # the last verified one, from the history
    job = row(doc)["jobs"]["export"]
    assert job["ok"] is False and job["last_success"] == history[-1]["at"]


def test_object_lock_and_replica_findings_make_them_red_or_amber():
    states = healthy_table("orders", NOW)
    states[("object_lock", "orders")] = stored("object_lock", "orders", NOW, findings=[
        finding("object_lock", "retention_too_short", "high", resource="s3://b/k1"),
        finding("object_lock", "retention_too_short", "high", resource="s3://b/k2"),
        finding("object_lock", "legal_hold", "low", resource="s3://b/k3")])
    states[("replica", "orders")] = stored("replica", "orders", NOW, findings=[
        finding("replica", "missing", "high", resource="s3://r/k1")])
    cells = row(posture(states))["cells"]
    assert cells["object_lock"]["status"] == "red"
    assert cells["object_lock"]["reason"] == "2 high: retention_too_short (2); 1 low: legal_hold"
    assert cells["replica"]["status"] == "red" and cells["replica"]["reason"] == "1 high: missing"
    states[("object_lock", "orders")] = stored("object_lock", "orders", NOW, findings=[
        finding("object_lock", "governance_allowed", "medium", resource="s3://b")])
    assert row(posture(states))["cells"]["object_lock"]["status"] == "amber"


def test_stale_checks_turn_amber():
    states = healthy_table("orders", NOW - timedelta(days=3))
    cells = row(posture(states))["cells"]
    assert cells["object_lock"]["status"] == "amber" and "last checked 3 d ago" in cells["object_lock"]["reason"]
    assert cells["audit"]["status"] == "amber"


def test_failed_and_overdue_drills():
    states = healthy_table("orders", NOW)
    drill = states[("drill", "orders")]
    drill["summary"]["result"] = "failed"
    drill["findings"] = stored("drill", "orders", NOW, findings=[
        finding("drill", "items_changed", "high")])["findings"]
    doc = posture(states)
    cell = row(doc)["cells"]["drill"]
    assert cell["status"] == "red" and "failed: 1 high: items_changed" in cell["reason"]
    assert row(doc)["jobs"]["drill"]["last_success"] == drill["history"][-1]["at"]
    states = healthy_table("orders", NOW)
    states[("drill", "orders")]["summary"]["recorded_at"] = "2026-11-10T05:00:00Z"
    cell = row(posture(states))["cells"]["drill"]
    assert cell["status"] == "amber" and "overdue" in cell["reason"]


def test_account_wide_audit_findings_about_a_table_count_for_that_table_only():
    states = healthy_table("orders", NOW) | healthy_table("customers", NOW)
    states[("audit", ACCOUNT_SCOPE)] = stored("audit", ACCOUNT_SCOPE, NOW, findings=[
        finding("audit", "ddb-delete-table", "high", principal="arn:aws:iam::111111111111:user/mallory"),
        Finding(job="audit", check="trail-stopped", severity="high", title="trail stopped", resource="trail/x")])
    doc = posture(states, tables=("orders", "customers"))
    assert row(doc, "orders")["cells"]["audit"]["status"] == "red"
    assert row(doc, "orders")["cells"]["audit"]["reason"] == "1 high: ddb-delete-table"
    assert row(doc, "customers")["cells"]["audit"]["status"] == "green"
    assert doc["account"]["audit"]["ok"] is False and doc["open_findings"]["high"] == 2
    assert {f["scope"] for f in doc["findings"]} == {ACCOUNT_SCOPE}
    del states[("audit", "orders")], states[("audit", "customers")]  # only the account-wide run has reported
    doc = posture(states, tables=("orders", "customers"))
    assert row(doc, "orders")["cells"]["audit"]["reason"] == "1 high: ddb-delete-table"
    assert row(doc, "customers")["cells"]["audit"]["status"] == "green"
    assert row(doc, "customers")["cells"]["audit"]["link"] == doc["account"]["audit"]["run_url"]


def test_access_cell_answers_who_can_delete_disable_pitr_export_and_delete_backups():
    report = access_report(["orders"], extra=[
        {"resource": "table:orders", "principal": "arn:aws:iam::111111111111:user/ops",
         "action": "dynamodb:UpdateContinuousBackups", "decision": "conditional"}])
    cell = row(posture(healthy_table("orders", NOW), report=report))["cells"]["access"]
    who = cell["details"]["who_can"]
    assert who["delete_table"] == [{"principal": "arn:aws:iam::111111111111:role/admin", "decision": "allowed"}]
    assert who["disable_pitr"] == [{"principal": "arn:aws:iam::111111111111:user/ops", "decision": "conditional"}]
    assert [p["principal"] for p in who["export"]] == ["arn:aws:iam::111111111111:role/dynamoguard-nightly"]
    assert who["delete_backups"] == [{"principal": "arn:aws:iam::111111111111:role/admin", "decision": "conditional"}]
    html = posture_page(posture(healthy_table("orders", NOW), report=report))
    assert "<b>Can delete the table:</b> role/admin</div>" in html
    assert "<b>Can turn PITR off:</b> user/ops*</div>" in html


def test_page_has_one_row_per_table_with_coloured_cells_relative_links_and_escaped_text():
    tables, collected = estate(12, NOW)
    collected["states"][("export", tables[1])]["summary"]["ok"] = False
    collected["states"][("audit", tables[2])] = stored("audit", tables[2], NOW, findings=[Finding(
        job="audit", check="x", severity="high", title="<script>alert(1)</script>", resource="r", table=tables[2],
        evidence={"principal": "<b>eve</b>"})])
    doc = build(tables, collected, NOW, BUCKETS)
    html = posture_page(doc)
    assert re.findall(r'<tr data-table="([^"]+)"', html) == tables
    assert re.search(rf'<tr data-table="{tables[1]}" data-status="red">', html)
    assert html.count('data-cell="export" data-status="green"') == 11
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html  # the evidence, escaped, inside the finding's details
    hrefs = re.findall(r'(?:href|action|src)="([^"]*)"', html)
    assert hrefs and not any(h.startswith(("/", "http:", "https:", "//")) for h in hrefs)
    assert '"../dags/dynamodb_nightly_backup/runs/' in html and 'href="api/posture"' in html


def test_findings_filter_by_severity_job_table_and_status():
    tables, collected = estate(30, NOW)
    doc = build(tables, collected, NOW, BUCKETS)
    assert len(filter_findings(doc["findings"], {"job": "audit", "severity": "medium"})) == 3
    assert len(filter_findings(doc["findings"], {"table": "table-0010", "status": "open"})) == 1
    assert filter_findings(doc["findings"], {"severity": "high"}) == []
    html = posture_page(doc, {"table": "table-0020", "bogus": "x"})
    assert html.count('<details class="finding"') == 1 and "Findings (1 of 3)" in html


def test_table_page_charts_every_night_and_every_drill():
    doc = posture(healthy_table("orders", NOW))
    html = table_page(doc, "orders")
    charts = re.findall(r"<svg.*?</svg>", html)
    assert len(charts) == 3
    assert charts[0].count("<circle") == 35 and charts[1].count("<circle") == 35
    assert charts[2].count("<circle") == 12  # RTO and RPO of six drills
    assert 'href="../../dags/' in html and table_page(doc, "nope") is None


def test_chart_marks_failed_drills_and_handles_no_data():
    points = [{"at": "2026-11-01T00:00:00Z", "rto_seconds": 30, "result": "passed"},
              {"at": "2026-11-08T00:00:00Z", "rto_seconds": 90, "result": "failed"}]
    svg = line_chart("RTO", points, [("rto_seconds", "RTO", "#000")], str)
    assert svg.count('stroke="#b3261e"') == 1 and "(failed)" in svg
    assert "no data yet" in line_chart("RTO", [], [("rto_seconds", "RTO", "#000")], str)


def test_anonymous_requests_get_401_and_no_data():
    client = TestClient(create_app(loader=lambda: pytest.fail("no data may be built for an anonymous caller")))
    for path in ("/", "/api/posture", "/table/orders"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "table" not in response.text


def test_authenticated_requests_get_the_page_and_the_json():
    doc = posture(healthy_table("orders", NOW))
    app = create_app(loader=lambda: doc)
    app.dependency_overrides[reader] = lambda: object()
    client = TestClient(app)
    body = client.get("/api/posture").json()
    assert body["tables"][0]["table"] == "orders" and body["tables"][0]["jobs"]["drill"]["ok"] is True
    page = client.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'data-table="orders"' in page.text
    assert client.get("/table/orders").status_code == 200 and client.get("/table/nope").status_code == 404


def test_cache_serves_the_last_build_and_rebuilds_in_the_background_once_stale():
    builds = []

    def loader():
        builds.append(time.monotonic())
        return {"n": len(builds)}

    cache = PostureCache(loader, ttl=0.2)
    assert cache.get() == {"n": 1} and cache.get() == {"n": 1} and len(builds) == 1
    time.sleep(0.3)
    assert cache.get() == {"n": 1}  # stale is served at once ...
    deadline = time.monotonic() + 5
    while cache.get() != {"n": 2} and time.monotonic() < deadline:  # ... while it is rebuilt
        time.sleep(0.02)
    assert cache.get() == {"n": 2} and len(builds) == 2


def test_run_links_use_the_run_ref_url():
    run = RunRef("dynamodb_nightly_backup", "scheduled__2026-11-30T02:00:00+00:00", "orders.verify")
    state = stored("export", "orders", NOW, run=run, summary={"export_time": "2026-11-30T02:00:00Z", "ok": True})
    cell = row(posture({("export", "orders"): state}))["cells"]["export"]
    assert cell["link"] == run.url


def test_weekly_checks_of_retained_backups_colour_the_cells_of_their_table():
    states = healthy_table("orders", NOW)
    states[("reverify_exports", "orders")] = stored("reverify_exports", "orders", NOW, findings=[
        finding("reverify_exports", "object_overwritten", "high", resource="s3://dynamoguard-exports/x")])
    states[("object_lock_sweep", "orders")] = stored("object_lock_sweep", "orders", NOW, findings=[
        finding("object_lock_sweep", "retention_too_short", "high", resource="s3://dynamoguard-exports/y")])
    states[("reverify_replicas", "orders")] = stored("reverify_replicas", "orders", NOW, findings=[
        finding("reverify_replicas", "delete_marker", "medium", resource="s3://dynamoguard-exports-replica/z")])
    cells = row(posture(states, report=access_report(["orders"])))["cells"]
    assert (cells["export"]["status"], cells["export"]["reason"]) == (
        "red", "re-verification of the retained exports: 1 high: object_overwritten")
    assert (cells["object_lock"]["status"], cells["object_lock"]["reason"]) == ("red", "1 high: retention_too_short")
    assert (cells["replica"]["status"], cells["replica"]["reason"]) == ("amber", "1 medium: delete_marker")
    assert cells["drill"]["status"] == "green"
