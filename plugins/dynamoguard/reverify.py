"""Re-verification of every retained export in a backup bucket: content and version history.

The nightly job verifies an export once, right after it is written; this re-checks every export still
under retention (export time + ``retention_days`` in the future), in the exports bucket of the source
account or in the replica bucket of the backup account (replicas keep the same keys, manifests included):

* **manifests**: the original (oldest, locked) versions of manifest-summary.json and manifest-files.json
  against the original versions of their ``.md5``/``.checksum`` companions; the current versions must be
  the same bytes (a reader sees the current version);
* **objects**: the current version of every data file against the manifest: its ETag equals the manifest's
  ``etag``, or - for a copy, whose ETag is the plain MD5 of its bytes - the ETag equals the manifest's
  ``md5Checksum``; where the ETag cannot decide (e.g. SSE-KMS ETags, or a different object) the current
  version is streamed through MD5; a data file with no version left is missing;
* **version history** (``ListObjectVersions`` under the export's folder): a second version or a delete
  marker over any export object is an overwrite or delete attempt (:mod:`dynamoguard.versions`), even
  though the lock kept the original; an object the manifests do not name is unexpected.

Memory does not grow with the number of objects: exports are found by walking the folders level by level
(delimiter listings; one level's folder names are held); ``max_concurrency // 4`` exports are re-verified at
a time, each holding its manifest's entries and one page of its version listing; at most
``2 * max_concurrency`` MD5 streams run at once.
Findings are :class:`dynamoguard.findings.Finding` per table (the folder under the base prefix); at most
``max_per_check`` per table and check are kept (the smallest resources, so repeated runs keep the same
ones) and the rest are counted in one finding per table and check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.concurrency import bounded_map, prefetch
from dynamoguard.exports.manifest import (
    ManifestError,
    checksum_matches,
    export_id_time,
    export_time_from_summary,
    parse_manifest_files,
)
from dynamoguard.findings import ACCOUNT_SCOPE, Finding, FindingSet
from dynamoguard.layout import incremental_window_end
from dynamoguard.timeutil import iso, utc, utcnow
from dynamoguard.versions import KeyHistory, Version, histories_of_pages, history_findings, iter_histories

log = logging.getLogger(__name__)

EXPORT_FOLDER = "AWSDynamoDB/"
SHARED_DATA = "data/"  # <S3Prefix>/AWSDynamoDB/data/: where an incremental export writes its data files
SUMMARY_NAME = "manifest-summary.json"
STARTED_NAME = "_started"
COMPANION_SUFFIXES = (".md5", ".checksum")
MAX_DEPTH = 6  # folders walked below the base prefix looking for AWSDynamoDB/ (table/date/... layouts)
DEFAULT_CONCURRENCY = 32
DEFAULT_MAX_PER_CHECK = 50
CHUNK = 1024 * 1024

CONTENT_MISMATCH = "content_mismatch"
OBJECT_MISSING = "object_missing"
MANIFEST_CHECKSUM_MISMATCH = "manifest_checksum_mismatch"
MANIFEST_INVALID = "manifest_invalid"
UNEXPECTED_OBJECT = "unexpected_object"
OUTSIDE_EXPORT = "outside_export"
INCOMPLETE_EXPORT = "incomplete_export"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Target:
    """One bucket to re-verify: its exports under ``prefix`` are retained for ``retention_days``.

    :param job: the findings job (``reverify_exports``, ``reverify_replicas``)
    :param label: how findings name the bucket's objects (``export object``, ``replica``)
    :param in_progress_grace: an export folder without manifest-summary.json younger than this (by its
        ExportId time) is an export still being written, not a finding
    """

    bucket: str
    prefix: str
    retention_days: int
    job: str
    label: str = "export object"
    expected_owner: str | None = None
    in_progress_grace: timedelta = timedelta(hours=24)

    @property
    def base(self) -> str:
        stripped = self.prefix.strip("/")
        return stripped + "/" if stripped else ""

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def table_of(self, key: str) -> str:
        """The table folder a key lies in (``<base>/<table>/...``), else the account scope."""
        rest = key[len(self.base):] if key.startswith(self.base) else key
        head, sep, _ = rest.partition("/")
        if not sep or not head or head == EXPORT_FOLDER.rstrip("/"):
            return ACCOUNT_SCOPE
        return head


@dataclass
class ScopeStats:
    """Per table: exports re-verified, skipped (past retention), still being written; objects and versions."""

    exports_checked: int = 0
    exports_expired: int = 0
    exports_in_progress: int = 0
    objects: int = 0
    versions: int = 0
    md5_streamed: int = 0
    newest_export_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Report:
    """What a re-verification saw: findings per scope and counts per scope."""

    target: Target
    findings: FindingSet
    stats: dict[str, ScopeStats] = field(default_factory=lambda: defaultdict(ScopeStats))
    started: datetime = field(default_factory=utcnow)
    finished: datetime | None = None

    @property
    def scopes(self) -> set[str]:
        return set(self.stats) | self.findings.scopes

    def findings_for(self, scope: str) -> list[Finding]:
        resource = self.target.uri(self.target.base + ("" if scope == ACCOUNT_SCOPE else scope + "/"))
        return self.findings.for_scope(scope, self.target.job, resource)

    def totals(self) -> dict[str, int]:
        total = Counter()
        for stats in self.stats.values():
            total.update({k: v for k, v in stats.to_dict().items() if isinstance(v, int)})
        return dict(total)

    def summary_text(self) -> str:
        totals = self.totals()
        lines = [
            f"Re-verification of s3://{self.target.bucket}/{self.target.base}: "
            f"{totals.get('objects', 0)} objects ({totals.get('versions', 0)} versions) in "
            f"{totals.get('exports_checked', 0)} retained export(s) checked, "
            f"{totals.get('exports_expired', 0)} past retention skipped, "
            f"{totals.get('exports_in_progress', 0)} still being written: "
            + ("OK" if not self.findings.total() else f"{self.findings.total()} finding(s)"),
        ]
        if self.findings.counts:
            lines.append("  counts: " + ", ".join(f"{c}={n}" for c, n in sorted(self.findings.counts.items())))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Finding the exports


def export_roots(s3, target: Target, report: Report, workers: int = DEFAULT_CONCURRENCY) -> Iterator[str]:
    """Every ``.../AWSDynamoDB/<ExportId>/`` folder under the target's prefix.

    The folders are walked level by level (delimiter listings, ``workers`` folders at a time), so finding
    the exports costs a few round trips rather than one per folder. Objects met on the way (outside any
    export folder) are findings.
    """
    owner = {"ExpectedBucketOwner": target.expected_owner} if target.expected_owner else {}
    paginator = s3.get_paginator("list_object_versions")

    def list_folder(prefix: str) -> tuple[str, list[str], list[KeyHistory]]:
        folders: list[str] = []
        pages = paginator.paginate(Bucket=target.bucket, Prefix=prefix, Delimiter="/", **owner)
        objects = list(histories_of_pages(pages, lambda page: folders.extend(
            p["Prefix"] for p in page.get("CommonPrefixes", ()))))
        return prefix, folders, objects

    level = [target.base]
    for _ in range(MAX_DEPTH + 1):
        deeper: list[str] = []
        for prefix, folders, objects in bounded_map(list_folder, ((p,) for p in level), workers, "reverify-walk"):
            for history in objects:
                _outside(target, report, history)
            if prefix.endswith("/" + EXPORT_FOLDER) or prefix == EXPORT_FOLDER:
                # AWSDynamoDB/data/ holds incremental exports' data files: checked with the export beside it
                yield from (f for f in folders if f != prefix + SHARED_DATA)
            else:
                deeper += folders
        if not deeper:
            return
        level = sorted(deeper)


def _outside(target: Target, report: Report, history: KeyHistory) -> None:
    scope = target.table_of(history.key)
    if history.key.endswith("/table-schema.json") and incremental_window_end(history.key) is not None:
        # an incremental window's table schema (written once, for drills of a deleted table): history only
        for finding in history_findings(history, job=target.job, bucket=target.bucket, table=_table(scope),
                                        what=target.label):
            report.findings.add(scope, finding)
        return
    report.findings.add(scope, Finding(
        job=target.job, check=OUTSIDE_EXPORT, severity="medium", table=_table(scope),
        resource=target.uri(history.key),
        title=f"{history.key}: object in the backup bucket outside any DynamoDB export folder",
        evidence={"bucket": target.bucket, **history.evidence(),
                  "expected": f"only export folders .../{EXPORT_FOLDER}<ExportId>/ under {target.base or '/'}"},
    ))


def _table(scope: str) -> str | None:
    return None if scope == ACCOUNT_SCOPE else scope


# ---------------------------------------------------------------------------------------------
# One export


@dataclass(frozen=True)
class Summary:
    """What re-verification needs of a manifest-summary.json (full or incremental export)."""

    export_time: datetime
    manifest_files_key: str


def read_summary(raw: bytes, key: str) -> Summary:
    """``exportTime`` (``exportToTime`` of an incremental export) and ``manifestFilesS3Key``; ManifestError
    naming the key otherwise."""
    try:
        data = json.loads(raw)
        files_key = data["manifestFilesS3Key"]
        if not isinstance(files_key, str):
            raise TypeError("manifestFilesS3Key is not a string")
        return Summary(export_time_from_summary(data), files_key)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ManifestError(f"{key}: {type(error).__name__}: {error}") from None


@dataclass(frozen=True)
class Expected:
    """A data file as the manifest lists it."""

    etag: str
    md5: str


@dataclass(frozen=True)
class Md5Check:
    """A current version whose ETag cannot decide: stream it and compare with the manifest's MD5."""

    scope: str
    key: str
    version: Version
    original: Version | None
    expected: Expected


