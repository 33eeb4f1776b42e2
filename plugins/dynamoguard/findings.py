"""One finding shape for every job, and the store that keeps them across runs.

A job reports, for one *scope* (a protected table, or ``account`` for account-wide checks), every finding it
sees in a run. :class:`FindingsStore` merges that list with what the same job saw for the same scope before:

- a finding seen again keeps its ``first_seen`` and gets a new ``last_seen`` (the same problem seen every
  night is one finding, not thirty: its ``id`` is a hash of job, check, resource and dedup key);
- a finding no longer seen is ``resolved`` (a later run of the same job no longer sees it);
- a resolved finding seen again is reopened.

Each (job, scope) is one small JSON object in the reports bucket, written with S3's conditional writes
(If-Match on the ETag read, If-None-Match for a new object) so that two runs never lose each other's update.
It also carries the job's small per-scope ``summary`` and a bounded ``history`` of points for charts.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dynamoguard.timeutil import iso, parse_time

SEVERITIES = ("critical", "high", "medium", "low", "info")
ALERT_SEVERITIES = frozenset({"critical", "high"})
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

ACCOUNT_SCOPE = "account"
RESOLVED_KEPT = timedelta(days=35)  # resolved findings stay visible this long
HISTORY_POINTS = 840  # 35 days of hourly points
_WRITE_ATTEMPTS = 8


def severity_rank(severity: str) -> int:
    """0 for critical ... 4 for info; ValueError for anything else."""
    try:
        return _RANK[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}") from None


@dataclass(frozen=True)
class Finding:
    """Something that differs from the expected state, as one job saw it in one run.

    :param job: the job that saw it (``export``, ``object_lock``, ``replica``, ``drill``, ``audit``, ...)
    :param check: the rule or problem code (``md5_mismatch``, ``table-deleted``, ...)
    :param severity: one of :data:`SEVERITIES`
    :param title: one line a person understands without the evidence
    :param resource: what it is about: ``table/<name>``, ``s3://bucket/key``, a principal ARN
    :param table: the protected table it concerns, None when it is not about one table
    :param evidence: what was expected and what was found, objects, principals, versions (JSON-able)
    :param dedup: extra identity when check + resource do not tell two findings apart (e.g. a principal)
    """

    job: str
    check: str
    severity: str
    title: str
    resource: str
    table: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    dedup: str = ""

    def __post_init__(self):
        severity_rank(self.severity)

    @property
    def id(self) -> str:
        key = "\x1f".join((self.job, self.check, self.resource, self.dedup))
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "job": self.job, "check": self.check, "severity": self.severity, "title": self.title,
                "resource": self.resource, "table": self.table, "evidence": dict(self.evidence), "dedup": self.dedup}


@dataclass(frozen=True)
class RunRef:
    """The Airflow run (and task) that saw a finding; ``url`` is relative to the Airflow UI."""

    dag_id: str
    run_id: str
    task_id: str = ""
    map_index: int = -1

    @property
    def url(self) -> str:
        base = f"dags/{self.dag_id}/runs/{self.run_id}"
        if not self.task_id:
            return base
        return f"{base}/tasks/{self.task_id}" + (f"/mapped/{self.map_index}" if self.map_index >= 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "map_index": self.map_index,
                "url": self.url}

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunRef:
        ti = context.get("ti") or context.get("task_instance")
        map_index = getattr(ti, "map_index", -1)
        return cls(dag_id=getattr(ti, "dag_id", "") or "", run_id=context.get("run_id") or getattr(ti, "run_id", ""),
                   task_id=getattr(ti, "task_id", "") or "", map_index=map_index if isinstance(map_index, int) else -1)


@dataclass
class Changes:
    """What one run changed for one (job, scope): findings new or reopened, still open, and resolved."""

    new: list[dict[str, Any]] = field(default_factory=list)
    open: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """New (or reopened) findings of alerting severity."""
        return [f for f in self.new if f["severity"] in ALERT_SEVERITIES]

    def to_dict(self) -> dict[str, Any]:
        return {"new": [f["id"] for f in self.new], "open": len(self.open),
                "resolved": [f["id"] for f in self.resolved]}


def merge(previous: Iterable[Mapping[str, Any]], current: Iterable[Finding], run: RunRef,
          now: datetime) -> tuple[list[dict[str, Any]], Changes]:
    """The stored findings of a scope after a run that saw ``current``; also what changed.

    Resolved findings older than :data:`RESOLVED_KEPT` are dropped.
    """
    stamp = iso(now)
    before = {f["id"]: dict(f) for f in previous}
    changes = Changes()
    merged: dict[str, dict[str, Any]] = {}
    for finding in current:
        record = finding.to_dict()
        old = before.get(record["id"])
        if record["id"] in merged:  # the same finding twice in one run: keep the first, count it once
            continue
        reopened = old is not None and old.get("status") != "open"
        if old is None or reopened:
            record.update(first_seen=stamp, times_seen=1)
        else:
            record.update(first_seen=old["first_seen"], times_seen=int(old.get("times_seen", 1)) + 1)
        record.update(last_seen=stamp, status="open", resolved_at=None, run=run.to_dict())
        merged[record["id"]] = record
        (changes.new if old is None or reopened else changes.open).append(record)
    changes.open = changes.new + changes.open
    oldest_kept = now - RESOLVED_KEPT
    for finding_id, old in before.items():
        if finding_id in merged:
            continue
        if old.get("status") == "open":
            old.update(status="resolved", resolved_at=stamp, resolved_by=run.to_dict())
            changes.resolved.append(old)
            merged[finding_id] = old
        elif old.get("resolved_at") and parse_time(old["resolved_at"]) >= oldest_kept:
            merged[finding_id] = old
    ordered = sorted(merged.values(), key=lambda f: (f["status"] != "open", severity_rank(f["severity"]), f["id"]))
    return ordered, changes


class FindingsStore:
    """Per (job, scope) findings, summary and history as JSON objects under ``<prefix>/findings/``.

    :param s3: a boto3 S3 client allowed GetObject/PutObject on the reports bucket
    :param bucket: the reports bucket
    :param prefix: the reports prefix (``reports_bucket.prefix``)
    """

    def __init__(self, s3, bucket: str, prefix: str):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key(self, job: str, scope: str) -> str:
        for name, value in (("job", job), ("scope", scope)):
            if not value or "/" in value:
                raise ValueError(f"findings {name} must be a non-empty name without '/': {value!r}")
        return "/".join(p for p in (self.prefix, "findings", job, f"{scope}.json") if p)

    def load(self, job: str, scope: str) -> dict[str, Any]:
        """The stored state of (job, scope): ``findings``, ``summary``, ``history``, ``updated`` (empty if none)."""
        return self._read(self.key(job, scope))[0]

    def load_many(self, pairs: Iterable[tuple[str, str]], workers: int = 32) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored state of each (job, scope) in ``pairs``, read concurrently from their known keys (no listing).

        Pairs with nothing stored are left out of the result.
        """
        from dynamoguard.concurrency import bounded_map

        def read(job: str, scope: str) -> tuple[tuple[str, str], dict[str, Any]]:
            return (job, scope), self.load(job, scope)

        states = bounded_map(read, dict.fromkeys(pairs), workers, thread_name_prefix="findings-read")
        return {pair: state for pair, state in states if state.get("updated")}

    def _read(self, key: str) -> tuple[dict[str, Any], str | None]:
        from dynamoguard.aws import error_code

        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as error:  # noqa: BLE001 - only "no such key" means "nothing stored yet"
            if error_code(error) in ("NoSuchKey", "404"):
                return {"findings": [], "summary": {}, "history": [], "updated": None}, None
            raise
        return json.loads(response["Body"].read()), response["ETag"]

    def record(self, job: str, scope: str, findings: Iterable[Finding], run: RunRef, *,
               summary: Mapping[str, Any] | None = None, history_point: Mapping[str, Any] | None = None,
               succeeded: bool | None = None, now: datetime | None = None,
               carry: Callable[[list[dict[str, Any]]], Iterable[Finding]] | None = None) -> Changes:
        """Merge this run's ``findings`` of (job, scope) into the store; return what changed.

        ``carry(stored findings)`` gives stored findings this run did not look at again and that stay open (the
        audit's events of earlier intervals); it is applied to the state each write attempt read, so that a
        concurrent run's findings are never lost.

        ``summary`` replaces the scope's summary (when given); ``history_point`` is appended to its history
        (bounded to :data:`HISTORY_POINTS`, one point per ``at`` value). The summary's ``last_run`` is this
        run's time and ``last_success`` the time of the last run that ``succeeded`` (kept from before
        otherwise), so that a monitor outside Airflow can tell when a job stopped succeeding for a scope.
        """
        from dynamoguard.aws import error_code

        now = now or datetime.now(timezone.utc)
        findings = list(findings)
        for finding in findings:
            if finding.job != job:
                raise ValueError(f"finding {finding.check!r} belongs to job {finding.job!r}, not {job!r}")
        key = self.key(job, scope)
        for _ in range(_WRITE_ATTEMPTS):
            state, etag = self._read(key)
            seen = findings + list(carry(state.get("findings", []))) if carry else findings
            merged, changes = merge(state.get("findings", []), seen, run, now)
            history = list(state.get("history", []))
            if history_point is not None:
                at = history_point.get("at")
                history = [p for p in history if p.get("at") != at] + [dict(history_point)]
                history.sort(key=lambda p: str(p.get("at")))
                history = history[-HISTORY_POINTS:]
            before = state.get("summary") or {}
            new_summary = dict(summary) if summary is not None else dict(before)
            new_summary["last_run"] = iso(now)
            if succeeded:
                new_summary["last_success"] = iso(now)
            elif before.get("last_success"):
                new_summary["last_success"] = before["last_success"]
            else:
                new_summary.pop("last_success", None)
            body = {"job": job, "scope": scope, "updated": iso(now), "run": run.to_dict(), "findings": merged,
                    "summary": new_summary, "history": history}
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(body, default=str).encode(),
                                   ContentType="application/json", **condition)
                return changes
            except Exception as error:  # noqa: BLE001 - a concurrent writer won: read again and merge again
                if error_code(error) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    raise
        raise RuntimeError(f"s3://{self.bucket}/{key}: gave up after {_WRITE_ATTEMPTS} conflicting concurrent writes")


