"""Key layouts: one definition each, empty prefixes handled."""

from datetime import datetime, timezone

from dynamoguard.layout import export_prefix, join, table_prefix

NIGHT = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)


def test_export_prefix_with_and_without_base():
    assert export_prefix("exports", "orders", NIGHT) == "exports/orders/2026-11-30"
    assert export_prefix("", "orders", NIGHT) == "orders/2026-11-30"
    assert export_prefix("/a/b/", "orders", NIGHT) == "a/b/orders/2026-11-30"


def test_table_prefix_never_starts_with_a_slash():
    assert table_prefix("", "orders") == "orders/"
    assert table_prefix("exports", "orders") == "exports/orders/"
    assert join("", "/x/", "", "y") == "x/y"
