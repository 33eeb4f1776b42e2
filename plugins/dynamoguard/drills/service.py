"""The steps of a drill as the operators call them: config and clients in, plain results out.

``aws`` is anything with the operator base's ``client(service, account, max_pool_connections)`` and
``conn_id(account)`` (the operator itself, or a stand-in built on :func:`dynamoguard.aws.client` in tests).
Every step that fails writes the drill record first, so a failed drill is never only a log line.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.drills import DrillError, sources
from dynamoguard.drills.record import drill_record, write_record
from dynamoguard.drills.restore_points import latest_verified_export, read_export
from dynamoguard.drills.schema import compare_schema, key_names, source_schema
from dynamoguard.drills.scratch import (
    adopt,
    delete_scratch_table,
    drill_tags,
    expiry,
    extend_expiry,
    scratch_table_name,
    tag_table,
)
from dynamoguard.drills.scratch import sweep as sweep_account
from dynamoguard.drills.validate import validate_full, validate_sample
from dynamoguard.layout import table_prefix
from dynamoguard.timeutil import iso, parse_time, utcnow

log = logging.getLogger(__name__)


def _clients(config, aws, source) -> tuple[Any, Any]:
    """DynamoDB and S3 clients of the connection that runs ``source``'s restores, pooled for the parallel scan."""
    pool = max(32, config.drills.scan_segments + 8)
    return (aws.client("dynamodb", source.connection, max_pool_connections=pool),
            aws.client("s3", source.connection, max_pool_connections=pool))


def record(config, aws, record: dict[str, Any]) -> str:
    """Write the drill record to the reports bucket (drill connection); its s3:// URL."""
    reports = config.reports_bucket
    url = write_record(aws.client("s3", "drill"), reports.name, reports.prefix, record)
    log.info("drill record %s: %s", url, record["result"])
    return url


# ----------------------------------------------------------------------------- prepare


def prepare(config, aws, spec: dict[str, Any]) -> dict[str, Any]:
    """Resolve one drill: source schema, the newest verified export at or before the restore point, scratch name."""
    started = parse_time(spec["started_at"])
    source = sources.get(spec["source"])
    drill = {
        **spec,
        "account": source.account,
        "region": config.region,
        "table_arn": config.table_arn(spec["table"]),
        "scratch_table": scratch_table_name(config.drills.scratch_prefix, spec["table"], spec["run_id"], started),
        "expires_at": iso(expiry(started, config.drills.max_drill_hours, spec["keep_minutes"])),
        "requested_restore_point": spec["restore_point"],
    }
    try:
        description = aws.client("dynamodb", "drill").describe_table(TableName=spec["table"])["Table"]
        drill["schema"] = source_schema(description)
        _, s3 = _clients(config, aws, source)
        at_or_before = parse_time(spec["restore_point"]) if spec["restore_point"] else None
        export, skipped = latest_verified_export(
            s3, source.bucket(config), table_prefix(config.backup_bucket.prefix, spec["table"]), drill["table_arn"],
            at_or_before=at_or_before, copied=source.copied)
    except Exception as error:
        record(config, aws, drill_record(drill=drill, restore=None, validation=None, failure=f"prepare: {error}"))
        raise
    for reason in skipped:
        log.warning("skipped export: %s", reason)
    drill.update(restore_point=export.export_time, export=export.as_dict(), skipped_exports=skipped)
    return drill


# ----------------------------------------------------------------------------- restore


def _tags(drill: dict[str, Any]) -> list[dict[str, str]]:
    return drill_tags(drill["run_id"], drill["table"], parse_time(drill["expires_at"]))


