"""The steps of a drill as the operators call them: config and clients in, plain results out.

``aws`` is anything with the operator base's ``client(service, account, max_pool_connections)`` and
``conn_id(account)`` (the operator itself, or a stand-in built on :func:`dynamoguard.aws.client` in tests).
Every step that fails writes the drill record first and raises :class:`~dynamoguard.drills.DrillFailed` carrying
it (:class:`~dynamoguard.drills.DrillFailedForGood` when a retry cannot change the outcome), so the operator
reports its findings: a failed drill is never only a log line.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.drills import DrillError, DrillFailed, DrillFailedForGood, ExportNotYet, NoVerifiedExport, sources
from dynamoguard.drills.record import drill_record, write_record
from dynamoguard.drills.restore_points import export_summary_keys, latest_verified_export, read_export
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

EXPORT_POLL = timedelta(minutes=5)  # how often a scheduled drill looks for its table's first export


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


def fail(config, aws, drill: dict[str, Any], restore: dict[str, Any] | None, step: str, error: BaseException | str,
         *, check: str, for_good: bool, message: str | None = None):
    """Write the failed drill's record (problem ``<step>: <error>``) and return the exception to raise."""
    failed = drill_record(drill=drill, restore=restore, validation=None, failure=f"{step}: {error}", check=check)
    record(config, aws, failed)
    return (DrillFailedForGood if for_good else DrillFailed)(message or str(error), failed)


# ----------------------------------------------------------------------------- prepare


