"""S3 Object Lock verification: the backup bucket's lock policy and every exported object's retention.

Pure rules (:class:`LockPolicy`, :func:`check_bucket_settings`, :func:`check_object`,
:func:`planned_retention`) decide what is compliant; the functions below them take a boto3 S3
client and do the I/O:

* :func:`check_bucket` - versioning Enabled, Object Lock Enabled, a default retention rule whose
  mode and period meet the policy (``Years`` count as 365 days, as S3 counts them).
* :func:`check_export` - HEAD every object of one export (``_started``, data files, manifests,
  checksum files) concurrently; mode, retain-until >= export time + ``min_retention_days``, legal hold.
* :func:`sweep` - the same for every export under a prefix that is still inside its retention period.

HEAD is used rather than GetObjectRetention: one call returns mode, retain-until and legal hold.
Listings are paged and streamed into a bounded thread pool, so memory does not grow with the
number of objects; the report counts every finding and keeps only the first ``max_shown`` of each kind.
With ``enforce`` a short retention is extended with PutObjectRetention (never shortened, never
downgraded from COMPLIANCE), sending the checksum header S3 requires for that call. The governance bypass is
never used: a GOVERNANCE object the policy does not accept is extended in GOVERNANCE and reported with the
command that moves it to COMPLIANCE (:func:`bypass_fix`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.concurrency import bounded_map, prefetch
from dynamoguard.exports.manifest import export_id_time, export_time_from_summary
from dynamoguard.layout import export_root, incremental_window_end
from dynamoguard.timeutil import utc

log = logging.getLogger(__name__)

COMPLIANCE = "COMPLIANCE"
GOVERNANCE = "GOVERNANCE"
DAYS_PER_YEAR = 365  # S3 Object Lock counts a default-retention year as 365 days
DEFAULT_CONCURRENCY = 32
DEFAULT_MAX_SHOWN = 20

# Finding codes. Violations fail the check; warnings and notes are reported only.
LOCK_DISABLED = "object_lock_disabled"
VERSIONING_NOT_ENABLED = "versioning_not_enabled"
NO_DEFAULT_RETENTION = "no_default_retention"
NO_RETENTION = "no_retention"
WEAKER_MODE = "governance_not_allowed"
GOVERNANCE_ALLOWED = "governance_allowed"
TOO_SHORT = "retention_too_short"
MISSING = "object_missing"
NO_OBJECTS = "export_empty"
UNREADABLE = "unreadable"
NOT_EXTENDED = "retention_not_extended"
LEGAL_HOLD = "legal_hold"
EXPORT_TIME_GUESSED = "export_time_from_export_id"
OUTSIDE_EXPORT = "outside_export"

WARNINGS = frozenset({GOVERNANCE_ALLOWED, OUTSIDE_EXPORT})
NOTES = frozenset({LEGAL_HOLD, EXPORT_TIME_GUESSED})
EXTENDED = "retention_extended"  # a short retention extended by enforcement (a repair, reported too)

# Severity in the findings store (one scale for every job); a violation not listed here is high.
STORE_SEVERITY = {LOCK_DISABLED: "critical", VERSIONING_NOT_ENABLED: "critical", GOVERNANCE_ALLOWED: "low",
                  OUTSIDE_EXPORT: "low", EXPORT_TIME_GUESSED: "low", LEGAL_HOLD: "info", EXTENDED: "medium"}
TITLES = {
    LOCK_DISABLED: "Object Lock is not enabled on the backup bucket",
    VERSIONING_NOT_ENABLED: "versioning is not enabled on the backup bucket",
    NO_DEFAULT_RETENTION: "the backup bucket has no default retention",
    NO_RETENTION: "backup object without Object Lock retention",
    WEAKER_MODE: "retention mode weaker than the policy requires",
    GOVERNANCE_ALLOWED: "GOVERNANCE retention (allowed by the config, weaker than COMPLIANCE)",
    TOO_SHORT: "retention shorter than the policy requires",
    MISSING: "backup object listed but gone",
    NO_OBJECTS: "export folder without objects",
    UNREADABLE: "Object Lock state unreadable",
    NOT_EXTENDED: "short retention could not be extended",
    LEGAL_HOLD: "legal hold on a backup object",
    EXPORT_TIME_GUESSED: "export without manifest-summary.json (export time taken from its ExportId)",
    OUTSIDE_EXPORT: "object outside any DynamoDB export",
    EXTENDED: "short retention extended to the policy's minimum",
}


def store_severity(code: str) -> str:
    """The findings-store severity of a finding code."""
    return STORE_SEVERITY.get(code, "high")

SUMMARY_NAME = "manifest-summary.json"


def severity(code: str) -> str:
    """``violation`` (fails the check), ``warning`` or ``note`` for a finding code."""
    return "warning" if code in WARNINGS else "note" if code in NOTES else "violation"


@dataclass(frozen=True)
class LockPolicy:
    """What every backup object must carry: a mode and a minimum retention after export time."""

    mode: str = COMPLIANCE
    min_retention_days: int = 35
    allow_governance: bool = False

    def __post_init__(self):
        if self.mode not in (COMPLIANCE, GOVERNANCE):
            raise ValueError(f"lock mode must be COMPLIANCE or GOVERNANCE, not {self.mode!r}")
        if self.mode == GOVERNANCE and not self.allow_governance:
            raise ValueError("lock mode GOVERNANCE requires allow_governance")
        if self.min_retention_days < 1:
            raise ValueError("min_retention_days must be at least 1")

    @classmethod
    def from_config(cls, backup_bucket: Any) -> LockPolicy:
        """From the config's ``backup_bucket`` section."""
        return cls(backup_bucket.lock_mode, backup_bucket.min_retention_days, backup_bucket.allow_governance)

    def required_until(self, export_time: datetime) -> datetime:
        return utc(export_time) + timedelta(days=self.min_retention_days)

    def accepts(self, mode: str | None) -> bool:
        return mode == COMPLIANCE or (mode == GOVERNANCE and self.allow_governance)


