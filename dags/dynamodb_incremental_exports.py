"""
### DynamoDB incremental exports

Every `incremental.interval_minutes` (default 60), one branch (task group) per protected table:

1. **export**: plans the table's next window, chained exactly: it starts where the newest completed window in
   `s3://<backup_bucket>/<prefix>/<table>/incremental/<from>_<to>/` ends (the first one at the last full export's
   ExportTime), and ends at the run's data-interval end (a backfill exports its own interval; a chain more than
   24 hours behind catches up in windows of 24 hours). Starts `ExportType=INCREMENTAL_EXPORT` with a
   deterministic ClientToken (a retry gets the same export), then defers until DynamoDB has finished. Nothing to
   export (the chain already reaches the bound, under 15 minutes since its end, no full export yet): skipped.
2. **verify**: both manifests and their `.md5`, every data file's MD5, ETag and line count, every line's shape
   (`Keys`, `NewImage`/`OldImage`, `Metadata.WriteTimestampMicros` inside the window), nothing else in the folder.
3. **object_lock** and **replica**: as in the nightly backup, on the window's folder.
4. **record** (runs whatever happened before it): findings of job `incremental` (a missed window, a failed window
   naming its step, no full export to chain from, a chain broken by a PITR gap, an RPO above
   `incremental.max_rpo_minutes`) and the table's summary with the **off-account RPO**: the age of the newest
   window end that is verified and replicated.

Drills restore to any point from these windows with the `incremental` source of `dynamodb_restore_drill`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task_group
from airflow.sdk.definitions.timetables.interval import DeltaDataIntervalTimetable

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.incremental import (
    IncrementalExportOperator,
    IncrementalRecordOperator,
    VerifyIncrementalExportOperator,
)
from dynamoguard.operators.object_lock import ObjectLockCheckOperator
from dynamoguard.operators.replicas import ReplicaOperator

config = load_config()
TABLE_LABEL = "{{ task.table }}"

with DAG(
    dag_id="dynamodb_incremental_exports",
    schedule=DeltaDataIntervalTimetable(timedelta(minutes=config.incremental.interval_minutes))
    if config.incremental.enabled else None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=tags("backup", "dynamodb", "incremental"),
    default_args=default_args(config, retries=config.nightly.retries, retry_delay=timedelta(seconds=60)),
) as dag:

    @task_group(group_id="table", tooltip="Incremental exports of one protected table")
    def incremental(table: str) -> None:
        export = IncrementalExportOperator(task_id="export", table=table, map_index_template=TABLE_LABEL)
        verify = VerifyIncrementalExportOperator(task_id="verify", table=table, export=export.output,
                                                 map_index_template=TABLE_LABEL)
        object_lock = ObjectLockCheckOperator(task_id="object_lock", exports=verify.output,
                                              map_index_template="{{ task.exports.table }}")
        replica = ReplicaOperator(task_id="replica", table=table, export=verify.output, map_index_template=TABLE_LABEL)
        record = IncrementalRecordOperator(
            task_id="record", table=table, map_index_template=TABLE_LABEL,
            steps={"export": export.task_id, "verify": verify.task_id, "object_lock": object_lock.task_id,
                   "replica": replica.task_id})
        export >> verify >> object_lock >> replica >> record

    incremental.expand(table=config.table_names)
