"""Run every dynamoguard DAG once with dag.test() against the seeded emulator, so the recorder sees each
role's calls even when the IAM tests run without the rest of the suite."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
AUDIT_HOUR = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)


def fast_config(tmp_path: Path) -> Path:
    """The demo config with 1 s polls and retry delays (same tables, buckets and connections)."""
    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["nightly"].update(poll_interval_seconds=1, retry_delay_seconds=1, retries=1)
    config["drills"].update(poll_interval_seconds=1, scan_segments=3)
    path = tmp_path / "dynamoguard-iam.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _dag(file: str, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / file))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def _states(dag_run) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


def run_all(endpoint: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Run the nightly backup (exports, Object Lock, replica copy), the retention sweep, a drill from each
    source, one hour of CloudTrail audit and the access review; each run's state and task states."""
    from tests.aws.audit_helpers import deliver, digest, event

    runs = {"nightly": _dag("dynamodb_nightly_backup.py", "dynamodb_nightly_backup").test()}
    runs["sweep"] = _dag("dynamodb_retention_sweep.py", "dynamodb_retention_sweep").test()
    drill = _dag("dynamodb_restore_drill.py", "dynamodb_restore_drill")
    for source in ("export", "pitr", "replica"):
        runs[f"drill-{source}"] = drill.test(run_conf={"table": "orders", "source": source, "validation": "full"})
    principal = "arn:aws:iam::111111111111:role/orders-service"
    deliver(endpoint, [event("PutItem", principal=principal, tableName="orders", n=1)],
            AUDIT_HOUR + timedelta(minutes=3))
    digest(endpoint, AUDIT_HOUR + timedelta(minutes=59))
    end = AUDIT_HOUR + timedelta(hours=1)
    runs["audit"] = _dag("cloudtrail_audit.py", "cloudtrail_audit").test(run_after=end, logical_date=end)
    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    runs["access"] = _dag("dynamodb_access_review.py", "dynamodb_access_review").test(logical_date=day, run_after=day)
    return {name: (str(run.state), _states(run)) for name, run in runs.items()}
