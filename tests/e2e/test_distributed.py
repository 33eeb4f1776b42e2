"""The distributed topology (CeleryExecutor, PostgreSQL, Redis, five Airflow processes) for real.

One topology serves the module: a probe DAG proves the harness (a task on the Celery worker, conf and
XCom over REST), then the nightly backup DAG, triggered over REST, runs end to end against the emulator
(exports deferred to the triggerer), also with its Celery worker SIGKILLed and with its scheduler
crashed and restarted while the exports are in progress. Every run must succeed with exactly one
export per table (ListExports) whose verification (XCom) found no problem.
"""

from __future__ import annotations

import textwrap
from datetime import datetime

import pytest

from dynamoguard.config import load_config
from tests.e2e.distributed import ROOT, Topology, copy_dag, ensure_services, nightly_date, seeded_estate, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NIGHTLY = "dynamodb_nightly_backup"
EXPORT_SECONDS = 8  # exports stay IN_PROGRESS this long: the window in which the faults are injected

PROBE_DAG = textwrap.dedent('''
    """Probe: one task on the Celery worker, returning where it ran and the run's conf."""
    from datetime import timedelta

    from airflow.sdk import DAG, task

    with DAG("topology_probe", schedule=None, doc_md=__doc__, tags=["test"],
             default_args={"owner": "test", "retries": 1, "retry_delay": timedelta(seconds=2)}):
        @task
        def where(**context):
            import os
            return {"pid": os.getpid(), "home": os.environ["AIRFLOW_HOME"], "conf": context["dag_run"].conf}

        where()
''')


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    with seeded_estate(tmp_path_factory.mktemp("estate") / "localaws.log", EXPORT_SECONDS) as aws:
        yield aws


@pytest.fixture(scope="module")
def topology(tmp_path_factory, estate):
    ensure_services()
    work = tmp_path_factory.mktemp("distributed")
    dags = work / "dags"
    dags.mkdir()
    (dags / "topology_probe.py").write_text(PROBE_DAG)
    copy_dag(ROOT / "dags" / f"{NIGHTLY}.py", dags)
    config_path = write_config(work / "dynamoguard.yaml", poll_interval_seconds=1, retry_delay_seconds=3)
    with Topology(work, dags, estate.endpoint, config_path=config_path) as topo:
        yield topo
    assert topo.leftovers() == [], "processes survived the teardown"


def test_probe_dag_runs_on_the_celery_worker(topology):
    rest = topology.rest
    rest.wait_for_dag("topology_probe")
    run = rest.trigger("topology_probe", None, {"marker": "probe"})
    final = rest.wait_for_run("topology_probe", run["dag_run_id"], timeout=300, interval=0.5)
    assert final["state"] == "success", topology.log_tail()
    [ti] = rest.task_instances("topology_probe", run["dag_run_id"])
    assert ti["queue"] == topology.queue and ti["hostname"]
    result = rest.xcom("topology_probe", run["dag_run_id"], "where")
    assert result["conf"] == {"marker": "probe"}
    assert result["home"] == str(topology.home)
    worker_log = (topology.logs / "worker.log").read_text()
    assert "Executing workload in Celery" in worker_log and "dag_id=topology_probe" in worker_log
    assert result["pid"] not in {topology.processes[n].pid for n in ("scheduler", "api-server", "triggerer")}


def exports_at(estate, export_time: datetime) -> dict[str, list[dict]]:
    """Every export (ListExports, all pages, then DescribeExport) of each table at ``export_time``."""
    ddb = estate.client("dynamodb")
    found: dict[str, list[dict]] = {}
    for table in ddb.list_tables()["TableNames"]:
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        summaries, token = [], None
        while True:
            page = ddb.list_exports(TableArn=arn, MaxResults=25, **({"NextToken": token} if token else {}))
            summaries += page["ExportSummaries"]
            token = page.get("NextToken")
            if not token:
                break
        found[table] = [d for d in (ddb.describe_export(ExportArn=s["ExportArn"])["ExportDescription"]
                                    for s in summaries) if d["ExportTime"] == export_time]
    return found


