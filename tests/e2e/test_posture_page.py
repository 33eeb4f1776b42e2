"""The posture page in a real browser, after a real nightly run and drills (airflow standalone + emulator).

The nightly backup and a restore drill of every table are triggered over REST; headless Chromium (Playwright,
the system's /usr/bin/chromium) logs in, opens "Backup posture" from Airflow's navigation and checks each
table's row against what those runs stored, opens a finding to see its evidence and a table's charts. An
anonymous request of the JSON gets 401 and no data. Screenshots go to a temporary folder (printed).
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.e2e.distributed import ADMIN_PASSWORD, ADMIN_USER, ROOT, Topology, copy_dag, seeded_estate

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.slow]

NIGHTLY, DRILL = "dynamodb_nightly_backup", "dynamodb_restore_drill"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PLANTED = {"check": "ddb-delete-table", "principal": "arn:aws:iam::111111111111:user/mallory"}


def last_night() -> datetime:
    """The most recent 02:00 UTC that PITR can already restore (the emulator lags a few minutes)."""
    now = datetime.now(timezone.utc) - timedelta(minutes=10)
    night = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return night if night <= now else night - timedelta(days=1)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    with seeded_estate(tmp_path_factory.mktemp("estate") / "localaws.log", export_seconds=2) as aws:
        yield aws


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, estate):
    work = tmp_path_factory.mktemp("posture-e2e")
    dags = work / "dags"
    for dag_id in (NIGHTLY, DRILL):
        copy_dag(ROOT / "dags" / f"{dag_id}.py", dags)
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["nightly"].update(poll_interval_seconds=1, retry_delay_seconds=3)
    config["drills"].update(poll_interval_seconds=2)
    config_path = work / "dynamoguard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with Topology(work, dags, estate.endpoint, standalone=True, config_path=config_path,
                  env={"POSTURE_CACHE_SECONDS": "2"}) as topo:
        topo.config = config
        yield topo
    assert topo.leftovers() == [], "processes survived the teardown"


@pytest.fixture(scope="module")
def runs(airflow, estate):
    """A nightly run for last night, then a drill of every table, all triggered over REST; plus one planted
    CloudTrail finding written through the store, so that the page has evidence to open."""
    from dynamoguard.findings import ACCOUNT_SCOPE, Finding, FindingsStore, RunRef

    rest = airflow.rest
    for dag_id in (NIGHTLY, DRILL):
        rest.wait_for_dag(dag_id, timeout=300)
    nightly = rest.trigger(NIGHTLY, last_night().isoformat())
    finished = rest.wait_for_run(NIGHTLY, nightly["dag_run_id"], timeout=600, interval=1)
    assert finished["state"] == "success", airflow.log_tail()
    tables = [t["name"] for t in airflow.config["tables"]]
    drills = [rest.trigger(DRILL, None, {"table": t, "source": "export", "validation": "sample", "sample_size": 5})
              for t in tables]
    for drill in drills:
        finished = rest.wait_for_run(DRILL, drill["dag_run_id"], timeout=600, interval=1)
        assert finished["state"] == "success", airflow.log_tail()
    reports = airflow.config["reports_bucket"]
    store = FindingsStore(estate.client("s3"), reports["name"], reports["prefix"])
    store.record("audit", ACCOUNT_SCOPE, [Finding(
        job="audit", check=PLANTED["check"], severity="high", title=f"DeleteTable on {tables[0]} by mallory",
        resource=f"table/{tables[0]}", table=tables[0], dedup=PLANTED["principal"],
        evidence={"principal": PLANTED["principal"], "event_name": "DeleteTable",
                  "log_key": "AWSLogs/111111111111/CloudTrail/us-east-1/x.json.gz"})],
        RunRef("cloudtrail_audit", "manual__planted", "report"))
    return {"tables": tables, "store": store}


def expected_posture(airflow, runs) -> dict:
    """The posture document built from what the runs stored (the page must show exactly this)."""
    from dynamoguard.posture.aggregate import build, collect

    config = airflow.config
    collected = collect(runs["store"], runs["tables"], workers=8)  # boto3's default pool holds 10
    return build(runs["tables"], collected, datetime.now(timezone.utc),
                 [config["backup_bucket"]["name"], config["replica_bucket"]["name"]])


def test_anonymous_gets_no_data(airflow, runs):
    for path in ("/dynamoguard/api/posture", "/dynamoguard/", f"/dynamoguard/table/{runs['tables'][0]}"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(airflow.base_url + path, timeout=30)
        assert error.value.code in (401, 403), path
        assert runs["tables"][0] not in error.value.read().decode()
    bad = urllib.request.Request(airflow.base_url + "/dynamoguard/api/posture",
                                 headers={"Authorization": "Bearer not-a-token"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=30)
    assert error.value.code in (401, 403)


def test_json_with_a_token_has_every_table_and_each_jobs_last_success(airflow, runs):
    doc = airflow.rest.get("/dynamoguard/api/posture")
    assert [r["table"] for r in doc["tables"]] == runs["tables"]
    expected = expected_posture(airflow, runs)
    for got, want in zip(doc["tables"], expected["tables"], strict=True):
        assert {c: v["status"] for c, v in got["cells"].items()} == {c: v["status"] for c, v in want["cells"].items()}
        assert {j: s["last_success"] for j, s in got["jobs"].items()} == {
            j: s["last_success"] for j, s in want["jobs"].items()}
        # the nightly run checked the Object Lock and the replica of every export, and each table was drilled
        assert {c: got["cells"][c]["status"] for c in ("export", "object_lock", "replica", "drill")} == dict.fromkeys(
            ("export", "object_lock", "replica", "drill"), "green"), got["table"]
    assert any(f["check"] == PLANTED["check"] for f in doc["findings"])


def test_page_in_the_browser(airflow, runs):
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: install it with .ci/services.sh")
    from playwright.sync_api import expect, sync_playwright

    shots = Path(tempfile.mkdtemp(prefix="posture-screenshots-"))
    print(f"\nscreenshots: {shots}")
    expected = expected_posture(airflow, runs)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(airflow.base_url + "/")
        page.get_by_label("Username").fill(ADMIN_USER)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Browse").wait_for(timeout=60_000)
        page.screenshot(path=shots / "1-home.png")

        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="Backup posture").click()
        frame = page.frame_locator("iframe")
        rows = frame.locator("tr[data-table]")
        expect(rows).to_have_count(len(runs["tables"]), timeout=60_000)
        page.screenshot(path=shots / "2-posture.png", full_page=True)
        for want in expected["tables"]:
            row = frame.locator(f'tr[data-table="{want["table"]}"]')
            for cell, value in want["cells"].items():
                expect(row.locator(f'td[data-cell="{cell}"]')).to_have_attribute("data-status", value["status"])
                expect(row.locator(f'td[data-cell="{cell}"]')).to_contain_text(value["reason"].split(" (")[0][:40])

        planted = frame.locator("details.finding", has_text="DeleteTable on")
        planted.locator("summary").click()
        expect(planted.locator("pre")).to_contain_text(PLANTED["principal"])
        planted.scroll_into_view_if_needed()
        page.screenshot(path=shots / "3-finding-open.png")

        frame.locator("select[name=severity]").select_option("high")
        frame.get_by_role("button", name="Filter").click()
        expect(frame.locator("details.finding")).to_have_count(
            sum(1 for f in expected["findings"] if f["severity"] == "high"))
        page.screenshot(path=shots / "4-findings-high.png")

        frame.get_by_role("link", name=runs["tables"][0], exact=True).click()
        expect(frame.locator("svg.chart")).to_have_count(3)
        page.screenshot(path=shots / "5-table-charts.png", full_page=True)
        browser.close()
    print(json.dumps(sorted(p.name for p in shots.iterdir())))