@dataclass(frozen=True)
class Finding:
    """One problem (or warning, or note); ``key`` is None for bucket-level findings."""

    code: str
    message: str
    key: str | None = None
    version_id: str | None = None

    @property
    def severity(self) -> str:
        return severity(self.code)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "key": self.key, "version_id": self.version_id}


@dataclass(frozen=True)
class ObjectLockState:
    """The lock-relevant part of a HEAD response."""

    key: str
    version_id: str | None
    mode: str | None
    retain_until: datetime | None
    legal_hold: bool

    @classmethod
    def from_head(cls, key: str, head: dict[str, Any]) -> ObjectLockState:
        until = head.get("ObjectLockRetainUntilDate")
        return cls(
            key=key,
            version_id=head.get("VersionId"),
            mode=head.get("ObjectLockMode"),
            retain_until=utc(until) if until else None,
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )


@dataclass(frozen=True)
class Change:
    """A retention extended by enforcement."""

    key: str
    version_id: str | None
    old_mode: str | None
    old_until: datetime | None
    new_mode: str
    new_until: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "version_id": self.version_id, "old_mode": self.old_mode,
            "old_until": _iso(self.old_until), "new_mode": self.new_mode, "new_until": _iso(self.new_until),
        }


def _ceil_second(value: datetime) -> datetime:
    return value if not value.microsecond else value.replace(microsecond=0) + timedelta(seconds=1)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------


def default_retention_days(rule: dict[str, Any] | None) -> int | None:
    """Days of a ``DefaultRetention`` rule (Years x 365), None when the rule sets no period."""
    if not rule:
        return None
    days, years = rule.get("Days") or 0, rule.get("Years") or 0
    total = days + years * DAYS_PER_YEAR
    return total or None


def check_bucket_settings(bucket: str, versioning_status: str | None, lock_configuration: dict[str, Any] | None,
                          policy: LockPolicy) -> list[Finding]:
    """Findings for a bucket's versioning status and ``ObjectLockConfiguration`` (None: none configured)."""
    findings = []
    if versioning_status != "Enabled":
        state = versioning_status or "never enabled"
        findings.append(Finding(VERSIONING_NOT_ENABLED, f"bucket {bucket}: versioning is {state}, must be Enabled"))
    if not lock_configuration or lock_configuration.get("ObjectLockEnabled") != "Enabled":
        findings.append(Finding(LOCK_DISABLED, f"bucket {bucket}: Object Lock is not enabled"))
        return findings
    rule = (lock_configuration.get("Rule") or {}).get("DefaultRetention")
    days = default_retention_days(rule)
    if not rule or not rule.get("Mode") or days is None:
        findings.append(Finding(
            NO_DEFAULT_RETENTION,
            f"bucket {bucket}: no default retention rule; objects written without explicit retention are unprotected",
        ))
        return findings
    mode = rule["Mode"]
    if not policy.accepts(mode):
        findings.append(Finding(WEAKER_MODE, f"bucket {bucket}: default retention mode is {mode}, policy requires "
                                             f"{policy.mode} (GOVERNANCE is not allowed)"))
    elif mode == GOVERNANCE:
        findings.append(Finding(GOVERNANCE_ALLOWED, f"bucket {bucket}: default retention mode is GOVERNANCE "
                                                    "(allowed by config, weaker than COMPLIANCE)"))
    if days < policy.min_retention_days:
        findings.append(Finding(TOO_SHORT, f"bucket {bucket}: default retention is {days} days, policy requires "
                                           f"at least {policy.min_retention_days}"))
    return findings


