"""Airflow glue for the weekly re-verification of retained exports (:mod:`dynamoguard.reverify`).

Two operators on the same logic: the exports bucket in the source account, and the replica bucket in the
backup account. Each stores its findings per table (and ``account`` for objects outside any table folder)
with a summary, alerts on new critical/high findings, and fails while any critical/high finding is open,
listing the findings in the failure notification.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dynamoguard.operators._base import DynamoguardOperator


class _ReverifyOperator(DynamoguardOperator):
    account: ClassVar[str] = "source"
    ui_color = "#f2d7d5"

    def target(self):
        raise NotImplementedError

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.findings import ALERT_SEVERITIES
        from dynamoguard.notify import FindingsFailed
        from dynamoguard.reverify import reverify
        from dynamoguard.timeutil import iso

        with self.failures():
            concurrency = self.config.nightly.max_concurrency
            s3 = self.client("s3", self.account, max_pool_connections=concurrency)
            target = self.target()
            report = reverify(s3, target, max_concurrency=concurrency)
            self.log.info("%s", report.summary_text())
            failing: list[dict[str, Any]] = []
            for scope in sorted(set(self.config.table_names) | report.scopes):
                findings = report.findings_for(scope)
                stats = report.stats[scope].to_dict() if scope in report.stats else {}
                changes = self.report(
                    context, scope, findings,
                    summary={"bucket": target.bucket, **stats, "findings": len(findings),
                             "checked_at": iso(report.started)},
                    history_point={"at": iso(report.started), "objects": stats.get("objects", 0),
                                   "findings": len(findings)},
                )
                failing += [f for f in changes.open if f["severity"] in ALERT_SEVERITIES]
            if failing:
                raise FindingsFailed(f"{report.summary_text()}\n{len(failing)} critical/high finding(s) open",
                                     failing)
            return {"summary": report.summary_text(), "totals": report.totals(),
                    "counts": dict(report.findings.counts)}


class ReverifyExportsOperator(_ReverifyOperator):
    """Re-verify every export under ``backup_bucket.prefix`` still inside ``min_retention_days``."""

    job = "reverify_exports"

    def target(self):
        from datetime import timedelta

        from dynamoguard.reverify import Target

        config = self.config
        return Target(config.backup_bucket.name, config.backup_bucket.prefix, config.backup_bucket.min_retention_days,
                      self.job, label="export object", expected_owner=config.accounts.source.account_id,
                      in_progress_grace=timedelta(minutes=config.nightly.export_timeout_minutes))


class ReverifyReplicasOperator(_ReverifyOperator):
    """Re-verify every replica export in ``replica_bucket`` (backup account) still inside its retention."""

    job = "reverify_replicas"
    account = "backup"

    def target(self):
        from datetime import timedelta

        from dynamoguard.reverify import Target

        config = self.config
        return Target(config.replica_bucket.name, config.backup_bucket.prefix,
                      config.replica_bucket.min_retention_days, self.job, label="replica",
                      expected_owner=config.accounts.backup.account_id,
                      in_progress_grace=timedelta(minutes=config.nightly.export_timeout_minutes))
