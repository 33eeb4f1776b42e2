"""The replica operator: connections, backup-account role, failure with findings, deferral while PENDING."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from dynamoguard.notify import TaskFailureSnsNotifier
from dynamoguard.operators.replicas import ReplicaOperator
from include.localaws.connections import _aws_connection
from tests.aws.test_replicas import (
    EXPORT_TIME,
    PREFIX,
    REPLICA,
    SOURCE,
    estate,  # noqa: F401 - fixture
    make_export,
    replication_config,
    replication_delay,
    slow_replication,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.aws

EXPORT = {"bucket": SOURCE, "export_prefix": PREFIX, "export_time": EXPORT_TIME.isoformat()}


def operator(**kwargs) -> ReplicaOperator:
    return ReplicaOperator(task_id="replica", table="orders", export=EXPORT, **kwargs)


@pytest.fixture
def verify_config(tmp_path: Path, monkeypatch) -> Path:
    """The demo config in verify mode."""
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "include" / "dynamoguard.yaml").read_text())
    data["replica_bucket"]["mode"] = "verify"
    path = tmp_path / "dynamoguard.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))
    return path


def test_copy_through_the_connections_returns_the_counts(estate):  # noqa: F811
    objects = make_export(estate.client("s3"))
    result = operator().execute({})
    assert result["ok"] and result["mode"] == "copy"
    assert result["copied"] == result["checked"] == len(objects)
    assert operator().execute({})["skipped"] == len(objects)


def test_a_tampered_replica_fails_the_task_naming_the_key_and_notifies(estate):  # noqa: F811
    objects = make_export(estate.client("s3"))
    key = f"{PREFIX}manifest-files.json"
    estate.client("s3", account="backup").put_object(Bucket=REPLICA, Key=key, Body=objects[key] + b"\n")
    task = operator()
    with pytest.raises(AirflowFailException, match=f"different: {key}: replica has"):
        task.execute({})
    [callback] = task.on_failure_callback
    assert isinstance(callback, TaskFailureSnsNotifier)


def _replica_state() -> dict:
    from dynamoguard import aws
    from dynamoguard.config import load_config
    from dynamoguard.findings import FindingsStore

    config = load_config()
    s3 = aws.client(config.accounts.source.aws_conn_id, "s3", config.region)
    return FindingsStore(s3, config.reports_bucket.name, config.reports_bucket.prefix).load("replica", "orders")


def test_each_run_stores_the_tables_replica_findings_and_summary(estate):  # noqa: F811
    objects = make_export(estate.client("s3"))
    operator().execute({})
    state = _replica_state()
    assert state["findings"] == [] and state["summary"]["checked"] == state["summary"]["copied"] == len(objects)
    assert state["summary"]["ok"] is True and state["summary"]["mode"] == "copy"

    key = f"{PREFIX}manifest-files.json"
    estate.client("s3", account="backup").put_object(Bucket=REPLICA, Key=key, Body=objects[key] + b"\n")
    with pytest.raises(AirflowFailException):
        operator().execute({})
    state = _replica_state()
    [finding] = [f for f in state["findings"] if f["status"] == "open"]
    assert finding["check"] == "different" and finding["severity"] == "high" and finding["table"] == "orders"
    assert finding["resource"] == f"s3://{REPLICA}/{key}" and "replica has" in finding["evidence"]["found"]
    assert state["summary"]["ok"] is False and state["summary"]["different"] == 1


def test_a_replica_deleted_in_the_backup_account_is_copied_again_and_reported(estate):  # noqa: F811
    objects = make_export(estate.client("s3"))
    operator().execute({})
    key = f"{PREFIX}data/file000.json.gz"
    backup = estate.client("s3", account="backup")
    marker = backup.delete_object(Bucket=REPLICA, Key=key)["VersionId"]  # a delete marker over the locked copy

    result = operator().execute({})
    assert result["ok"] and result["repaired"] == 1 and result["skipped"] == len(objects) - 1
    assert backup.get_object(Bucket=REPLICA, Key=key)["Body"].read() == objects[key]
    state = _replica_state()
    [finding] = [f for f in state["findings"] if f["status"] == "open"]
    assert finding["check"] == "repaired" and finding["severity"] == "medium"
    assert finding["title"] == (f"orders: re-copied a replica object that had been deleted in the backup account "
                                f"({key})")
    assert marker in finding["evidence"]["found"] and state["summary"]["repaired"] == 1

    assert operator().execute({})["skipped"] == len(objects)  # nothing deleted since: the finding is resolved
    assert [f["status"] for f in _replica_state()["findings"]] == ["resolved"]


@pytest.mark.parametrize(("role_arn", "message"), [
    ("dynamoguard-backup", "cannot act in the backup account 222222222222: assuming the role"),
    ("arn:aws:iam::333333333333:role/dynamoguard-backup", "acts as arn:aws:sts::333333333333:assumed-role/"),
])
def test_a_role_that_cannot_be_assumed_fails_naming_the_connection(estate, monkeypatch, role_arn, message):  # noqa: F811
    make_export(estate.client("s3"), data_files=1)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BACKUP", _aws_connection(estate.endpoint, role_arn=role_arn))
    with pytest.raises(AirflowFailException, match=f"AWS connection 'aws_backup' {message}"):
        operator().execute({})
    assert estate.client("s3", account="backup").list_objects_v2(Bucket=REPLICA).get("KeyCount") == 0


def test_export_from_another_bucket_is_refused(estate):  # noqa: F811
    task = ReplicaOperator(task_id="replica", table="orders", export={**EXPORT, "bucket": "elsewhere"})
    with pytest.raises(AirflowFailException, match="not the configured backup_bucket"):
        task.execute({})


def test_verify_defers_while_replication_is_pending_then_counts_missing(slow_replication, verify_config):  # noqa: F811
    source = slow_replication.client("s3")
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    make_export(source, data_files=1)
    task = operator(poll_seconds=30)

    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    assert deferred.value.method_name == "resume"
    assert deferred.value.trigger.moment - datetime.now(UTC) <= timedelta(seconds=30)
    started = datetime.fromisoformat(deferred.value.kwargs["started"])

    with pytest.raises(TaskDeferred):  # still inside the lag: defers again
        task.resume({}, started=started.isoformat())
    overdue = (started - timedelta(minutes=16)).isoformat()  # replication_lag_minutes is 15
    with pytest.raises(AirflowFailException, match="missing: .*ReplicationStatus PENDING"):
        task.resume({}, started=overdue)


def test_verify_passes_once_replicated(estate, verify_config):  # noqa: F811
    source = estate.client("s3")
    replication_delay(estate, 0)
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=replication_config())
    objects = make_export(source, data_files=1)
    deadline = datetime.now(UTC) + timedelta(seconds=15)
    while any(source.head_object(Bucket=SOURCE, Key=k).get("ReplicationStatus") != "COMPLETED" for k in objects):
        assert datetime.now(UTC) < deadline
    result = operator().execute({})
    replication_delay(estate, 1)
    assert result["ok"] and result["mode"] == "verify" and result["skipped"] == len(objects)


def test_aws_errors_on_objects_fail_with_retries(estate, monkeypatch):  # noqa: F811
    make_export(estate.client("s3"), data_files=1)
    estate.client("s3").put_bucket_policy(Bucket=SOURCE, Policy=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject",'
        f'"Resource":"arn:aws:s3:::{SOURCE}/{PREFIX}data/*"}}]}}'))
    with pytest.raises(AirflowException, match="error: .*data/file000.json.gz: .*GetObject") as failed:
        operator().execute({})
    assert not isinstance(failed.value, AirflowFailException)
