"""The weekly sweep (dag.test) re-verifies every retained export and replica: tampering in either account
ends in a stored finding, an alert on the SNS topic (read back from a subscribed SQS queue) and a failed
task whose failure notification lists the findings; an untouched estate stays green and silent."""

from __future__ import annotations

import gzip
import json

import pytest

from dynamoguard.config import load_config
from dynamoguard.findings import FindingsStore
from tests.aws.test_reverify import BUCKET, REPLICA, data_key, fast_exports, nightly_export, replicate

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

CONFIG = load_config()


@pytest.fixture
def estate(seeded, airflow_db):
    """An older export of orders and last night's of customers, exported and replicated as the nightly job does;
    an SQS queue subscribed to the alerts topic."""
    fast_exports(seeded)
    exports = [nightly_export(seeded, "orders", 3, CONFIG.backup_bucket.prefix),
               nightly_export(seeded, "customers", 1, CONFIG.backup_bucket.prefix)]
    for export in exports:
        replicate(seeded, export)
    sqs = seeded.client("sqs")
    url = sqs.create_queue(QueueName="sweep-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    seeded.client("sns").subscribe(TopicArn=CONFIG.notifications.sns_topic_arn, Protocol="sqs", Endpoint=arn)
    return seeded, exports, url


def notifications(localaws, url: str) -> list[dict]:
    sqs, out = localaws.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                         for i, m in enumerate(messages)])
    return out


def run_sweep():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / "dynamodb_retention_sweep.py"))
    assert bag.import_errors == {}
    run = bag.dags["dynamodb_retention_sweep"].test()
    return run.state, {ti.task_id: ti.state for ti in run.get_task_instances()}


def stored(localaws, job: str, table: str) -> dict:
    return FindingsStore(localaws.client("s3"), CONFIG.reports_bucket.name, CONFIG.reports_bucket.prefix).load(
        job, table)


def test_untouched_estate_stays_green_and_silent(estate):
    localaws, _, url = estate
    state, tasks = run_sweep()
    assert state == "success", tasks
    for job in ("reverify_exports", "reverify_replicas"):
        orders = stored(localaws, job, "orders")
        assert orders["findings"] == [] and orders["summary"]["exports_checked"] == 1
        assert orders["summary"]["objects"] > 0
        assert stored(localaws, job, "customers")["summary"]["exports_checked"] == 1
    assert notifications(localaws, url) == []


def test_new_version_over_an_old_exports_data_file_is_found_alerted_and_fails_the_sweep(estate):
    localaws, exports, url = estate
    s3 = localaws.client("s3")
    key = data_key(s3, BUCKET, exports[0])
    forged = s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b'{"Item":{"pk":{"S":"forged"}}}\n'))

    state, tasks = run_sweep()
    assert state == "failed" and tasks["reverify_exports"] == "failed" and tasks["reverify_replicas"] == "success"
    found = {f["check"]: f for f in stored(localaws, "reverify_exports", "orders")["findings"]}
    assert set(found) == {"overwrite_attempt", "content_mismatch"}
    assert found["overwrite_attempt"]["severity"] == "high"
    assert found["overwrite_attempt"]["evidence"]["current_version"] == forged["VersionId"]
    assert found["content_mismatch"]["severity"] == "critical"

    messages = {m["Subject"]: m["Message"] for m in notifications(localaws, url)}
    alert = messages["dynamoguard reverify_exports: 2 new finding(s) for orders"]
    assert f"s3://{BUCKET}/{key}" in alert and forged["VersionId"] in alert and '"expected"' in alert
    assert "Run: dags/dynamodb_retention_sweep/runs/" in alert
    failure = messages["dynamoguard FAILED: dynamodb_retention_sweep.reverify_exports"]
    assert "Findings (2):" in failure and f"s3://{BUCKET}/{key}" in failure


def test_replica_deleted_in_the_backup_account_is_found_by_the_weekly_job(estate):
    localaws, exports, url = estate
    backup = localaws.client("s3", account="backup")
    key = data_key(backup, REPLICA, exports[1])
    marker = backup.delete_object(Bucket=REPLICA, Key=key)["VersionId"]

    state, tasks = run_sweep()
    assert state == "failed" and tasks["reverify_replicas"] == "failed" and tasks["reverify_exports"] == "success"
    [finding] = stored(localaws, "reverify_replicas", "customers")["findings"]
    assert finding["check"] == "delete_attempt" and finding["severity"] == "high"
    assert finding["resource"] == f"s3://{REPLICA}/{key}"
    assert finding["evidence"]["history"][0]["version_id"] == marker
    messages = {m["Subject"]: m["Message"] for m in notifications(localaws, url)}
    assert f"s3://{REPLICA}/{key}" in messages["dynamoguard reverify_replicas: 1 new finding(s) for customers"]
