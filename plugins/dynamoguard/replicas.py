"""Replicas of a night's export in the backup account: copy them there, or verify that S3 replication did.

Both modes stream the listing of the export prefix in the source bucket (the next page is fetched while
the current one is checked; memory stays flat however large the export) and check each object on a
bounded thread pool. Copy mode merges it key by key with the listing of the same prefix in the replica
bucket's current versions (so a fresh copy costs no HEAD); verify mode HEADs each replica. Every source object
ends in exactly one outcome: ``copied``, ``skipped`` (replica already present, identical and locked),
``repaired`` (copy mode: the replica had been deleted - a delete marker was its current version - and was copied
again), ``missing``, ``different``, ``unlocked``, ``pending`` (verify mode: S3 still reports the replication
PENDING) or ``error`` (an AWS error, named).

**copy**: the backup account's client copies server-side (``CopyObject``; ``UploadPartCopy`` above
``multipart_threshold``) from the source bucket, which must grant the backup role read access (see the
README). Each write requests ``ChecksumAlgorithm=SHA256``, carries the replica policy's Object Lock
retention counted from the export time, copies only the source version that was hashed
(``CopySourceIfMatch``) and is conditional on the key not existing (``IfNoneMatch='*'``): nothing in
the replica bucket is ever deleted or overwritten. An existing replica is compared, never replaced.

**verify**: the source bucket's replication configuration must have an enabled rule covering the prefix
whose destination is the replica bucket in the backup account, with ownership translated to it or a replica
bucket that enforces bucket-owner ownership; every object must have a replica. A missing replica whose source
reports ``ReplicationStatus`` PENDING is ``pending`` (the caller waits and re-checks) until ``pending_is_missing``.

**Identical** means same size and either the same ETag (S3 replication keeps it) or the same SHA-256.
The source's SHA-256 is the one the export verification computed while streaming the object for its MD5
(``verified``, handed over in the verify result; a fresh copy is then one CopyObject whose SHA-256 is compared
with it), else the full-object ``ChecksumSHA256`` S3 stores with it when there is one
(GetObject with ChecksumMode=ENABLED); otherwise - DynamoDB export files are multipart uploads with no
SHA-256 - the source is streamed once through SHA-256 (bounded chunks). For multipart copies the part
digests are taken in the same pass: S3 reports a SHA-256 multipart object's checksum as COMPOSITE,
base64(SHA-256(part digests)) followed by ``-<parts>``, and that is what is compared.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from dynamoguard.aws import error_code
from dynamoguard.concurrency import bounded_map, prefetch

log = logging.getLogger(__name__)

MiB = 1024 * 1024
CHUNK = 8 * MiB
MAX_PARTS = 10_000
MIN_PART = 5 * MiB
MAX_FINDINGS = 200  # findings kept in full; the counts always cover every object

OUTCOMES = ("copied", "skipped", "repaired", "missing", "different", "unlocked", "pending", "error")
FAILING = ("missing", "different", "unlocked", "pending", "error")
REPORTED = (*FAILING, "repaired")  # outcomes kept as findings: a repair is reported too


@dataclass(frozen=True)
class LockPolicy:
    """The retention every replica must carry: ``mode`` until at least ``retain_until``."""

    mode: str
    retain_until: datetime

    @classmethod
    def from_export_time(cls, mode: str, days: int, export_time: datetime) -> LockPolicy:
        """``days`` counted from ``export_time``, rounded up to a whole second (S3's precision)."""
        if export_time.tzinfo is None:
            raise ValueError(f"export_time {export_time!r} must carry a time zone")
        until = export_time.astimezone(timezone.utc) + timedelta(days=days)
        if until.microsecond:
            until = until.replace(microsecond=0) + timedelta(seconds=1)
        return cls(mode, until)

    def problem(self, head: dict[str, Any]) -> str | None:
        """Why the object described by ``head`` (HeadObject response) is not locked as required, or None."""
        mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        if not mode or not until:
            return f"no Object Lock retention (required {self.mode} until {self.retain_until.isoformat()})"
        if mode != self.mode and mode != "COMPLIANCE":
            return f"retention mode {mode}, required {self.mode}"
        if until < self.retain_until:
            return f"retained until {until.isoformat()}, required at least {self.retain_until.isoformat()}"
        return None


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}: {self.detail}"


