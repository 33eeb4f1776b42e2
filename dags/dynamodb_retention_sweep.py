"""
### Weekly Object Lock sweep of the backup bucket

Re-checks every DynamoDB export under `backup_bucket.prefix` that is still inside its retention
period (export time + `backup_bucket.min_retention_days`): the bucket must keep versioning and
Object Lock with a sufficient default retention, and every object must still carry the required
lock mode and a retain-until date at or after export time + the minimum. This catches retention
tampering on old backups, which the nightly check (run once, right after each export) cannot see.

The listing is paged and streamed into a bounded pool of concurrent HEADs (`nightly.max_concurrency`).
With `backup_bucket.enforce_retention` short retentions are extended (never shortened or downgraded).
The task fails when any object violates the policy; the report (all violations counted, the first 20
listed) is in the log and the XCom, and each table's findings are stored (job `object_lock_sweep`).

`reverify_exports` (source account) and `reverify_replicas` (backup account, the replica bucket)
re-verify the content and version history of every export still under retention: original manifests
against their checksum files, every object's current version against the manifest (ETag, else its MD5),
and ListObjectVersions under each export: a second version or a delete marker over an export object is a
high finding (overwrite / delete attempt) naming the versions, even though the lock kept the original.
Findings are stored per table, new critical/high ones alerted; the task fails while any is open.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.object_lock import ObjectLockSweepOperator
from dynamoguard.operators.reverify import ReverifyExportsOperator, ReverifyReplicasOperator

config = load_config()

with DAG(
    dag_id="dynamodb_retention_sweep",
    schedule=config.backup_bucket.sweep_schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=tags("dynamodb", "backup", "object-lock"),
    default_args=default_args(config, retry_delay=timedelta(minutes=5)),
):
    ObjectLockSweepOperator(task_id="sweep_retention", execution_timeout=timedelta(hours=6))
    ReverifyExportsOperator(task_id="reverify_exports", execution_timeout=timedelta(hours=6))
    ReverifyReplicasOperator(task_id="reverify_replicas", execution_timeout=timedelta(hours=6))
