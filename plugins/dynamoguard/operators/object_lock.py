"""Airflow glue for the Object Lock checks in :mod:`dynamoguard.object_lock`.

Both operators read the config, build an S3 client from the source account's connection (pool as
large as ``nightly.max_concurrency``, adaptive retries), run the check, log the report, push it as
XCom and fail the task (without retrying: the result would not change) when anything violates the policy.
The role needs s3:ListBucket, s3:GetObject, s3:GetObjectRetention, s3:GetObjectLegalHold,
s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration (without GetObjectRetention S3 omits the
lock headers from HEAD and every object would look unprotected); with ``enforce_retention`` also
s3:PutObjectRetention, and s3:BypassGovernanceRetention to move GOVERNANCE objects to COMPLIANCE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class _ObjectLockOperator(BaseOperator):
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
        from dynamoguard.config import load_config
        from dynamoguard.object_lock import LockPolicy

        config = load_config()
        concurrency = self.max_concurrency or config.nightly.max_concurrency
        s3 = aws.client(self.aws_conn_id or config.accounts.source.aws_conn_id, "s3", config.region,
                        max_pool_connections=concurrency)
        enforce = config.backup_bucket.enforce_retention if self.enforce is None else self.enforce
        return config, s3, LockPolicy.from_config(config.backup_bucket), concurrency, enforce


class ObjectLockCheckOperator(_ObjectLockOperator):
    """Check the backup bucket and every object of the given export(s) against the Object Lock policy.

    ``exports``: one verification result (a dict with ``bucket``, ``export_prefix`` and ``export_time``,
    as the export verification pushes it) or a list of them; usually an XComArg.
    ``enforce`` defaults to ``backup_bucket.enforce_retention``.
    """

    template_fields: Sequence[str] = ("exports",)

    def __init__(self, *, exports: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.exports = exports

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.object_lock import check_export, parse_time

        config, s3, policy, concurrency, enforce = self._setup()
        exports = [self.exports] if isinstance(self.exports, dict) else list(self.exports or [])
        if not exports:
            raise AirflowFailException("no export given to check")
        reports = []
        for index, export in enumerate(exports):
            missing = [k for k in ("bucket", "export_prefix", "export_time") if not export.get(k)]
            if missing:
                raise AirflowFailException(f"export #{index} lacks {missing}: {export!r}")
            if export["bucket"] != config.backup_bucket.name:
                raise AirflowFailException(f"export #{index} is in bucket {export['bucket']!r}, not the configured "
                                           f"backup_bucket {config.backup_bucket.name!r}")
            reports.append(check_export(
                s3, export["bucket"], export["export_prefix"], policy, export_time=parse_time(export["export_time"]),
                max_concurrency=concurrency, enforce=enforce, max_shown=self.max_shown,
                expected_owner=config.accounts.source.account_id, check_bucket_policy=index == 0,
            ))
        for report in reports:
            self.log.info("%s", report.summary())
        failed = [r for r in reports if not r.ok]
        if failed:
            raise AirflowFailException("\n".join(r.summary() for r in failed))
        return {"ok": True, "reports": [r.as_dict() for r in reports]} if len(reports) > 1 else reports[0].as_dict()


class ObjectLockSweepOperator(_ObjectLockOperator):
    """Re-check every export under ``backup_bucket.prefix`` that is still inside its retention period."""

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.object_lock import sweep

        config, s3, policy, concurrency, enforce = self._setup()
        report = sweep(s3, config.backup_bucket.name, config.backup_bucket.prefix, policy,
                       max_concurrency=concurrency, enforce=enforce, max_shown=self.max_shown,
                       expected_owner=config.accounts.source.account_id)
        self.log.info("%s", report.summary())
        if not report.ok:
            raise AirflowFailException(report.summary())
        return report.as_dict()
