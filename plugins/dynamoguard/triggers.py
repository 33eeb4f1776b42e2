"""Deferred wait for a DynamoDB export, run by the triggerer (no worker slot held while DynamoDB works).

Built on the amazon provider's ``AwsBaseWaiterTrigger`` and its ``export_table`` waiter
(DescribeExport: COMPLETED succeeds, FAILED fails, IN_PROGRESS retries). The base trigger polls at a
fixed delay for a fixed number of attempts; this one backs off (x1.5 per poll, up to 4x the first
delay) and stops at an absolute deadline, so a restarted triggerer does not extend the timeout.
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


class DynamoDBExportTrigger(AwsBaseWaiterTrigger):
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

    def hook(self) -> AwsBaseHook:
        return AwsBaseHook(client_type="dynamodb", **self._hook_parameters)

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
