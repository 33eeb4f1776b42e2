"""Every DAG file imports cleanly (no errors, no deprecation warnings) and follows project policy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
EXPECTED_DAGS = {"dynamodb_nightly_backup", "dynamodb_backup_deadlines", "dynamodb_restore_drill", "cloudtrail_audit",
                 "dynamodb_access_review", "dynamodb_retention_sweep", "dynamodb_incremental_exports"}


def _bag(path: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path))


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_imports_without_errors_or_deprecations(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = _bag(path)
    assert bag.import_errors == {}
    assert bag.dags, f"{path.name} defines no DAG"
    deprecations = [
        str(w.message) for w in caught
        if issubclass(w.category, DeprecationWarning)
        and ("airflow" in str(w.message).lower() or "airflow" in w.filename)
    ]
    assert deprecations == []


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_policy(path):
    for dag_id, dag in _bag(path).dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert "dynamoguard" in dag.tags, f"{dag_id} lacks the dynamoguard tag"
        assert dag.start_date.tzinfo is not None, f"{dag_id} has a naive start_date"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_dag_ids_are_unique_and_known():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    assert set(bag.dags) <= EXPECTED_DAGS


def test_task_retries_come_from_the_config(tmp_path, monkeypatch):
    import yaml

    config = yaml.safe_load((DAGS_DIR.parent / "include" / "dynamoguard.yaml").read_text())
    config["tasks"] = {"retries": 5, "retry_delay_seconds": 7}
    path = tmp_path / "dynamoguard.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
    for name in ("cloudtrail_audit.py", "dynamodb_access_review.py", "dynamodb_backup_deadlines.py"):
        for dag in _bag(DAGS_DIR / name).dags.values():
            assert {(t.retries, t.retry_delay.total_seconds()) for t in dag.tasks} == {(5, 7.0)}, dag.dag_id
