"""The findings and off-account RPO of one incremental run, and the shape checks of incremental data lines."""

from datetime import datetime, timezone

from dynamoguard.incremental.rpo import replicated_to, rpo_seconds, run_findings
from dynamoguard.incremental.verify import _line_problem

NOW = datetime(2026, 11, 30, 5, 10, tzinfo=timezone.utc)
WINDOW = {"from": "2026-11-30T04:00:00Z", "to": "2026-11-30T05:00:00Z"}
PLAN = {"reason": "next", "missed": 0, "chain_end": "2026-11-30T04:00:00Z", "window": WINDOW}
DONE = {"export": {"x": 1}, "verify": {"x": 1}, "object_lock": {"x": 1}, "replica": {"x": 1}}


def checks(findings):
    return {f.check: f for f in findings}


def test_a_replicated_window_moves_the_rpo_and_raises_nothing():
    replicated = replicated_to({"replicated_to": "2026-11-30T04:00:00Z"}, DONE["replica"], WINDOW["to"])
    assert replicated == "2026-11-30T05:00:00Z" and rpo_seconds(replicated, NOW) == 600
    assert run_findings("orders", PLAN, DONE, [], 600, 7200) == []


def test_a_window_failing_at_a_step_is_a_finding_naming_it_and_the_rpo_stays_at_the_last_replica():
    results = {**DONE, "verify": None, "object_lock": None, "replica": None}
    replicated = replicated_to({"replicated_to": "2026-11-30T04:00:00Z"}, None, WINDOW["to"])
    assert replicated == "2026-11-30T04:00:00Z"
    found = checks(run_findings("orders", PLAN, results, ["md5_mismatch: k: x"], rpo_seconds(replicated, NOW), 7200))
    assert set(found) == {"window_failed"} and found["window_failed"].evidence["step"] == "verify"
    assert found["window_failed"].evidence["problems"] == ["md5_mismatch: k: x"]


def test_missed_windows_no_chain_and_an_rpo_over_the_limit_are_findings():
    found = checks(run_findings("orders", {**PLAN, "missed": 3}, DONE, [], 4 * 3600, 7200))
    assert found["missed_windows"].severity == "medium" and found["rpo_exceeded"].severity == "high"
    found = checks(run_findings("orders", {"reason": "no_full_export", "missed": 0, "window": None}, {}, [], None,
                                7200))
    assert set(found) == {"no_full_export", "rpo_exceeded"}
    assert "unknown" in found["rpo_exceeded"].title
    assert set(checks(run_findings("orders", None, {}, [], 60, 7200))) == {"window_failed"}


def test_before_the_first_verified_full_export_the_chain_waits_with_one_info_finding():
    waiting = {"reason": "no_full_export", "missed": 0, "window": None}
    found = run_findings("orders", waiting, {}, [], None, 7200, first_full_pending=True)
    assert [(f.check, f.severity) for f in found] == [("awaiting_full_export", "info")]
    broken = checks(run_findings("orders", {**waiting, "reason": "chain_broken"}, {}, [], None, 7200,
                                 first_full_pending=True))
    assert broken["chain_broken"].severity == "high"  # only the missing first full export waits


def test_line_shapes():
    start, end = 1_000_000, 2_000_000
    meta = '{"Metadata":{"WriteTimestampMicros":{"N":"1500000"}}'
    assert _line_problem((meta + ',"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"}}}').encode(), None, start,
                         end) is None
    assert _line_problem((meta + ',"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"}}}').encode(), "NEW_IMAGE",
                         start, end)[1] == "OldImage in a NEW_IMAGE export"
    assert _line_problem((meta + ',"NewImage":{}}').encode(), None, start, end) == ("line_invalid", "no Keys")
    assert _line_problem(b'{"Keys":{"pk":{"S":"a"}}}', None, start, end)[0] == "line_invalid"
    late = '{"Metadata":{"WriteTimestampMicros":{"N":"2000000"}},"Keys":{"pk":{"S":"a"}}}'
    assert _line_problem(late.encode(), None, start, end)[0] == "write_time_outside_window"
