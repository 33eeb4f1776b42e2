"""The off-account RPO of a table (age of the newest window end that is verified and replicated) and the findings
of one incremental run: a missed, failed or impossible window, and an RPO above the limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dynamoguard.findings import Finding
from dynamoguard.timeutil import iso, parse_time

JOB = "incremental"
STEPS = ("export", "verify", "object_lock", "replica")


def replicated_to(previous: dict[str, Any], replica: dict[str, Any] | None, window_to: str | None) -> str | None:
    """The newest verified and replicated window end: this run's window if its replica step succeeded, else the one
    recorded before."""
    candidates = [previous.get("replicated_to")]
    if replica and window_to:
        candidates.append(window_to)
    known = [parse_time(c) for c in candidates if c]
    return iso(max(known)) if known else None


def run_findings(table: str, plan: dict[str, Any] | None, results: dict[str, Any], problems: list[str],
                 rpo_seconds: float | None, limit_seconds: float, *, first_full_pending: bool = False) -> list[Finding]:
    """The findings of one run of ``table``'s chain: ``plan`` (the export step's plan), ``results`` (each step's
    result, None when it failed or did not run), ``problems`` (the verification's, when it failed).

    ``first_full_pending``: the table has never had a verified full export (a newly protected table, or the
    first night after setup). Without one there is nothing to chain from and no RPO yet: that is one info
    finding, not an alert; a full export that never comes is the nightly deadline check's high finding.
    """
    resource = f"table/{table}"
    reason = (plan or {}).get("reason")
    if first_full_pending and reason == "no_full_export":
        return [Finding(job=JOB, check="awaiting_full_export", severity="info", table=table, resource=resource,
                        title=f"{table}: incremental exports start after the first verified full export",
                        evidence={"plan": plan})]
    found: list[Finding] = []
    if plan is None:
        found.append(Finding(job=JOB, check="window_failed", severity="high", table=table, resource=resource,
                             title=f"{table}: the incremental export step failed before planning a window",
                             evidence={"step": "export"}))
    elif reason in ("no_full_export", "chain_broken"):
        found.append(Finding(job=JOB, check=reason, severity="high", table=table, resource=resource,
                             title=f"{table}: no incremental window can be exported ({reason})",
                             evidence={"plan": plan}))
    if plan and plan.get("missed"):
        found.append(Finding(job=JOB, check="missed_windows", severity="medium", table=table, resource=resource,
                             title=f"{table}: {plan['missed']} incremental window(s) missed; caught up from "
                                   f"{plan.get('chain_end')}", evidence={"plan": plan}))
    if plan and plan.get("window"):
        failed = next((step for step in STEPS if not results.get(step)), None)
        if failed:
            window = plan["window"]
            found.append(Finding(job=JOB, check="window_failed", severity="high", table=table, resource=resource,
                                 title=f"{table}: incremental window {window['from']} .. {window['to']} failed at "
                                       f"{failed}", evidence={"step": failed, "window": window,
                                                              "problems": problems[:20]}))
    if rpo_seconds is None or rpo_seconds > limit_seconds:
        found.append(Finding(job=JOB, check="rpo_exceeded", severity="high", table=table, resource=resource,
                             title=f"{table}: off-account RPO " + (f"{rpo_seconds / 60:.0f} min" if rpo_seconds
                                                                   is not None else "unknown (nothing replicated)")
                                   + f" exceeds {limit_seconds / 60:.0f} min",
                             evidence={"rpo_seconds": rpo_seconds, "limit_seconds": limit_seconds}))
    return found


def rpo_seconds(replicated: str | None, now: datetime) -> float | None:
    return round((now - parse_time(replicated)).total_seconds(), 1) if replicated else None
