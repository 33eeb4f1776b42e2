"""
### DynamoDB nightly backup

One branch (task group) per protected table in the config, so each table's state shows on its own
and one table failing does not stop the others:

1. **preflight**: the table exists, point-in-time recovery is on (or is turned on when the table has
   `ensure_pitr: true`); records deletion protection and the PITR window; the export time is the run's
   data-interval end (a backfill exports each night as it was), or latest restorable for a run without
   one. A time outside the PITR window fails the table with the window in the message.
2. **export**: starts the point-in-time export to `s3://<backup_bucket>/<prefix>/<table>/<YYYY-MM-DD>/`
   with a deterministic ClientToken, reusing an existing export of the same table and time (retries and
   clears never start a second one), then defers: the triggerer polls DescribeExport, no worker is held.
   A FAILED export fails the task with AWS's FailureCode and FailureMessage.
3. **verify**: manifests and their checksums, every data file's MD5, ETag and item count, totals, the
   export ARN, table and time, and nothing unexpected in the export folder. On success the table's
   Asset `dynamoguard://exports/<table>` is updated with the result.
4. **object_lock**: the backup bucket keeps versioning and Object Lock with a sufficient default
   retention, and every object of the export (HEAD, concurrently) carries `backup_bucket.lock_mode` until
   at least export time + `min_retention_days`; legal holds are reported. With `enforce_retention` short
   retentions are extended. Any violation fails the task (all counted, the first 20 listed).
5. **replica**: in the backup account (connection `accounts.backup.aws_conn_id`, its role assumed), every
   object of the export has an identical, locked replica in `replica_bucket`: copied server-side with a
   SHA-256 check in `copy` mode, or checked after S3 replication in `verify` mode (deferred while objects
   are PENDING, up to `replication_lag_minutes`). Missing, different or unlocked replicas fail the task.

Every step from verify on stores the table's findings and a summary in the findings store (jobs `export`,
`object_lock`, `replica`), which the dynamoguard page reads; a replica deleted in the backup account is copied
again and reported. Any failure is published to `notifications.sns_topic_arn`. Each task's result is in XCom; the verify
result carries `bucket`, `export_prefix`, `export_time`, `object_keys` for the steps that follow it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, TaskGroup

from dynamoguard.config import load_config
from dynamoguard.notify import failure_notifier
from dynamoguard.operators.exports import (
    DynamoDBExportPreflightOperator,
    DynamoDBPointInTimeExportOperator,
    VerifyDynamoDBExportOperator,
    export_asset,
)
from dynamoguard.operators.object_lock import ObjectLockCheckOperator
from dynamoguard.operators.replicas import ReplicaOperator

config = load_config()

with DAG(
    dag_id="dynamodb_nightly_backup",
    schedule=config.nightly.schedule,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["dynamoguard", "backup", "dynamodb"],
    default_args={
        "owner": "dynamoguard",
        "retries": config.nightly.retries,
        "retry_delay": timedelta(seconds=config.nightly.retry_delay_seconds),
        "on_failure_callback": failure_notifier(config),
    },
) as dag:
    for table in config.tables:
        with TaskGroup(group_id=table.name, tooltip=f"Nightly export of {table.name}"):
            preflight = DynamoDBExportPreflightOperator(task_id="preflight", table=table.name)
            export = DynamoDBPointInTimeExportOperator(task_id="export", table=table.name, preflight=preflight.output)
            verify = VerifyDynamoDBExportOperator(
                task_id="verify", table=table.name, export=export.output, outlets=[export_asset(table.name)]
            )
            preflight >> export >> verify
            object_lock = ObjectLockCheckOperator(task_id="object_lock", exports=verify.output)
            object_lock >> ReplicaOperator(task_id="replica", table=table.name, export=verify.output)
