"""Wall time of a 3-table nightly backup run: distributed (CeleryExecutor) vs ``airflow standalone``.

    .venv/bin/python benchmarks/bench_topologies.py [--runs 2] [--export-seconds 5] [--only distributed]

For each topology, on this machine, against a dedicated emulator seeded with the demo estate (orders,
customers, inventory; exports stay IN_PROGRESS for ``--export-seconds``):

* ``distributed``: PostgreSQL metadata DB, Redis broker, and ``airflow scheduler``, ``dag-processor``,
  ``triggerer``, ``api-server``, ``celery worker`` (concurrency 4) as separate processes;
* ``standalone``: ``airflow standalone`` (LocalExecutor, parallelism 4, SQLite).

Both use the project's config with ``nightly.poll_interval_seconds=2``. Reports the time to start the
topology until healthy, and for each run the wall time from the REST trigger to the run's success.
PostgreSQL and Redis must be reachable (``.ci/services.sh`` starts them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.e2e.distributed import (  # noqa: E402
    Topology,
    copy_dag,
    ensure_services,
    nightly_date,
    seeded_estate,
    write_config,
)

NIGHTLY = "dynamodb_nightly_backup"


def bench(kind: str, runs: int, export_seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"dynamoguard-bench-{kind}-"))
    dags = work / "dags"
    copy_dag(ROOT / "dags" / f"{NIGHTLY}.py", dags)
    config = write_config(work / "dynamoguard.yaml", poll_interval_seconds=2)
    with seeded_estate(work / "localaws.log", export_seconds) as estate:
        started = time.monotonic()
        with Topology(work, dags, estate.endpoint, standalone=kind == "standalone", config_path=config) as topo:
            startup = time.monotonic() - started
            topo.rest.wait_for_dag(NIGHTLY)
            times = []
            for i in range(runs):
                run = topo.rest.trigger(NIGHTLY, nightly_date(i + 1).isoformat())
                t0 = time.monotonic()
                final = topo.rest.wait_for_run(NIGHTLY, run["dag_run_id"], timeout=600, interval=0.25)
                times.append(time.monotonic() - t0)
                if final["state"] != "success":
                    raise SystemExit(f"{kind}: run {run['dag_run_id']} ended {final['state']}\n{topo.log_tail()}")
                print(f"{kind}: run {i + 1}: {times[-1]:.1f} s", flush=True)
    return {"kind": kind, "startup": startup, "runs": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--export-seconds", type=float, default=5)
    parser.add_argument("--only", choices=["distributed", "standalone"])
    args = parser.parse_args()
    ensure_services()
    kinds = [args.only] if args.only else ["distributed", "standalone"]
    results = [bench(kind, args.runs, args.export_seconds) for kind in kinds]
    print(f"\n3-table nightly run, exports IN_PROGRESS {args.export_seconds:g} s, {args.runs} run(s) each")
    print(f"{'topology':<12} {'startup s':>10} {'median run s':>13} {'min':>7} {'max':>7}")
    for r in results:
        print(f"{r['kind']:<12} {r['startup']:>10.1f} {statistics.median(r['runs']):>13.1f} "
              f"{min(r['runs']):>7.1f} {max(r['runs']):>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
