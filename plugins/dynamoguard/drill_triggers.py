"""Deferred waits of a restore drill: an ImportTable until COMPLETED, a restored table until ACTIVE.

Both run in the triggerer on the amazon provider's ``AwsBaseWaiterTrigger``: the provider's
``import_table`` waiter (DescribeImport; FAILED, CANCELLING and CANCELLED are terminal) and botocore's
``table_exists`` waiter (DescribeTable until ACTIVE). ``restore`` (what the task knew when it deferred)
comes back in the event under the key ``restore``.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger


class _DynamoDBWaiterTrigger(AwsBaseWaiterTrigger):
    def hook(self) -> AwsBaseHook:
        # A client hook: the provider's DynamoDBHook is a resource hook, which the async path cannot use.
        return AwsBaseHook(client_type="dynamodb", **self._hook_parameters)


class ImportCompletedTrigger(_DynamoDBWaiterTrigger):
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


class TableActiveTrigger(_DynamoDBWaiterTrigger):
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