@dataclass
class ReplicaResult:
    """What one table's replica check found. ``checked`` counts source objects; each has one outcome."""

    table: str
    mode: str
    source: str
    replica: str
    checked: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    findings: list[Finding] = field(default_factory=list)
    config_problems: list[str] = field(default_factory=list)

    def add(self, outcome: str, key: str, detail: str = "") -> None:
        self.checked += 1
        self.counts[outcome] += 1
        if outcome in REPORTED and len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(outcome, key, detail))

    @property
    def ok(self) -> bool:
        return not self.config_problems and not any(self.counts[k] for k in FAILING)

    def summary(self) -> str:
        counts = ", ".join(f"{k} {self.counts[k]}" for k in OUTCOMES if self.counts[k] or k in ("copied", "skipped"))
        lines = [f"{self.table}: replica {self.mode} {self.source} -> {self.replica}: checked {self.checked}, {counts}"]
        lines += [f"  replication configuration: {p}" for p in self.config_problems]
        lines += [f"  {f}" for f in self.findings]
        shown = len(self.findings)
        total = sum(self.counts[k] for k in REPORTED)
        if total > shown:
            lines.append(f"  ... and {total - shown} more findings")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "mode": self.mode, "source": self.source, "replica": self.replica,
            "checked": self.checked, **self.counts, "ok": self.ok,
            "config_problems": list(self.config_problems),
            "findings": [{"kind": f.kind, "key": f.key, "detail": f.detail} for f in self.findings],
        }


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str
    deleted_by: str | None = None  # replica listing: the version id of the delete marker that is its current version


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


def list_objects(s3, bucket: str, prefix: str) -> Iterator[Listed]:
    """Every object under ``prefix``, in S3's (UTF-8 binary = code point) key order, page by page."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            yield Listed(obj["Key"], obj["Size"], _etag(obj.get("ETag")))


def list_replicas(s3, bucket: str, prefix: str) -> Iterator[Listed]:
    """The current version of every key under ``prefix``, in key order, page by page: an object, or a delete
    marker (``deleted_by``: a replica deleted in the backup account; Object Lock kept the version under it)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        latest = [Listed(v["Key"], v["Size"], _etag(v.get("ETag"))) for v in page.get("Versions", ())
                  if v.get("IsLatest")]
        latest += [Listed(m["Key"], 0, "", deleted_by=m.get("VersionId") or "null")
                   for m in page.get("DeleteMarkers", ()) if m.get("IsLatest")]
        yield from sorted(latest, key=lambda listed: listed.key)


def merge(source: Iterable[Listed], replica: Iterable[Listed]) -> Iterator[tuple[Listed, Listed | None]]:
    """Pair each source object with the replica of the same key (None if absent); both inputs key-sorted."""
    replicas = iter(replica)
    current = next(replicas, None)
    for src in source:
        while current is not None and current.key < src.key:
            current = next(replicas, None)
        yield src, (current if current is not None and current.key == src.key else None)


