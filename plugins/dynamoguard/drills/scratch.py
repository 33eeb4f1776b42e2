"""Scratch tables: names, tags, the one rule deciding whether a table may be deleted, cleanup and the sweeper.

A table is deleted only if it provably is a drill's scratch table (:func:`deletion_refusal`): the scratch
prefix cannot match a protected table, the name has the prefix and is not protected, it has no deletion
protection, and it carries the drill tag of this run (cleanup) or an expiry in the past (sweeper).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.drills import DrillError
from dynamoguard.timeutil import iso, parse_time, utcnow

TAG_DRILL = "dynamoguard:drill"
TAG_EXPIRES = "dynamoguard:expires-at"
TAG_SOURCE = "dynamoguard:source-table"

MAX_TABLE_NAME = 255
_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


def tag_value(text: str) -> str:
    """``text`` reduced to the characters DynamoDB allows in a tag value (at most 256)."""
    return _TAG_UNSAFE.sub("_", text)[:256]


def run_stamp(run_id: str, started: datetime) -> str:
    """Short, unique per run: start time to the second plus 8 hex characters of the run id."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{started.astimezone(timezone.utc):%Y%m%dT%H%M%S}-{digest}"


def scratch_table_name(prefix: str, table: str, run_id: str, started: datetime) -> str:
    """``<prefix><table>-<run stamp>``, shortening the table part if the whole would exceed 255 characters."""
    suffix = f"-{run_stamp(run_id, started)}"
    room = MAX_TABLE_NAME - len(prefix) - len(suffix)
    if room < 1:
        raise DrillError(f"drills.scratch_prefix {prefix!r} is too long to build a scratch table name")
    name = f"{prefix}{table[:room]}{suffix}"
    if not _TABLE_NAME.match(name):
        raise DrillError(f"scratch table name {name!r} is not a valid DynamoDB table name")
    return name


def check_scratch_prefix(prefix: str, protected: Iterable[str]) -> None:
    """Refuse a scratch prefix that could ever name a protected table."""
    if len(prefix) < 3 or not re.match(r"^[a-zA-Z0-9_.-]+$", prefix):
        raise DrillError(f"scratch prefix {prefix!r} must be at least 3 characters of [a-zA-Z0-9_.-]")
    clashing = sorted(name for name in protected if name.startswith(prefix))
    if clashing:
        raise DrillError(f"scratch prefix {prefix!r} matches protected tables {clashing}; refusing to run drills")


def expiry(started: datetime, max_drill_hours: int, keep_minutes: int) -> datetime:
    """When a scratch table counts as abandoned: after the longest drill plus the time it should be kept."""
    return started + timedelta(hours=max_drill_hours, minutes=keep_minutes)


def drill_tags(run_id: str, source_table: str, expires_at: datetime) -> list[dict[str, str]]:
    return [
        {"Key": TAG_DRILL, "Value": tag_value(run_id)},
        {"Key": TAG_EXPIRES, "Value": iso(expires_at)},
        {"Key": TAG_SOURCE, "Value": source_table},
    ]


# ----------------------------------------------------------------------------- the guard


def name_refusal(name: str, *, prefix: str, protected: Iterable[str]) -> str | None:
    """Why no table called ``name`` may ever be deleted by a drill, or None if the name is a scratch name."""
    protected = set(protected)
    if len(prefix) < 3 or any(p.startswith(prefix) for p in protected):
        return f"scratch prefix {prefix!r} is unsafe (too short or matches a protected table)"
    if name in protected:
        return f"{name} is a protected table"
    if not name.startswith(prefix):
        return f"{name} does not start with the scratch prefix {prefix!r}"
    return None


def deletion_refusal(name: str, tags: dict[str, str], *, prefix: str, protected: Iterable[str],
                     run_id: str | None = None, now: datetime | None = None,
                     deletion_protection: bool = False) -> str | None:
    """Why ``name`` must NOT be deleted, or None when it provably is a drill's scratch table.

    A table may be deleted only if: the prefix cannot match a protected table; the name starts with the
    prefix and is not protected; it has no deletion protection; it carries a drill tag, and that tag is
    ``run_id``'s (cleanup of one run) or, when ``run_id`` is None (sweeper), its expiry tag is in the past.
    """
    refusal = name_refusal(name, prefix=prefix, protected=protected)
    if refusal:
        return refusal
    if deletion_protection:
        return f"{name} has deletion protection enabled"
    drill = tags.get(TAG_DRILL)
    if not drill:
        return f"{name} has no {TAG_DRILL} tag"
    if run_id is not None:
        if drill != tag_value(run_id):
            return f"{name} belongs to drill {drill!r}, not {tag_value(run_id)!r}"
        return None
    expires = tags.get(TAG_EXPIRES)
    try:
        expires_at = parse_time(expires) if expires else None
    except ValueError:
        expires_at = None
    if expires_at is None:
        return f"{name} has no valid {TAG_EXPIRES} tag"
    if expires_at > (now or utcnow()):
        return f"{name} expires at {iso(expires_at)}"
    return None


