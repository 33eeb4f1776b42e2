"""
### DynamoDB restore drill

Restores a protected table into a throw-away **scratch table** and proves that the restored data equals a
verified export, then deletes the scratch table. A backup nobody has restored is a hope, not a backup.

**Trigger by hand** (Trigger button, form): `table`; `source` = `pitr` (RestoreTableToPointInTime),
`export` (ImportTable from the backup bucket) or `replica` (ImportTable in the backup account from the
replica bucket: the disaster path, nothing in the source account is needed for the restore itself),
`incremental` / `incremental_replica` (the same imports, then the incremental windows up to the restore point);
`restore_point` (empty = latest verified export; otherwise the newest verified export at or before that
time; every source restores to that export's time so the result can be compared with it); `validation`
`full` (digest of every item) or `sample` (`sample_size` items read back by key); `keep_minutes` (how long
the scratch table lives after validation). Bad values are rejected when the run is triggered.
**Scheduled runs** (`drills.schedule`) ignore the form: one table per run in rotation, or every table when
`drills.all_tables` is set, each with its configured source and validation. A scheduled drill of a table
that has no export yet waits for the first one (deferred, up to `drills.max_drill_hours`) instead of failing.

**Per table**: `prepare` (find the export, name the scratch table `<scratch_prefix><table>-<run stamp>`)
-> `restore` (deferred until the import is COMPLETED / the table is ACTIVE; import errors fail it with
AWS's message) -> `validate` (key schema and indexes vs the source, item count vs the manifest, content vs
the export's data files) -> `cleanup` (teardown: runs even when restore or validation failed; deletes the
scratch table only if its name has the scratch prefix, it carries this run's `dynamoguard:drill` tag and
it is not a protected table). `sweep` deletes expired scratch tables left by crashed runs, by the same rules.

**Drill history**: every drill writes a JSON record to
`s3://<reports_bucket.name>/<reports_bucket.prefix>/drills/<table>/<scratch table>.json`
(the file name ends with the run's start time, so listing the folder gives the history in order), and
the record is the `validate` task's XCom (`return_value`, or `drill_record` when validation failed).
Read `result` (`passed`; `passed_with_warnings` when newer exports failed verification and were skipped:
`skipped_exports` names them and why; `failed`), `problems`, `rto_seconds` (restore request to usable table),
`rpo_seconds` (age of the restore point when the drill started), `items_validated`, `items_per_second`,
`validation.mismatches` (keys of differing items: `changed`, `missing`, `unexpected`) and `export`
(which export was the restore point). For example:
`aws s3 cp s3://dynamoguard-reports/reports/drills/orders/ . --recursive` and
`jq '[.recorded_at, .result, .rto_seconds, .rpo_seconds] ' *.json`.

**Findings**: every drill reports its findings (skipped exports, no verified export, failed restore, schema
or content mismatches) with the table's summary and history (job `drill`); the sweep reports tables that
carry the scratch prefix but no drill tag (never deleted) and what it deleted (job `drill_sweep`). No
verified export, a failed import and a validation mismatch fail at once, without retry.

**Who may trigger it**: a drill creates tables and reads every item of a backup, so restrict triggering
with DAG-level access control. With the FAB auth manager (docker-compose's), pass
`access_control={"DrillOperators": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}}`
to the DAG and keep other users out of roles with the global `DAG Runs: can_create` permission (the default
User and Op roles have it; global permissions override DAG-level ones). With another auth manager, give the
same rule in its own policy: only the drill operators may create runs of `dynamodb_restore_drill`.
AWS-side, the drill's connection (`drills.aws_conn_id`) may only touch tables named `<scratch_prefix>*`
(include/iam/role-drill.json).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task_group

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.drills import sources
from dynamoguard.operators.drills import (
    DrillCleanupOperator,
    DrillPlanOperator,
    DrillPrepareOperator,
    DrillRestoreOperator,
    DrillSweepOperator,
    DrillValidateOperator,
)

config = load_config()
TABLES = config.table_names

with DAG(
    dag_id="dynamodb_restore_drill",
    schedule=config.drills.schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=tags("dynamodb", "restore-drill"),
    default_args=default_args(config, retries=1, retry_delay=timedelta(seconds=30)),
    params={
        "table": Param(TABLES[0], type="string", enum=TABLES, title="Table",
                       description="The protected table to restore."),
        "source": Param(config.drills.default_source, type="string", enum=list(sources.names()),
                        title="Restore from", values_display=sources.labels()),
        "restore_point": Param(None, type=["null", "string"], format="date-time", title="Restore point",
                               pattern=r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
                               description="Empty: the latest verified export. Otherwise the newest verified "
                                           "export at or before this time (incremental sources: then the "
                                           "windows up to it)."),
        "validation": Param(config.drills.validation, type="string", enum=["full", "sample"], title="Validation"),
        "sample_size": Param(config.drills.sample_size, type="integer", minimum=1, title="Sample size",
                             description="Items read back by key when validation is 'sample'."),
        "keep_minutes": Param(config.drills.keep_minutes, type="integer", minimum=0, title="Keep minutes",
                              description="How long the scratch table lives after validation."),
    },
) as dag:

    @task_group
    def drill(spec):
        prepare = DrillPrepareOperator(task_id="prepare", spec=spec)
        restore = DrillRestoreOperator(task_id="restore", drill=prepare.output)
        validate = DrillValidateOperator(task_id="validate", drill=prepare.output, restore=restore.output)
        cleanup = DrillCleanupOperator(task_id="cleanup", drill=prepare.output)
        restore >> validate >> cleanup.as_teardown(setups=prepare)

    DrillSweepOperator(task_id="sweep")
    drill.expand(spec=DrillPlanOperator(task_id="plan").output)
