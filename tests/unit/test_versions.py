"""Key histories from ListObjectVersions pages, and the findings a history that is not one version gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dynamoguard.versions import histories_of_pages, history_findings

T0 = datetime(2026, 11, 27, 2, 10, tzinfo=timezone.utc)


def version(key: str, vid: str, minutes: int, latest: bool = False) -> dict:
    return {"Key": key, "VersionId": vid, "LastModified": T0 + timedelta(minutes=minutes), "IsLatest": latest,
            "ETag": f'"{vid}-etag"', "Size": 10}


def marker(key: str, vid: str, minutes: int, latest: bool = False) -> dict:
    return {"Key": key, "VersionId": vid, "LastModified": T0 + timedelta(minutes=minutes), "IsLatest": latest}


def test_versions_and_markers_of_a_key_are_merged_newest_first_across_pages():
    pages = [
        {"Versions": [version("a", "a1", 0, True), version("b", "b2", 5)],
         "DeleteMarkers": [marker("b", "bm", 9, True)]},
        {"Versions": [version("b", "b1", 0), version("c", "c1", 0, True)]},
    ]
    histories = list(histories_of_pages(pages))
    assert [h.key for h in histories] == ["a", "b", "c"]
    b = histories[1]
    assert [e.version_id for e in b.entries] == ["bm", "b2", "b1"]
    assert b.current is None and b.original.version_id == "b1" and not b.untouched
    assert histories[0].untouched and histories[0].current.etag == "a1-etag"


def findings_of(*entries: dict) -> dict:
    page = {"Versions": [e for e in entries if "ETag" in e], "DeleteMarkers": [e for e in entries if "ETag" not in e]}
    [history] = histories_of_pages([page])
    return {f.check: f for f in history_findings(history, job="reverify_exports", bucket="bkt", table="orders")}


def test_one_version_is_no_finding():
    assert findings_of(version("k", "v1", 0, True)) == {}


def test_a_second_version_is_an_overwrite_attempt_naming_both():
    found = findings_of(version("k", "v2", 60, True), version("k", "v1", 0))
    assert set(found) == {"overwrite_attempt"}
    attempt = found["overwrite_attempt"]
    assert attempt.severity == "high" and attempt.resource == "s3://bkt/k" and attempt.table == "orders"
    assert attempt.evidence["original_version"] == "v1" and attempt.evidence["current_version"] == "v2"
    assert "a reader reads a newer version" in attempt.title


def test_a_delete_marker_on_top_hides_the_object():
    found = findings_of(marker("k", "m1", 60, True), version("k", "v1", 0))
    assert set(found) == {"delete_attempt"}
    assert "hidden from readers" in found["delete_attempt"].title
    assert found["delete_attempt"].evidence["history"][0]["delete_marker"] is True


def test_a_version_written_over_a_delete_marker_recreates_the_object_and_is_not_an_overwrite():
    found = findings_of(version("k", "v2", 90, True), marker("k", "m1", 60), version("k", "v1", 0))
    assert set(found) == {"delete_attempt"}
    assert "hidden" not in found["delete_attempt"].title