# ----------------------------------------------------------------------------- DynamoDB


def table_tags(ddb, table_arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"ResourceArn": table_arn}
    while True:
        page = ddb.list_tags_of_resource(**kwargs)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def list_tables(ddb) -> Iterator[str]:
    kwargs: dict[str, Any] = {}
    while True:
        page = ddb.list_tables(**kwargs)
        yield from page.get("TableNames", [])
        if not page.get("LastEvaluatedTableName"):
            return
        kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


def tag_table(ddb, table_arn: str, tags: list[dict[str, str]], timeout: float = 120.0) -> None:
    """Tag a new table; DynamoDB may refuse while the table is still being created, so retry a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ddb.tag_resource(ResourceArn=table_arn, Tags=tags)
            return
        except ClientError as error:
            code = error_code(error)
            if code not in ("ResourceInUseException", "ResourceNotFoundException") or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _not_found(error: ClientError) -> bool:
    return error_code(error) == "ResourceNotFoundException"


def _table_and_tags(ddb, name: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    try:
        table = ddb.describe_table(TableName=name)["Table"]
    except ClientError as error:
        if _not_found(error):
            return None
        raise
    return table, table_tags(ddb, table["TableArn"])


def _delete_if_allowed(ddb, table: dict[str, Any], tags: dict[str, str], *, prefix: str, protected: list[str],
                       run_id: str | None, now: datetime | None) -> dict[str, Any]:
    name = table["TableName"]
    refusal = deletion_refusal(name, tags, prefix=prefix, protected=protected, run_id=run_id, now=now,
                               deletion_protection=bool(table.get("DeletionProtectionEnabled")))
    if refusal:
        return {"table": name, "deleted": False, "reason": refusal}
    try:
        ddb.delete_table(TableName=name)
    except ClientError as error:
        if _not_found(error):
            return {"table": name, "deleted": False, "reason": "does not exist"}
        raise
    return {"table": name, "deleted": True, "reason": "scratch table of drill " + tags[TAG_DRILL]}


def delete_scratch_table(ddb, name: str, *, prefix: str, protected: Iterable[str],
                         run_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Delete ``name`` if :func:`deletion_refusal` allows it; the result says what happened and why."""
    protected = list(protected)
    refusal = name_refusal(name, prefix=prefix, protected=protected)
    if refusal:
        return {"table": name, "deleted": False, "reason": refusal}
    found = _table_and_tags(ddb, name)
    if found is None:
        return {"table": name, "deleted": False, "reason": "does not exist"}
    return _delete_if_allowed(ddb, *found, prefix=prefix, protected=protected, run_id=run_id, now=now)


def sweep(ddb, *, prefix: str, protected: Iterable[str], now: datetime | None = None) -> list[dict[str, Any]]:
    """Delete expired drill scratch tables (left by crashed runs); one result per prefixed table, with its
    ``drill_tag`` (None: the table has the prefix but is no drill's, and is left alone)."""
    protected = list(protected)
    check_scratch_prefix(prefix, protected)
    results = []
    for name in list_tables(ddb):
        if not name.startswith(prefix):
            continue
        found = _table_and_tags(ddb, name)
        if found is None:
            results.append({"table": name, "deleted": False, "reason": "does not exist", "drill_tag": None})
            continue
        result = _delete_if_allowed(ddb, *found, prefix=prefix, protected=protected, run_id=None, now=now)
        results.append({**result, "drill_tag": found[1].get(TAG_DRILL)})
    return results


def adopt(ddb, name: str, *, prefix: str, protected: Iterable[str], run_id: str) -> str:
    """A retried restore finds ``name`` already restoring: its ARN if it carries this run's tag, else DrillError."""
    table = ddb.describe_table(TableName=name)["Table"]
    refusal = deletion_refusal(name, table_tags(ddb, table["TableArn"]), prefix=prefix,
                               protected=protected, run_id=run_id)
    if refusal:
        raise DrillError(f"scratch table {name} already exists and is not this run's ({refusal}); not touching it")
    return table["TableArn"]


def extend_expiry(ddb, name: str, run_id: str, keep_until: datetime) -> bool:
    """Move the expiry tag of ``name`` to ``keep_until`` if it is this run's table; False if the table is gone."""
    found = _table_and_tags(ddb, name)
    if found is None:
        return False
    table, tags = found
    if tags.get(TAG_DRILL) == tag_value(run_id):
        ddb.tag_resource(ResourceArn=table["TableArn"], Tags=[{"Key": TAG_EXPIRES, "Value": iso(keep_until)}])
    return True
