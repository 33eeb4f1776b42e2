"""Re-verification's pure parts: what it reads of a summary, and the bounded finding set."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dynamoguard.exports.manifest import ManifestError
from dynamoguard.findings import Finding, FindingSet
from dynamoguard.reverify import read_summary


def test_full_and_incremental_summaries_give_the_export_time_and_files_manifest():
    full = read_summary(b'{"exportTime":"2026-11-27T02:00:00.000Z","manifestFilesS3Key":"r/manifest-files.json"}',
                        "r/manifest-summary.json")
    assert full.export_time == datetime(2026, 11, 27, 2, tzinfo=timezone.utc)
    incremental = read_summary(b'{"exportType":"INCREMENTAL_EXPORT","exportFromTime":"2026-11-27T01:00:00Z",'
                               b'"exportToTime":"2026-11-27T02:00:00Z","manifestFilesS3Key":"r/manifest-files.json"}',
                               "r/manifest-summary.json")
    assert incremental.export_time == full.export_time and incremental.manifest_files_key == "r/manifest-files.json"


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"exportTime":"2026-11-27T02:00:00Z"}',
                                 b'{"manifestFilesS3Key":"k"}', b'{"exportTime":"x","manifestFilesS3Key":"k"}'])
def test_an_unusable_summary_names_its_key(raw):
    with pytest.raises(ManifestError, match="^r/manifest-summary.json: "):
        read_summary(raw, "r/manifest-summary.json")


def finding(resource: str, severity: str = "high") -> Finding:
    return Finding(job="reverify_exports", check="unexpected_object", severity=severity, title=resource,
                   resource=resource, table="orders")


def test_finding_set_keeps_the_smallest_resources_whatever_the_order_and_counts_the_rest():
    kept = FindingSet(max_per_check=2)
    for name in ("s3://b/d", "s3://b/a", "s3://b/c", "s3://b/b"):
        kept.add("orders", finding(name, "critical" if name == "s3://b/c" else "high"))
    listed = kept.for_scope("orders", "reverify_exports", "s3://b/")
    assert [f.resource for f in listed] == ["s3://b/a", "s3://b/b", "s3://b/"]
    assert listed[-1].evidence == {"check": "unexpected_object", "more": 2, "listed": 2}
    assert listed[-1].severity == "critical"  # the worst of those not listed
    assert kept.for_scope("customers", "reverify_exports", "s3://b/") == []
