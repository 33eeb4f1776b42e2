"""Pure parts of the replica logic: digests, part layout, listing merge, lock rules, result counts."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from botocore.response import StreamingBody

from dynamoguard.replicas import (
    MAX_PARTS,
    MIN_PART,
    Digest,
    Listed,
    LockPolicy,
    ReplicaResult,
    merge,
    part_ranges,
    stream_digest,
)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_stream_digest_whole_and_composite_match_an_independent_computation():
    data = bytes(range(256)) * 50_000 + b"end"  # 12.8 MB, crosses 8 MiB chunk and 5 MiB part boundaries
    ranges = part_ranges(len(data), 5 * 1024 * 1024)
    digest = stream_digest(_body(data), ranges)
    parts = [hashlib.sha256(data[a:b + 1]).digest() for a, b in ranges]
    assert digest.full == _b64(hashlib.sha256(data).digest())
    assert digest.parts == tuple(_b64(p) for p in parts)
    assert digest.composite == _b64(hashlib.sha256(b"".join(parts)).digest())
    assert digest.matches(f"{digest.composite}-{len(parts)}") and digest.matches(digest.full)
    assert not digest.matches(f"{digest.composite}-{len(parts) + 1}")
    assert not digest.matches(None) and not Digest(digest.full).matches(f"{digest.composite}-3")


def test_stream_digest_rejects_a_body_longer_than_its_parts():
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        stream_digest(_body(b"x" * 11), [(0, 4), (5, 9)])


def test_part_ranges_cover_the_object_within_s3_limits():
    size = 7 * 1024**4 // 1000  # ~7.7 TB would need more than 10,000 parts of 64 MiB
    ranges = part_ranges(size, 64 * 1024 * 1024)
    assert len(ranges) <= MAX_PARTS
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))
    assert part_ranges(12, 1)[0] == (0, 11) and MIN_PART == 5 * 1024 * 1024


def test_merge_pairs_each_source_key_with_its_replica():
    src = [Listed(k, 1, "e") for k in ("a", "b/1", "b/2", "c", "é")]
    rep = [Listed(k, 2, "f") for k in ("0", "b/1", "b/15", "c", "d", "é")]
    pairs = [(s.key, r.key if r else None) for s, r in merge(src, rep)]
    assert pairs == [("a", None), ("b/1", "b/1"), ("b/2", None), ("c", "c"), ("é", "é")]


def test_lock_policy_counts_from_the_export_time():
    export = datetime(2026, 11, 28, 2, 0, 0, 500_000, tzinfo=UTC)
    policy = LockPolicy.from_export_time("COMPLIANCE", 35, export)
    assert policy.retain_until == datetime(2027, 1, 2, 2, 0, 1, tzinfo=UTC)
    ok = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": policy.retain_until}
    assert policy.problem(ok) is None
    assert "GOVERNANCE" in policy.problem({**ok, "ObjectLockMode": "GOVERNANCE"})
    assert "required at least" in policy.problem({**ok, "ObjectLockRetainUntilDate": export + timedelta(days=34)})
    assert "no Object Lock retention" in policy.problem({})
    governance = LockPolicy("GOVERNANCE", policy.retain_until)
    assert governance.problem(ok) is None  # COMPLIANCE is at least as strong


def test_result_counts_every_outcome_and_keeps_a_bounded_list_of_findings():
    result = ReplicaResult("orders", "copy", "s3://a/p/", "s3://b/p/")
    for i in range(250):
        result.add("different", f"p/{i}", "x")
    result.add("copied", "p/ok")
    assert result.checked == 251 and result.counts["different"] == 250 and not result.ok
    assert len(result.findings) == 200 and "... and 50 more findings" in result.summary()
    assert result.to_dict()["different"] == 250
