"""The findings store in the reports bucket: merge across runs, conditional writes, summary and history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.findings import Finding, FindingsStore, RunRef

pytestmark = pytest.mark.aws

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)


def _finding(check: str, resource: str = "table/orders") -> Finding:
    return Finding(job="drill", check=check, severity="high", title=check, resource=resource, table="orders")


@pytest.fixture
def store(localaws):
    s3 = localaws.client("s3")
    s3.create_bucket(Bucket="dg-reports")
    return FindingsStore(s3, "dg-reports", "reports")


def test_record_merges_with_the_previous_run(store):
    run = RunRef("dag", "r1", "t")
    first = store.record("drill", "orders", [_finding("a"), _finding("b")], run, summary={"result": "failed"},
                         history_point={"at": "2026-11-01", "rto": 5}, now=T0)
    second = store.record("drill", "orders", [_finding("a")], RunRef("dag", "r2", "t"),
                          history_point={"at": "2026-11-02", "rto": 7}, now=T0 + timedelta(days=1))
    assert len(first.new) == 2 and second.new == [] and [f["check"] for f in second.resolved] == ["b"]
    state = store.load("drill", "orders")
    assert {f["check"]: f["status"] for f in state["findings"]} == {"a": "open", "b": "resolved"}
    assert state["summary"]["result"] == "failed" and [p["rto"] for p in state["history"]] == [5, 7]
    assert store.s3.head_object(Bucket="dg-reports", Key="reports/findings/drill/orders.json")


def test_concurrent_writers_lose_nothing(store):
    """Eight runs record at once; conditional writes make each merge see the others' result."""
    def record(i: int):
        return store.record("drill", "orders", [_finding(f"c{i}")], RunRef("dag", f"r{i}"),
                            history_point={"at": f"p{i}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(record, range(8)))
    history = store.load("drill", "orders")["history"]
    assert sorted(p["at"] for p in history) == [f"p{i}" for i in range(8)]


def test_bad_scope_and_foreign_job_are_refused(store):
    with pytest.raises(ValueError, match="scope"):
        store.key("drill", "a/b")
    with pytest.raises(ValueError, match="belongs to job 'drill'"):
        store.record("export", "orders", [_finding("a")], RunRef("d", "r"))


def test_last_success_is_kept_until_a_run_succeeds_again(store):
    store.record("drill", "orders", [], RunRef("dag", "r1", "t"), summary={"items": 10}, succeeded=True, now=T0)
    later = T0 + timedelta(days=1)
    store.record("drill", "orders", [_finding("a")], RunRef("dag", "r2", "t"), summary={"items": 1},
                 succeeded=False, now=later)
    summary = store.load("drill", "orders")["summary"]
    assert summary == {"items": 1, "last_run": "2026-11-02T02:00:00Z", "last_success": "2026-11-01T02:00:00Z"}
    store.record("drill", "orders", [], RunRef("dag", "r3", "t"), succeeded=True, now=later + timedelta(days=1))
    summary = store.load("drill", "orders")["summary"]
    assert summary["items"] == 1 and summary["last_success"] == summary["last_run"] == "2026-11-03T02:00:00Z"
    store.record("audit", "account", [], RunRef("dag", "r1", "t"), succeeded=False, now=T0)
    assert "last_success" not in store.load("audit", "account")["summary"]