def bypass_fix(bucket: str, state: ObjectLockState, required_until: datetime, policy: LockPolicy) -> str:
    """How an administrator moves a GOVERNANCE object to the policy's mode: S3 changes the mode of a GOVERNANCE
    retention only with ``x-amz-bypass-governance-retention: true`` and ``s3:BypassGovernanceRetention``, which
    this pipeline never uses and the project's bucket policy (DenyGovernanceBypass) denies to everyone."""
    until = max(_ceil_second(required_until), state.retain_until or required_until)
    version = f" --version-id {state.version_id}" if state.version_id else ""
    date = until.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"changing a GOVERNANCE mode needs s3:BypassGovernanceRetention, which dynamoguard never uses and the "
            f"bucket policy statement DenyGovernanceBypass denies; an administrator exempted from it runs: "
            f"aws s3api put-object-retention --bucket {bucket} --key {state.key}{version} "
            f"--bypass-governance-retention --retention Mode={policy.mode},RetainUntilDate={date}")


def check_object(state: ObjectLockState, required_until: datetime, policy: LockPolicy,
                 bucket: str | None = None) -> list[Finding]:
    """Findings for one object version against the retain-until it must reach (``bucket``: name the fix of a
    GOVERNANCE mode the policy does not accept)."""
    findings = []
    where = {"key": state.key, "version_id": state.version_id}
    if state.mode is None or state.retain_until is None:
        findings.append(Finding(NO_RETENTION, f"{state.key}: no Object Lock retention", **where))
    else:
        if not policy.accepts(state.mode):
            fixable = bucket and state.mode == GOVERNANCE
            fix = f"; {bypass_fix(bucket, state, required_until, policy)}" if fixable else ""
            findings.append(Finding(WEAKER_MODE, f"{state.key}: mode {state.mode}, policy requires {policy.mode}{fix}",
                                    **where))
        elif state.mode == GOVERNANCE:
            findings.append(Finding(GOVERNANCE_ALLOWED, f"{state.key}: mode GOVERNANCE (allowed, weaker)", **where))
        if state.retain_until < required_until:
            findings.append(Finding(
                TOO_SHORT,
                f"{state.key}: retained until {_iso(state.retain_until)}, must be at least {_iso(required_until)}",
                **where,
            ))
    if state.legal_hold:
        findings.append(Finding(LEGAL_HOLD, f"{state.key}: legal hold ON", **where))
    return findings


