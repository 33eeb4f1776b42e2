"""Benchmark: the project at the scale of 200 protected tables.

    .venv/bin/python benchmarks/bench_scale.py parse [--tables 3 200] [--repeat 5]
    .venv/bin/python benchmarks/bench_scale.py nightly [--tables 200] [--export-seconds 5]

``parse``: for every DAG file and a trivial DAG, with a synthetic config of N tables (the demo config with its
tables repeated under new names), in a fresh process that has imported Airflow: the first parse (cold: it
imports what the file needs) and the median of ``--repeat`` re-parses with the config cache cleared (warm: the
file run again, the config read and validated again, as in each parse of the DAG processor once the modules are
imported); both are reported next to the trivial DAG's, so the difference is what the project adds. The DAG
processor parses each file in a new process forked from one that has imported Airflow only, so the cold figure
is what every parse costs; warm is the part that grows with the config. Bytecode is cached (in the work folder)
and primed by one parse of every DAG file first, as in a deployment.

``nightly``: one run of ``dynamodb_nightly_backup`` for N tables on the distributed topology
(tests/e2e/distributed.py: scheduler, dag-processor, triggerer, api-server, Celery worker, PostgreSQL, Redis)
against its own emulator holding N small tables (exports IN_PROGRESS ``--export-seconds``). Reports the wall
time from trigger to success, the DAG's task count and the run's task instances (one per table and task of the
mapped task group) and how many ran at the same time at most, and the CPU seconds the scheduler and the triggerer
used during the run; progress is printed every 30 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

TRIVIAL = '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG(dag_id="trivial", schedule=None, start_date=datetime(2026, 1, 1)):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
'''

PRIME = "import sys; from airflow.dag_processing.dagbag import DagBag; DagBag(dag_folder=sys.argv[1])"

PARSE = textwrap.dedent('''
    import statistics, sys, time
    from airflow.dag_processing.dagbag import DagBag
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])  # cold: the imports the file needs, then the file
    cold = time.perf_counter() - started
    assert not bag.import_errors, bag.import_errors
    warm = []
    for _ in range(int(sys.argv[2])):  # warm: imports done, the config read and validated again each time
        try:
            from dynamoguard.config import _load_cached
            _load_cached.cache_clear()
        except ImportError:
            pass
        started = time.perf_counter()
        DagBag(dag_folder=sys.argv[1])
        warm.append(time.perf_counter() - started)
    print(cold, statistics.median(warm), sum(len(d.tasks) for d in bag.dags.values()))
''')


def table_names(count: int) -> list[str]:
    return [f"table{i:03d}" for i in range(count)]


def write_config(path: Path, tables: int, **nightly) -> Path:
    """The demo config with ``tables`` protected tables (the demo's own first, then table000...)."""
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    demo = config["tables"]
    config["tables"] = (demo + [{"name": name, "allowed_principals": demo[0]["allowed_principals"]}
                                for name in table_names(max(0, tables - len(demo)))])[:tables]
    config["nightly"].update(nightly)
    path.write_text(yaml.safe_dump(config))
    return path


def _env(config: Path) -> dict[str, str]:
    """The parsing process's environment: bytecode cached (in the work folder) as in a deployment."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "DYNAMOGUARD_CONFIG": str(config), "AIRFLOW_HOME": str(config.parent / "airflow"),
            "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "PYTHONPYCACHEPREFIX": str(config.parent / "pycache"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}


def parse_times(file: Path, config: Path, repeat: int) -> tuple[float, float, int]:
    """(cold parse, median warm re-parse, task count) of ``file`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PARSE, str(file), str(repeat)], env=_env(config),
                         capture_output=True, text=True, check=True, cwd=ROOT)
    cold, warm, tasks = out.stdout.split()[-3:]
    return float(cold), float(warm), int(tasks)


def parse(counts: list[int], repeat: int) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="dynamoguard-bench-parse-"))
    trivial = work / "trivial_dag.py"
    trivial.write_text(TRIVIAL)
    rows = []
    for count in counts:
        config = write_config(work / f"config-{count}.yaml", count)
        subprocess.run([sys.executable, "-c", PRIME, str(ROOT / "dags")], env=_env(config), check=True, cwd=ROOT,
                       capture_output=True)
        base_cold, base_warm, _ = parse_times(trivial, config, repeat)
        for file in sorted((ROOT / "dags").glob("*.py")):
            cold, warm, tasks = parse_times(file, config, repeat)
            rows.append({"tables": count, "dag": file.stem, "tasks": tasks,
                         "cold_ms": round(cold * 1000), "warm_ms": round(warm * 1000),
                         "trivial_warm_ms": round(base_warm * 1000), "added_warm_ms": round((warm - base_warm) * 1000),
                         "trivial_cold_ms": round(base_cold * 1000), "added_cold_ms": round((cold - base_cold) * 1000)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children, living and reaped."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:4])
        for child in proc.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _overlap(instances: list[dict]) -> int:
    """The most task instances of ``instances`` that ran at the same time."""
    from datetime import datetime

    events = []
    for ti in instances:
        if ti.get("start_date") and ti.get("end_date"):
            events += [(datetime.fromisoformat(ti["start_date"]), 1), (datetime.fromisoformat(ti["end_date"]), -1)]
    running = most = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def nightly(tables: int, export_seconds: float, timeout: float, concurrency: int) -> dict:
    """One nightly run for ``tables`` tables on the distributed topology; wall time, tasks, CPU."""
    import os
    import time

    from tests.e2e.distributed import Topology, copy_dag, ensure_services, nightly_date, seeded_estate

    ensure_services()
    work = Path(tempfile.mkdtemp(prefix="dynamoguard-bench-nightly-"))
    dags = work / "dags"
    copy_dag(ROOT / "dags" / "dynamodb_nightly_backup.py", dags)
    config = write_config(work / "dynamoguard.yaml", tables, poll_interval_seconds=5)
    os.environ["DYNAMOGUARD_CONFIG"] = str(config)  # the seed creates every configured table
    with seeded_estate(work / "localaws.log", export_seconds) as estate:
        topo = Topology(work, dags, estate.endpoint, config_path=config)
        topo.env.update({"AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
                         "AIRFLOW__CORE__PARALLELISM": str(2 * concurrency),
                         "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(2 * concurrency),
                         "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300"})
        with topo:
            topo.rest.wait_for_dag("dynamodb_nightly_backup", timeout=600)
            pids = {name: topo.processes[name].pid for name in ("scheduler", "triggerer")}
            before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            run = topo.rest.trigger("dynamodb_nightly_backup", nightly_date(1).isoformat())
            started = time.monotonic()

            def progress(_run: dict, instances: list[dict]) -> None:
                counts: dict = {}
                for ti in instances:
                    counts[ti["state"]] = counts.get(ti["state"], 0) + 1
                print(f"{time.monotonic() - started:7.0f}s {len(instances)} task instances {counts}", flush=True)

            final = topo.rest.wait_for_run("dynamodb_nightly_backup", run["dag_run_id"], timeout=timeout,
                                           on_poll=progress, interval=30)
            wall = time.monotonic() - started
            cpu = {name: round(_cpu_seconds(pid) - before[name], 1) for name, pid in pids.items()}
            instances = topo.rest.task_instances("dynamodb_nightly_backup", run["dag_run_id"])
    steps = sorted({ti["task_id"].rsplit(".", 1)[-1] for ti in instances})
    return {"tables": tables, "worker_concurrency": concurrency, "state": final["state"], "wall_s": round(wall, 1),
            "dag_tasks": len({ti["task_id"] for ti in instances}), "task_instances": len(instances),
            "named_map_indexes": sum(bool(ti.get("rendered_map_index")) for ti in instances),
            "states": {s: sum(ti["state"] == s for ti in instances) for s in {ti["state"] for ti in instances}},
            "most_running_at_once": _overlap(instances),
            "most_at_once_per_step": {step: _overlap([ti for ti in instances if ti["task_id"].endswith("." + step)])
                                      for step in steps},
            "scheduler_cpu_s": cpu["scheduler"], "triggerer_cpu_s": cpu["triggerer"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("parse")
    p.add_argument("--tables", type=int, nargs="+", default=[3, 200])
    p.add_argument("--repeat", type=int, default=5)
    n = sub.add_parser("nightly")
    n.add_argument("--tables", type=int, default=200)
    n.add_argument("--export-seconds", type=float, default=5)
    n.add_argument("--timeout", type=float, default=5400)
    n.add_argument("--concurrency", type=int, default=8, help="Celery worker concurrency")
    args = parser.parse_args()
    if args.what == "nightly":
        print(json.dumps(nightly(args.tables, args.export_seconds, args.timeout, args.concurrency), indent=1))
    if args.what == "parse":
        rows = parse(args.tables, args.repeat)
        print(f"\n{'tables':>6} {'DAG':<26} {'tasks':>6} {'warm ms':>8} {'trivial':>8} {'added':>6} {'cold ms':>8} "
              f"{'trivial':>8} {'added':>6}")
        for r in rows:
            print(f"{r['tables']:>6} {r['dag']:<26} {r['tasks']:>6} {r['warm_ms']:>8} {r['trivial_warm_ms']:>8} "
                  f"{r['added_warm_ms']:>6} {r['cold_ms']:>8} {r['trivial_cold_ms']:>8} {r['added_cold_ms']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
