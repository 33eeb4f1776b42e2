"""
### DynamoDB nightly backup

One task group, `table`, mapped over the protected tables of the config: each table is one map index
(named after the table in the UI), its state shows on its own and one table failing does not stop the others.
The DAG has the same five tasks whatever the number of tables, so its parse time and every task's start do
not grow with the estate:

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
   Asset `dynamoguard://exports/<table>` is updated with the result (through the Asset alias
   `dynamoguard-exports`).
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

from datetime import timedelta

from airflow.sdk import DAG, task_group

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.exports import (
    EXPORTS_ALIAS,
    DynamoDBExportPreflightOperator,
    DynamoDBPointInTimeExportOperator,
    VerifyDynamoDBExportOperator,
)
from dynamoguard.operators.object_lock import ObjectLockCheckOperator
from dynamoguard.operators.replicas import ReplicaOperator

config = load_config()
TABLE_LABEL = "{{ task.table }}"

with DAG(
    dag_id="dynamodb_nightly_backup",
    schedule=config.nightly.schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=tags("backup", "dynamodb"),
    default_args=default_args(config, retries=config.nightly.retries,
                              retry_delay=timedelta(seconds=config.nightly.retry_delay_seconds)),
) as dag:

    @task_group(group_id="table", tooltip="Nightly export of one protected table")
    def nightly(table: str) -> None:
        preflight = DynamoDBExportPreflightOperator(task_id="preflight", table=table, map_index_template=TABLE_LABEL)
        export = DynamoDBPointInTimeExportOperator(task_id="export", table=table, preflight=preflight.output,
                                                   map_index_template=TABLE_LABEL)
        verify = VerifyDynamoDBExportOperator(task_id="verify", table=table, export=export.output,
                                              outlets=[EXPORTS_ALIAS], map_index_template=TABLE_LABEL)
        preflight >> export >> verify
        object_lock = ObjectLockCheckOperator(task_id="object_lock", exports=verify.output,
                                              map_index_template="{{ task.exports.table }}")
        object_lock >> ReplicaOperator(task_id="replica", table=table, export=verify.output,
                                       map_index_template=TABLE_LABEL)

    nightly.expand(table=config.table_names)
