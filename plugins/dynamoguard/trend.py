"""Item-count trend of a table's verified exports: a sudden drop is a finding.

A mass deletion or a ransomware wipe of a table looks, in its backups, exactly like this: tonight's export
holds far fewer items than last night's. The nightly verification compares the items (and bytes) of the
export it just verified with the previous verified export of the same table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dynamoguard.findings import Finding
from dynamoguard.timeutil import iso, parse_time

ITEM_COUNT_DROP = "item_count_drop"
DEFAULT_MAX_DROP_PERCENT = 20.0


def previous_export(points: Iterable[Mapping[str, Any]], export_time: Any) -> Mapping[str, Any] | None:
    """The latest of ``points`` (verified exports: ``export_time``, ``item_count``, ``bytes``) before
    ``export_time``, or None."""
    when = parse_time(export_time)
    earlier = [p for p in points if p.get("export_time") and p.get("item_count") is not None
               and parse_time(p["export_time"]) < when]
    return max(earlier, key=lambda p: parse_time(p["export_time"]), default=None)


def _drop(before: int | None, after: int | None) -> float | None:
    if not before or after is None:
        return None
    return round((before - after) * 100.0 / before, 1)


def item_count_drop(table: str, previous: Mapping[str, Any] | None, current: Mapping[str, Any], *,
                    max_drop_percent: float = DEFAULT_MAX_DROP_PERCENT, job: str = "export") -> Finding | None:
    """A high finding when ``current`` holds more than ``max_drop_percent`` fewer items than ``previous``.

    Both are verified exports of ``table``: mappings with ``export_time``, ``item_count`` and ``bytes``.
    No previous export, or an empty one, gives nothing to compare with (None).
    """
    if previous is None:
        return None
    items_drop = _drop(previous.get("item_count"), current.get("item_count"))
    if items_drop is None or items_drop <= max_drop_percent:
        return None
    current_time, previous_time = iso(parse_time(current["export_time"])), iso(parse_time(previous["export_time"]))
    return Finding(
        job=job, check=ITEM_COUNT_DROP, severity="high", table=table, resource=f"table/{table}",
        dedup=current_time,
        title=f"{table}: the export of {current_time} holds {current['item_count']} items, {items_drop:g}% fewer than "
              f"the {previous['item_count']} of the previous verified export ({previous_time}): a mass deletion "
              "or wipe of the table?",
        evidence={
            "expected": f"at most {max_drop_percent:g}% fewer items than the previous verified export",
            "previous": {"export_time": previous_time, "item_count": previous["item_count"],
                         "bytes": previous.get("bytes")},
            "current": {"export_time": current_time, "item_count": current["item_count"],
                        "bytes": current.get("bytes")},
            "item_drop_percent": items_drop,
            "bytes_drop_percent": _drop(previous.get("bytes"), current.get("bytes")),
            "max_item_drop_percent": max_drop_percent,
        },
    )