def start_restore(config, aws, drill: dict[str, Any]) -> tuple[Any, timedelta]:
    """Start the restore into the scratch table and tag it; the trigger to wait for and its timeout."""
    source = sources.get(drill["source"])
    ddb, s3 = _clients(config, aws, source)
    started = utcnow()
    try:
        restore = source.start(ddb, s3, drill)
    except ddb.exceptions.TableAlreadyExistsException:
        restore = {"import_arn": None, "table_arn": adopt(ddb, drill["scratch_table"], run_id=drill["run_id"],
                                                          prefix=config.drills.scratch_prefix,
                                                          protected=config.table_names)}
    if restore["import_arn"]:
        log.info("import %s started into %s", restore["import_arn"], restore["table_arn"])
    try:  # DynamoDB may refuse tags while it creates the table; tagged again once the table is ready
        tag_table(ddb, restore["table_arn"], _tags(drill), timeout=10)
    except ClientError as error:
        log.warning("tagging %s deferred until the restore finishes: %s", restore["table_arn"], error)
    restore = {"started_at": iso(started), "table_arn": restore["table_arn"], "import_arn": restore["import_arn"]}
    timeout = timedelta(minutes=config.drills.restore_timeout_minutes)
    poll = config.drills.poll_interval_seconds
    trigger = source.trigger(drill, restore, waiter_delay=poll,
                             waiter_max_attempts=max(1, int(timeout.total_seconds()) // poll),
                             aws_conn_id=aws.conn_id(source.connection), region_name=config.region)
    return trigger, timeout + timedelta(minutes=5)


def finish_restore(config, aws, drill: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The restore record once the wait is over (RTO); a failed restore is tagged, recorded and raised."""
    source = sources.get(drill["source"])
    ddb, _ = _clients(config, aws, source)
    restore: dict[str, Any] = dict(event["restore"])
    failure = None if event.get("status") == "success" else event.get("message", str(event))
    facts, problem = source.outcome(ddb, restore)
    restore.update(facts)
    failure = problem or failure
    finished = utcnow()
    restore["finished_at"] = iso(finished)
    restore["rto_seconds"] = round((finished - parse_time(restore["started_at"])).total_seconds(), 3)
    if failure:
        try:  # the table (if a failed restore left one) came from this run's own request: let cleanup find it
            tag_table(ddb, restore["table_arn"], _tags(drill), timeout=10)
        except ClientError as error:
            log.info("not tagging %s: %s", restore["table_arn"], error)
        record(config, aws, drill_record(drill=drill, restore=restore, validation=None, failure=f"restore: {failure}"))
        raise DrillError(f"restore of {drill['table']} into {drill['scratch_table']} failed: {failure}")
    tag_table(ddb, restore["table_arn"], _tags(drill))
    return restore


# ----------------------------------------------------------------------------- validate


def validate(config, aws, drill: dict[str, Any], restore: dict[str, Any]) -> dict[str, Any]:
    """Validate the scratch table against the export and write the drill record; the record."""
    source = sources.get(drill["source"])
    ddb, s3 = _clients(config, aws, source)
    restored = ddb.describe_table(TableName=drill["scratch_table"])["Table"]
    schema_problems, notes = compare_schema(drill["schema"], restored, imported=source.imported)
    export = read_export(s3, drill["export"]["bucket"], drill["export"]["summary_key"])
    keys = key_names(drill["schema"])
    segments = config.drills.scan_segments
    if drill["validation"] == "full":
        result = validate_full(ddb, s3, drill["scratch_table"], export, keys, segments=segments)
    else:
        result = validate_sample(ddb, s3, drill["scratch_table"], export, keys, size=drill["sample_size"],
                                 seed=drill["run_id"], segments=segments)
    result.problems[:0] = [f"schema: {p}" for p in schema_problems]
    result.notes.extend(notes)
    drill_result = drill_record(drill=drill, restore=restore, validation=result.as_dict())
    record(config, aws, drill_result)
    return drill_result


# ----------------------------------------------------------------------------- cleanup


def keep_until(config, aws, drill: dict[str, Any]) -> datetime | None:
    """When the scratch table may go (its expiry tag moved there), or None to delete it now (or it is gone)."""
    if not drill["keep_minutes"]:
        return None
    ddb, _ = _clients(config, aws, sources.get(drill["source"]))
    until = utcnow() + timedelta(minutes=drill["keep_minutes"])
    if not extend_expiry(ddb, drill["scratch_table"], drill["run_id"], until):
        return None
    log.info("keeping %s until %s", drill["scratch_table"], iso(until))
    return until


def cleanup(config, aws, drill: dict[str, Any]) -> dict[str, Any]:
    """Delete this run's scratch table (guarded); DrillError when it exists but may not be deleted."""
    ddb, _ = _clients(config, aws, sources.get(drill["source"]))
    result = delete_scratch_table(ddb, drill["scratch_table"], prefix=config.drills.scratch_prefix,
                                  protected=config.table_names, run_id=drill["run_id"])
    log.info("cleanup: %s", result)
    if not result["deleted"] and result["reason"] != "does not exist":
        raise DrillError(f"scratch table {drill['scratch_table']} left in place: {result['reason']}")
    return result


def sweep(config, aws) -> list[dict[str, Any]]:
    """Delete expired drill scratch tables in every account a source restores into; one result per prefixed table."""
    results = []
    accounts = {source.account: source.connection for source in sources.registry().values()}
    for account, connection in sorted(accounts.items(), reverse=True):
        ddb = aws.client("dynamodb", connection)
        for result in sweep_account(ddb, prefix=config.drills.scratch_prefix, protected=config.table_names):
            results.append({**result, "account": account})
            log.info("sweep %s: %s", account, result)
    return results
