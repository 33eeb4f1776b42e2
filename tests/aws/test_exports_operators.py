"""The export operators' own decisions, called directly against the emulator (no DAG run needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from dynamoguard.config import DEFAULT_CONFIG_PATH
from dynamoguard.operators.exports import DynamoDBExportPreflightOperator

pytestmark = pytest.mark.aws


@pytest.fixture
def config_with(tmp_path, monkeypatch):
    def write(**nightly) -> None:
        config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
        config["nightly"].update(nightly)
        path = tmp_path / f"c{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(path))

    return write


def test_preflight_waits_for_pitr_to_reach_a_just_passed_export_time(seeded, config_with):
    config_with(max_wait_restorable_minutes=30)
    just_now = datetime.now(timezone.utc) - timedelta(minutes=1)  # PITR lags real time by ~5 minutes
    operator = DynamoDBExportPreflightOperator(task_id="preflight", table="orders")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"data_interval_end": just_now})
    assert deferred.value.method_name == "resume"
    moment = deferred.value.trigger.moment
    assert just_now + timedelta(minutes=4) < moment < just_now + timedelta(minutes=6)


def test_preflight_does_not_wait_longer_than_configured(seeded, config_with):
    config_with(max_wait_restorable_minutes=0)
    operator = DynamoDBExportPreflightOperator(task_id="preflight", table="orders")
    with pytest.raises(AirflowFailException, match="is not restorable yet .* longer than 0:00:00"):
        operator.execute({"data_interval_end": datetime.now(timezone.utc) - timedelta(minutes=1)})


def test_preflight_result_for_a_past_night(seeded, config_with):
    config_with()
    when = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=3)
    result = DynamoDBExportPreflightOperator(task_id="preflight", table="orders").execute({"data_interval_end": when})
    assert result["export_time"] == when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert result["s3_prefix"] == f"exports/orders/{when.date().isoformat()}"
    assert result["export_time_source"] == "data_interval_end" and result["deletion_protection"] is True
