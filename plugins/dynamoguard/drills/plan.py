"""The drills of one run: the trigger form's choice for a manual run, the config (rotation or all tables) otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dynamoguard.drills import BadParam, sources
from dynamoguard.drills.scratch import check_scratch_prefix
from dynamoguard.timeutil import iso, parse_time

VALIDATIONS = ("full", "sample")


def rotation_index(interval_start: datetime | None, interval_end: datetime | None, count: int) -> int:
    """Which table a scheduled run drills: one per schedule period, in config order, round the clock."""
    if not interval_end:
        return 0
    period_days = max(1, round(((interval_end - interval_start).total_seconds() if interval_start else 86400) / 86400))
    return (interval_end.date().toordinal() // period_days) % count


def plan_drills(config, params: dict[str, Any], *, run_type: str, run_id: str, started: datetime,
                interval_start: datetime | None = None, interval_end: datetime | None = None) -> list[dict[str, Any]]:
    """The drills of one run: the form's choice for a manual run, config (rotation or all tables) when scheduled.

    Params are checked again here (they are validated at trigger time, but a conf can bypass the form). A scheduled
    drill waits for its table's first export (``wait_for_export``) instead of failing before the nightly job ran.
    """
    check_scratch_prefix(config.drills.scratch_prefix, config.table_names)
    d = config.drills
    if run_type == "scheduled":
        tables = config.tables if d.all_tables else [
            config.tables[rotation_index(interval_start, interval_end, len(config.tables))]]
        specs = [{"table": t.name, "source": t.drill.source or d.default_source,
                  "validation": t.drill.validation or d.validation, "sample_size": d.sample_size,
                  "keep_minutes": d.keep_minutes, "restore_point": None, "wait_for_export": True} for t in tables]
    else:
        specs = [check_params(config, params)]
    return [{**spec, "run_id": run_id, "started_at": iso(started)} for spec in specs]


def check_params(config, params: dict[str, Any]) -> dict[str, Any]:
    """The manual-run params, validated; BadParam names the offending param."""
    table = params.get("table")
    if table not in config.table_names:
        raise BadParam(f"param table: {table!r} is not one of the protected tables {config.table_names}")
    source = params.get("source") or config.drills.default_source
    if source not in sources.names():
        raise BadParam(f"param source: {source!r} is not one of {list(sources.names())}")
    validation = params.get("validation") or config.drills.validation
    if validation not in VALIDATIONS:
        raise BadParam(f"param validation: {validation!r} is not one of {list(VALIDATIONS)}")
    restore_point = params.get("restore_point") or None
    if restore_point is not None:
        try:
            restore_point = iso(parse_time(str(restore_point)))
        except ValueError:
            raise BadParam(f"param restore_point: {restore_point!r} is not an ISO-8601 date-time") from None
    numbers = {}
    for name, default, least in (("sample_size", config.drills.sample_size, 1),
                                 ("keep_minutes", config.drills.keep_minutes, 0)):
        value = params.get(name)
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BadParam(f"param {name}: {value!r} must be an integer >= {least}")
        numbers[name] = value
    return {"table": table, "source": source, "validation": validation, "restore_point": restore_point, **numbers}