def prepare(config, aws, spec: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Resolve one drill: source schema, the newest verified export at or before the restore point, scratch name.

    A scheduled drill (``wait_for_export``) of a table with no export at all, or whose only exports are still
    being written (no manifest yet), raises ExportNotYet until ``drills.max_drill_hours`` after its start, instead
    of failing before the nightly job has run or finished.
    """
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
    prefix = table_prefix(config.backup_bucket.prefix, spec["table"])
    now = now or utcnow()
    may_wait = spec.get("wait_for_export") and now < started + timedelta(hours=config.drills.max_drill_hours)
    try:
        _, s3 = _clients(config, aws, source)
        if may_wait and not export_summary_keys(s3, source.bucket(config), prefix):
            raise ExportNotYet(f"no export of {spec['table']} yet under s3://{source.bucket(config)}/{prefix}",
                               now + EXPORT_POLL)
        try:
            drill["schema"] = source_schema(aws.client("dynamodb", "drill").describe_table(TableName=spec["table"])[
                "Table"])
        except ClientError as error:  # a deleted table: the schema kept with its backups, if its source keeps one
            kept = source.stored_schema(config, s3, spec["table"])
            if error_code(error) != "ResourceNotFoundException" or kept is None:
                raise
            log.warning("table %s does not exist; using the schema kept with its backups", spec["table"])
            drill["schema"] = kept
        at_or_before = parse_time(spec["restore_point"]) if spec["restore_point"] else None
        export, skipped = latest_verified_export(s3, source.bucket(config), prefix, drill["table_arn"],
                                                 at_or_before=at_or_before, copied=source.copied)
    except ExportNotYet:
        raise
    except NoVerifiedExport as error:
        if may_wait and error.skipped and all(s.unfinished for s in error.skipped):
            raise ExportNotYet(f"the exports of {spec['table']} are still being written: {error}",
                               now + EXPORT_POLL) from error
        drill["skipped_exports"] = [s.as_dict() for s in error.skipped]
        raise fail(config, aws, drill, None, "prepare", error, check="no_verified_export", for_good=True) from error
    except Exception as error:
        raise fail(config, aws, drill, None, "prepare", error, check="drill_failed",
                   for_good=isinstance(error, ValueError)) from error
    for skipped_export in skipped:
        log.warning("skipped export: %s", skipped_export)
    drill.update(restore_point=export.export_time, export=export.as_dict(),
                 skipped_exports=[s.as_dict() for s in skipped])
    try:
        source.extend(config, s3, drill, at_or_before)
    except Exception as error:
        raise fail(config, aws, drill, None, "prepare", error, check="drill_failed",
                   for_good=isinstance(error, ValueError)) from error
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
    ddb, s3 = _clients(config, aws, source)
    restore: dict[str, Any] = dict(event["restore"])
    failure = None if event.get("status") == "success" else event.get("message", str(event))
    facts, problem = source.outcome(ddb, restore)
    restore.update(facts)
    failure = problem or failure  # AWS's reason for a failed import: the same ClientToken returns it again
    if not failure:
        try:  # e.g. incremental windows applied onto the imported table (idempotent: a retry applies them again)
            restore.update(source.finish(ddb, s3, drill))
        except (ClientError, DrillError) as error:
            failure = f"completing the restore: {error}"
    finished = utcnow()
    restore["finished_at"] = iso(finished)
    restore["rto_seconds"] = round((finished - parse_time(restore["started_at"])).total_seconds(), 3)
    if failure:
        try:  # the table (if a failed restore left one) came from this run's own request: let cleanup find it
            tag_table(ddb, restore["table_arn"], _tags(drill), timeout=10)
        except ClientError as error:
            log.info("not tagging %s: %s", restore["table_arn"], error)
        raise fail(config, aws, drill, restore, "restore", failure, check="restore_failed",
                   for_good=problem is not None,
                   message=f"restore of {drill['table']} into {drill['scratch_table']} failed: {failure}")
    tag_table(ddb, restore["table_arn"], _tags(drill))
    return restore


# ----------------------------------------------------------------------------- validate


def validate(config, aws, drill: dict[str, Any], restore: dict[str, Any]) -> dict[str, Any]:
    """Validate the scratch table against the export and write the drill record; the record.

    Any difference raises DrillFailedForGood with the record (a retry validates the same table again)."""
    source = sources.get(drill["source"])
    ddb, s3 = _clients(config, aws, source)
    restored = ddb.describe_table(TableName=drill["scratch_table"])["Table"]
    schema_problems, notes = compare_schema(drill["schema"], restored, imported=source.imported)
    export = read_export(s3, drill["export"]["bucket"], drill["export"]["summary_key"])
    keys = key_names(drill["schema"])
    segments = config.drills.scan_segments
    changes = source.changes(s3, drill)
    if drill["validation"] == "full" or changes is not None:
        result = validate_full(ddb, s3, drill["scratch_table"], export, keys, segments=segments, changes=changes)
        if drill["validation"] != "full":
            result.notes.append("a restore with incremental windows is validated in full")
    else:
        result = validate_sample(ddb, s3, drill["scratch_table"], export, keys, size=drill["sample_size"],
                                 seed=drill["run_id"], segments=segments)
    result.problems[:0] = [f"schema: {p}" for p in schema_problems]
    result.notes.extend(notes)
    drill_result = drill_record(drill=drill, restore=restore, validation=result.as_dict())
    record(config, aws, drill_result)
    if drill_result["result"] == "failed":
        raise DrillFailedForGood(f"drill of {drill['table']} failed: " + "; ".join(drill_result["problems"])
                                 + f"; mismatching keys: {result.mismatches}", drill_result)
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
    """Delete expired drill scratch tables in every account a source restores into; one result per prefixed table
    (with its account and ARN)."""
    results = []
    accounts = {source.account: source.connection for source in sources.registry().values()}
    for account, connection in sorted(accounts.items(), reverse=True):
        ddb = aws.client("dynamodb", connection)
        arn = f"arn:aws:dynamodb:{config.region}:{getattr(config.accounts, account).account_id}:table/"
        for result in sweep_account(ddb, prefix=config.drills.scratch_prefix, protected=config.table_names):
            results.append({**result, "account": account, "table_arn": arn + result["table"]})
            log.info("sweep %s: %s", account, result)
    return results
