"""Airflow glue of the restore drill: read config, build clients from connections, call ``dynamoguard.drills``.

Accounts: ``pitr`` and ``export`` drills create the scratch table in the source account (the drill connection,
``config.drill_conn_id``) from the backup bucket; ``replica`` drills run entirely in the backup account
(connection ``accounts.backup``): ImportTable there reads the replica bucket that account owns, so the drill
proves the backups can be restored without the source account.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator
from botocore.exceptions import ClientError

from dynamoguard import drills
from dynamoguard.aws import client
from dynamoguard.config import Config, load_config

log = logging.getLogger(__name__)

SOURCES = ("pitr", "export", "replica")
VALIDATIONS = ("full", "sample")


def _account(source: str) -> str:
    return "backup" if source == "replica" else "source"


def _conn(config: Config, account: str) -> str:
    return config.accounts.backup.aws_conn_id if account == "backup" else config.drill_conn_id


def _clients(config: Config, drill: dict[str, Any]) -> tuple[Any, Any]:
    conn = drill["aws_conn_id"]
    pool = max(32, config.drills.scan_segments + 8)
    return (client(conn, "dynamodb", config.region, max_pool_connections=pool),
            client(conn, "s3", config.region, max_pool_connections=pool))


# ----------------------------------------------------------------------------- plan


def rotation_index(interval_start: datetime | None, interval_end: datetime | None, count: int) -> int:
    """Which table a scheduled run drills: one per schedule period, in config order, round the clock."""
    if not interval_end:
        return 0
    period_days = max(1, round(((interval_end - interval_start).total_seconds() if interval_start else 86400) / 86400))
    return (interval_end.date().toordinal() // period_days) % count


def plan_drills(config: Config, params: dict[str, Any], *, run_type: str, run_id: str, started: datetime,
                interval_start: datetime | None = None, interval_end: datetime | None = None) -> list[dict[str, Any]]:
    """The drills of one run: the form's choice for a manual run, config (rotation or all tables) when scheduled.

    Params are checked again here (they are validated at trigger time, but a conf can bypass the form).
    """
    drills.check_scratch_prefix(config.drills.scratch_prefix, config.table_names)
    d = config.drills
    if run_type == "scheduled":
        tables = config.tables if d.all_tables else [
            config.tables[rotation_index(interval_start, interval_end, len(config.tables))]]
        specs = [{"table": t.name, "source": t.drill.source or d.default_source,
                  "validation": t.drill.validation or d.validation, "sample_size": d.sample_size,
                  "keep_minutes": d.keep_minutes, "restore_point": None} for t in tables]
    else:
        specs = [check_params(config, params)]
    return [{**spec, "run_id": run_id, "started_at": drills.iso(started)} for spec in specs]


def check_params(config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """The manual-run params, validated; DrillError names the offending param."""
    table = params.get("table")
    if table not in config.table_names:
        raise drills.DrillError(f"param table: {table!r} is not one of the protected tables {config.table_names}")
    source = params.get("source") or config.drills.default_source
    if source not in SOURCES:
        raise drills.DrillError(f"param source: {source!r} is not one of {list(SOURCES)}")
    validation = params.get("validation") or config.drills.validation
    if validation not in VALIDATIONS:
        raise drills.DrillError(f"param validation: {validation!r} is not one of {list(VALIDATIONS)}")
    restore_point = params.get("restore_point") or None
    if restore_point is not None:
        try:
            restore_point = drills.iso(drills.parse_time(str(restore_point)))
        except ValueError:
            raise drills.DrillError(f"param restore_point: {restore_point!r} is not an ISO-8601 date-time") from None
    numbers = {}
    for name, default, least in (("sample_size", config.drills.sample_size, 1),
                                 ("keep_minutes", config.drills.keep_minutes, 0)):
        value = params.get(name)
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise drills.DrillError(f"param {name}: {value!r} must be an integer >= {least}")
        numbers[name] = value
    return {"table": table, "source": source, "validation": validation, "restore_point": restore_point, **numbers}


def prepare_drill(config: Config, spec: dict[str, Any]) -> dict[str, Any]:
    """Resolve one drill: source schema, the newest verified export at or before the restore point, scratch name."""
    started = drills.parse_time(spec["started_at"])
    account = _account(spec["source"])
    drill = {
        **spec,
        "account": account,
        "aws_conn_id": _conn(config, account),
        "region": config.region,
        "table_arn": config.table_arn(spec["table"]),
        "scratch_table": drills.scratch_table_name(config.drills.scratch_prefix, spec["table"], spec["run_id"],
                                                   started),
        "expires_at": drills.iso(drills.expiry(started, config.drills.max_drill_hours, spec["keep_minutes"])),
        "requested_restore_point": spec["restore_point"],
    }
    try:
        source_ddb = client(config.drill_conn_id, "dynamodb", config.region)
        description = source_ddb.describe_table(TableName=spec["table"])["Table"]
        drill["schema"] = {k: description.get(k, []) for k in
                           ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")}
        bucket = config.replica_bucket.name if spec["source"] == "replica" else config.backup_bucket.name
        _, s3 = _clients(config, drill)
        at_or_before = drills.parse_time(spec["restore_point"]) if spec["restore_point"] else None
        export, skipped = drills.latest_verified_export(
            s3, bucket, f"{config.backup_bucket.prefix}/{spec['table']}/", drill["table_arn"],
            at_or_before=at_or_before, copied=spec["source"] == "replica")
    except Exception as error:
        write_record(config, drills.drill_record(drill=drill, restore=None, validation=None,
                                                 failure=f"prepare: {error}"))
        raise
    for reason in skipped:
        log.warning("skipped export: %s", reason)
    drill.update(restore_point=export.export_time, export=export.as_dict(), skipped_exports=skipped)
    return drill


# ----------------------------------------------------------------------------- restore


class DrillRestoreOperator(BaseOperator):
    """Start the restore of ``drill`` into its scratch table, tag it, and wait deferred until it is usable.

    pitr: RestoreTableToPointInTime at the export's time; export/replica: ImportTable of the export's data
    files. FAILED, CANCELLED or ErrorCount > 0 fail the task with AWS's message (and a failed drill record).
    """

    template_fields = ("drill",)

    def __init__(self, *, drill: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.triggers import ImportCompletedTrigger, TableActiveTrigger

        config = load_config()
        drill = self.drill
        ddb, _ = _clients(config, drill)
        started = drills.utcnow()
        tags = drills.drill_tags(drill["run_id"], drill["table"], drills.parse_time(drill["expires_at"]))
        timeout = timedelta(minutes=config.drills.restore_timeout_minutes)
        waits = dict(waiter_delay=config.drills.poll_interval_seconds,
                     waiter_max_attempts=max(1, int(timeout.total_seconds()) // config.drills.poll_interval_seconds),
                     aws_conn_id=drill["aws_conn_id"], region_name=config.region)
        if drill["source"] == "pitr":
            try:
                table_arn = drills.start_pitr_restore(ddb, drill["table"], drill["scratch_table"],
                                                      drills.parse_time(drill["restore_point"]))["TableArn"]
            except ddb.exceptions.TableAlreadyExistsException:
                table_arn = self._adopt(config, ddb, drill)
            import_arn = None
        else:
            _, s3 = _clients(config, drill)
            export = drills.read_export(s3, drill["export"]["bucket"], drill["export"]["summary_key"])
            creation = drills.table_creation_parameters(drill["schema"], drill["scratch_table"])
            description = drills.start_import(ddb, export, creation,
                                              drills.client_token(drill["run_id"], drill["scratch_table"]))
            import_arn, table_arn = description["ImportArn"], description["TableArn"]
            self.log.info("import %s started into %s", import_arn, table_arn)
        try:  # DynamoDB may refuse tags while it creates the table; tagged again once the table is ready
            drills.tag_table(ddb, table_arn, tags, timeout=10)
        except ClientError as error:
            self.log.warning("tagging %s deferred until the restore finishes: %s", table_arn, error)
        restore = {"started_at": drills.iso(started), "table_arn": table_arn, "import_arn": import_arn}
        trigger = (ImportCompletedTrigger(import_arn=import_arn, restore=restore, **waits) if import_arn
                   else TableActiveTrigger(table_name=drill["scratch_table"], restore=restore, **waits))
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout + timedelta(minutes=5))

    @staticmethod
    def _adopt(config: Config, ddb, drill: dict[str, Any]) -> str:
        """A retry finds the scratch table already restoring: continue only if it carries this run's tag."""
        table = ddb.describe_table(TableName=drill["scratch_table"])["Table"]
        refusal = drills.deletion_refusal(table["TableName"], drills.table_tags(ddb, table["TableArn"]),
                                          prefix=config.drills.scratch_prefix, protected=config.table_names,
                                          run_id=drill["run_id"])
        if refusal:
            raise drills.DrillError(f"scratch table {drill['scratch_table']} already exists and is not this "
                                    f"run's ({refusal}); not touching it")
        return table["TableArn"]

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        config = load_config()
        drill = self.drill
        ddb, _ = _clients(config, drill)
        restore: dict[str, Any] = dict(event["restore"])
        started_at, table_arn, import_arn = restore["started_at"], restore["table_arn"], restore["import_arn"]
        failure = None if event.get("status") == "success" else event.get("message", str(event))
        if import_arn:
            description = ddb.describe_import(ImportArn=import_arn)["ImportTableDescription"]
            restore.update({k: description.get(k) for k in
                            ("ImportStatus", "ProcessedItemCount", "ImportedItemCount", "ErrorCount")})
            failure = drills.import_problem(description) or failure
        finished = drills.utcnow()
        restore["finished_at"] = drills.iso(finished)
        restore["rto_seconds"] = round((finished - drills.parse_time(started_at)).total_seconds(), 3)
        tags = drills.drill_tags(drill["run_id"], drill["table"], drills.parse_time(drill["expires_at"]))
        if failure:
            try:  # the table (if a failed restore left one) came from this task's own request: let cleanup find it
                drills.tag_table(ddb, table_arn, tags, timeout=10)
            except ClientError as error:
                self.log.info("not tagging %s: %s", table_arn, error)
            write_record(config, drills.drill_record(drill=drill, restore=restore, validation=None,
                                                     failure=f"restore: {failure}"))
            raise drills.DrillError(f"restore of {drill['table']} into {drill['scratch_table']} failed: {failure}")
        drills.tag_table(ddb, table_arn, tags)
        return restore


