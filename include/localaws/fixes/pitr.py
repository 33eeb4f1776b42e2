"""A sliding point-in-time-recovery window.

AWS (DescribeContinuousBackups, PointInTimeRecoveryDescription): ``LatestRestorableDateTime`` is
"typically 5 minutes before the current time" and ``EarliestRestorableDateTime`` is when PITR was
enabled, but never older than ``RecoveryPeriodInDays`` (1-35, default 35) before now
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/PointInTimeRecovery_Howitworks.html).
moto 5.2.5 freezes both at the moment PITR was enabled.

Here Latest = now - 5 minutes, but never earlier than Earliest (a table whose PITR was enabled a
minute ago has a window of one instant, the enable time). The emulator keeps no history: a table
can be made to look as if PITR had been on for a month through the control endpoint
(``POST /_localaws/pitr``, see ``fixes/control.py``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from moto.dynamodb.responses import DynamoHandler

LATEST_LAG_SECONDS = 300
DAY = 86400


def window(table: Any, now: float | None = None) -> tuple[float, float] | None:
    """(earliest, latest) restorable epoch seconds of ``table``, or None if PITR is off."""
    desc = table.continuous_backups["PointInTimeRecoveryDescription"]
    if desc.get("PointInTimeRecoveryStatus") != "ENABLED":
        return None
    now = time.time() if now is None else now
    earliest = max(float(desc["EarliestRestorableDateTime"]), now - int(desc.get("RecoveryPeriodInDays", 35)) * DAY)
    return earliest, max(earliest, now - LATEST_LAG_SECONDS)


def _as_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


_original = DynamoHandler.describe_continuous_backups


def _describe_continuous_backups(self):
    result = _original(self)
    table = self.dynamodb_backend.get_table(self.body["TableName"])
    span = window(table)
    if span is not None:
        desc = dict(table.continuous_backups["PointInTimeRecoveryDescription"])
        desc["EarliestRestorableDateTime"], desc["LatestRestorableDateTime"] = map(_as_datetime, span)
        return type(result)({"ContinuousBackupsDescription": {**table.continuous_backups,
                                                              "PointInTimeRecoveryDescription": desc}})
    return result


def set_earliest(table: Any, earliest: float) -> None:
    """Pretend PITR of ``table`` has been on since ``earliest`` (epoch seconds)."""
    desc = table.continuous_backups["PointInTimeRecoveryDescription"]
    if desc.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise ValueError(f"point-in-time recovery is not enabled for table {table.name}")
    desc["EarliestRestorableDateTime"] = earliest


def apply() -> None:
    DynamoHandler.describe_continuous_backups = _describe_continuous_backups
