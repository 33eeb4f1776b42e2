"""Replica step of the nightly backup: copy one table's export into the backup account, or verify that S3
replication did (``replica_bucket.mode``). The logic is in :mod:`dynamoguard.replicas`; this turns the config
and connections into clients, defers while replication is PENDING, stores the table's findings (job ``replica``,
through the source account's connection) with a summary, and fails with the findings. A replica deleted in the
backup account and copied again is a medium finding, notified."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from dynamoguard.operators._base import DynamoguardOperator

log = logging.getLogger(__name__)

FINDINGS = ("missing", "different", "unlocked", "pending")


def backup_account_client(config, service: str, max_pool_connections: int):
    """A client acting in the backup account through ``accounts.backup.aws_conn_id`` (its role assumed),
    checked to really act there; AirflowException naming the connection otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    from dynamoguard import aws

    account = config.accounts.backup
    try:
        identity = aws.client(account.aws_conn_id, "sts", config.region).get_caller_identity()
    except (BotoCoreError, ClientError, ValueError) as error:
        permanent = isinstance(error, ParamValidationError | ValueError)
        raise (AirflowFailException if permanent else AirflowException)(
            f"AWS connection {account.aws_conn_id!r} cannot act in the backup account {account.account_id}: "
            f"assuming the role in its extras (role_arn) failed: {error}"
        ) from error
    if identity["Account"] != account.account_id:
        raise AirflowFailException(
            f"AWS connection {account.aws_conn_id!r} acts as {identity['Arn']} in account {identity['Account']}, "
            f"not in the backup account {account.account_id}; check role_arn in its extras"
        )
    return aws.client(account.aws_conn_id, service, config.region, max_pool_connections)


class ReplicaOperator(DynamoguardOperator):
    """Copy (or verify) the replicas of one table's export in the backup account.

    :param table: protected table name
    :param export: the export verification result (usually an XComArg): a dict with ``bucket``,
        ``export_prefix`` and ``export_time``; replica retention is counted from ``export_time``; its
        ``checksums`` (the SHA-256 of each object verified) spare the copy a read of the source
    :param mode: ``copy`` or ``verify``; default ``replica_bucket.mode`` from the config
    :param poll_seconds: verify mode: how often PENDING replicas are re-checked (deferred, no worker held)

    Findings (missing, different, unlocked) fail the task without retry; AWS errors on single objects fail
    it with retries. Without an explicit ``on_failure_callback`` a failure is published by the notifier.
    """

    job = "replica"
    template_fields = ("table", "export")
    ui_color = "#d8e8f8"

    def __init__(self, *, table: str, export: Any, mode: str | None = None, poll_seconds: int = 60,
                 **kwargs: Any):
        if "on_failure_callback" not in kwargs:
            from dynamoguard.config import load_config
            from dynamoguard.notify import failure_notifier

            kwargs["on_failure_callback"] = failure_notifier(load_config())
        super().__init__(**kwargs)
        self.table = table
        self.export = export
        self.mode = mode
        self.poll_seconds = poll_seconds

    def execute(self, context) -> dict[str, Any]:
        return self._run(context, None)

    def resume(self, context, event: Any = None, started: str | None = None) -> dict[str, Any]:
        return self._run(context, datetime.fromisoformat(started) if started else None)

    def _export(self, config) -> tuple[str, datetime]:
        export = self.export if isinstance(self.export, dict) else {}
        missing = [k for k in ("bucket", "export_prefix", "export_time") if not export.get(k)]
        if missing:
            raise AirflowFailException(f"{self.table}: the export lacks {missing}: {self.export!r}")
        if export["bucket"] != config.backup_bucket.name:
            raise AirflowFailException(f"{self.table}: export is in bucket {export['bucket']!r}, not the configured "
                                       f"backup_bucket {config.backup_bucket.name!r}")
        prefix = export["export_prefix"]
        if not prefix.strip("/"):
            raise AirflowFailException(f"{self.table}: empty export_prefix (the whole bucket is not one export)")
        export_time = datetime.fromisoformat(str(export["export_time"]).replace("Z", "+00:00"))
        return prefix, export_time if export_time.tzinfo else export_time.replace(tzinfo=UTC)

    def _run(self, context, started: datetime | None) -> dict[str, Any]:
        from dynamoguard import aws
        from dynamoguard.replicas import LockPolicy, Replicator, copy_export, verify_export

        config = self.config
        replica = config.replica_bucket
        mode = self.mode or replica.mode
        if mode not in ("copy", "verify"):
            raise AirflowFailException(f"mode must be 'copy' or 'verify', got {mode!r}")
        prefix, export_time = self._export(config)
        config.table(self.table)
        workers = config.nightly.max_concurrency
        replicator = Replicator(
            source_s3=aws.client(config.accounts.source.aws_conn_id, "s3", config.region, workers),
            backup_s3=backup_account_client(config, "s3", workers),
            source_bucket=config.backup_bucket.name,
            replica_bucket=replica.name,
            lock=LockPolicy.from_export_time(replica.lock_mode, replica.min_retention_days, export_time),
            max_workers=workers,
            multipart_threshold=replica.multipart_threshold_mib * 1024 * 1024,
            part_size=replica.part_size_mib * 1024 * 1024,
            source_account=config.accounts.source.account_id,
            backup_account=config.accounts.backup.account_id,
            verified=self.export.get("checksums") or {},
        )
        if mode == "copy":
            result = copy_export(replicator, self.table, prefix)
        else:
            now = datetime.now(UTC)
            started = started or now
            deadline = started + timedelta(minutes=replica.replication_lag_minutes)
            result = verify_export(replicator, self.table, prefix, pending_is_missing=now >= deadline)
            if result.counts["pending"] and not result.config_problems and now < deadline:
                from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

                wait = min(timedelta(seconds=self.poll_seconds), deadline - now)
                log.info("%d replicas still PENDING; checking again in %s (until %s)",
                         result.counts["pending"], wait, deadline.isoformat())
                self.defer(trigger=TimeDeltaTrigger(wait), method_name="resume",
                           kwargs={"started": started.isoformat()})
        log.info("%s", result.summary())
        failing = self._report(context, result, export_time)
        if not result.ok:
            findings = result.config_problems or any(result.counts[k] for k in FINDINGS)
            if findings:
                from dynamoguard.notify import FindingsFailed

                raise FindingsFailed(result.summary(), failing)
            raise AirflowException(result.summary())
        return result.to_dict()

    def _report(self, context, result, export_time: datetime) -> list[dict[str, Any]]:
        """Store the table's replica findings and summary; notify repairs; the open critical/high findings."""
        from dynamoguard.findings import ALERT_SEVERITIES, alert_lines
        from dynamoguard.notify import notify
        from dynamoguard.replicas import OUTCOMES, store_findings

        summary = {"mode": result.mode, "source": result.source, "replica": result.replica,
                   "export_time": export_time.isoformat(), "checked": result.checked,
                   **{k: result.counts[k] for k in OUTCOMES}, "config_problems": len(result.config_problems),
                   "ok": result.ok}
        changes = self.report(context, self.table, store_findings(result), summary=summary)
        repaired = [f for f in changes.new if f["check"] == "repaired"]
        if repaired:  # medium: the base alerts only on critical/high
            notify(self.config, f"dynamoguard replica: {result.counts['repaired']} deleted replica(s) of "
                                f"{self.table} copied again", "\n".join(alert_lines(repaired)))
        return [f for f in changes.open if f["severity"] in ALERT_SEVERITIES]
