"""Airflow glue for the nightly export of one table: preflight, start + deferred wait, verification.

The logic lives in :mod:`dynamoguard.exports`; these operators read the config, build clients from
the source account's connection, and turn outcomes into task results or clear failures. Failures
that a retry cannot change (table missing, PITR off, time outside the window, export FAILED,
verification problems) raise AirflowFailException so they are reported at once.
The role needs dynamodb:DescribeTable, DescribeContinuousBackups, ExportTableToPointInTime,
ListExports, DescribeExport (UpdateContinuousBackups with ``ensure_pitr``), and s3:ListBucket,
s3:GetObject, s3:PutObject (DynamoDB writes the export with the caller's permissions) on the backup bucket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Asset, AssetAlias
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from dynamoguard.operators._base import DynamoguardOperator


def export_asset(table: str) -> Asset:
    """The Asset updated when a verified export of ``table`` exists (its event extra is the result)."""
    return Asset(f"dynamoguard://exports/{table}", group="dynamoguard")


# The outlet of a verification mapped over tables: each verified export adds an event of its table's Asset.
EXPORTS_ALIAS = AssetAlias("dynamoguard-exports", group="dynamoguard")


class DynamoDBExportPreflightOperator(DynamoguardOperator):
    """Check ``table`` can be exported and choose the export time and S3 prefix for this run.

    Export time = the run's data-interval end (a backfill exports each night as it was), or latest
    restorable when the run has no data interval. If that time has passed but PITR has not caught up
    with it yet, the task defers until it has (at most ``nightly.max_wait_restorable_minutes``).
    """

    template_fields: Sequence[str] = ("table",)
    ui_color = "#e8f0d8"

    def __init__(self, *, table: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.exports.start import ExportError, ExportNotYetRestorable, choose_export_time, preflight
        from dynamoguard.layout import export_prefix
        from dynamoguard.timeutil import iso_ms

        config = self.config
        table = config.table(self.table)
        ddb = self.client("dynamodb")
        try:
            state = preflight(ddb, table.name, ensure_pitr=table.ensure_pitr)
        except ExportError as error:
            raise AirflowFailException(str(error)) from None
        requested = context.get("data_interval_end")
        now = datetime.now(timezone.utc)
        try:
            export_time = choose_export_time(state, requested, now)
        except ExportNotYetRestorable as pending:
            limit = timedelta(minutes=config.nightly.max_wait_restorable_minutes)
            if pending.retry_at - now > limit:
                raise AirflowFailException(f"{pending}; it would take longer than {limit} to become restorable") \
                    from None
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("%s; waiting until %s", pending, iso_ms(pending.retry_at))
            self.defer(trigger=DateTimeTrigger(moment=pending.retry_at + timedelta(seconds=5)),
                       method_name="resume")
        except ExportError as error:
            raise AirflowFailException(str(error)) from None
        bucket = config.backup_bucket
        result = {
            "table": table.name,
            "table_arn": state.table_arn,
            "export_time": iso_ms(export_time),
            "export_time_source": "data_interval_end" if requested is not None else "latest_restorable",
            "bucket": bucket.name,
            "s3_prefix": export_prefix(bucket.prefix, table.name, export_time),
            "deletion_protection": state.deletion_protection,
            "pitr_earliest_restorable": iso_ms(state.earliest_restorable),
            "pitr_latest_restorable": iso_ms(state.latest_restorable),
            "pitr_enabled_now": state.pitr_enabled_now,
        }
        if not state.deletion_protection:
            self.log.warning("Table %s has deletion protection OFF", table.name)
        self.log.info("Preflight %s: %s", table.name, json.dumps(result))
        return result

    def resume(self, context, event: Any = None) -> dict[str, Any]:
        return self.execute(context)


class DynamoDBPointInTimeExportOperator(DynamoguardOperator):
    """Start (or reuse) the point-in-time export chosen by preflight, then defer until it finishes.

    ``preflight`` is the preflight result (usually its XComArg). Returns the finished export's
    description as a dict (export ARN, time, bucket, prefixes, item count, manifest key).
    """

    template_fields: Sequence[str] = ("table", "preflight")
    ui_color = "#d8e4f0"

    def __init__(self, *, table: str, preflight: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table
        self.preflight = preflight

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.exports.start import ExportError, start_export
        from dynamoguard.timeutil import parse_time

        config = self.config
        pre = self.preflight
        ddb = self.client("dynamodb")
        try:
            started = start_export(ddb, pre["table_arn"], parse_time(pre["export_time"]), pre["bucket"],
                                   pre["s3_prefix"])
        except ExportError as error:
            raise AirflowFailException(str(error)) from None
        self.log.info("Export %s of %s at %s: %s (%s)", started.export_arn, self.table, pre["export_time"],
                      started.status, "reused" if started.reused else "started")
        if started.status != "IN_PROGRESS":
            return self._finish(ddb, started.export_arn, reused=started.reused, deferred=False,
                                statuses=[started.status])
        from dynamoguard.triggers import DynamoDBExportTrigger

        timeout = timedelta(minutes=config.nightly.export_timeout_minutes)
        self.log.info("Deferring while export %s is IN_PROGRESS (poll every %ss, timeout %s)",
                      started.export_arn, config.nightly.poll_interval_seconds, timeout)
        self.defer(
            trigger=DynamoDBExportTrigger(
                export_arn=started.export_arn,
                deadline=time.time() + timeout.total_seconds(),
                waiter_delay=config.nightly.poll_interval_seconds,
                aws_conn_id=config.accounts.source.aws_conn_id,
                region_name=config.region,
            ),
            method_name="execute_complete",
            kwargs={"reused": started.reused, "started_status": started.status},
            timeout=timeout + timedelta(minutes=5),
        )

    def execute_complete(self, context, event: dict[str, Any], reused: bool = False,
                         started_status: str = "IN_PROGRESS") -> dict[str, Any]:
        config = self.config
        self.log.info("Export wait ended: %s after %s polls (%s)", event.get("status"), event.get("polls"),
                      " -> ".join(event.get("statuses") or []))
        if event.get("status") == "timeout":
            raise AirflowException(f"{self.table}: {event.get('message')} (nightly.export_timeout_minutes="
                                   f"{config.nightly.export_timeout_minutes}); a retry resumes waiting on it")
        if event.get("status") == "error":
            raise AirflowException(f"{self.table}: {event.get('message')}")
        return self._finish(self.client("dynamodb"), event["export_arn"], reused=reused, deferred=True,
                            statuses=[started_status, *(event.get("statuses") or [])])

    def _finish(self, ddb, export_arn: str, reused: bool, deferred: bool, statuses: list[str]) -> dict[str, Any]:
        from dynamoguard.exports.manifest import export_folder
        from dynamoguard.exports.start import ExportFailed, describe_export, raise_if_failed
        from dynamoguard.timeutil import iso_ms

        description = describe_export(ddb, export_arn)
        try:
            raise_if_failed(description)
        except ExportFailed as failed:
            raise AirflowFailException(f"{self.table}: {failed}") from None
        if description["ExportStatus"] != "COMPLETED":
            raise AirflowException(f"{self.table}: export {export_arn} is {description['ExportStatus']}")
        pre = self.preflight
        result = {
            **pre,
            "export_arn": export_arn,
            "export_status": description["ExportStatus"],
            "export_prefix": export_folder(export_arn, description.get("S3Prefix")),
            "export_manifest": description.get("ExportManifest"),
            "item_count": description.get("ItemCount"),
            "billed_size_bytes": description.get("BilledSizeBytes"),
            "start_time": iso_ms(description["StartTime"]) if description.get("StartTime") else None,
            "end_time": iso_ms(description["EndTime"]) if description.get("EndTime") else None,
            "client_token": description.get("ClientToken"),
            "reused": reused,
            "deferred": deferred,
            "statuses": statuses,
        }
        self.log.info("Export of %s finished: %s", self.table, json.dumps(result))
        return result


class VerifyDynamoDBExportOperator(DynamoguardOperator):
    """Verify a finished export against its manifests; fail (and notify) on any problem.

    ``export`` is the export task's result (usually its XComArg). Returns the verification record
    (export ARN, time, bucket, ``export_prefix``, manifest keys, ``object_keys``, item count, bytes,
    files, checks passed, problems) and publishes it as the extra of the table's Asset event.
    """

    template_fields: Sequence[str] = ("table", "export")
    ui_color = "#d5f0dc"
    job = "export"

    def __init__(self, *, table: str, export: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table
        self.export = export

    def execute(self, context) -> dict[str, Any]:
        from dynamoguard.exports.start import describe_export
        from dynamoguard.exports.verify import verify_export
        from dynamoguard.timeutil import parse_time

        config = self.config
        exp = self.export
        s3 = self.client("s3", max_pool_connections=config.nightly.max_concurrency)
        description = describe_export(self.client("dynamodb"), exp["export_arn"])
        result = verify_export(
            s3, exp["bucket"], exp["export_arn"], exp["table_arn"], parse_time(exp["export_time"]), exp["s3_prefix"],
            description=description, max_workers=config.nightly.max_concurrency,
        )
        record = {
            "table": self.table,
            **result.to_dict(),
            "export_time_source": exp.get("export_time_source"),
            "billed_size_bytes": exp.get("billed_size_bytes"),
            "deletion_protection": exp.get("deletion_protection"),
            "pitr_earliest_restorable": exp.get("pitr_earliest_restorable"),
            "pitr_latest_restorable": exp.get("pitr_latest_restorable"),
        }
        self.log.info(
            "Verification of %s export %s at %s: %s; %d items, %d bytes in %d files; checks passed: %s",
            self.table, record["export_arn"], record["export_time"], "OK" if result.ok else "FAILED",
            record["item_count"], record["bytes"], record["files"], ", ".join(record["checks_passed"]),
        )
        for problem in result.problems:
            self.log.error("Problem: %s", problem)
        self._report(context, config, record, result)
        if not result.ok:
            context["ti"].xcom_push(key="verification", value=record)
            shown = "\n".join(f"  - {p}" for p in record["problems"][:20])
            more = len(record["problems"]) - 20
            raise AirflowFailException(
                f"{self.table}: export {record['export_arn']} failed verification with {len(result.problems)} "
                f"problem(s):\n{shown}" + (f"\n  ... and {more} more" if more > 0 else "")
            )
        summary = {k: v for k, v in record.items() if k not in ("data_keys", "object_keys")}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = summary
            elif isinstance(outlet, AssetAlias):
                context["outlet_events"][outlet].add(export_asset(self.table), extra=summary)
        return record

    def _report(self, context, config, record: dict[str, Any], result) -> None:
        """Store this verification's findings (each problem, and an item-count drop against the previous
        verified export) with the table's export summary and chart point; a failed verification is notified
        with its problems by the failure notifier."""
        from dynamoguard.findings import Finding
        from dynamoguard.trend import item_count_drop, previous_export

        history = self.findings_store().load(self.job, self.table).get("history", [])
        verified = [{"export_time": p["at"], "item_count": p.get("items"), "bytes": p.get("bytes")} for p in history]
        findings = [
            Finding(job=self.job, check=p.code, severity="high", table=self.table,
                    resource=f"s3://{record['bucket']}/{p.key}" if p.key else f"table/{self.table}",
                    title=f"{self.table}: export {record['export_time']} failed verification: {p.code} ({p.key})",
                    evidence={"export_arn": record["export_arn"], "export_time": record["export_time"],
                              "object": p.key, "found": p.detail})
            for p in result.problems
        ]
        drop = item_count_drop(self.table, previous_export(verified, record["export_time"]), record,
                               max_drop_percent=config.nightly.max_item_drop_percent)
        if drop is not None:
            findings.append(drop)
        summary = {k: record.get(k) for k in ("export_arn", "export_time", "item_count", "bytes", "files")}
        summary.update(checks_passed=len(record.get("checks_passed") or []), ok=result.ok)
        point = {"at": record["export_time"], "items": record["item_count"], "bytes": record["bytes"]} \
            if result.ok else None
        self.report(context, self.table, findings, summary=summary, history_point=point, succeeded=result.ok,
                    alert=result.ok)
