"""The dynamodb_access_review DAG (dag.test) against the seeded emulator: reports, diff, notification."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

pytestmark = [pytest.mark.aws, pytest.mark.airflow]

REPORTS = "dynamoguard-reports"
TOPIC = "arn:aws:sns:us-east-1:111111111111:dynamoguard-alerts"


def access_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    bag = DagBag(dag_folder=str(DAGS_DIR / "dynamodb_access_review.py"))
    assert bag.import_errors == {}
    return bag.dags["dynamodb_access_review"]


def run(dag, day):
    when = datetime(2026, 3, day, tzinfo=timezone.utc)
    dag_run = dag.test(logical_date=when, run_after=when)
    return dag_run.state, {ti.task_id: ti for ti in dag_run.get_task_instances()}


def read(s3, key):
    return s3.get_object(Bucket=REPORTS, Key=key)["Body"].read().decode()


def subscribe(seeded):
    sqs, sns = seeded.client("sqs"), seeded.client("sns")
    url = sqs.create_queue(QueueName="access-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    return lambda: [json.loads(m["Body"]) for m in
                    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]


def write_previous_report(seeded, day):
    """The report an earlier run would have written (built directly, to keep the test to one DAG run)."""
    from dynamoguard.access.collect import collect_account
    from dynamoguard.access.report import write_report
    from dynamoguard.access.review import run_review
    from dynamoguard.config import load_config

    config = load_config()
    src = {s: seeded.client(s) for s in ("iam", "dynamodb", "s3")}
    snapshots = {
        "source": collect_account("111111111111", src["iam"], ddb=src["dynamodb"], s3=src["s3"],
                                  table_arns=[config.table_arn(t) for t in config.table_names],
                                  buckets=[config.backup_bucket.name]),
        "backup": collect_account("222222222222", seeded.client("iam", account="backup"),
                                  s3=seeded.client("s3", account="backup"), buckets=[config.replica_bucket.name]),
    }
    report = run_review(config, snapshots, f"2026-03-{day:02d}")
    write_report(src["s3"], REPORTS, config.reports_bucket.prefix, report)
    return report


def test_dag_writes_reports_diffs_with_previous_run_and_notifies_new_high_findings(seeded, airflow_db):
    s3, iam = seeded.client("s3"), seeded.client("iam")
    received = subscribe(seeded)
    previous = write_previous_report(seeded, 1)
    assert previous["summary"]["critical"] > 0  # the demo estate's escalation paths

    # a container role: no principal of the demo estate can pass or assume it
    iam.create_role(RoleName="newcomer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="newcomer", PolicyName="drop", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "Drop", "Effect": "Allow", "Action": "dynamodb:DeleteTable",
                                                "Resource": "arn:aws:dynamodb:us-east-1:111111111111:table/orders"}]}))
    state, tis = run(access_dag(), 2)
    assert state == "success", {t: ti.state for t, ti in tis.items()}
    folder = "reports/access-review/2026-03-02/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=REPORTS, Prefix=folder)["Contents"]}
    assert keys == {folder + name for name in ("report.json", "report.html", "snapshot-source.json",
                                               "snapshot-backup.json")}
    summary = tis["review"].xcom_pull(task_ids="review")
    assert summary["report_json"] == "reports/access-review/2026-03-02/report.json"
    assert summary["previous_run"] == "2026-03-01" and summary["notified"] == 1
    assert summary["new_access"] == ["arn:aws:iam::111111111111:role/newcomer can now DeleteTable orders"]
    report = json.loads(read(s3, summary["report_json"]))
    assert report["accounts"] == {"source": "111111111111", "backup": "222222222222"}
    assert [(f["kind"], f["statement"]) for f in report["diff"]["new_findings"]] == [("unlisted_destructive", "Drop")]
    page = read(s3, summary["report_html"])
    assert page.index("Findings (") < page.index("Changes since 2026-03-01") < page.index("Who can do what")
    assert "role/newcomer can now DeleteTable orders" in page
    [message] = received()
    assert "1 new high-severity" in message["Subject"] and "role/newcomer" in message["Message"]


def test_review_stores_each_tables_findings_and_a_later_run_resolves_what_is_gone(seeded, airflow_db):
    from dynamoguard.config import load_config
    from dynamoguard.findings import ACCOUNT_SCOPE, FindingsStore

    config = load_config()
    store = FindingsStore(seeded.client("s3"), REPORTS, config.reports_bucket.prefix)
    iam = seeded.client("iam")
    iam.create_role(RoleName="newcomer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="newcomer", PolicyName="drop", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "Drop", "Effect": "Allow", "Action": "dynamodb:DeleteTable",
                                                "Resource": "arn:aws:dynamodb:us-east-1:111111111111:table/orders"}]}))
    state, _ = run(access_dag(), 2)
    assert state == "success"
    newcomer = "arn:aws:iam::111111111111:role/newcomer"

    def open_findings(scope):
        return [f for f in store.load("access", scope)["findings"] if f["status"] == "open"]

    [dropped] = [f for f in open_findings("orders") if f["evidence"]["principal"] == newcomer]
    assert dropped["check"] == "unlisted_destructive" and dropped["severity"] == "high"
    assert dropped["table"] == "orders" and dropped["evidence"]["statement"] == "Drop"
    admin = [f for f in open_findings("orders") if f["evidence"]["principal"].endswith(":role/platform-admin")]
    assert admin and all(f["evidence"]["policy"] for f in admin)  # the seeded over-broad admin
    for scope in ("orders", "customers", ACCOUNT_SCOPE):
        assert store.load("access", scope)["summary"]["report_json"] == "reports/access-review/2026-03-02/report.json"

    iam.delete_role_policy(RoleName="newcomer", PolicyName="drop")
    state, _ = run(access_dag(), 3)
    assert state == "success"
    assert not [f for f in open_findings("orders") if f["evidence"]["principal"] == newcomer]
    [resolved] = [f for f in store.load("access", "orders")["findings"] if f["id"] == dropped["id"]]
    assert resolved["status"] == "resolved"
    assert store.load("access", ACCOUNT_SCOPE)["summary"]["report_json"].endswith("2026-03-03/report.json")
