"""What every dynamoguard DAG shares: a timezone-aware start date, the ``dynamoguard`` tag, default_args."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dynamoguard.config import Config

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
TAG = "dynamoguard"


def tags(*more: str) -> list[str]:
    """The ``dynamoguard`` tag followed by ``more``."""
    return [TAG, *more]


def default_args(config: Config, *, retries: int | None = None, retry_delay: timedelta | None = None) -> dict[str, Any]:
    """Owner, retries and retry delay (``tasks`` in the config unless given) and the failure notifier."""
    from dynamoguard.notify import failure_notifier

    return {
        "owner": "dynamoguard",
        "retries": config.tasks.retries if retries is None else retries,
        "retry_delay": retry_delay or timedelta(seconds=config.tasks.retry_delay_seconds),
        "on_failure_callback": failure_notifier(config),
    }
