"""Planning incremental windows: chained exactly, bounded by the run, catching up in windows of at most 24 h."""

from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.incremental.windows import Window, chained, plan_window
from dynamoguard.layout import incremental_prefix, incremental_root, incremental_window

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)  # the nightly full export
H = timedelta(hours=1)


def plan(bound, ends=(), fulls=(T0,), earliest=None, interval=H):
    return plan_window(bound=bound, interval=interval, window_ends=ends, full_export_times=fulls,
                       earliest_restorable=earliest)


def test_the_first_window_starts_at_the_last_full_export_at_or_before_the_bound():
    p = plan(T0 + H, fulls=(T0 - 24 * H, T0, T0 + 5 * H))
    assert p.window == Window(T0, T0 + H) and p.reason == "first" and p.missed == 0


def test_each_window_starts_where_the_previous_ended_no_gap_no_overlap():
    ends = [T0 + H]
    for n in range(2, 6):
        p = plan(T0 + n * H, ends=ends)
        assert p.window.start == ends[-1] and p.window.end == T0 + n * H and p.reason == "next"
        ends.append(p.window.end)
    windows = [Window(a, b) for a, b in zip([T0, *ends[:-1]], ends, strict=True)]
    assert all(w.start == prev.end for prev, w in zip(windows, windows[1:], strict=False))


def test_a_retry_of_the_same_run_plans_the_same_window():
    assert plan(T0 + 2 * H, ends=[T0 + H]) == plan(T0 + 2 * H, ends=[T0 + H])


def test_after_downtime_the_chain_catches_up_in_windows_of_at_most_24_hours_and_counts_missed_ones():
    p = plan(T0 + 30 * H, ends=[T0 + H])
    assert p.window == Window(T0 + H, T0 + 25 * H) and p.missed == 28 and p.behind
    p = plan(T0 + 30 * H, ends=[T0 + H, T0 + 25 * H])
    assert p.window == Window(T0 + 25 * H, T0 + 30 * H) and p.missed == 4


def test_a_backfill_of_an_interval_the_chain_already_covers_exports_nothing():
    p = plan(T0 + 3 * H, ends=[T0 + H, T0 + 2 * H, T0 + 5 * H])
    assert p.window is None and p.reason == "covered" and p.chain_end == T0 + 5 * H


def test_a_backfill_before_any_window_chains_from_the_full_export_before_its_bound():
    p = plan(T0 - 20 * H, fulls=(T0 - 24 * H, T0))
    assert p.window == Window(T0 - 24 * H, T0 - 20 * H) and p.reason == "first"


def test_bounds_windows_under_15_minutes_wait_and_none_without_a_full_export():
    assert plan(T0 + timedelta(minutes=14)).reason == "too_short"
    assert plan(T0 + timedelta(minutes=15)).window == Window(T0, T0 + timedelta(minutes=15))
    p = plan(T0 + H, fulls=())
    assert p.window is None and p.reason == "no_full_export" and p.behind
    assert plan(T0 - H).reason == "no_full_export"  # the only full export is after the bound


def test_a_chain_whose_end_left_the_pitr_window_restarts_at_a_newer_full_export_or_is_broken():
    p = plan(T0 + 50 * H, ends=[T0 + H], fulls=(T0, T0 + 48 * H), earliest=T0 + 40 * H)
    assert p.window == Window(T0 + 48 * H, T0 + 50 * H) and p.reason == "restarted"
    p = plan(T0 + 50 * H, ends=[T0 + H], earliest=T0 + 40 * H)
    assert p.window is None and p.reason == "chain_broken" and p.behind


@pytest.mark.parametrize("minutes", [15, 60, 1440])
def test_interval_counts_missed_windows(minutes):
    interval = timedelta(minutes=minutes)
    assert plan(T0 + 3 * interval, ends=[T0 + interval], interval=interval).missed == 1


def test_chained_starts_with_the_window_holding_the_full_export_and_stops_at_the_point_or_a_gap():
    w = [Window(T0 - H, T0 + H), Window(T0 + H, T0 + 2 * H), Window(T0 + 2 * H, T0 + 3 * H),
         Window(T0 + 4 * H, T0 + 5 * H)]
    chain, gap = chained(w, T0, until=T0 + 2 * H)
    assert chain == w[:2] and gap == ""
    chain, gap = chained(w, T0)
    assert chain == w[:3] and "gap after 2026-11-30T05:00:00Z" in gap
    assert chained(w, T0 + 10 * H) == ([], "")
    assert chained(w[1:], T0)[0] == [] and "no window holds" in chained(w[1:], T0)[1]


def test_window_folders_name_their_window_and_list_in_order():
    prefix = incremental_prefix("exports", "orders", T0, T0 + H)
    assert prefix == "exports/orders/incremental/20261130T020000Z_20261130T030000Z"
    assert prefix.startswith(incremental_root("exports", "orders"))
    assert incremental_window(prefix + "/") == (T0, T0 + H)
    assert incremental_prefix("", "orders", T0, T0 + H).startswith("orders/incremental/")
    with pytest.raises(ValueError):
        incremental_window("exports/orders/incremental/latest")
