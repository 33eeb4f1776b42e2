"""Airflow glue for the Object Lock checks in :mod:`dynamoguard.object_lock`.

Both operators read the config, build an S3 client from the source account's connection (pool as
large as ``nightly.max_concurrency``, adaptive retries), run the check, log the report, store each table's
findings with a summary (job ``object_lock`` for the nightly check of one export, ``object_lock_sweep`` for
the weekly sweep of every retained export: the nightly check of tonight's export must not resolve what the
sweep saw on an older one), push the report as XCom and fail the task (without retrying: the result would not
change) when anything violates the policy. Retentions extended by enforcement are medium findings, notified.
The role needs s3:ListBucket, s3:GetObject, s3:GetObjectRetention, s3:GetObjectLegalHold,
s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration (without GetObjectRetention S3 omits the
lock headers from HEAD and every object would look unprotected); with ``enforce_retention`` also
s3:PutObjectRetention; GetObject/PutObject on its findings in the reports bucket.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from dynamoguard.operators._base import DynamoguardOperator


class LockFindings:
    """A :class:`~dynamoguard.object_lock.Report` listener: each table's findings as findings-store findings (at
    most ``reverify.DEFAULT_MAX_PER_CHECK`` per check, the rest counted), objects checked and violations.

    :param scope_of: the table scope of an object key
    :param bucket_scopes: the scopes a bucket-level finding concerns (every table whose backups it holds)
    """

    def __init__(self, job: str, bucket: str, scope_of: Callable[[str], str], bucket_scopes: Iterable[str]):
        from dynamoguard.findings import FindingSet

        self.job = job
        self.bucket = bucket
        self.scope_of = scope_of
        self.bucket_scopes = tuple(bucket_scopes)
        self.findings = FindingSet()
        self.objects: Counter = Counter()
        self.violations: Counter = Counter()
        self.extended: Counter = Counter()
        self._lock = threading.Lock()

    def _store(self, scope: str, code: str, key: str | None, **evidence: Any):
        from dynamoguard.findings import ACCOUNT_SCOPE, Finding
        from dynamoguard.object_lock import TITLES, store_severity

        where = f" ({key})" if key else f" (s3://{self.bucket})"
        return Finding(job=self.job, check=code, severity=store_severity(code), title=f"{scope}: {TITLES[code]}{where}",
                       resource=f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}",
                       table=None if scope == ACCOUNT_SCOPE else scope,
                       evidence={k: v for k, v in evidence.items() if v is not None})

    def finding(self, finding) -> None:
        scopes = self.bucket_scopes if finding.key is None else (self.scope_of(finding.key),)
        for scope in scopes:
            self.findings.add(scope, self._store(scope, finding.code, finding.key, found=finding.message,
                                                 version_id=finding.version_id))
            if finding.severity == "violation":
                with self._lock:
                    self.violations[scope] += 1

    def change(self, change) -> None:
        scope = self.scope_of(change.key)
        evidence = {k: v for k, v in change.as_dict().items() if k != "key"}
        self.findings.add(scope, self._store(scope, "retention_extended", change.key, **evidence))
        with self._lock:
            self.extended[scope] += 1

    def checked(self, key: str) -> None:
        self.objects[self.scope_of(key)] += 1

    def scopes(self) -> set[str]:
        return self.findings.scopes | set(self.objects)

    def store_findings(self, scope: str) -> list:
        return self.findings.for_scope(scope, self.job, f"s3://{self.bucket}")

    def summary(self, scope: str, **extra: Any) -> dict[str, Any]:
        return {"bucket": self.bucket, "objects": self.objects[scope], "violations": self.violations[scope],
                "extended": self.extended[scope], "ok": not self.violations[scope], **extra}


class _ObjectLockOperator(DynamoguardOperator):
    ui_color = "#f2d7d5"

    def __init__(self, *, enforce: bool | None = None, max_concurrency: int | None = None, max_shown: int = 20,
                 aws_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.enforce = enforce
        self.max_concurrency = max_concurrency
        self.max_shown = max_shown
        self.aws_conn_id = aws_conn_id

    def _setup(self):
        from dynamoguard import aws
        from dynamoguard.object_lock import LockPolicy

        config = self.config
        concurrency = self.max_concurrency or config.nightly.max_concurrency
        s3 = aws.client(self.aws_conn_id or config.accounts.source.aws_conn_id, "s3", config.region,
                        max_pool_connections=concurrency)
        enforce = config.backup_bucket.enforce_retention if self.enforce is None else self.enforce
        return config, s3, LockPolicy.from_config(config.backup_bucket), concurrency, enforce

    def report_scopes(self, context, found: LockFindings, scopes: Iterable[str], **summary: Any) -> list[dict]:
        """Store each scope's findings and summary; notify extended retentions; the open critical/high findings."""
        from dynamoguard.findings import ALERT_SEVERITIES, alert_lines
        from dynamoguard.notify import notify

        failing, extended = [], []
        for scope in sorted(scopes):
            findings = found.store_findings(scope)
            changes = self.report(context, scope, findings,
                                  summary=found.summary(scope, findings=len(findings), **summary))
            failing += [f for f in changes.open if f["severity"] in ALERT_SEVERITIES]
            extended += [f for f in changes.new if f["check"] == "retention_extended"]
        if extended:  # medium: the base alerts only on critical/high
            notify(self.config, f"dynamoguard {self.job}: retention of {len(extended)} backup object(s) was too short "
                                "and has been extended", "\n".join(alert_lines(extended)))
        return failing


