"""The posture document: one row per protected table, built from the findings store's known keys.

Every job stores, per (job, scope), its findings, a small ``summary`` and a bounded ``history``
(:mod:`dynamoguard.findings`). :func:`collect` reads the (job, scope) objects of every configured table
and the account scope concurrently, by key (S3 is never listed), plus the latest access-review report the
``access`` summaries name. :func:`build` is pure: it turns those states into the document the page and
``GET /dynamoguard/api/posture`` serve. Each cell is ``green``, ``amber`` or ``red`` with the reason in
words and a link (relative to the Airflow UI) to the run that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from dynamoguard.findings import ACCOUNT_SCOPE, ALERT_SEVERITIES, SEVERITIES, FindingsStore, severity_rank
from dynamoguard.timeutil import iso, parse_time

CELLS = ("export", "object_lock", "replica", "drill", "audit", "access")
JOBS = ("export", "object_lock", "object_lock_sweep", "replica", "drill", "drill_sweep", "audit", "access",
        "incremental", "reverify_exports", "reverify_replicas")
GREEN, AMBER, RED = "green", "amber", "red"
_WORST = {GREEN: 0, AMBER: 1, RED: 2}

EXPORT_LATE = timedelta(hours=26)  # a nightly export older than this is late (amber) ...
EXPORT_MISSED = timedelta(hours=50)  # ... and older than this, a night was missed (red)
CHECK_STALE = timedelta(hours=50)  # Object Lock, replica and access results older than this are stale
AUDIT_STALE = timedelta(hours=3)  # the audit runs hourly
DRILL_STALE = timedelta(days=8)  # drills run weekly
CHART_NIGHTS = 35

# Who can ... the table (access-review matrix actions); backups also count the backup buckets' object deletes.
ACCESS_QUESTIONS = {
    "delete_table": ("delete the table", ("dynamodb:DeleteTable",)),
    "disable_pitr": ("turn PITR off", ("dynamodb:UpdateContinuousBackups",)),
    "export": ("export it", ("dynamodb:ExportTableToPointInTime",)),
    "delete_backups": ("delete its backups", ("dynamodb:DeleteBackup", "s3:DeleteObject", "s3:DeleteObjectVersion")),
}
_GRANTED = ("allowed", "conditional")


def known_pairs(tables: Iterable[str]) -> list[tuple[str, str]]:
    """Every (job, scope) the page reads: each job for each table and for the account scope."""
    scopes = [*tables, ACCOUNT_SCOPE]
    return [(job, scope) for scope in scopes for job in JOBS]


def collect(store: FindingsStore, tables: Iterable[str], workers: int = 32) -> dict[str, Any]:
    """The stored states of every known (job, scope) and the access report they name (GETs only)."""
    states = store.load_many(known_pairs(tables), workers=workers)
    return {"states": states, "access_report": latest_access_report(store, states)}


def latest_access_report(store: FindingsStore, states: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict | None:
    """The access-review report.json named by the newest ``access`` summary (``report_json``), if any."""
    from dynamoguard.aws import error_code

    named = [(s.get("updated") or "", s["summary"]["report_json"]) for (job, _), s in states.items()
             if job == "access" and (s.get("summary") or {}).get("report_json")]
    if not named:
        return None
    _, key = max(named)
    try:
        body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except Exception as error:  # noqa: BLE001 - a report removed since: the cell says so
        if error_code(error) in ("NoSuchKey", "404"):
            return {"key": key, "missing": True}
        raise
    report = json.loads(body)
    report["key"] = key
    return report


# --- cells -----------------------------------------------------------------------------------------------
def _cell(status: str, reason: str, state: Mapping[str, Any] | None = None, **details: Any) -> dict[str, Any]:
    run = (state or {}).get("run") or {}
    return {"status": status, "reason": reason, "at": (state or {}).get("updated"), "link": run.get("url"),
            "details": details}


def _open(findings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [f for f in findings if f.get("status") == "open"]


def _age(moment: Any, now: datetime) -> timedelta | None:
    try:
        return now - parse_time(moment)
    except (TypeError, ValueError):
        return None


def age_text(delta: timedelta | None) -> str:
    """``5 min``, ``3 h``, ``2 d`` (``unknown`` when there is no time)."""
    if delta is None:
        return "unknown"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def size_text(size: Any) -> str:
    """Bytes as ``512 B``, ``1.5 KiB``, ``3.2 MiB`` ..."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _problems(findings: list[Mapping[str, Any]]) -> str:
    """``2 high: retention_too_short (2); 1 medium: legal_hold`` for open findings."""
    by_severity: dict[str, dict[str, int]] = {}
    for f in findings:
        checks = by_severity.setdefault(f["severity"], {})
        checks[f["check"]] = checks.get(f["check"], 0) + 1
    parts = []
    for severity in sorted(by_severity, key=severity_rank):
        checks = by_severity[severity]
        listed = ", ".join(f"{c} ({n})" if n > 1 else c for c, n in sorted(checks.items()))
        parts.append(f"{sum(checks.values())} {severity}: {listed}")
    return "; ".join(parts)