def label(ti: dict) -> str:
    """A task instance as the UI names it: ``table.export[orders]`` for a mapped one (its table), else its task id."""
    if ti["map_index"] < 0:
        return ti["task_id"]
    return f"{ti['task_id']}[{ti.get('rendered_map_index') or ti['map_index']}]"


def run_nightly(topology, estate, export_time: datetime, during=None) -> dict:
    """Trigger the nightly DAG over REST for ``export_time``; assert success, one export per table, verified."""
    rest = topology.rest
    rest.wait_for_dag(NIGHTLY)
    run = rest.trigger(NIGHTLY, export_time.isoformat())
    final = rest.wait_for_run(NIGHTLY, run["dag_run_id"], timeout=400, on_poll=during, interval=0.5)
    states = {label(t): (t["state"], t["try_number"]) for t in rest.task_instances(NIGHTLY, run["dag_run_id"])}
    assert final["state"] == "success", f"{states}\n{topology.log_tail()}"
    exports = exports_at(estate, export_time)
    ddb = estate.client("dynamodb")
    tables = load_config(topology.env["DYNAMOGUARD_CONFIG"]).table_names  # the order of the mapped task group
    assert sorted(exports) == sorted(tables)
    for table, found in exports.items():
        assert len(found) == 1, f"{table}: {len(found)} exports at {export_time}: {[e['ExportArn'] for e in found]}"
        record = rest.xcom(NIGHTLY, run["dag_run_id"], "table.verify", map_index=tables.index(table))
        assert record["problems"] == [], record["problems"]
        assert record["export_arn"] == found[0]["ExportArn"]
        assert found[0]["ExportStatus"] == "COMPLETED"
        assert datetime.fromisoformat(record["export_time"].replace("Z", "+00:00")) == export_time
        assert record["item_count"] == ddb.scan(TableName=table, Select="COUNT")["Count"] > 0
        assert record["files"] >= 1 and record["object_keys"]
    return {"run": final, "states": states}


def test_nightly_backup_end_to_end(topology, estate):
    outcome = run_nightly(topology, estate, nightly_date(1))
    assert all(state == "success" for state, _ in outcome["states"].values())


class Faults:
    """on_poll callback applying each ``(condition, fault)`` in turn, once, as soon as ``condition(states)``
    holds for the run's task states (label -> state)."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.applied: list[dict] = []

    def __call__(self, run, tis):
        if len(self.applied) < len(self.steps):
            states = {label(t): t["state"] for t in tis}
            condition, fault = self.steps[len(self.applied)]
            if condition(states):
                self.applied.append(states)
                fault()


def exports_in_progress(states) -> bool:
    """An export task is deferred: its export is IN_PROGRESS and the triggerer polls it."""
    return any(task.startswith("table.export[") and state == "deferred" for task, state in states.items())


def task_running(states) -> bool:
    return "running" in states.values()


def test_nightly_survives_worker_sigkill(topology, estate):
    def crash_worker():
        old = _tree(topology.processes["worker"].pid)
        topology.kill("worker")
        assert not [p.pid for p in old if p.is_running()], "the old worker's processes survived SIGKILL"
        topology.start("worker")

    # First while the exports are IN_PROGRESS (deferred tasks must resume on the new worker), then while
    # a task is running on the worker (it must be detected as lost and retried without a second export).
    faults = Faults((exports_in_progress, crash_worker), (task_running, crash_worker))
    run_nightly(topology, estate, nightly_date(2), during=faults)
    assert len(faults.applied) == 2, f"faults applied: {faults.applied}"


def test_nightly_survives_scheduler_crash_and_restart(topology, estate):
    faults = Faults((exports_in_progress, lambda: topology.restart("scheduler")))
    run_nightly(topology, estate, nightly_date(3), during=faults)
    assert faults.applied, "the scheduler was never restarted while an export was in progress"


def _tree(pid):
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]
