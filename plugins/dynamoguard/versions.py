"""Version history of backup objects: ListObjectVersions grouped per key, and what a history must look like.

A backup object is written once. In a versioned (Object Lock) bucket a later PutObject or CopyObject over
the same key does not replace it but adds a newer version, and a DeleteObject without a version id adds a
delete marker: the locked original stays, but a reader (a restore, ImportTable) sees the newer version or
no object at all. So the expected history of every backup object is exactly one version and no delete
marker; anything else is an attempt to overwrite or delete it, reported with the versions as evidence.

``ListObjectVersions`` returns ``Versions`` and ``DeleteMarkers`` as two arrays per page, both in key
order, each key's entries newest first, and a key's entries may continue on the next page
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html). :func:`iter_histories`
merges the two arrays and holds back the last key of a page until the next page shows it is complete, so
one key's history is yielded whole while memory stays at one page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dynamoguard.findings import Finding
from dynamoguard.timeutil import iso, utc

OVERWRITE_ATTEMPT = "overwrite_attempt"
DELETE_ATTEMPT = "delete_attempt"
MAX_VERSIONS_SHOWN = 10  # versions listed in a finding's evidence; the count covers all


@dataclass(frozen=True)
class Version:
    """One entry of a key's history: an object version or a delete marker."""

    version_id: str
    last_modified: datetime
    is_latest: bool
    delete_marker: bool = False
    etag: str = ""
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"version_id": self.version_id, "last_modified": iso(self.last_modified),
                                 "latest": self.is_latest}
        if self.delete_marker:
            entry["delete_marker"] = True
        else:
            entry.update(etag=self.etag, size=self.size)
        return entry


@dataclass(frozen=True)
class KeyHistory:
    """Every version and delete marker of one key, newest first."""

    key: str
    entries: tuple[Version, ...]

    @property
    def current(self) -> Version | None:
        """The version a plain GET returns: the latest entry unless it is a delete marker (or absent)."""
        latest = self.entries[0] if self.entries else None
        return latest if latest is not None and not latest.delete_marker else None

    @property
    def versions(self) -> list[Version]:
        return [v for v in self.entries if not v.delete_marker]

    @property
    def delete_markers(self) -> list[Version]:
        return [v for v in self.entries if v.delete_marker]

    @property
    def original(self) -> Version | None:
        """The oldest object version: the one written first, kept by the lock."""
        versions = self.versions
        return versions[-1] if versions else None

    @property
    def untouched(self) -> bool:
        """Exactly one version, no delete marker: the expected history of a backup object."""
        return len(self.entries) == 1 and not self.entries[0].delete_marker

    def evidence(self) -> dict[str, Any]:
        original, current = self.original, self.current
        return {
            "key": self.key,
            "versions": len(self.versions),
            "delete_markers": len(self.delete_markers),
            "original_version": original.version_id if original else None,
            "current_version": current.version_id if current else None,
            "history": [v.to_dict() for v in self.entries[:MAX_VERSIONS_SHOWN]],
        }


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


def _entry(raw: dict[str, Any], delete_marker: bool) -> Version:
    return Version(
        version_id=raw.get("VersionId") or "null", last_modified=utc(raw["LastModified"]),
        is_latest=bool(raw.get("IsLatest")), delete_marker=delete_marker, etag=_etag(raw.get("ETag")),
        size=int(raw.get("Size") or 0),
    )


def _page_histories(page: dict[str, Any]) -> list[KeyHistory]:
    """The keys of one page, each with its entries newest first (the latest first, then by time)."""
    by_key: dict[str, list[tuple[Version, int]]] = {}
    for order, raw in enumerate(page.get("Versions", ())):
        by_key.setdefault(raw["Key"], []).append((_entry(raw, False), order))
    for order, raw in enumerate(page.get("DeleteMarkers", ())):
        by_key.setdefault(raw["Key"], []).append((_entry(raw, True), order))
    histories = []
    for key in sorted(by_key):  # str order is code point order, which is S3's UTF-8 binary key order
        ordered = sorted(by_key[key], key=lambda e: (not e[0].is_latest, -e[0].last_modified.timestamp(), e[1]))
        histories.append(KeyHistory(key, tuple(v for v, _ in ordered)))
    return histories


def iter_histories(s3, bucket: str, prefix: str, *, page_size: int = 1000,
                   expected_owner: str | None = None) -> Iterator[KeyHistory]:
    """The history of every key under ``prefix``, in key order, one page of the listing in memory."""
    owner = {"ExpectedBucketOwner": expected_owner} if expected_owner else {}
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}, **owner)
    return histories_of_pages(pages)


def histories_of_pages(pages, on_page=None) -> Iterator[KeyHistory]:
    """Whole key histories from ListObjectVersions pages; ``on_page(page)`` is called for each page first."""
    pending: KeyHistory | None = None
    for page in pages:
        if on_page is not None:
            on_page(page)
        for history in _page_histories(page):
            if pending is not None and history.key == pending.key:  # continued from the previous page
                history = KeyHistory(history.key, _newest_first(pending.entries + history.entries))
            elif pending is not None:
                yield pending
            pending = history
    if pending is not None:
        yield pending


def _newest_first(entries: tuple[Version, ...]) -> tuple[Version, ...]:
    return tuple(sorted(entries, key=lambda v: (not v.is_latest, -v.last_modified.timestamp())))


def history_findings(history: KeyHistory, *, job: str, bucket: str, table: str | None,
                     what: str = "backup object") -> list[Finding]:
    """``overwrite_attempt`` / ``delete_attempt`` (high) for a history that is not exactly one version."""
    if history.untouched or not history.entries:
        return []
    resource = f"s3://{bucket}/{history.key}"
    evidence = {"bucket": bucket, **history.evidence(), "expected": "one object version, no delete marker"}
    prefix = f"{table}: " if table else ""
    original, current = history.original, history.current
    kept = f"the original version {original.version_id} is kept" if original else "no object version is left"
    findings = []
    entries = history.entries
    # a version written over another version; one written over a delete marker re-creates a deleted object
    # (a repair, or a forgery that the content checks catch) and the marker is reported as the delete attempt
    newer = [v for older, v in zip(entries[1:], entries, strict=False) if not v.delete_marker
             and not older.delete_marker]
    if newer:
        reads = ("reads a newer version" if current is not None and current != original
                 else "reads the original")
        findings.append(Finding(
            job=job, check=OVERWRITE_ATTEMPT, severity="high", table=table, resource=resource,
            title=f"{prefix}overwrite attempt on {what} {history.key}: {len(newer)} newer version(s) "
                  f"({', '.join(v.version_id for v in newer[:3])}); {kept}, a reader {reads}",
            evidence=evidence,
        ))
    markers = history.delete_markers
    if markers:
        hidden = history.entries[0].delete_marker
        findings.append(Finding(
            job=job, check=DELETE_ATTEMPT, severity="high", table=table, resource=resource,
            title=f"{prefix}delete attempt on {what} {history.key}: {len(markers)} delete marker(s) "
                  f"({', '.join(m.version_id for m in markers[:3])}); {kept}"
                  + ("; the object is hidden from readers (a restore would miss it)" if hidden else ""),
            evidence=evidence,
        ))
    return findings
