"""The JSON record of one drill (what was restored from where, RTO, RPO, validation outcome) and where it is kept."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dynamoguard.layout import join
from dynamoguard.timeutil import iso, parse_time, utcnow


def result_of(problems: list[str], validation: dict[str, Any] | None, skipped: list[Any]) -> str:
    """``failed`` on any problem, ``passed_with_warnings`` when newer exports had to be skipped, else ``passed``."""
    if problems or not validation or not validation.get("ok"):
        return "failed"
    return "passed_with_warnings" if skipped else "passed"


def drill_record(*, drill: dict[str, Any], restore: dict[str, Any] | None, validation: dict[str, Any] | None,
                 failure: str | None = None, check: str = "drill_failed", now: datetime | None = None
                 ) -> dict[str, Any]:
    """The JSON record of one drill: what was restored from where, RTO, RPO, validation outcome.

    ``failure``: why a step failed (``"<step>: <message>"``), ``check`` naming its kind (``no_verified_export``,
    ``restore_failed``, ``drill_failed``). The exports skipped on the way to the restore point are listed, each
    with its reason, and turn a passed drill into ``passed_with_warnings``.
    """
    now = now or utcnow()
    restore = restore or {}
    restore_point = drill.get("restore_point")
    started = restore.get("started_at")
    rpo = (parse_time(started) - parse_time(restore_point)).total_seconds() if started and restore_point else None
    problems = list((validation or {}).get("problems", []))
    if failure:
        problems.insert(0, failure)
    skipped = list(drill.get("skipped_exports") or [])
    return {
        "record_version": 2,
        "table": drill["table"],
        "run_id": drill["run_id"],
        "source": drill["source"],
        "account": drill["account"],
        "scratch_table": drill["scratch_table"],
        "restore_point": restore_point,
        "export": drill.get("export"),
        "incremental": _windows_summary(drill.get("incremental")),
        "restore": restore,
        "rto_seconds": restore.get("rto_seconds"),
        "rpo_seconds": rpo,
        "validation": validation,
        "items_validated": (validation or {}).get("items_validated", 0),
        "items_per_second": (validation or {}).get("items_per_second"),
        "result": result_of(problems, validation, skipped),
        "problems": problems,
        "failure": {"check": check, "message": failure} if failure else None,
        "skipped_exports": skipped,
        "warnings": [f"skipped export {s['location']}: {s['reason']}" for s in skipped],
        "recorded_at": iso(now),
    }


def _windows_summary(incremental: dict[str, Any] | None) -> dict[str, Any] | None:
    """The incremental windows applied on top of the export (without their data file lists)."""
    if not incremental:
        return None
    windows = [{k: v for k, v in w.items() if k != "data_keys"} for w in incremental.get("windows", [])]
    return {**incremental, "windows": windows}


def record_key(prefix: str, table: str, scratch_table: str) -> str:
    """``<prefix>/drills/<table>/<scratch table>.json`` (the scratch name ends with the run stamp)."""
    return join(prefix, "drills", table, f"{scratch_table}.json")


def write_record(s3, bucket: str, prefix: str, record: dict[str, Any]) -> str:
    """Put the drill record into the reports bucket; its s3:// URL."""
    key = record_key(prefix, record["table"], record["scratch_table"])
    s3.put_object(Bucket=bucket, Key=key, ContentType="application/json",
                  Body=json.dumps(record, indent=2, sort_keys=True, default=str).encode())
    return f"s3://{bucket}/{key}"
