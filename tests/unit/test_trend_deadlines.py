"""Item-count drops between verified exports, and missed nightly deadlines (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dynamoguard.deadlines import due_night, missed_deadlines
from dynamoguard.trend import item_count_drop, previous_export

UTC = timezone.utc


def point(day: int, items: int, size: int = 1000) -> dict:
    return {"export_time": f"2026-11-{day:02d}T02:00:00Z", "item_count": items, "bytes": size}


def test_previous_export_is_the_latest_before_the_current_one():
    points = [point(25, 100), point(27, 300), point(26, 200), point(28, 999)]
    assert previous_export(points, "2026-11-28T02:00:00Z") == point(27, 300)
    assert previous_export(points, "2026-11-25T02:00:00Z") is None


def test_a_drop_beyond_the_limit_is_a_high_finding_with_both_counts():
    finding = item_count_drop("orders", point(27, 1000, 50_000), point(28, 790, 40_000), max_drop_percent=20)
    assert finding is not None and finding.severity == "high" and finding.check == "item_count_drop"
    assert finding.resource == "table/orders" and finding.table == "orders"
    assert finding.evidence["previous"]["item_count"] == 1000 and finding.evidence["current"]["item_count"] == 790
    assert finding.evidence["item_drop_percent"] == 21.0 and finding.evidence["bytes_drop_percent"] == 20.0
    assert "790 items, 21% fewer than the 1000" in finding.title


def test_no_finding_within_the_limit_on_growth_or_without_history():
    assert item_count_drop("orders", point(27, 1000), point(28, 800), max_drop_percent=20) is None
    assert item_count_drop("orders", point(27, 1000), point(28, 5000)) is None
    assert item_count_drop("orders", None, point(28, 0)) is None
    assert item_count_drop("orders", point(27, 0), point(28, 0)) is None
    assert item_count_drop("orders", point(27, 10), point(28, 0)) is not None  # wiped


def test_due_night_is_the_latest_tick_whose_deadline_has_passed():
    four = timedelta(hours=4)
    assert due_night("0 2 * * *", four, datetime(2026, 11, 30, 6, 0, tzinfo=UTC)) == datetime(2026, 11, 30, 2,
                                                                                                tzinfo=UTC)
    assert due_night("0 2 * * *", four, datetime(2026, 11, 30, 5, 59, tzinfo=UTC)) == datetime(2026, 11, 29, 2,
                                                                                                 tzinfo=UTC)


def test_tables_without_a_verified_export_of_the_due_night_missed_it():
    now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    verified = {"orders": datetime(2026, 11, 30, 2, tzinfo=UTC), "customers": datetime(2026, 11, 29, 2, tzinfo=UTC)}
    findings = missed_deadlines(["orders", "customers", "inventory"], verified, schedule="0 2 * * *",
                                deadline_hours=4, now=now)
    assert [(f.table, f.severity, f.check) for f in findings] == [("customers", "high", "deadline_missed"),
                                                                  ("inventory", "high", "deadline_missed")]
    assert findings[0].evidence["found"] == "2026-11-29T02:00:00Z"
    assert findings[0].evidence["expected"] == "a verified export of 2026-11-30T02:00:00Z by 2026-11-30T06:00:00Z"
    assert findings[1].evidence["found"] is None
    assert missed_deadlines(["orders"], verified, schedule="0 2 * * *", deadline_hours=4, now=now) == []
