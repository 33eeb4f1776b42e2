"""
### Backup deadlines

Every protected table must have a verified export of each night by `nightly.deadline_hours` after the
night (the nightly schedule's tick, which is the export time). A nightly run that never started
(scheduler down, DAG paused), hangs or fails before verifying cannot report that itself: this check runs
on its own schedule (`nightly.deadline_check_schedule`), reads each table's last verified export from the
findings store and raises a high `deadline_missed` finding (alerted once, resolved when the export is
verified) for every table that missed the due night.

An outside monitor that must notice when Airflow itself is down reads `summary.last_success` of each job
and table in the findings store (`s3://<reports_bucket>/<prefix>/findings/<job>/<table>.json`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.deadlines import BackupDeadlineOperator

config = load_config()

with DAG(
    dag_id="dynamodb_backup_deadlines",
    schedule=config.nightly.deadline_check_schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=tags("backup", "deadline"),
    default_args=default_args(config),
):
    BackupDeadlineOperator(task_id="check_deadlines", execution_timeout=timedelta(minutes=15))