@dataclass(frozen=True)
class Digest:
    """SHA-256 of an object (base64), and the COMPOSITE checksum of a given part layout when it has one."""

    full: str
    composite: str | None = None
    parts: tuple[str, ...] = ()

    def matches(self, checksum: str | None) -> bool:
        if not checksum:
            return False
        value, _, count = checksum.partition("-")
        if count:
            return self.composite is not None and value == self.composite and int(count) == len(self.parts)
        # A part count is not always attached to a COMPOSITE value (e.g. in some HeadObject answers).
        return value == self.full or (self.composite is not None and value == self.composite)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges of a multipart copy, the part size raised so there are at most 10,000."""
    part_size = max(part_size, MIN_PART, math.ceil(size / MAX_PARTS))
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]


def stream_digest(body, ranges: list[tuple[int, int]] | None = None) -> Digest:
    """Digest of a streaming body; with ``ranges`` also the per-part digests and the composite."""
    whole = hashlib.sha256()
    if not ranges:
        for chunk in body.iter_chunks(CHUNK):
            whole.update(chunk)
        return Digest(_b64(whole.digest()))
    parts: list[bytes] = []
    part = hashlib.sha256()
    position = index = 0
    for chunk in body.iter_chunks(CHUNK):
        whole.update(chunk)
        view = memoryview(chunk)
        while view:
            if index == len(ranges):
                raise ValueError(f"object is longer than {ranges[-1][1] + 1} bytes")
            take = min(len(view), ranges[index][1] + 1 - position)
            part.update(view[:take])
            view, position = view[take:], position + take
            if position == ranges[index][1] + 1:
                parts.append(part.digest())
                part, index = hashlib.sha256(), index + 1
    return Digest(_b64(whole.digest()), _b64(hashlib.sha256(b"".join(parts)).digest()),
                  tuple(_b64(p) for p in parts))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


CONFLICT_ATTEMPTS = 4


def _retry_conflicts(write: Callable[[], Any], attempts: int = CONFLICT_ATTEMPTS, pause: float = 0.2) -> Any:
    """``write()`` (a conditional write), again after S3's ``409 ConditionalRequestConflict``: a concurrent
    operation on the key interfered, and S3 says to retry (API reference of CopyObject, ``IfNoneMatch``).
    The last conflict is raised; a 412 (the key exists) is not retried."""
    attempt = 1
    while True:
        try:
            return write()
        except ClientError as error:
            if error_code(error) != "ConditionalRequestConflict" or attempt >= attempts:
                raise
        log.info("ConditionalRequestConflict, attempt %d of %d; retrying", attempt, attempts)
        time.sleep(pause * 2 ** (attempt - 1))
        attempt += 1


@dataclass
class Replicator:
    """Copies or verifies the replicas of one export prefix.

    ``source_s3`` acts in the source account (listing, reading, ReplicationStatus); ``backup_s3`` in the
    backup account (listing and reading the replica bucket, and the copies themselves).
    """

    source_s3: Any
    backup_s3: Any
    source_bucket: str
    replica_bucket: str
    lock: LockPolicy
    max_workers: int = 32
    multipart_threshold: int = 100 * MiB
    part_size: int = 64 * MiB
    source_account: str | None = None
    backup_account: str | None = None
    # key -> {"etag", "sha256"} of source objects whose SHA-256 was computed independently (the export
    # verification streams every data file once and hashes it): a fresh copy then needs no read of the source.
    verified: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def _ranges(self, size: int) -> list[tuple[int, int]] | None:
        return part_ranges(size, self.part_size) if size > self.multipart_threshold else None

    # -- reading -------------------------------------------------------------------------------------------
    def source_digest(self, src: Listed) -> Digest:
        """The source's SHA-256: the one the export verification computed for this very version (same ETag),
        else the stored full-object checksum if S3 has one, else by streaming it."""
        ranges = self._ranges(src.size)
        known = self.verified.get(src.key)
        if ranges is None and known and known.get("etag") == src.etag and known.get("sha256"):
            return Digest(known["sha256"])
        response = self.source_s3.get_object(Bucket=self.source_bucket, Key=src.key, IfMatch=f'"{src.etag}"',
                                             ChecksumMode="ENABLED")
        stored = response.get("ChecksumSHA256")
        if stored and "-" not in stored and ranges is None:
            response["Body"].close()
            return Digest(stored)
        with closing(response["Body"]) as body:
            return stream_digest(body, ranges)

    def _replica_digest(self, key: str) -> Digest:
        response = self.backup_s3.get_object(Bucket=self.replica_bucket, Key=key)
        with closing(response["Body"]) as body:
            return stream_digest(body)

    def _head_replica(self, key: str) -> dict[str, Any]:
        return self.backup_s3.head_object(Bucket=self.replica_bucket, Key=key, ChecksumMode="ENABLED")

    # -- comparing -----------------------------------------------------------------------------------------
    def compare(self, src: Listed, head: dict[str, Any]) -> tuple[str, str]:
        """Outcome for an existing replica (``head`` = its HeadObject): skipped, different or unlocked."""
        size = head.get("ContentLength")
        if size != src.size:
            return "different", f"replica has {size} bytes, source {src.size}"
        if _etag(head.get("ETag")) != src.etag:
            checksum = head.get("ChecksumSHA256")
            digest = self.source_digest(src)
            if not digest.matches(checksum):
                if checksum and "-" not in checksum:
                    return "different", f"replica SHA-256 {checksum} != source {digest.full}"
                replica = self._replica_digest(src.key)
                if replica.full != digest.full:
                    return "different", f"replica SHA-256 {replica.full} != source {digest.full}"
        problem = self.lock.problem(head)
        if problem:
            return "unlocked", problem
        return "skipped", ""

    # -- copying -------------------------------------------------------------------------------------------
    def _copy_args(self, src: Listed) -> dict[str, Any]:
        args: dict[str, Any] = {
            "Bucket": self.replica_bucket, "Key": src.key,
            "ObjectLockMode": self.lock.mode, "ObjectLockRetainUntilDate": self.lock.retain_until,
        }
        if self.backup_account:
            args["ExpectedBucketOwner"] = self.backup_account
        return args

    def _source_args(self, src: Listed) -> dict[str, Any]:
        args: dict[str, Any] = {"CopySource": {"Bucket": self.source_bucket, "Key": src.key},
                                "CopySourceIfMatch": f'"{src.etag}"'}
        if self.source_account:
            args["ExpectedSourceBucketOwner"] = self.source_account
        return args

    def _copy_single(self, src: Listed) -> str | None:
        result = _retry_conflicts(lambda: self.backup_s3.copy_object(
            **self._copy_args(src), **self._source_args(src), ChecksumAlgorithm="SHA256", IfNoneMatch="*"))
        checksum = result.get("CopyObjectResult", {}).get("ChecksumSHA256")
        return checksum or self._head_replica(src.key).get("ChecksumSHA256")

    def _copy_multipart(self, src: Listed, ranges: list[tuple[int, int]], digest: Digest) -> str | None:
        upload = self.backup_s3.create_multipart_upload(**self._copy_args(src), ChecksumAlgorithm="SHA256")
        upload_id = upload["UploadId"]
        source_args = self._source_args(src)
        try:
            parts = []
            for number, (start, end) in enumerate(ranges, 1):
                copied = self.backup_s3.upload_part_copy(
                    Bucket=self.replica_bucket, Key=src.key, UploadId=upload_id, PartNumber=number,
                    CopySourceRange=f"bytes={start}-{end}", **source_args,
                )["CopyPartResult"]
                part = {"PartNumber": number, "ETag": copied["ETag"]}
                if copied.get("ChecksumSHA256"):
                    if copied["ChecksumSHA256"] != digest.parts[number - 1]:
                        raise ValueError(f"part {number} SHA-256 {copied['ChecksumSHA256']} != source "
                                         f"{digest.parts[number - 1]}")
                    part["ChecksumSHA256"] = copied["ChecksumSHA256"]
                parts.append(part)
            done = self.backup_s3.complete_multipart_upload(
                Bucket=self.replica_bucket, Key=src.key, UploadId=upload_id,
                MultipartUpload={"Parts": parts}, IfNoneMatch="*",
            )
        except BaseException:
            # Only the unfinished upload we started is discarded; no object exists until it completes.
            self.backup_s3.abort_multipart_upload(Bucket=self.replica_bucket, Key=src.key, UploadId=upload_id)
            raise
        return done.get("ChecksumSHA256") or self._head_replica(src.key).get("ChecksumSHA256")

    def copy_one(self, src: Listed, replica: Listed | None) -> tuple[str, str]:
        if replica is not None and replica.deleted_by is None:
            return self.compare(src, self._head_replica(src.key))
        outcome, detail = self._copy(src)
        if replica is not None and outcome == "copied":
            return "repaired", f"the replica had been deleted (delete marker {replica.deleted_by}); copied again"
        return outcome, detail

    def _copy(self, src: Listed) -> tuple[str, str]:
        ranges = self._ranges(src.size)
        digest = self.source_digest(src)
        try:
            if ranges:  # a conflict discards the whole upload (aborted), so it is retried from the start
                checksum = _retry_conflicts(lambda: self._copy_multipart(src, ranges, digest))
            else:
                checksum = self._copy_single(src)
        except ClientError as error:
            if _status(error) != 412:
                raise
            try:
                head = self._head_replica(src.key)
            except ClientError as missing:
                if _status(missing) != 404:
                    raise
                return "error", f"source changed while copying (ETag no longer {src.etag})"
            return self.compare(src, head)  # written by someone else meanwhile: compared, not overwritten
        if not digest.matches(checksum):
            return "different", f"copy has SHA-256 {checksum}, source {digest.full}"
        return "copied", ""

    def verify_one(self, src: Listed, pending_is_missing: bool) -> tuple[str, str]:
        try:
            return self.compare(src, self._head_replica(src.key))
        except ClientError as error:
            if _status(error) != 404:
                raise
            headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if headers.get("x-amz-delete-marker") == "true":
                return "missing", "the replica was deleted (a delete marker is its current version)"
        status = self.source_s3.head_object(Bucket=self.source_bucket, Key=src.key).get("ReplicationStatus")
        if status == "PENDING" and not pending_is_missing:
            return "pending", "ReplicationStatus PENDING"
        return "missing", f"no replica (source ReplicationStatus {status or 'absent'})"

    # -- driving -------------------------------------------------------------------------------------------
    def run(self, result: ReplicaResult, prefix: str, check: Callable[..., tuple[str, str]],
            with_replicas: bool) -> ReplicaResult:
        """``check(source[, replica listing entry])`` for every source object under ``prefix``, concurrently."""
        sources = prefetch(list_objects(self.source_s3, self.source_bucket, prefix))
        if with_replicas:
            replicas = prefetch(list_replicas(self.backup_s3, self.replica_bucket, prefix))
            items: Iterator[tuple] = merge(sources, replicas)
        else:
            items = ((src,) for src in sources)

        def guarded(src: Listed, *replica: Listed | None) -> tuple[str, str, str]:
            try:
                outcome, detail = check(src, *replica)
            except ClientError as error:
                outcome, detail = "error", f"{error_code(error)}: {error}"
            except ValueError as error:
                outcome, detail = "error", str(error)
            return outcome, src.key, detail

        for outcome, key, detail in bounded_map(guarded, items, self.max_workers):
            if outcome in REPORTED:
                log.warning("%s: %s %s", outcome, key, detail)
            result.add(outcome, key, detail)
        return result


def _rule_prefix(rule: dict[str, Any]) -> tuple[str, bool]:
    """(key prefix, has tag conditions) of a replication rule's filter (V2 ``Filter`` or V1 ``Prefix``)."""
    flt = rule.get("Filter")
    if flt is None:
        return rule.get("Prefix", ""), False
    if "And" in flt:
        return flt["And"].get("Prefix", ""), bool(flt["And"].get("Tags"))
    return flt.get("Prefix", ""), "Tag" in flt


