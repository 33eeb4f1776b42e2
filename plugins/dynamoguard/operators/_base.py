"""The base every dynamoguard operator builds on: config, clients per account, fail vs retry, findings.

An operator subclasses :class:`DynamoguardOperator`, sets ``job`` (its name in the findings store) and, where
its logic raises errors a retry cannot change, lists them in ``permanent_errors``. Its ``execute`` (and any
method a trigger resumes) does its work inside ``with self.failures():``, which turns those errors, and
ValueError/KeyError from bad input, into ``AirflowFailException`` (failed at once, no retry); everything else
stays retryable. Findings go through :meth:`DynamoguardOperator.report`, which stores them and alerts on new
critical/high ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

ACCOUNTS = ("source", "backup", "drill", "audit", "access_review")


class DynamoguardOperator(BaseOperator):
    """Base of the dynamoguard operators (not used directly).

    Subclasses set ``job`` (findings job name) and may extend ``permanent_errors``.
    """

    job: ClassVar[str] = ""
    permanent_errors: ClassVar[tuple[type[BaseException], ...]] = (ValueError, KeyError)
    ui_color = "#e8f0f8"

    @cached_property
    def config(self):
        """The validated config (``DYNAMOGUARD_CONFIG`` or include/dynamoguard.yaml)."""
        from dynamoguard.config import load_config

        return load_config()

    def conn_id(self, account: str = "source") -> str:
        """The Airflow connection of ``account``: source, backup, drill, audit or access_review."""
        config = self.config
        ids = {
            "source": config.accounts.source.aws_conn_id,
            "backup": config.accounts.backup.aws_conn_id,
            "drill": config.drill_conn_id,
            "audit": config.audit_conn_id,
            "access_review": config.access_review_conn_id,
        }
        if account not in ids:
            raise ValueError(f"account must be one of {ACCOUNTS}, not {account!r}")
        return ids[account]

    def client(self, service: str, account: str = "source", max_pool_connections: int | None = None) -> Any:
        """A boto3 client for ``service`` through ``account``'s connection, in the configured region."""
        from dynamoguard import aws

        return aws.client(self.conn_id(account), service, self.config.region,
                          max_pool_connections=max_pool_connections or aws.DEFAULT_POOL_SIZE)

    @contextlib.contextmanager
    def failures(self) -> Iterator[None]:
        """Errors a retry cannot change fail the task at once; the rest stay retryable."""
        try:
            yield
        except AirflowFailException:
            raise
        except self.permanent_errors as error:
            raise AirflowFailException(f"{type(error).__name__}: {error}") from error

    def require_export(self, export: Any, keys: Iterable[str] = ("bucket", "export_prefix", "export_time"),
                       bucket: str | None = None) -> dict[str, Any]:
        """The upstream export dict, checked: it has ``keys`` and lies in ``bucket`` (default: the backup bucket)."""
        what = getattr(self, "table", None) or self.task_id
        if not isinstance(export, Mapping):
            raise AirflowFailException(f"{what}: expected the upstream export result (a dict), got {export!r}")
        missing = [k for k in keys if not export.get(k)]
        if missing:
            raise AirflowFailException(f"{what}: the upstream export lacks {missing}: {dict(export)!r}")
        expected = bucket or self.config.backup_bucket.name
        if "bucket" in export and export["bucket"] != expected:
            raise AirflowFailException(f"{what}: the export is in bucket {export['bucket']!r}, not the configured "
                                       f"{expected!r}")
        return dict(export)

    def findings_store(self, account: str = "source"):
        """The findings store in the reports bucket, reached through ``account``'s connection."""
        from dynamoguard.findings import FindingsStore

        reports = self.config.reports_bucket
        return FindingsStore(self.client("s3", account), reports.name, reports.prefix)

    def report(self, context: Mapping[str, Any], scope: str, findings: Iterable[Any], *, account: str = "source",
               summary: Mapping[str, Any] | None = None, history_point: Mapping[str, Any] | None = None,
               succeeded: bool | None = None, alert: bool = True, carry: Any = None):
        """Store this run's findings of ``scope`` for ``self.job``, log them, alert on new critical/high ones.

        ``succeeded`` (default: no critical/high finding in this run) sets the scope's ``last_success``;
        ``alert=False`` for a job that sends its own notification of the run's findings; ``carry``: see
        :meth:`~dynamoguard.findings.FindingsStore.record`.
        Returns the :class:`~dynamoguard.findings.Changes` (new, open, resolved).
        """
        from dynamoguard.findings import ALERT_SEVERITIES, RunRef, alert_lines
        from dynamoguard.notify import notify

        if not self.job:
            raise TypeError(f"{type(self).__name__} sets no findings job")
        findings = list(findings)
        if succeeded is None:
            succeeded = not any(f.severity in ALERT_SEVERITIES for f in findings)
        run = RunRef.from_context(context)
        changes = self.findings_store(account).record(self.job, scope, findings, run, summary=summary,
                                                      history_point=history_point, succeeded=succeeded,
                                                      carry=carry)
        for line in alert_lines(changes.open, limit=50):
            self.log.warning("finding: %s", line)
        for finding in changes.resolved:
            self.log.info("resolved since the last run: [%s] %s", finding["severity"], finding["title"])
        if alert and changes.alerts:
            subject = f"dynamoguard {self.job}: {len(changes.alerts)} new finding(s) for {scope}"
            lines = alert_lines(changes.alerts) + [f"Run: {run.url}"]
            notify(self.config, subject, "\n".join(lines))
        return changes