def planned_retention(state: ObjectLockState, required_until: datetime, policy: LockPolicy) -> dict[str, Any] | None:
    """The ``Retention`` to put so the object meets the policy, or None if nothing needs changing.

    Never shortens (the new date is the later of current and required, rounded up to the second), never
    downgrades and never needs the governance bypass: a COMPLIANCE object stays COMPLIANCE, a GOVERNANCE object
    stays GOVERNANCE (only extended; moving it to COMPLIANCE is reported with :func:`bypass_fix`), an object
    without retention gets the policy's mode.
    """
    mode = state.mode if state.mode in (COMPLIANCE, GOVERNANCE) else policy.mode
    # S3 keeps retain-until dates to the second: round up so the stored date still meets the requirement.
    required_until = _ceil_second(required_until)
    until = required_until if state.retain_until is None else max(state.retain_until, required_until)
    if mode == state.mode and until == state.retain_until:
        return None
    return {"Mode": mode, "RetainUntilDate": until}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything a check found: all findings counted, the first ``max_shown`` of each severity kept."""

    bucket: str
    policy: LockPolicy
    max_shown: int = DEFAULT_MAX_SHOWN
    objects_checked: int = 0
    exports_checked: int = 0
    exports_skipped: int = 0
    counts: Counter = field(default_factory=Counter)
    shown: dict[str, list[Finding]] = field(default_factory=lambda: {"violation": [], "warning": [], "note": []})
    changes: list[Change] = field(default_factory=list)
    changes_count: int = 0
    # Also told every finding, change and object checked (``finding``, ``change``, ``checked`` methods):
    # the operators keep each table's findings for the findings store through it.
    listener: Any = None

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        if self.listener is not None:
            self.listener.finding(finding)
        kept = self.shown[finding.severity]
        if len(kept) < self.max_shown:
            kept.append(finding)

    def add_change(self, change: Change) -> None:
        self.changes_count += 1
        if self.listener is not None:
            self.listener.change(change)
        if len(self.changes) < self.max_shown:
            self.changes.append(change)

    def count(self, kind: str) -> int:
        """Findings of severity ``kind``, all counted (not only those shown)."""
        return sum(n for code, n in self.counts.items() if severity(code) == kind)

    @property
    def violations(self) -> int:
        return self.count("violation")

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def summary(self) -> str:
        lines = [
            f"Object Lock check of s3://{self.bucket}: {self.objects_checked} objects in {self.exports_checked} "
            f"export(s) checked against {self.policy.mode} >= {self.policy.min_retention_days} days: "
            + ("OK" if self.ok else f"{self.violations} violation(s)"),
        ]
        if self.exports_skipped:
            lines.append(f"  {self.exports_skipped} export(s) past their retention period not checked")
        if self.counts:
            lines.append("  counts: " + ", ".join(f"{code}={n}" for code, n in sorted(self.counts.items())))
        for kind in ("violation", "warning", "note"):
            total = self.count(kind)
            for finding in self.shown[kind]:
                lines.append(f"  {kind.upper()}: {finding.message}")
            if total > len(self.shown[kind]):
                lines.append(f"  ... and {total - len(self.shown[kind])} more {kind}(s)")
        for change in self.changes:
            lines.append(f"  EXTENDED: {change.key} {change.old_mode or 'none'} {_iso(change.old_until) or '-'} -> "
                         f"{change.new_mode} {_iso(change.new_until)}")
        if self.changes_count > len(self.changes):
            lines.append(f"  ... and {self.changes_count - len(self.changes)} more extended")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for XCom)."""
        return {
            "bucket": self.bucket,
            "policy": {"mode": self.policy.mode, "min_retention_days": self.policy.min_retention_days,
                       "allow_governance": self.policy.allow_governance},
            "ok": self.ok,
            "objects_checked": self.objects_checked,
            "exports_checked": self.exports_checked,
            "exports_skipped": self.exports_skipped,
            "violations": self.violations,
            "counts": dict(self.counts),
            "shown": {sev: [f.as_dict() for f in items] for sev, items in self.shown.items()},
            "changes_count": self.changes_count,
            "changes": [c.as_dict() for c in self.changes],
        }


# ---------------------------------------------------------------------------------------------
# S3 I/O
# ---------------------------------------------------------------------------------------------


def _owner(expected_owner: str | None) -> dict[str, str]:
    return {"ExpectedBucketOwner": expected_owner} if expected_owner else {}


def check_bucket(s3, bucket: str, policy: LockPolicy, expected_owner: str | None = None) -> list[Finding]:
    """Read the bucket's versioning and Object Lock configuration and check them against ``policy``."""
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket, **_owner(expected_owner)).get("Status")
    except ClientError as error:
        return [Finding(UNREADABLE, f"bucket {bucket}: cannot read versioning ({error_code(error)}: {error})")]
    try:
        lock = s3.get_object_lock_configuration(Bucket=bucket, **_owner(expected_owner))["ObjectLockConfiguration"]
    except ClientError as error:
        if error_code(error) != "ObjectLockConfigurationNotFoundError":
            return [Finding(UNREADABLE, f"bucket {bucket}: cannot read Object Lock configuration "
                                        f"({error_code(error)}: {error})")]
        lock = None
    return check_bucket_settings(bucket, versioning, lock, policy)