def replica_bucket_ownership(backup_s3, replica_bucket: str) -> str | None:
    """The replica bucket's S3 Object Ownership setting (``BucketOwnerEnforced``, ...), None if it has none."""
    try:
        rules = backup_s3.get_bucket_ownership_controls(Bucket=replica_bucket)["OwnershipControls"]["Rules"]
    except ClientError as error:
        if error_code(error) == "OwnershipControlsNotFoundError":
            return None
        raise
    return rules[0].get("ObjectOwnership") if rules else None


def replication_problems(source_s3, source_bucket: str, prefix: str, replica_bucket: str,
                         backup_account: str, replica_ownership: Callable[[], str | None] = lambda: None) -> list[str]:
    """Why the source bucket's replication would not put every object under ``prefix`` into the replica
    bucket, owned by the backup account ([] if it would).

    The replicas belong to the backup account when the rule translates ownership (``AccessControlTranslation``
    ``Owner: Destination``) or when the replica bucket enforces bucket-owner ownership (S3 Object Ownership
    ``BucketOwnerEnforced``, the setting AWS recommends: S3 user guide, "Changing the replica owner");
    ``replica_ownership()`` reads that setting, only when a rule needs it.
    """
    try:
        config = source_s3.get_bucket_replication(Bucket=source_bucket)["ReplicationConfiguration"]
    except ClientError as error:
        if error_code(error) == "ReplicationConfigurationNotFoundError":
            return [f"bucket {source_bucket} has no replication configuration"]
        raise
    target = f"arn:aws:s3:::{replica_bucket}"
    candidates: list[str] = []
    rules = sorted(config.get("Rules", []), key=lambda r: -int(r.get("Priority", 0)))
    for rule in rules:
        rule_id = rule.get("ID", "?")
        destination = rule.get("Destination", {})
        if rule.get("Status") != "Enabled" or destination.get("Bucket") != target:
            continue
        rule_prefix, tagged = _rule_prefix(rule)
        problems = []
        if not prefix.startswith(rule_prefix):
            problems.append(f"rule {rule_id} replicates only prefix {rule_prefix!r}, not {prefix!r}")
        if tagged:
            problems.append(f"rule {rule_id} replicates only tagged objects")
        if destination.get("Account") != backup_account:
            problems.append(f"rule {rule_id} Destination.Account is {destination.get('Account')!r}, "
                            f"expected {backup_account!r}")
        owner = destination.get("AccessControlTranslation", {}).get("Owner")
        if owner != "Destination":
            ownership = replica_ownership()
            if ownership != "BucketOwnerEnforced":
                problems.append(
                    f"rule {rule_id} does not set AccessControlTranslation.Owner=Destination and bucket "
                    f"{replica_bucket} does not enforce bucket-owner ownership (Object Ownership "
                    f"{ownership or 'not set'}), so replicas would stay owned by the source account: set S3 Object "
                    f"Ownership BucketOwnerEnforced on {replica_bucket} (recommended) or the rule's "
                    f"AccessControlTranslation")
        if not problems:
            return []
        candidates += problems
    return candidates or [f"no enabled rule of bucket {source_bucket} replicates to {target}"]