# ----------------------------------------------------------------------------- validate and record


def validate_drill(config: Config, drill: dict[str, Any], restore: dict[str, Any]) -> dict[str, Any]:
    """Validate the scratch table against the export and write the drill record; the record."""
    ddb, s3 = _clients(config, drill)
    restored = ddb.describe_table(TableName=drill["scratch_table"])["Table"]
    schema_problems, notes = drills.compare_schema(drill["schema"], restored, imported=drill["source"] != "pitr")
    export = drills.read_export(s3, drill["export"]["bucket"], drill["export"]["summary_key"])
    key_names = tuple(k["AttributeName"] for k in drill["schema"]["KeySchema"])
    segments = config.drills.scan_segments
    if drill["validation"] == "full":
        result = drills.validate_full(ddb, s3, drill["scratch_table"], export, key_names, segments=segments)
    else:
        result = drills.validate_sample(ddb, s3, drill["scratch_table"], export, key_names,
                                        size=drill["sample_size"], seed=drill["run_id"], segments=segments)
    result.problems[:0] = [f"schema: {p}" for p in schema_problems]
    result.notes.extend(notes)
    record = drills.drill_record(drill=drill, restore=restore, validation=result.as_dict())
    write_record(config, record)
    return record


def write_record(config: Config, record: dict[str, Any]) -> str:
    """Put the drill record into the reports bucket; its s3:// URL."""
    s3 = client(config.drill_conn_id, "s3", config.region)
    key = drills.record_key(config.reports_bucket.prefix, record["table"], record["scratch_table"])
    s3.put_object(Bucket=config.reports_bucket.name, Key=key, ContentType="application/json",
                  Body=json.dumps(record, indent=2, sort_keys=True, default=str).encode())
    url = f"s3://{config.reports_bucket.name}/{key}"
    log.info("drill record %s: %s", url, record["result"])
    return url


