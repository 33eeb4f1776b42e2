"""Planning the next incremental window (pure: times in, a plan out).

Windows are chained exactly: each starts at the previous window's ExportToTime (inclusive start, exclusive end,
so no gap and no overlap); the first starts at the last full export's ExportTime. The run's data-interval end
bounds the window (a backfill exports its own interval); a chain more than 24 hours behind catches up in windows
of 24 hours, one per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dynamoguard.timeutil import iso

MIN_WINDOW = timedelta(minutes=15)  # DynamoDB's limits on ExportToTime - ExportFromTime
MAX_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"from": iso(self.start), "to": iso(self.end)}


@dataclass(frozen=True)
class Plan:
    """The window to export now (None if there is nothing to export) and why.

    ``reason``: ``next`` (continues the chain), ``first`` (starts it at a full export), ``restarted`` (the chain's
    end is no longer restorable; starts again at a newer full export), ``covered`` (the chain already reaches the
    bound), ``too_short`` (less than 15 minutes since the chain's end), ``no_full_export`` (nothing to chain from),
    ``chain_broken`` (the chain's end is outside the PITR window and no full export after it exists).
    ``missed``: whole intervals the chain had fallen behind before this run (a missed window is a finding).
    """

    window: Window | None
    reason: str
    chain_end: datetime | None
    missed: int = 0

    @property
    def behind(self) -> bool:
        return self.reason in ("no_full_export", "chain_broken") or self.missed > 0


def plan_window(*, bound: datetime, interval: timedelta, window_ends: Iterable[datetime],
                full_export_times: Iterable[datetime], earliest_restorable: datetime | None = None) -> Plan:
    """The next window of a chain whose completed windows end at ``window_ends``.

    ``bound``: the run's data-interval end (or latest restorable); ``full_export_times``: ExportTime of every
    completed full export; ``earliest_restorable``: the table's PITR window start (a window may not start before).
    """
    ends = sorted(window_ends)
    fulls = sorted(t for t in full_export_times if t <= bound)
    chain_end, reason = (ends[-1], "next") if ends else (None, "first")
    if chain_end is not None and earliest_restorable is not None and chain_end < earliest_restorable:
        newer = [t for t in fulls if t >= earliest_restorable]
        if not newer:
            return Plan(None, "chain_broken", chain_end)
        chain_end, reason = newer[-1], "restarted"
    if chain_end is None:
        if not fulls:
            return Plan(None, "no_full_export", None)
        chain_end = fulls[-1]
    if chain_end >= bound:
        return Plan(None, "covered", chain_end)
    missed = max(0, int((bound - chain_end).total_seconds() // interval.total_seconds()) - 1) if reason == "next" else 0
    end = min(bound, chain_end + MAX_WINDOW)
    if end - chain_end < MIN_WINDOW:
        return Plan(None, "too_short", chain_end, missed)
    return Plan(Window(chain_end, end), reason, chain_end, missed)


def chained(windows: Iterable[Window], start: datetime, until: datetime | None = None) -> tuple[list[Window], str]:
    """The windows that carry a full export taken at ``start`` forward, in order, ending at or before ``until``.

    The first is the window holding ``start`` (from <= start < to: applied onto the state at ``start`` it gives
    the state at its end), each next one starts where the previous ended. Returns the chain and, if it stops
    short of a newer window, why (a gap), else "".
    """
    by_start: dict[datetime, Window] = {}
    for window in sorted(windows, key=lambda w: (w.start, w.end)):
        by_start.setdefault(window.start, window)
    first = [w for w in by_start.values() if w.start <= start < w.end]
    if not first:
        later = [w for w in by_start.values() if w.start > start]
        gap = f"no window holds {iso(start)}; the next starts at {iso(later[0].start)}" if later else ""
        return [], gap
    chain = [max(first, key=lambda w: w.end)]
    while chain[-1].end in by_start:
        chain.append(by_start[chain[-1].end])
    if until is not None:
        chain = [w for w in chain if w.end <= until]
    reached = chain[-1].end if chain else start
    newer = [w for w in by_start.values() if w.start > reached and (until is None or w.end <= until)]
    gap = f"gap after {iso(reached)}: the next window starts at {iso(newer[0].start)}" if newer else ""
    return chain, gap
