"""Findings reports in the reports bucket, one set of objects per audit interval.

Keys depend only on the interval (and unit), never on the run, so re-auditing an interval (a retry
or a backfill) overwrites its report instead of adding a second one::

    <prefix>/cloudtrail_audit/<start>_<end>/parts/<account>_<region>_<hour>.json   one per audit unit
    <prefix>/cloudtrail_audit/<start>_<end>/findings.jsonl                          every finding, sorted
    <prefix>/cloudtrail_audit/<start>_<end>/summary.json                            counts per severity etc.

Each line of ``findings.jsonl`` is one finding: severity, rule, title, resource, table, event_time,
event_name, principal, source_ip, event_id, log_key, account, region, outcome, detail. The summary
names the most severe findings (``top_findings``: rule, severity, table, principal, object) for the UI
and the alert. The findings also go to the findings store (job ``audit``), per table and account-wide.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import orjson

from dynamoguard.audit.discovery import Unit
from dynamoguard.audit.findings import ALERT_SEVERITIES, Finding, count_by_severity, headline, sort_key
from dynamoguard.findings import ACCOUNT_SCOPE
from dynamoguard.findings import Finding as SharedFinding
from dynamoguard.timeutil import iso, parse_time

_STAMP = "%Y%m%dT%H%MZ"


def interval_prefix(prefix: str, start: datetime, end: datetime) -> str:
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return f"{base}cloudtrail_audit/{start:{_STAMP}}_{end:{_STAMP}}/"


def part_key(prefix: str, start: datetime, end: datetime, unit: Unit) -> str:
    return f"{interval_prefix(prefix, start, end)}parts/{unit.account}_{unit.region}_{unit.start:{_STAMP}}.json"


def _dumps(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def write_part(s3, bucket: str, key: str, unit: Unit, counts: dict[str, int], findings: list[Finding]) -> None:
    body = {"unit": unit.to_dict(), "counts": counts,
            "findings": [f.to_dict() for f in sorted(findings, key=Finding.sort_key)]}
    s3.put_object(Bucket=bucket, Key=key, Body=_dumps(body), ContentType="application/json")


def read_part(s3, bucket: str, key: str) -> dict:
    return orjson.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def assemble(s3, bucket: str, prefix: str, start: datetime, end: datetime, part_keys: list[str],
             health: list[dict], max_top: int = 20) -> dict:
    """Merge the units' parts and the trail-health findings into the interval's report; return its summary."""
    findings = list(health)
    counts: dict[str, int] = {}
    for key in sorted(part_keys):
        part = read_part(s3, bucket, key)
        findings.extend(part["findings"])
        for name, value in part["counts"].items():
            counts[name] = counts.get(name, 0) + value
    findings.sort(key=sort_key)
    base = interval_prefix(prefix, start, end)
    lines = b"".join(_dumps(f) + b"\n" for f in findings)
    s3.put_object(Bucket=bucket, Key=f"{base}findings.jsonl", Body=lines, ContentType="application/x-ndjson")
    summary = {
        "interval": {"start": iso(start), "end": iso(end)},
        "report": f"s3://{bucket}/{base}findings.jsonl",
        "findings": len(findings),
        "by_severity": count_by_severity(findings),
        "alerting": sum(1 for f in findings if f["severity"] in ALERT_SEVERITIES),
        "by_rule": _by_rule(findings),
        "top_findings": [headline(f) for f in findings[:max_top]],
        "counts": dict(sorted(counts.items())),
        "units": len(part_keys),
    }
    s3.put_object(Bucket=bucket, Key=f"{base}summary.json", Body=_dumps(summary), ContentType="application/json")
    return summary


def _by_rule(findings: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for finding in findings:
        out[finding["rule"]] = out.get(finding["rule"], 0) + 1
    return dict(sorted(out.items()))


def describe(top: list[dict]) -> list[str]:
    """One line per headline finding: severity, rule, table, principal, object, time."""
    return [f"- [{f['severity']}] {f['rule']}: {f['title']} | table {f.get('table') or '-'} | "
            f"principal {f.get('principal') or '-'} | {f.get('resource') or ''} | {f.get('event_time') or ''} | "
            f"{f.get('event_id') or ''}"
            for f in top]


# --- findings store ------------------------------------------------------------------------------------

EVENTS_OPEN = timedelta(days=7)  # an event's finding stays open this long after its interval


def read_findings(s3, bucket: str, prefix: str, start: datetime, end: datetime) -> list[dict]:
    """The interval's findings as :func:`assemble` wrote them to ``findings.jsonl``."""
    body = s3.get_object(Bucket=bucket, Key=f"{interval_prefix(prefix, start, end)}findings.jsonl")["Body"].read()
    return [orjson.loads(line) for line in body.splitlines() if line.strip()]


def interval_label(start: datetime, end: datetime) -> str:
    return f"{iso(start)}/{iso(end)}"


def findings_by_scope(findings: list[dict], tables: list[str], start: datetime, end: datetime) -> dict[str, list]:
    """The interval's findings in the shared shape, by scope: each configured table (even without findings, so that
    its earlier ones can resolve), any other table named, and the account scope; each carries its interval."""
    label = interval_label(start, end)
    scopes: dict[str, list] = {table: [] for table in tables}
    scopes.setdefault(ACCOUNT_SCOPE, [])
    for finding in findings:
        shared = Finding(**finding).to_shared()
        shared = replace(shared, evidence={**shared.evidence, "interval": label})
        scopes.setdefault(finding.get("table") or ACCOUNT_SCOPE, []).append(shared)
    return scopes


def carried(start: datetime, end: datetime):
    """For :meth:`FindingsStore.record`: the stored open findings that an audit of ``[start, end)`` keeps open.

    A finding about an event (or a log file) of another interval stays open until the audited intervals reach
    :data:`EVENTS_OPEN` past that interval: this run did not look at it again. A re-audit of its own interval that
    no longer sees it resolves it, and trail-health gaps, checked on every run, resolve as soon as they are fixed.
    """
    label, oldest = interval_label(start, end), end - EVENTS_OPEN

    def carry(stored: list[dict]) -> list[SharedFinding]:
        kept = []
        for f in stored:
            seen_in = str((f.get("evidence") or {}).get("interval") or "")
            if f.get("status") != "open" or f["check"] == "trail-health" or "/" not in seen_in or seen_in == label:
                continue
            if parse_time(seen_in.split("/", 1)[1]) <= oldest:
                continue
            kept.append(SharedFinding(job=f["job"], check=f["check"], severity=f["severity"], title=f["title"],
                                      resource=f["resource"], table=f.get("table"), evidence=f.get("evidence") or {},
                                      dedup=f.get("dedup") or ""))
        return kept

    return carry