def _findings_status(findings: list[Mapping[str, Any]]) -> str:
    if any(f["severity"] in ALERT_SEVERITIES for f in findings):
        return RED
    return AMBER if findings else GREEN


def _stale(state: Mapping[str, Any], now: datetime, limit: timedelta) -> timedelta | None:
    age = _age(state.get("updated"), now)
    return age if age is not None and age > limit else None


def export_cell(state: Mapping[str, Any] | None, now: datetime,
                reverify_state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Last verified export: time, age, items, bytes, checks passed; late or missed nights; failed verification;
    open findings of the weekly re-verification of the retained exports (``reverify_state``)."""
    if not state:
        return _cell(RED, "no verified export recorded yet")
    summary = state.get("summary") or {}
    rechecked = _open((reverify_state or {}).get("findings", []))
    problems = _open(state.get("findings", []))
    verified = summary if summary.get("ok") is not False and summary.get("export_time") else None
    if verified is None and state.get("history"):
        last = state["history"][-1]
        verified = {"export_time": last.get("at"), "item_count": last.get("items"), "bytes": last.get("bytes")}
    details = {k: (verified or {}).get(k) for k in ("export_time", "item_count", "bytes", "files", "checks_passed",
                                                      "export_arn")}
    age = _age(details["export_time"], now)
    details["age_seconds"] = int(age.total_seconds()) if age is not None else None
    what = (f"{details['item_count']} items, {size_text(details['bytes'])}"
            + (f", {details['checks_passed']} checks passed" if details.get("checks_passed") is not None else ""))
    if summary.get("ok") is False or _findings_status(problems) == RED:
        last = f"; last verified export {age_text(age)} old" if verified else ""
        return _cell(RED, f"last export failed verification: {_problems(problems) or 'not ok'}{last}", state,
                     **details)
    if _findings_status(rechecked) == RED:
        return _cell(RED, f"re-verification of the retained exports: {_problems(rechecked)}", reverify_state,
                     **details)
    problems += rechecked
    if verified is None or age is None:
        return _cell(RED, "no verified export recorded yet", state, **details)
    if age > EXPORT_MISSED:
        return _cell(RED, f"last verified export is {age_text(age)} old: nightly exports missed", state, **details)
    if age > EXPORT_LATE:
        return _cell(AMBER, f"last verified export is {age_text(age)} old: tonight's is late", state, **details)
    if problems:
        return _cell(AMBER, f"verified {age_text(age)} ago ({what}); {_problems(problems)}", state, **details)
    return _cell(GREEN, f"verified {age_text(age)} ago: {what}", state, **details)


def _checked_cell(state: Mapping[str, Any] | None, now: datetime, *, never: str, ok: str,
                  extra: Iterable[Mapping[str, Any]] = (), stale_after: timedelta = CHECK_STALE,
                  account_state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A cell decided by open findings (critical/high red, others amber), a failed run, and staleness.

    ``extra`` are findings of the account scope about this table; without a state of the table's own scope,
    ``account_state`` (the account-wide run) gives the time and link.
    """
    problems = _open([*(state or {}).get("findings", []), *extra])
    state = state or account_state
    if not state and not problems:
        return _cell(AMBER, never)
    summary = (state or {}).get("summary") or {}
    counts = {s: sum(1 for f in problems if f["severity"] == s) for s in SEVERITIES}
    status = _findings_status(problems)
    if summary.get("ok") is False and status != RED:
        return _cell(RED, f"last run failed{': ' + _problems(problems) if problems else ''}", state, open=counts)
    if problems:
        return _cell(status, _problems(problems), state, open=counts)
    stale = _stale(state or {}, now, stale_after)
    if stale is not None:
        return _cell(AMBER, f"{ok}, but last checked {age_text(stale)} ago", state, open=counts)
    return _cell(GREEN, f"{ok} (checked {age_text(_age((state or {}).get('updated'), now))} ago)", state,
                 open=counts)


def object_lock_cell(state, now, sweep_state=None):
    """The nightly check of the last export, and the open findings of the weekly sweep of every retained export."""
    summary = (state or {}).get("summary") or {}
    objects = summary.get("objects", summary.get("checked"))
    ok = f"all {objects} objects locked" if objects is not None else "every object locked"
    return _checked_cell(state, now, never="Object Lock not checked yet", ok=ok,
                         extra=(sweep_state or {}).get("findings", []), account_state=sweep_state)


def replica_cell(state, now, reverify_state=None):
    """The replica step of the last export, and the open findings of the weekly re-verification of the replicas."""
    summary = (state or {}).get("summary") or {}
    objects = summary.get("checked", summary.get("objects"))
    ok = f"identical and locked ({objects} objects)" if objects is not None else "identical and locked"
    return _checked_cell(state, now, never="no replica checked yet", ok=ok,
                         extra=(reverify_state or {}).get("findings", []), account_state=reverify_state)


def drill_cell(state: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """Last drill: result, source, RTO, RPO, when."""
    if not state:
        return _cell(AMBER, "never drilled: no restore has been proven yet")
    summary = state.get("summary") or {}
    details = {k: summary.get(k) for k in ("result", "source", "restore_point", "rto_seconds", "rpo_seconds",
                                            "items_validated", "recorded_at")}
    age = _age(summary.get("recorded_at") or state.get("updated"), now)
    problems = _open(state.get("findings", []))
    if summary.get("result") != "passed":
        why = _problems(problems) or f"result {summary.get('result')!r}"
        return _cell(RED, f"last drill ({summary.get('source')}, {age_text(age)} ago) failed: {why}", state, **details)
    measured = (f"from {summary.get('source')}: RTO {_duration(summary.get('rto_seconds'))}, "
                f"RPO {_duration(summary.get('rpo_seconds'))}, {summary.get('items_validated')} items validated")
    if age is not None and age > DRILL_STALE:
        return _cell(AMBER, f"last drill passed {age_text(age)} ago ({measured}): overdue", state, **details)
    return _cell(GREEN, f"passed {age_text(age)} ago {measured}", state, **details)


def _duration(seconds: Any) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "?"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def audit_cell(state, account_state, table: str, now: datetime):
    """Open CloudTrail findings about the table, by severity (table scope and account-wide ones naming it)."""
    extra = [f for f in (account_state or {}).get("findings", []) if f.get("table") == table]
    return _checked_cell(state, now, never="the CloudTrail audit has not run yet", ok="no open findings",
                         extra=extra, stale_after=AUDIT_STALE, account_state=account_state)


def grants_by_resource(report: Mapping[str, Any] | None) -> dict[str, list[Mapping[str, Any]]] | None:
    """The access-review matrix entries that grant something (allowed or conditional), by resource id."""
    if not report or report.get("missing"):
        return None
    index: dict[str, list[Mapping[str, Any]]] = {}
    for entry in report.get("matrix", []):
        if entry.get("decision") in _GRANTED:
            index.setdefault(entry.get("resource"), []).append(entry)
    return index


def who_can(grants: Mapping[str, list[Mapping[str, Any]]] | None, table: str,
            backup_buckets: Iterable[str]) -> dict[str, list[dict]]:
    """For each access question, the principals the matrix (:func:`grants_by_resource`) lets do it."""
    if grants is None:
        return {}
    answer: dict[str, dict[str, str]] = {q: {} for q in ACCESS_QUESTIONS}
    backups = [e for b in backup_buckets for e in grants.get(f"bucket:{b}", [])]
    for question, (_, actions) in ACCESS_QUESTIONS.items():
        entries = grants.get(f"table:{table}", []) + (backups if question == "delete_backups" else [])
        seen = answer[question]
        for entry in entries:
            if entry.get("action") in actions and seen.get(entry["principal"]) != "allowed":
                seen[entry["principal"]] = entry["decision"]
    return {q: [{"principal": p, "decision": d} for p, d in sorted(found.items())] for q, found in answer.items()}


def access_cell(state, account_state, report, grants, table: str, backup_buckets: Iterable[str], now: datetime):
    """Who can delete the table, turn PITR off, export it, or delete its backups; open access findings."""
    extra = [f for f in (account_state or {}).get("findings", []) if f.get("table") == table]
    cell = _checked_cell(state, now, never="the access review has not run yet", ok="only expected principals",
                         extra=extra, account_state=account_state)
    answers = who_can(grants, table, backup_buckets)
    cell["details"]["who_can"] = answers
    cell["details"]["report"] = (report or {}).get("key")
    return cell


# --- jobs and charts -------------------------------------------------------------------------------------
def _state_ok(state: Mapping[str, Any]) -> bool:
    summary = state.get("summary") or {}
    if summary.get("ok") is False or summary.get("result") not in (None, "passed"):
        return False
    return not any(f["severity"] in ALERT_SEVERITIES for f in _open(state.get("findings", [])))


def job_status(state: Mapping[str, Any]) -> dict[str, Any]:
    """A job's last run for one scope, whether it was clean, and its last success (for outside monitors).

    ``last_success`` is the last run when it was clean; otherwise the newest successful point of its
    history (exports: ``at`` is the export time; drills: the last ``passed`` point) or the summary's own
    ``last_success``; null when none is known.
    """
    ok = _state_ok(state)
    last_success = state.get("updated") if ok else None
    if not ok:
        good = [p for p in state.get("history", []) if p.get("result", "passed") == "passed" and p.get("at")]
        last_success = good[-1]["at"] if good else (state.get("summary") or {}).get("last_success")
    run = state.get("run") or {}
    return {"last_run": state.get("updated"), "ok": ok, "last_success": last_success, "run_url": run.get("url"),
            "open": sum(1 for _ in _open(state.get("findings", [])))}


def _recent(history: Iterable[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
    """History points of the last :data:`CHART_NIGHTS` days (the store keeps ``at`` as sorted ISO text)."""
    oldest = iso(now - timedelta(days=CHART_NIGHTS))
    return [point for point in history if str(point.get("at") or "") >= oldest]


# --- the document ----------------------------------------------------------------------------------------
def build(tables: Iterable[str], collected: Mapping[str, Any], now: datetime,
          backup_buckets: Iterable[str] = ()) -> dict[str, Any]:
    """The posture document of ``tables`` from :func:`collect`'s result (pure)."""
    states: Mapping[tuple[str, str], Mapping[str, Any]] = collected["states"]
    report = collected.get("access_report")
    buckets = list(backup_buckets)
    account = {job: states.get((job, ACCOUNT_SCOPE)) for job in JOBS}
    grants = grants_by_resource(report)
    rows = []
    for table in tables:
        mine = {job: states.get((job, table)) for job in JOBS}
        cells = {
            "export": export_cell(mine["export"], now, mine["reverify_exports"]),
            "object_lock": object_lock_cell(mine["object_lock"], now, mine["object_lock_sweep"]),
            "replica": replica_cell(mine["replica"], now, mine["reverify_replicas"]),
            "drill": drill_cell(mine["drill"], now),
            "audit": audit_cell(mine["audit"], account["audit"], table, now),
            "access": access_cell(mine["access"], account["access"], report, grants, table, buckets, now),
        }
        rows.append({
            "table": table,
            "status": max((c["status"] for c in cells.values()), key=_WORST.__getitem__),
            "cells": cells,
            "jobs": {job: job_status(state) for job, state in mine.items() if state},
            "charts": {
                "exports": _recent((mine["export"] or {}).get("history", []), now),
                "drills": _recent((mine["drill"] or {}).get("history", []), now),
            },
        })
    findings = []
    for (job, scope), state in states.items():
        for f in state.get("findings", []):
            findings.append({**f, "job": f.get("job", job), "scope": scope})
    findings.sort(key=lambda f: (f.get("status") != "open", severity_rank(f["severity"]),
                                 -_epoch(f.get("last_seen")), f["id"]))
    open_counts = {s: sum(1 for f in findings if f.get("status") == "open" and f["severity"] == s)
                   for s in SEVERITIES}
    return {
        "generated_at": iso(now),
        "tables": rows,
        "totals": {status: sum(1 for r in rows if r["status"] == status) for status in (GREEN, AMBER, RED)},
        "open_findings": open_counts,
        "account": {job: job_status(state) for job, state in account.items() if state},
        "findings": findings,
        "access_review": _access_summary(report),
    }


def _epoch(value: Any) -> float:
    try:
        return parse_time(value).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _access_summary(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The latest access-review report's matrix rows that grant something, for the page."""
    if not report:
        return None
    if report.get("missing"):
        return {"key": report["key"], "missing": True}
    names = {r["id"]: r["name"] for r in report.get("resources", [])}
    matrix = [{**e, "resource_name": names.get(e["resource"], e["resource"])} for e in report.get("matrix", [])
              if e.get("decision") in _GRANTED]
    return {"key": report["key"], "run_date": report.get("run_date"), "generated_at": report.get("generated_at"),
            "summary": report.get("summary"), "matrix": matrix, "limitations": report.get("limitations", [])}