# ----------------------------------------------------------------------------- cleanup


class DrillCleanupOperator(BaseOperator):
    """Teardown: delete this run's scratch table (after ``keep_minutes``, waiting deferred), guarded by
    :func:`dynamoguard.drills.deletion_refusal`. A scratch table that exists but may not be deleted fails the task."""

    template_fields = ("drill",)

    def __init__(self, *, drill: Any, **kwargs):
        super().__init__(**kwargs)
        self.drill = drill

    def execute(self, context) -> dict[str, Any]:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        drill = self.drill
        if drill["keep_minutes"]:
            config = load_config()
            ddb, _ = _clients(config, drill)
            keep_until = drills.utcnow() + timedelta(minutes=drill["keep_minutes"])
            try:
                table = ddb.describe_table(TableName=drill["scratch_table"])["Table"]
            except ddb.exceptions.ResourceNotFoundException:
                return self.execute_complete(context)
            if drills.table_tags(ddb, table["TableArn"]).get(drills.TAG_DRILL) == drills.tag_value(drill["run_id"]):
                ddb.tag_resource(ResourceArn=table["TableArn"],
                                 Tags=[{"Key": drills.TAG_EXPIRES, "Value": drills.iso(keep_until)}])
            self.log.info("keeping %s until %s", drill["scratch_table"], drills.iso(keep_until))
            self.defer(trigger=DateTimeTrigger(moment=keep_until), method_name="execute_complete")
        return self.execute_complete(context)

    def execute_complete(self, context, event: Any = None) -> dict[str, Any]:
        config = load_config()
        drill = self.drill
        ddb, _ = _clients(config, drill)
        result = drills.delete_scratch_table(ddb, drill["scratch_table"], prefix=config.drills.scratch_prefix,
                                             protected=config.table_names, run_id=drill["run_id"])
        self.log.info("cleanup: %s", result)
        if not result["deleted"] and result["reason"] != "does not exist":
            raise drills.DrillError(f"scratch table {drill['scratch_table']} left in place: {result['reason']}")
        return result


def sweep_scratch_tables(config: Config) -> list[dict[str, Any]]:
    """Delete expired drill scratch tables in both accounts; one result per prefixed table found."""
    results = []
    for account in ("source", "backup"):
        ddb = client(_conn(config, account), "dynamodb", config.region)
        for result in drills.sweep(ddb, prefix=config.drills.scratch_prefix, protected=config.table_names):
            results.append({**result, "account": account})
            log.info("sweep %s: %s", account, result)
    return results