def copy_export(replicator: Replicator, table: str, prefix: str) -> ReplicaResult:
    """Copy every object under ``prefix`` that has no replica yet; compare the ones that have."""
    result = ReplicaResult(table, "copy", f"s3://{replicator.source_bucket}/{prefix}",
                           f"s3://{replicator.replica_bucket}/{prefix}")
    return replicator.run(result, prefix, replicator.copy_one, with_replicas=True)


def verify_export(replicator: Replicator, table: str, prefix: str, pending_is_missing: bool = False) -> ReplicaResult:
    """Check the replication configuration, then that every object under ``prefix`` has a good replica."""
    result = ReplicaResult(table, "verify", f"s3://{replicator.source_bucket}/{prefix}",
                           f"s3://{replicator.replica_bucket}/{prefix}")
    result.config_problems = replication_problems(
        replicator.source_s3, replicator.source_bucket, prefix, replicator.replica_bucket,
        replicator.backup_account or "",
        lambda: replica_bucket_ownership(replicator.backup_s3, replicator.replica_bucket))
    return replicator.run(result, prefix, lambda src: replicator.verify_one(src, pending_is_missing),
                          with_replicas=False)



# Findings-store severity and title of each reported outcome (one scale for every job).
STORE = {
    "missing": ("high", "replica missing in the backup account"),
    "different": ("high", "replica differs from the export object"),
    "unlocked": ("high", "replica not locked as required"),
    "pending": ("medium", "replication still pending"),
    "error": ("medium", "replica could not be checked"),
    "repaired": ("medium", "re-copied a replica object that had been deleted in the backup account"),
}