@dataclass
class ExportOutcome:
    root: str
    scope: str
    status: str = "checked"  # checked | expired | in_progress
    export_time: datetime | None = None
    objects: int = 0
    versions: int = 0
    findings: list[Finding] = field(default_factory=list)
    md5_checks: list[Md5Check] = field(default_factory=list)


class _ExportCheck:
    """Re-verifies one export folder (runs on a worker thread; touches only its own outcome)."""

    def __init__(self, s3, target: Target, root: str, now: datetime):
        self.s3, self.target, self.root, self.now = s3, target, root, now
        self.outcome = ExportOutcome(root, target.table_of(root))
        self._owner = {"ExpectedBucketOwner": target.expected_owner} if target.expected_owner else {}

    # -- findings ------------------------------------------------------------------------------------
    def finding(self, check: str, severity: str, key: str, title: str, **evidence: Any) -> None:
        scope = self.outcome.scope
        self.outcome.findings.append(Finding(
            job=self.target.job, check=check, severity=severity, table=_table(scope),
            resource=self.target.uri(key), title=(f"{scope}: " if _table(scope) else "") + title,
            evidence={"bucket": self.target.bucket, "key": key, "export": self.target.uri(self.root), **evidence},
        ))

    # -- reading -------------------------------------------------------------------------------------
    def read(self, key: str, version: Version) -> bytes:
        response = self.s3.get_object(Bucket=self.target.bucket, Key=key, VersionId=version.version_id,
                                      **self._owner)
        with closing(response["Body"]) as body:
            return body.read()

    def original_bytes(self, history: KeyHistory | None, key: str, what: str) -> bytes | None:
        """The original version of a manifest object, its current version compared with it; None if gone."""
        original = history.original if history else None
        if original is None:
            self.finding(OBJECT_MISSING, "critical", key, f"{what} {key} of a retained export has no version left",
                         expected="the export's original version, kept by Object Lock", found="no version")
            return None
        data = self.read(key, original)
        current = history.current
        if current is not None and current.version_id != original.version_id and self.read(key, current) != data:
            self.finding(CONTENT_MISMATCH, "critical", key,
                         f"{what} {key}: the current version {current.version_id} differs from the original "
                         f"{original.version_id} (readers see the altered one)",
                         expected={"version_id": original.version_id, "etag": original.etag, "size": original.size},
                         found={"version_id": current.version_id, "etag": current.etag, "size": current.size})
        return data

    def companion(self, manifests: dict[str, KeyHistory], key: str, data: bytes, what: str) -> set[str]:
        """Check ``key``'s original bytes against its companions' original versions; return their keys."""
        stem = key[: -len(".json")]
        present = [stem + s for s in COMPANION_SUFFIXES if manifests.get(stem + s) is not None]
        if not present:
            self.finding(OBJECT_MISSING, "critical", stem + ".md5",
                         f"checksum companion of {what} {key} has no version left",
                         expected=f"{stem}.md5 or {stem}.checksum", found="neither")
        for companion_key in present:
            text = (self.original_bytes(manifests[companion_key], companion_key, "checksum file") or b"")
            text = text.decode(errors="replace")
            if not checksum_matches(text, data):
                md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
                self.finding(MANIFEST_CHECKSUM_MISMATCH, "critical", companion_key,
                             f"{what} {key} does not match its checksum file {companion_key}",
                             expected=text.strip()[:64], found=md5)
        return set(present)

    # -- the check -----------------------------------------------------------------------------------
    def run(self) -> ExportOutcome:
        root = self.root
        summary_key = root + SUMMARY_NAME
        export_id = root.rstrip("/").rsplit("/", 1)[-1]
        requested = export_id_time(export_id)
        retention = timedelta(days=self.target.retention_days)
        if requested is not None and requested + retention <= self.now:
            self.outcome.status = "expired"  # the export time is never later than the request (the ExportId)
            return self.outcome
        manifests = {h.key: h for h in iter_histories(self.s3, self.target.bucket, root + "manifest-",
                                                      expected_owner=self.target.expected_owner)}
        summary_history = manifests.get(summary_key)
        if summary_history is None or summary_history.original is None:
            if requested is not None and self.now - requested < self.target.in_progress_grace:
                self.outcome.status = "in_progress"
                return self.outcome
            if summary_history is None:  # a folder that never got its summary: a failed or abandoned export
                self.finding(INCOMPLETE_EXPORT, "medium", summary_key,
                             f"export folder {root} has no {SUMMARY_NAME}: a failed or unfinished export, not "
                             "restorable", expected=SUMMARY_NAME, found="no version",
                             export_id_time=iso(requested) if requested else None)
                return self.outcome
        expected: dict[str, Expected] = {}
        known = {root + STARTED_NAME}
        summary_bytes = self.original_bytes(summary_history, summary_key, "manifest summary")
        export_time = requested
        summary = None
        if summary_bytes is not None:
            known |= {summary_key} | self.companion(manifests, summary_key, summary_bytes, "manifest summary")
            try:
                summary = read_summary(summary_bytes, summary_key)
                export_time = summary.export_time
            except ManifestError as error:
                self.finding(MANIFEST_INVALID, "high", summary_key, f"manifest summary is not valid: {error}",
                             expected="a DynamoDB manifest-summary.json", found=str(error))
        self.outcome.export_time = export_time
        if export_time is not None and export_time + retention <= self.now:
            self.outcome.status = "expired"
            self.outcome.findings.clear()
            return self.outcome
        if summary is not None:
            expected = self.data_files(summary, manifests, known)
        self.scan(known, expected)
        return self.outcome

    def data_files(self, summary: Summary, manifests: dict[str, KeyHistory],
                   known: set[str]) -> dict[str, Expected]:
        files_key = summary.manifest_files_key
        if not files_key.startswith(self.root + "manifest-"):
            self.finding(MANIFEST_INVALID, "high", self.root + SUMMARY_NAME,
                         f"manifestFilesS3Key {files_key!r} is outside the export folder",
                         expected=f"{self.root}manifest-files.json", found=files_key)
            return {}
        data = self.original_bytes(manifests.get(files_key), files_key, "files manifest")
        if data is None:
            return {}
        known |= {files_key} | self.companion(manifests, files_key, data, "files manifest")
        try:
            files = parse_manifest_files(data, files_key)
        except ManifestError as error:
            self.finding(MANIFEST_INVALID, "high", files_key, f"files manifest is not valid: {error}",
                         expected="a DynamoDB manifest-files.json", found=str(error))
            return {}
        folders = (self.root + "data/", self.shared_data)
        return {f.key: Expected(f.etag.strip('"'), f.md5_checksum) for f in files if f.key.startswith(folders)}

    @property
    def shared_data(self) -> str:
        """``<S3Prefix>/AWSDynamoDB/data/``: an incremental export's data files, beside its own folder."""
        return self.root.rstrip("/").rsplit("/", 1)[0] + "/" + SHARED_DATA

    def scan(self, known: set[str], expected: dict[str, Expected]) -> None:
        self.scan_folder(self.root, known, expected, owned=True)
        if any(key.startswith(self.shared_data) for key in expected):
            self.scan_folder(self.shared_data, known, expected, owned=False)
        for key in sorted(expected):
            self.finding(OBJECT_MISSING, "critical", key,
                         f"data file {key} listed in the files manifest has no version left",
                         expected="the data file the manifest lists", found="no version")

    def scan_folder(self, prefix: str, known: set[str], expected: dict[str, Expected], *, owned: bool) -> None:
        """Judge every key under ``prefix``; in a folder the export does not own alone (``owned`` False: the
        shared data folder of incremental exports) only the keys its manifest lists."""
        outcome = self.outcome
        for history in iter_histories(self.s3, self.target.bucket, prefix,
                                      expected_owner=self.target.expected_owner):
            if not owned and history.key not in expected:
                continue
            outcome.objects += 1
            outcome.versions += len(history.entries)
            outcome.findings += history_findings(history, job=self.target.job, bucket=self.target.bucket,
                                                 table=_table(outcome.scope), what=self.target.label)
            key = history.key
            if key in known:
                continue
            wanted = expected.pop(key, None)
            if wanted is None:
                if not history.versions:
                    continue  # only delete markers: reported as a delete attempt with its markers
                self.finding(UNEXPECTED_OBJECT, "high", key,
                             f"{key} is in the export folder but not in the export's manifests",
                             expected="only _started, the manifests, their checksum files and listed data files",
                             found=history.evidence())
                continue
            if not history.versions:
                expected[key] = wanted  # only delete markers left: missing (and a delete attempt)
                continue
            current = history.current
            if current is None:
                continue  # hidden by a delete marker: reported as a delete attempt with its versions
            if etag_decides(current.etag, wanted):
                continue
            outcome.md5_checks.append(Md5Check(outcome.scope, key, current, history.original, wanted))


