"""``pitr``: RestoreTableToPointInTime of the protected table at the restore point's time (source account)."""

from __future__ import annotations

from typing import Any

from dynamoguard.drills.sources._base import Source
from dynamoguard.timeutil import parse_time


def start_pitr_restore(ddb, source_table: str, target: str, restore_time) -> dict[str, Any]:
    """RestoreTableToPointInTime at ``restore_time`` into a new on-demand table; its table description."""
    return ddb.restore_table_to_point_in_time(
        SourceTableName=source_table,
        TargetTableName=target,
        RestoreDateTime=restore_time,
        BillingModeOverride="PAY_PER_REQUEST",
    )["TableDescription"]


class PitrSource(Source):
    name = "pitr"
    label = "Point-in-time recovery"
    imported = False
    # RestoreTableToPointInTime on the protected table, and the item actions DynamoDB checks on the target
    iam_actions = ("dynamodb:RestoreTableToPointInTime", "dynamodb:PutItem", "dynamodb:UpdateItem",
                   "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchWriteItem")

    def start(self, ddb, s3, drill: dict[str, Any]) -> dict[str, Any]:
        description = start_pitr_restore(ddb, drill["table"], drill["scratch_table"],
                                         parse_time(drill["restore_point"]))
        return {"table_arn": description["TableArn"], "import_arn": None}

    def trigger(self, drill: dict[str, Any], restore: dict[str, Any], **waits: Any):
        from dynamoguard.triggers import TableActiveTrigger

        return TableActiveTrigger(table_name=drill["scratch_table"], restore=restore, **waits)


SOURCE = PitrSource()
