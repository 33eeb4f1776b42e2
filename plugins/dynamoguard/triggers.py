"""Deferred waits run by the triggerer (no worker slot held while DynamoDB works).

The export wait is built on the amazon provider's ``AwsBaseWaiterTrigger`` and its ``export_table`` waiter
(DescribeExport: COMPLETED succeeds, FAILED fails, IN_PROGRESS retries). The base trigger polls at a
fixed delay for a fixed number of attempts; this one backs off (x1.5 per poll, up to 4x the first
delay) and stops at an absolute deadline, so a restarted triggerer does not extend the timeout.

A restore drill waits for an ImportTable until COMPLETED (the provider's ``import_table`` waiter;
FAILED, CANCELLING and CANCELLED are terminal) and for a restored table until ACTIVE (botocore's
``table_exists`` waiter); ``restore`` (what the task knew when it deferred) comes back in the event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.providers.amazon.aws.utils.waiter_with_logging import RETRIABLE_ERROR_CODES
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import WaiterError

BACKOFF = 1.5
MAX_DELAY_FACTOR = 4


class DynamoDBWaiterTrigger(AwsBaseWaiterTrigger):
    """A waiter trigger on a DynamoDB *client* hook (the provider's DynamoDBHook is a resource hook,
    which the async path cannot use)."""

    def hook(self) -> AwsBaseHook:
        return AwsBaseHook(client_type="dynamodb", **self._hook_parameters)


class DynamoDBExportTrigger(DynamoDBWaiterTrigger):
    """Wait until the export ``export_arn`` is COMPLETED or FAILED, or ``deadline`` (epoch seconds) passes.

    Emits ``{"status": "success" | "failed" | "timeout" | "error", "export_arn", "export_status",
    "failure_code", "failure_message", "polls", "statuses", "message"}``; ``statuses`` lists the
    ExportStatus seen at each poll, so the task can show how long it waited and in which states.
    """

    def __init__(self, *, export_arn: str, deadline: float, waiter_delay: int = 30,
                 waiter_max_attempts: int | None = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, **kwargs: Any):
        super().__init__(
            serialized_fields={"export_arn": export_arn, "deadline": deadline},
            waiter_name="export_table",
            waiter_args={"ExportArn": export_arn},
            failure_message=f"DynamoDB export {export_arn} failed",
            status_message=f"DynamoDB export {export_arn} status",
            status_queries=["ExportDescription.ExportStatus"],
            return_key="export_arn",
            return_value=export_arn,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts or 1,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            **kwargs,
        )
        self.export_arn = export_arn
        self.deadline = deadline

    def _event(self, status: str, statuses: list[str], description: dict[str, Any] | None = None,
               message: str = "") -> TriggerEvent:
        description = description or {}
        return TriggerEvent({
            "status": status,
            "export_arn": self.export_arn,
            "export_status": description.get("ExportStatus"),
            "failure_code": description.get("FailureCode"),
            "failure_message": description.get("FailureMessage"),
            "polls": len(statuses),
            "statuses": statuses,
            "message": message,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self.hook()
        statuses: list[str] = []
        delay = float(self.waiter_delay)
        async with await hook.get_async_conn() as client:
            waiter = hook.get_waiter(self.waiter_name, deferrable=True, client=client)
            while True:
                try:
                    await waiter.wait(**self.waiter_args, WaiterConfig={"MaxAttempts": 1})
                except WaiterError as error:
                    response = error.last_response or {}
                    description = response.get("ExportDescription")
                    if description is not None:
                        statuses.append(description.get("ExportStatus", "?"))
                        if "terminal failure" in str(error):
                            yield self._event("failed", statuses, description, str(error))
                            return
                    else:
                        code = response.get("Error", {}).get("Code", "")
                        statuses.append(code or "?")
                        if code not in RETRIABLE_ERROR_CODES:
                            yield self._event("error", statuses, None, f"DescribeExport failed: {error}")
                            return
                    self.log.info("Export %s is %s (poll %d)", self.export_arn, statuses[-1], len(statuses))
                else:
                    statuses.append("COMPLETED")
                    yield self._event("success", statuses, {"ExportStatus": "COMPLETED"})
                    return
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    yield self._event("timeout", statuses, None,
                                      f"export {self.export_arn} still {statuses[-1]} at the deadline")
                    return
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * BACKOFF, self.waiter_delay * MAX_DELAY_FACTOR)


class ImportCompletedTrigger(DynamoDBWaiterTrigger):
    """Fires when the import ``import_arn`` is COMPLETED (success) or FAILED/CANCELLED (error with AWS's reason)."""

    def __init__(self, *, import_arn: str, restore: dict, waiter_delay: int = 30, waiter_max_attempts: int = 720,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs):
        super().__init__(
            serialized_fields={"import_arn": import_arn, "restore": restore},
            waiter_name="import_table",
            waiter_args={"ImportArn": import_arn},
            failure_message=f"DynamoDB import {import_arn} did not complete",
            status_message="import status",
            status_queries=["ImportTableDescription.ImportStatus", "ImportTableDescription.FailureCode",
                            "ImportTableDescription.FailureMessage"],
            return_key="restore",
            return_value=restore,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            **kwargs,
        )


class TableActiveTrigger(DynamoDBWaiterTrigger):
    """Fires when the table ``table_name`` is ACTIVE (a point-in-time restore has finished)."""

    def __init__(self, *, table_name: str, restore: dict, waiter_delay: int = 30, waiter_max_attempts: int = 720,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs):
        super().__init__(
            serialized_fields={"table_name": table_name, "restore": restore},
            waiter_name="table_exists",
            waiter_args={"TableName": table_name},
            failure_message=f"table {table_name} did not become ACTIVE",
            status_message="table status",
            status_queries=["Table.TableStatus"],
            return_key="restore",
            return_value=restore,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            **kwargs,
        )