def etag_decides(etag: str, wanted: Expected) -> bool:
    """True when ``etag`` proves the object is the listed data file: the manifest's ETag, or (a single-part
    copy) the plain MD5 the manifest lists. False means only reading the bytes can tell."""
    if etag == wanted.etag:
        return True
    if "-" in etag:
        return False
    try:
        return base64.b64encode(binascii.unhexlify(etag)).decode() == wanted.md5
    except (binascii.Error, ValueError):
        return False


def _md5_check(s3, target: Target, check: Md5Check) -> tuple[Md5Check, Finding | None]:
    owner = {"ExpectedBucketOwner": target.expected_owner} if target.expected_owner else {}
    response = s3.get_object(Bucket=target.bucket, Key=check.key, VersionId=check.version.version_id, **owner)
    digest = hashlib.md5()
    with closing(response["Body"]) as body:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
    md5 = base64.b64encode(digest.digest()).decode()
    if md5 == check.expected.md5:
        return check, None
    original = check.original
    return check, Finding(
        job=target.job, check=CONTENT_MISMATCH, severity="critical", table=_table(check.scope),
        resource=target.uri(check.key),
        title=(f"{check.scope}: " if _table(check.scope) else "")
        + f"data file {check.key}: the current version {check.version.version_id} differs from the manifest "
          "(a restore would read altered data)",
        evidence={"bucket": target.bucket, "key": check.key,
                  "expected": {"etag": check.expected.etag, "md5": check.expected.md5,
                               "size": original.size if original else None,
                               "version_id": original.version_id if original else None},
                  "found": {"etag": check.version.etag, "md5": md5, "size": check.version.size,
                            "version_id": check.version.version_id}},
    )