def iter_keys(s3, bucket: str, prefix: str, page_size: int = 1000, prefetch_pages: int = 2,
              expected_owner: str | None = None) -> Iterator[str]:
    """Every key under ``prefix``, paged with list_objects_v2.

    A background thread lists up to ``prefetch_pages`` pages ahead so that listing overlaps the HEADs;
    memory is bounded by that read-ahead, whatever the size of the listing.
    """
    paginator = s3.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size},
                               **_owner(expected_owner))
    keys = (obj["Key"] for page in pages for obj in page.get("Contents", ()))
    return prefetch(keys, size=prefetch_pages * page_size, name=f"list-{bucket}")


def _head(s3, bucket: str, key: str, expected_owner: str | None) -> ObjectLockState | Finding:
    try:
        head = s3.head_object(Bucket=bucket, Key=key, **_owner(expected_owner))
    except ClientError as error:
        code = error_code(error)
        if code in ("404", "NoSuchKey", "NotFound"):
            return Finding(MISSING, f"{key}: listed but HEAD found no current version (deleted meanwhile?)", key=key)
        return Finding(UNREADABLE, f"{key}: HEAD failed ({code}: {error})", key=key)
    return ObjectLockState.from_head(key, head)


def _extend(s3, bucket: str, state: ObjectLockState, retention: dict[str, Any],
            expected_owner: str | None) -> Change | Finding:
    """PutObjectRetention on the exact version checked; an explicit checksum satisfies S3's integrity
    requirement for this call whatever the client's ``request_checksum_calculation``."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": state.key, "Retention": retention,
                              "ChecksumAlgorithm": "SHA256", **_owner(expected_owner)}
    if state.version_id:
        kwargs["VersionId"] = state.version_id
    try:
        s3.put_object_retention(**kwargs)
    except ClientError as error:
        return Finding(NOT_EXTENDED, f"{state.key}: could not extend retention ({error_code(error)}: {error})",
                       key=state.key, version_id=state.version_id)
    return Change(state.key, state.version_id, state.mode, state.retain_until,
                  retention["Mode"], retention["RetainUntilDate"])


def _check_one(s3, bucket: str, key: str, required_until: datetime, policy: LockPolicy, enforce: bool,
               expected_owner: str | None) -> tuple[list[Finding], Change | None]:
    state = _head(s3, bucket, key, expected_owner)
    if isinstance(state, Finding):
        return [state], None
    findings = check_object(state, required_until, policy, bucket)
    if not enforce or all(f.severity != "violation" for f in findings):
        return findings, None
    retention = planned_retention(state, required_until, policy)
    if retention is None:
        return findings, None
    outcome = _extend(s3, bucket, state, retention, expected_owner)
    if isinstance(outcome, Finding):
        return [*findings, outcome], None
    # The violations are now fixed: keep only warnings/notes that still hold for the new retention.
    fixed = ObjectLockState(state.key, state.version_id, outcome.new_mode, outcome.new_until, state.legal_hold)
    return check_object(fixed, required_until, policy, bucket), outcome


def scan(s3, bucket: str, items: Iterable[tuple[str, datetime]], policy: LockPolicy, report: Report, *,
         max_concurrency: int = DEFAULT_CONCURRENCY, enforce: bool = False,
         expected_owner: str | None = None) -> Report:
    """Check ``(key, required retain-until)`` pairs concurrently, adding every finding to ``report``.

    ``items`` is consumed lazily; at most ``2 * max_concurrency`` objects are in flight. The client's
    ``max_pool_connections`` should be at least ``max_concurrency`` (see ``dynamoguard.aws.client_config``).
    """
    pool_size = s3.meta.config.max_pool_connections
    if pool_size < max_concurrency:
        log.warning("S3 client pool has %s connections for %s threads; raise max_pool_connections",
                    pool_size, max_concurrency)

    def work(key: str, required_until: datetime) -> tuple[str, list[Finding], Change | None]:
        try:
            return key, *_check_one(s3, bucket, key, required_until, policy, enforce, expected_owner)
        except Exception as error:  # never lose an object: an unexpected error is a finding
            return key, [Finding(UNREADABLE, f"{key}: check failed ({type(error).__name__}: {error})", key=key)], None

    for key, findings, change in bounded_map(work, items, max_concurrency, thread_name_prefix="object-lock"):
        report.objects_checked += 1
        if report.listener is not None:
            report.listener.checked(key)
        for finding in findings:
            report.add(finding)
        if change is not None:
            report.add_change(change)
    return report


def read_export_time(s3, bucket: str, root: str, expected_owner: str | None = None) -> datetime | None:
    """``exportTime`` from the export's manifest-summary.json; None if the summary does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=root + SUMMARY_NAME, **_owner(expected_owner))["Body"].read()
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return export_time_from_summary(json.loads(body))
    except (ValueError, TypeError) as error:
        raise ValueError(f"s3://{bucket}/{root}{SUMMARY_NAME}: unreadable export time ({error})") from error


