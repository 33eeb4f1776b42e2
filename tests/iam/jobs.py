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


def run_all(endpoint: str) -> dict[str, str]:
    """Run the nightly backup (exports, Object Lock, replica copy), the retention sweep, a drill from each
    source (full and sample validation), one hour of CloudTrail audit and the access review, and publish one
    notification; each run's state and task states (or the error that stopped it: a broken DAG leaves its
    role without calls, which the caller reports)."""
    from tests.aws.audit_helpers import deliver, digest, event

    end = AUDIT_HOUR + timedelta(hours=1)
    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    jobs = [("nightly", "dynamodb_nightly_backup.py", "dynamodb_nightly_backup", {}),
            ("sweep", "dynamodb_retention_sweep.py", "dynamodb_retention_sweep", {})]
    jobs += [(f"drill-{source}", "dynamodb_restore_drill.py", "dynamodb_restore_drill",
              {"run_conf": {"table": "orders", "source": source, "validation": validation}})
             for source, validation in (("export", "full"), ("pitr", "sample"), ("replica", "sample"))]
    jobs += [("audit", "cloudtrail_audit.py", "cloudtrail_audit", {"run_after": end, "logical_date": end}),
             ("access", "dynamodb_access_review.py", "dynamodb_access_review", {"logical_date": day, "run_after": day})]
    principal = "arn:aws:iam::111111111111:role/orders-service"
    deliver(endpoint, [event("PutItem", principal=principal, tableName="orders", n=1)],
            AUDIT_HOUR + timedelta(minutes=3))
    digest(endpoint, AUDIT_HOUR + timedelta(minutes=59))
    results, dag_runs = {}, {}
    for name, file, dag_id, kwargs in jobs:
        try:
            dag_runs[name] = run = _dag(file, dag_id).test(**kwargs)
            results[name] = f"{run.state} {_states(run)}"
        except Exception as error:  # reported, and the role's missing calls fail the proof
            results[name] = f"error: {str(error)[:500]}"
    results["replica-again"] = _replicate_again(dag_runs.get("nightly"))
    results.update(_incremental(endpoint, dag_runs.get("nightly")))
    results["unlisted-policies"] = _fetch_unlisted_policies(endpoint)
    from dynamoguard.config import load_config
    from dynamoguard.notify import notify

    results["notify"] = str(notify(load_config(), "dynamoguard: IAM proof", "A notification through the alerts topic."))
    return results


def _replicate_again(nightly) -> str:
    """The replica step once more for an export already copied: it compares the existing replicas (HEAD)."""
    from dynamoguard.operators.replicas import ReplicaOperator

    verified = [ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
                for ti in (nightly.get_task_instances() if nightly else [])
                if ti.task_id == "table.verify" and ti.rendered_map_index == "orders"]
    if not verified or not verified[0]:
        return "no verified export of orders"
    try:
        result = ReplicaOperator(task_id="replica_again", table="orders", export=verified[0]).execute({})
        return f"ok {result.get('counts')}"
    except Exception as error:
        return f"error: {str(error)[:500]}"


def _incremental(endpoint: str, nightly) -> dict[str, str]:
    """An hour of incremental exports of orders and a drill to a point inside it from the replica account.

    The window lies before the nightly export (at N): a full export at N - 2 h (replicated), a write moved to
    N - 1.5 h, the incremental run bounded by N - 1 h, the drill's restore point N - 1 h.
    """
    from dynamoguard.config import load_config
    from dynamoguard.exports.manifest import export_folder
    from dynamoguard.exports.start import start_export
    from dynamoguard.layout import export_prefix
    from dynamoguard.operators.replicas import ReplicaOperator
    from dynamoguard.timeutil import iso, parse_time, utcnow
    from include.localaws.seed import source_session
    from tests.aws.test_emulator_export import control, wait

    verified = [ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
                for ti in (nightly.get_task_instances() if nightly else [])
                if ti.task_id == "table.verify" and ti.rendered_map_index == "orders"]
    if not verified or not verified[0]:
        return {"incremental": "no verified nightly export of orders"}
    config = load_config()
    night = parse_time(verified[0]["export_time"])
    full_time, bound = night - timedelta(hours=2), night - timedelta(hours=1)
    ddb = source_session().client("dynamodb", endpoint_url=endpoint)
    ddb.put_item(TableName="orders", Item={"customer_id": {"S": "iam-proof"}, "order_id": {"S": "o-1"},
                                           "status": {"S": "NEW"}})
    control(endpoint, "backdate", {"table": "orders",
                                   "seconds": (utcnow() - (night - timedelta(minutes=90))).total_seconds()})
    prefix = export_prefix(config.backup_bucket.prefix, "orders", full_time)
    try:
        started = start_export(ddb, config.table_arn("orders"), full_time, config.backup_bucket.name, prefix)
        desc = wait(ddb, started.export_arn, timeout=60)
        ReplicaOperator(task_id="replica_full", table="orders", export={
            "bucket": config.backup_bucket.name, "export_time": iso(full_time),
            "export_prefix": export_folder(desc["ExportArn"], prefix)}).execute({})
        run = _dag("dynamodb_incremental_exports.py", "dynamodb_incremental_exports").test(
            logical_date=bound, run_after=bound)
        drill = _dag("dynamodb_restore_drill.py", "dynamodb_restore_drill").test(run_conf={
            "table": "orders", "source": "incremental_replica", "validation": "full", "restore_point": iso(bound)})
        return {"incremental": f"{run.state} {_states(run)}", "drill-incremental": f"{drill.state} {_states(drill)}"}
    except Exception as error:  # reported, and the role's missing calls fail the proof
        return {"incremental": f"error: {str(error)[:500]}"}


def _fetch_unlisted_policies(endpoint: str) -> str:
    """The access review's fallback through both reviewers' connections: an attached managed policy that the
    authorization-details listing left out is read with GetPolicy/GetPolicyVersion."""
    import json

    from dynamoguard import aws
    from dynamoguard.access.collect import managed_policy_documents
    from dynamoguard.config import load_config
    from include.localaws.seed import backup_session, source_session

    config = load_config()
    document = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    found = []
    for session, conn_id in ((source_session(), config.access_review_conn_id),
                             (backup_session(endpoint), config.accounts.backup.aws_conn_id)):
        arn = session.client("iam", endpoint_url=endpoint).create_policy(
            PolicyName="dynamoguard-iam-proof", PolicyDocument=document)["Policy"]["Arn"]
        details = {"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [
            {"RoleName": "r", "AttachedManagedPolicies": [{"PolicyName": "dynamoguard-iam-proof", "PolicyArn": arn}]}]}
        try:
            found += list(managed_policy_documents(aws.client(conn_id, "iam", config.region), details))
        except Exception as error:  # reported: the reviewer role's missing calls fail the proof
            return f"error: {str(error)[:500]}"
    return f"ok {found}"
