"""A sliding point-in-time-recovery window.

AWS (DescribeContinuousBackups, PointInTimeRecoveryDescription): ``LatestRestorableDateTime`` is
"typically 5 minutes before the current time" and ``EarliestRestorableDateTime`` is when PITR was
enabled, but never older than ``RecoveryPeriodInDays`` (1-35, default 35) before now
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/PointInTimeRecovery_Howitworks.html).
moto 5.2.5 freezes both at the moment PITR was enabled.

Here Latest = now - ``pitr_lag_seconds`` (default 300, AWS's "typically 5 minutes"; a run-time setting,
``POST /_localaws/config {"pitr_lag_seconds": 0}``), but never earlier than Earliest (a table whose PITR was
enabled a minute ago has a window of one instant, the enable time). A table can be made to look as if PITR
had been on for a month through ``POST /_localaws/pitr`` (``set_earliest``), or have its whole recorded
past moved back through ``POST /_localaws/backdate`` (``backdate``); see ``fixes/control.py`` and the item
history in ``fixes/dynamodb_history.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from moto.dynamodb.responses import DynamoHandler

SETTINGS: dict[str, float] = {"pitr_lag_seconds": 300.0}
DAY = 86400


def window(table: Any, now: float | None = None) -> tuple[float, float] | None:
    """(earliest, latest) restorable epoch seconds of ``table``, or None if PITR is off."""
    desc = table.continuous_backups["PointInTimeRecoveryDescription"]
    if desc.get("PointInTimeRecoveryStatus") != "ENABLED":
        return None
    now = time.time() if now is None else now
    earliest = max(float(desc["EarliestRestorableDateTime"]), now - int(desc.get("RecoveryPeriodInDays", 35)) * DAY)
    return earliest, max(earliest, now - SETTINGS["pitr_lag_seconds"])


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


def _enabled(table: Any) -> dict[str, Any]:
    desc = table.continuous_backups["PointInTimeRecoveryDescription"]
    if desc.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise ValueError(f"point-in-time recovery is not enabled for table {table.name}")
    return desc


def set_earliest(table: Any, earliest: float) -> None:
    """Pretend PITR of ``table`` has been on since ``earliest`` (epoch seconds), with the table's current items
    present all along (the recorded item history is replaced by them)."""
    from include.localaws.fixes import dynamodb_history

    desc = _enabled(table)
    history = dynamodb_history.history_of(table)
    history.rebase(dynamodb_history.current_items(table), int(earliest * 1_000_000))
    desc["EarliestRestorableDateTime"] = earliest


def backdate(table: Any, seconds: float) -> None:
    """Move everything the emulator knows about the past of ``table`` (item changes, PITR enable time)
    ``seconds`` back."""
    from include.localaws.fixes import dynamodb_history

    desc = _enabled(table)
    dynamodb_history.history_of(table).shift(seconds)
    desc["EarliestRestorableDateTime"] = float(desc["EarliestRestorableDateTime"]) - seconds


def apply() -> None:
    DynamoHandler.describe_continuous_backups = _describe_continuous_backups