def check_export(s3, bucket: str, root: str, policy: LockPolicy, *, export_time: datetime | None = None,
                 max_concurrency: int = DEFAULT_CONCURRENCY, enforce: bool = False,
                 max_shown: int = DEFAULT_MAX_SHOWN, expected_owner: str | None = None,
                 check_bucket_policy: bool = True, listener: Any = None) -> Report:
    """Check the bucket and every object under one export's root (``.../AWSDynamoDB/<ExportId>/``).

    ``export_time`` defaults to the ``exportTime`` in the export's manifest-summary.json; ``listener``: see
    :class:`Report`.
    """
    root = root if root.endswith("/") else root + "/"
    report = Report(bucket, policy, max_shown, listener=listener)
    if check_bucket_policy:
        for finding in check_bucket(s3, bucket, policy, expected_owner):
            report.add(finding)
    if export_time is None:
        export_time = read_export_time(s3, bucket, root, expected_owner)
        if export_time is None:
            export_time = _fallback_export_time(root, report)
    required = policy.required_until(export_time)
    report.exports_checked = 1
    scan(s3, bucket, ((key, required) for key in iter_keys(s3, bucket, root, expected_owner=expected_owner)),
         policy, report, max_concurrency=max_concurrency, enforce=enforce, expected_owner=expected_owner)
    if report.objects_checked == 0:
        report.add(Finding(NO_OBJECTS, f"s3://{bucket}/{root}: no objects to check"))
    return report


def _fallback_export_time(root: str, report: Report) -> datetime:
    parsed = export_root(root)
    started = export_id_time(parsed[1]) if parsed else None
    if started is None:
        raise ValueError(f"{root}: no {SUMMARY_NAME} and no ExportId time; pass export_time")
    report.add(Finding(EXPORT_TIME_GUESSED, f"{root}: no {SUMMARY_NAME}; using the ExportId's request time "
                                            f"{_iso(started)} as export time", key=root))
    return started


def sweep(s3, bucket: str, prefix: str, policy: LockPolicy, *, now: datetime | None = None,
          max_concurrency: int = DEFAULT_CONCURRENCY, enforce: bool = False, max_shown: int = DEFAULT_MAX_SHOWN,
          expected_owner: str | None = None, listener: Any = None) -> Report:
    """Re-check every export under ``prefix`` whose retention period has not ended yet.

    The listing is streamed page by page; an export's time is read from its manifest-summary.json
    the first time one of its keys is seen (only the current export's time is kept).
    """
    now = utc(now or datetime.now(timezone.utc))
    report = Report(bucket, policy, max_shown, listener=listener)
    for finding in check_bucket(s3, bucket, policy, expected_owner):
        report.add(finding)
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    scan(s3, bucket, _sweep_items(s3, bucket, prefix, policy, now, report, expected_owner), policy, report,
         max_concurrency=max_concurrency, enforce=enforce, expected_owner=expected_owner)
    return report


def _sweep_items(s3, bucket: str, prefix: str, policy: LockPolicy, now: datetime, report: Report,
                 expected_owner: str | None) -> Iterator[tuple[str, datetime]]:
    current_root: str | None = None
    required: datetime | None = None
    for key in iter_keys(s3, bucket, prefix, expected_owner=expected_owner):
        window_end = incremental_window_end(key)
        if window_end is not None:
            if policy.required_until(window_end) > now:
                yield key, policy.required_until(window_end)
            continue
        parsed = export_root(key)
        if parsed is None:
            report.add(Finding(OUTSIDE_EXPORT, f"{key}: not part of a DynamoDB export, not checked", key=key))
            continue
        root = parsed[0]
        if root != current_root:
            current_root = root
            export_time = read_export_time(s3, bucket, root, expected_owner) or _fallback_export_time(root, report)
            required = policy.required_until(export_time)
            if required <= now:
                report.exports_skipped += 1
                required = None
            else:
                report.exports_checked += 1
        if required is not None:
            yield key, required
