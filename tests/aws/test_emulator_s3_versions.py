"""The emulator's ListObjectVersions (fixes/s3_list_versions.py): AWS's answers, at a cost set by the prefix.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.aws

BUCKET = "versions-bucket"


@pytest.fixture
def s3(localaws):
    client = localaws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def test_versions_and_delete_markers_newest_first_paged_and_folded_by_delimiter(s3):
    first = s3.put_object(Bucket=BUCKET, Key="p/a", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="p/a", Body=b"two")["VersionId"]
    b = s3.put_object(Bucket=BUCKET, Key="p/b", Body=b"b")["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key="p/b")["VersionId"]
    c = s3.put_object(Bucket=BUCKET, Key="p/sub/c", Body=b"c")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="q/other", Body=b"x")

    entries = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="p/",
                                                                   PaginationConfig={"PageSize": 2}):
        entries += [(v["Key"], v["VersionId"], v["IsLatest"], "version") for v in page.get("Versions", [])]
        entries += [(m["Key"], m["VersionId"], m["IsLatest"], "marker") for m in page.get("DeleteMarkers", [])]
    assert sorted(entries) == sorted([("p/a", second, True, "version"), ("p/a", first, False, "version"),
                                      ("p/b", marker, True, "marker"), ("p/b", b, False, "version"),
                                      ("p/sub/c", c, True, "version")])
    folded = s3.list_object_versions(Bucket=BUCKET, Prefix="p/", Delimiter="/")
    assert [p["Prefix"] for p in folded["CommonPrefixes"]] == ["p/sub/"]
    assert {v["Key"] for v in folded["Versions"]} == {"p/a", "p/b"}
    assert [m["Key"] for m in folded["DeleteMarkers"]] == ["p/b"]
    assert s3.get_object(Bucket=BUCKET, Key="p/a")["Body"].read() == b"two"  # listing leaves the bodies intact
    assert s3.get_object(Bucket=BUCKET, Key="p/a", VersionId=first)["Body"].read() == b"one"


def test_a_page_does_not_cost_what_the_rest_of_the_bucket_holds(s3):
    """A prefix with one key lists about as fast as a HEAD however many bytes lie elsewhere in the bucket
    (moto copied every body in the bucket on every request: ~100x a HEAD here)."""
    body = b"x" * (256 * 1024)
    for i in range(200):  # 50 MiB outside the prefix
        s3.put_object(Bucket=BUCKET, Key=f"bulk/{i:04d}", Body=body)
    s3.put_object(Bucket=BUCKET, Key="small/one", Body=b"1")

    def seconds(call) -> float:
        began = time.perf_counter()
        for _ in range(10):
            call()
        return time.perf_counter() - began

    head = min(seconds(lambda: s3.head_object(Bucket=BUCKET, Key="small/one")) for _ in range(2))
    listing = min(seconds(lambda: s3.list_object_versions(Bucket=BUCKET, Prefix="small/")) for _ in range(2))
    assert listing < 10 * head, (listing, head)