def alert_lines(findings: Iterable[Mapping[str, Any]], limit: int = 20) -> list[str]:
    """One line per finding for a notification: severity, title, resource, evidence."""
    items = sorted(findings, key=lambda f: severity_rank(f["severity"]))
    lines = []
    for finding in items[:limit]:
        evidence = json.dumps(finding.get("evidence") or {}, default=str, sort_keys=True)
        lines.append(f"[{finding['severity']}] {finding['title']} ({finding['resource']}) evidence: {evidence}")
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return lines


class FindingSet:
    """Findings per scope, at most ``max_per_check`` per (scope, check) kept; the rest counted."""

    def __init__(self, max_per_check: int = 50):
        self.max_per_check = max_per_check
        self._kept: dict[tuple[str, str], list[tuple[tuple, int, Finding]]] = defaultdict(list)
        self._dropped: Counter = Counter()
        self._dropped_severity: dict[tuple[str, str], str] = {}
        self._order = 0
        self._lock = threading.Lock()  # the folder walk adds findings from its read-ahead thread
        self.counts: Counter = Counter()

    def add(self, scope: str, finding: Finding) -> None:
        with self._lock:
            self._add(scope, finding)

    def _add(self, scope: str, finding: Finding) -> None:
        self.counts[finding.check] += 1
        kept = self._kept[(scope, finding.check)]
        # max-heap on (resource, dedup) through negated ordering: keep the smallest resources
        entry = (_Desc((finding.resource, finding.dedup)), self._order, finding)
        self._order += 1
        if len(kept) < self.max_per_check:
            heapq.heappush(kept, entry)
            return
        dropped = heapq.heappushpop(kept, entry)[2]
        self._dropped[(scope, finding.check)] += 1
        worst = self._dropped_severity.get((scope, finding.check))
        if worst is None or severity_rank(dropped.severity) < severity_rank(worst):
            self._dropped_severity[(scope, finding.check)] = dropped.severity

    @property
    def scopes(self) -> set[str]:
        return {scope for scope, _ in self._kept}

    def total(self) -> int:
        return sum(self.counts.values())

    def for_scope(self, scope: str, job: str, resource: str) -> list[Finding]:
        """The kept findings of ``scope`` (sorted) plus one finding per check counting those not kept."""
        findings: list[Finding] = []
        for (kept_scope, check), kept in sorted(self._kept.items()):
            if kept_scope != scope:
                continue
            findings += sorted((f for _, _, f in kept), key=lambda f: (f.resource, f.dedup))
            more = self._dropped[(scope, check)]
            if more:
                findings.append(Finding(
                    job=job, check=check, severity=self._dropped_severity[(scope, check)], resource=resource,
                    table=None if scope == ACCOUNT_SCOPE else scope, dedup="more",
                    title=f"{scope}: {more} more {check.replace('_', ' ')} finding(s) beyond the "
                          f"{self.max_per_check} listed",
                    evidence={"check": check, "more": more, "listed": self.max_per_check},
                ))
        return findings


class _Desc:
    """Reverses the order of a value, so that ``heapq`` (a min-heap) pops the largest resource first."""

    __slots__ = ("value",)

    def __init__(self, value: tuple):
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value