class ObjectLockCheckOperator(_ObjectLockOperator):
    """Check the backup bucket and every object of the given export(s) against the Object Lock policy.

    ``exports``: one verification result (a dict with ``bucket``, ``export_prefix`` and ``export_time``, and
    ``table``, as the export verification pushes it) or a list of them; usually an XComArg.
    ``enforce`` defaults to ``backup_bucket.enforce_retention``. Findings are stored per table (job ``object_lock``).
    """

    job = "object_lock"
    template_fields: Sequence[str] = ("exports",)

    def __init__(self, *, exports: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.exports = exports

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.notify import FindingsFailed
        from dynamoguard.object_lock import check_export
        from dynamoguard.reverify import Target
        from dynamoguard.timeutil import parse_time

        config, s3, policy, concurrency, enforce = self._setup()
        exports = [self.exports] if isinstance(self.exports, dict) else list(self.exports or [])
        if not exports:
            raise AirflowFailException("no export given to check")
        for index, export in enumerate(exports):
            missing = [k for k in ("bucket", "export_prefix", "export_time") if not export.get(k)]
            if missing:
                raise AirflowFailException(f"export #{index} lacks {missing}: {export!r}")
            if export["bucket"] != config.backup_bucket.name:
                raise AirflowFailException(f"export #{index} is in bucket {export['bucket']!r}, not the configured "
                                           f"backup_bucket {config.backup_bucket.name!r}")
        layout = Target(config.backup_bucket.name, config.backup_bucket.prefix, 0, self.job)
        reports, failing = [], []
        for index, export in enumerate(exports):
            table = export.get("table") or layout.table_of(export["export_prefix"])
            found = LockFindings(self.job, export["bucket"], lambda _key, table=table: table, [table])
            report = check_export(
                s3, export["bucket"], export["export_prefix"], policy, export_time=parse_time(export["export_time"]),
                max_concurrency=concurrency, enforce=enforce, max_shown=self.max_shown,
                expected_owner=config.accounts.source.account_id, check_bucket_policy=index == 0, listener=found,
            )
            self.log.info("%s", report.summary())
            reports.append(report)
            failing += self.report_scopes(context, found, [table], export_prefix=export["export_prefix"],
                                          export_time=export["export_time"])
        failed = [r for r in reports if not r.ok]
        if failed or failing:
            raise FindingsFailed("\n".join(r.summary() for r in failed or reports), failing)
        return {"ok": True, "reports": [r.as_dict() for r in reports]} if len(reports) > 1 else reports[0].as_dict()


class ObjectLockSweepOperator(_ObjectLockOperator):
    """Re-check every export under ``backup_bucket.prefix`` that is still inside its retention period.

    Findings are stored per table folder (job ``object_lock_sweep``; objects outside any table folder under the
    account scope); bucket-level findings concern every configured table.
    """

    job = "object_lock_sweep"

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.findings import ACCOUNT_SCOPE
        from dynamoguard.notify import FindingsFailed
        from dynamoguard.object_lock import sweep
        from dynamoguard.reverify import Target
        from dynamoguard.timeutil import iso, utcnow

        config, s3, policy, concurrency, enforce = self._setup()
        layout = Target(config.backup_bucket.name, config.backup_bucket.prefix, 0, self.job)
        found = LockFindings(self.job, config.backup_bucket.name, layout.table_of, config.table_names)
        started = utcnow()
        report = sweep(s3, config.backup_bucket.name, config.backup_bucket.prefix, policy,
                       max_concurrency=concurrency, enforce=enforce, max_shown=self.max_shown,
                       expected_owner=config.accounts.source.account_id, listener=found)
        self.log.info("%s", report.summary())
        scopes = set(config.table_names) | {ACCOUNT_SCOPE} | found.scopes()
        failing = self.report_scopes(context, found, scopes, checked_at=iso(started))
        if not report.ok or failing:
            raise FindingsFailed(report.summary(), failing)
        return report.as_dict()