def store_findings(result: ReplicaResult) -> list:
    """The result's findings in the findings-store shape (job ``replica``, the table's scope): each kept finding,
    one per outcome counting those beyond :data:`MAX_FINDINGS`, and each replication configuration problem."""
    from dynamoguard.findings import Finding as StoreFinding

    def bucket_of(uri: str) -> str:
        return "s3://" + uri.removeprefix("s3://").split("/", 1)[0]

    findings = [StoreFinding(job="replica", check="replication_config", severity="high", table=result.table,
                             resource=result.source, dedup=problem,
                             title=f"{result.table}: S3 replication would not replicate the export as required",
                             evidence={"found": problem, "mode": result.mode})
                for problem in result.config_problems]
    kept = {kind: 0 for kind in REPORTED}
    for finding in result.findings:
        kept[finding.kind] += 1
        severity, title = STORE[finding.kind]
        findings.append(StoreFinding(
            job="replica", check=finding.kind, severity=severity, table=result.table,
            resource=f"{bucket_of(result.replica)}/{finding.key}", title=f"{result.table}: {title} ({finding.key})",
            evidence={"found": finding.detail, "mode": result.mode,
                      "source": f"{bucket_of(result.source)}/{finding.key}"}))
    for kind in REPORTED:
        more = result.counts[kind] - kept[kind]
        if more > 0:
            severity, title = STORE[kind]
            findings.append(StoreFinding(job="replica", check=kind, severity=severity, table=result.table,
                                         resource=result.replica, dedup="more",
                                         title=f"{result.table}: {more} more objects: {title}",
                                         evidence={"more": more, "listed": kept[kind]}))
    return findings