# ---------------------------------------------------------------------------------------------
# Driving


def reverify(s3, target: Target, *, now: datetime | None = None, max_concurrency: int = DEFAULT_CONCURRENCY,
             max_per_check: int = DEFAULT_MAX_PER_CHECK) -> Report:
    """Re-verify every retained export under ``target``; every deviation is a finding in the report.

    ``s3`` acts in the bucket's account; its ``max_pool_connections`` should be at least ``max_concurrency``.
    """
    now = utc(now or utcnow())
    report = Report(target, FindingSet(max_per_check))
    export_workers = max(1, max_concurrency // 4)  # each holds a listing page and its manifest in memory

    def check_export(root: str) -> ExportOutcome:
        checker = _ExportCheck(s3, target, root, now)
        try:
            return checker.run()
        except ClientError as error:
            checker.finding(UNREADABLE, "high", root, f"export {root} could not be re-verified: "
                            f"{error_code(error)}: {error}", expected="readable export objects",
                            found=error_code(error))
            return checker.outcome

    def md5_work() -> Iterator[tuple[Md5Check]]:
        roots = prefetch(export_roots(s3, target, report, max_concurrency), size=4 * export_workers,
                         name="reverify-roots")
        for outcome in bounded_map(check_export, ((r,) for r in roots), export_workers, "reverify-export"):
            _count(report, outcome)
            yield from ((check,) for check in outcome.md5_checks)

    def guarded(check: Md5Check) -> tuple[Md5Check, Finding | None]:
        try:
            return _md5_check(s3, target, check)
        except ClientError as error:
            return check, Finding(
                job=target.job, check=UNREADABLE, severity="high", table=_table(check.scope),
                resource=target.uri(check.key), title=f"{check.key}: could not be read to compare its MD5 "
                f"({error_code(error)})", evidence={"bucket": target.bucket, "key": check.key,
                                                    "version_id": check.version.version_id,
                                                    "error": str(error)})

    for check, finding in bounded_map(guarded, md5_work(), max_concurrency, "reverify-md5"):
        report.stats[check.scope].md5_streamed += 1
        if finding is not None:
            report.findings.add(check.scope, finding)
    report.finished = utcnow()
    return report


def _count(report: Report, outcome: ExportOutcome) -> None:
    stats = report.stats[outcome.scope]
    if outcome.status == "expired":
        stats.exports_expired += 1
        return
    if outcome.status == "in_progress":
        stats.exports_in_progress += 1
        return
    stats.exports_checked += 1
    stats.objects += outcome.objects
    stats.versions += outcome.versions
    if outcome.export_time is not None:
        stamp = iso(outcome.export_time)
        stats.newest_export_time = max(stats.newest_export_time or stamp, stamp)
    for finding in outcome.findings:
        report.findings.add(outcome.scope, finding)
