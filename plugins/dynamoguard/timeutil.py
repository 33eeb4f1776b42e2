"""Time helpers used everywhere: aware UTC datetimes in, ISO-8601 text out."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from a datetime, ISO-8601 text (``Z`` or offset; naive means UTC) or epoch seconds.

    ValueError names the value when it is none of these.
    """
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO-8601 date-time")


def iso(moment: datetime) -> str:
    """ISO 8601 UTC to the second: ``2026-11-30T02:00:00Z``."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds, the form export manifests use (``2022-11-12T04:30:50.456Z``)."""
    moment = utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def same_ms(a: datetime, b: datetime) -> bool:
    """Equal to the millisecond (the precision DynamoDB keeps for export times)."""
    return abs((utc(a) - utc(b)).total_seconds()) < 0.001
