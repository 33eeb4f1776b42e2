"""CloudTrail log file integrity validation (the checks of ``aws cloudtrail validate-logs``).

AWS CloudTrail user guide, "CloudTrail digest file structure" and "Validating CloudTrail log file
integrity": every hour CloudTrail writes a digest file listing the SHA-256 of each log file it
delivered (of the *uncompressed* log), signed with RSA (SHA256withRSA) over::

    digestEndTime + "\\n" + digestS3Bucket + "/" + digestS3Object + "\\n"
    + hex(SHA-256(uncompressed digest)) + "\\n" + previousDigestSignature   (literal "null" for the first)

The hex signature is the object metadata ``x-amz-meta-signature``; the public key is the one from
``ListPublicKeys`` whose ``Fingerprint`` (MD5 of its DER bytes) equals ``digestPublicKeyFingerprint``.
Digests chain through ``previousDigestS3Object``/``previousDigestHashValue``/``previousDigestSignature``.

For an audit unit (account, region, hour) we validate the digests delivered in that hour
(see :mod:`dynamoguard.audit.discovery`): their place, signature and link to the previous digest,
every log file they list (present, SHA-256 matches), and that every log file delivered inside a
digest's period is listed by it. Each digest and each log file is thus checked in exactly one unit.

**Backfill digests.** When log files were delivered late and left out of the digest of their period,
CloudTrail later writes a backfill digest listing them: its name ends in ``_backfill.json.gz``, its
metadata has ``backfill-generation-timestamp``, and backfill digests chain among themselves. As
``aws cloudtrail validate-logs`` does (aws-cli ``customizations/cloudtrail/validation.py``), they are
validated as a separate chain, with the public keys valid within an hour of their generation time, and a
log file a backfill digest lists is not "unlisted".
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import ClientError

from dynamoguard.audit import discovery
from dynamoguard.audit.findings import Finding
from dynamoguard.audit.reader import UnreadableLog, iter_gunzip
from dynamoguard.aws import error_code
from dynamoguard.concurrency import ordered_map
from dynamoguard.timeutil import parse_time

_MISSING = ("NoSuchKey", "404", "NotFound", "NoSuchVersion")


def is_backfill(key: str) -> bool:
    return key.endswith("_backfill.json.gz")


def fingerprint(der: bytes) -> str:
    """CloudTrail's public key fingerprint: hex MD5 of the key's DER bytes."""
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def string_to_sign(digest: dict, digest_sha256_hex: str) -> bytes:
    previous = digest.get("previousDigestSignature") or "null"
    return (f"{digest['digestEndTime']}\n{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
            f"{digest_sha256_hex}\n{previous}").encode()


def verify_signature(public_key_der: bytes, message: bytes, signature_hex: str) -> bool:
    """RSA PKCS#1 v1.5 / SHA-256 verification; keys may be PKCS#1 or SubjectPublicKeyInfo DER."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key = serialization.load_der_public_key(public_key_der)
        key.verify(bytes.fromhex(signature_hex), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def public_keys(cloudtrail, start: datetime, end: datetime) -> dict[str, bytes]:
    """Fingerprint -> DER of the region's CloudTrail public keys valid in ``[start, end]``."""
    keys: dict[str, bytes] = {}
    kwargs: dict[str, Any] = {"StartTime": start, "EndTime": end}
    while True:
        page = cloudtrail.list_public_keys(**kwargs)
        for key in page.get("PublicKeyList", ()):
            keys[key["Fingerprint"]] = key["Value"]
        if not page.get("NextToken"):
            return keys
        kwargs["NextToken"] = page["NextToken"]


def gzip_sha256(body) -> str:
    sha = hashlib.sha256()
    for piece in iter_gunzip(body):
        sha.update(piece)
    return sha.hexdigest()


def _get(s3, bucket: str, key: str) -> dict | None:
    """get_object, or None if the object does not exist (or its current version is a delete marker)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in _MISSING:
            return None
        raise


def _finding(rule: str, title: str, resource: str, unit: discovery.Unit, severity: str = "high",
             log_key: str | None = None, **detail) -> Finding:
    return Finding(severity=severity, rule=rule, title=title, resource=resource, log_key=log_key,
                   account=unit.account, region=unit.region, detail=detail)


def check_log_file(s3, entry: dict, unit: discovery.Unit) -> Finding | None:
    """One ``logFiles[]`` entry: the object exists and the SHA-256 of its uncompressed bytes matches."""
    bucket, key = entry.get("s3Bucket"), entry.get("s3Object")
    location = f"s3://{bucket}/{key}"
    response = _get(s3, bucket, key)
    if response is None:
        return _finding("log-file-missing", "Log file listed in a digest is missing (deleted)", location, unit,
                        log_key=key)
    try:
        with response["Body"] as body:
            actual = gzip_sha256(body)
    except UnreadableLog as exc:
        return _finding("log-file-modified", "Log file listed in a digest is not a valid gzip", location, unit,
                        log_key=key, reason=str(exc))
    if actual != entry.get("hashValue"):
        return _finding("log-file-modified", "Log file does not match the hash in its digest", location, unit,
                        log_key=key, expected=entry.get("hashValue"), actual=actual)
    return None


class DigestValidator:
    """Validates the digests of audit units in one trail bucket; caches the region's public keys."""

    def __init__(self, s3, cloudtrail_for_region, bucket: str, base: str, max_workers: int = 32):
        self.s3 = s3
        self.cloudtrail_for_region = cloudtrail_for_region
        self.bucket = bucket
        self.base = base
        self.max_workers = max_workers
        self._keys: dict[str, dict[str, bytes]] = {}

    def _public_key(self, region: str, fingerprint_hex: str, start: datetime, end: datetime) -> bytes | None:
        cached = self._keys.setdefault(region, {})
        if fingerprint_hex not in cached:
            cached.update(public_keys(self.cloudtrail_for_region(region), start, end))
        return cached.get(fingerprint_hex)

    def validate(self, unit: discovery.Unit) -> tuple[list[Finding], dict[str, int]]:
        """Findings and counts (digests read, log files verified) for one unit."""
        findings: list[Finding] = []
        counts = {"digests_read": 0, "backfill_digests_read": 0, "log_files_verified": 0}
        keys = discovery.discover_digests(self.s3, self.bucket, self.base, unit)
        if not any(not is_backfill(k) for k in keys):
            prefix = discovery.digest_prefix(self.base, unit.account, unit.region, unit.start)
            findings.append(_finding("digest-missing", "No digest file delivered in this hour",
                                     f"s3://{self.bucket}/{prefix}", unit, severity="medium"))
        entries: list[dict] = []
        for key in keys:
            digest = self._check_digest(key, unit, findings)
            if digest is None:
                continue
            counts["backfill_digests_read" if is_backfill(key) else "digests_read"] += 1
            entries.extend(e for e in digest.get("logFiles") or () if isinstance(e, dict))
            if not is_backfill(key):
                findings.extend(self._unlisted_logs(digest, unit))
        for result in ordered_map(check_log_file, ((self.s3, e, unit) for e in entries), self.max_workers):
            counts["log_files_verified"] += 1
            if result:
                findings.append(result)
        return findings, counts

    def _backfilled(self, unit: discovery.Unit, start: datetime, end: datetime) -> set[str]:
        """Log files listed by the backfill digests of the days of ``[start, end]``."""
        listed: set[str] = set()
        for day in sorted({start.date(), end.date()}):
            moment = datetime(day.year, day.month, day.day, tzinfo=start.tzinfo)
            prefix = discovery.digest_prefix(self.base, unit.account, unit.region, moment)
            for obj in discovery.list_keys(self.s3, self.bucket, prefix):
                if not is_backfill(obj["Key"]):
                    continue
                try:
                    read = self._read_digest(self.bucket, obj["Key"])
                except (UnreadableLog, orjson.JSONDecodeError):
                    continue  # reported where that digest is validated
                if read:
                    listed.update(e.get("s3Object") for e in read[0].get("logFiles") or () if isinstance(e, dict))
        return listed

    def _read_digest(self, bucket: str, key: str) -> tuple[dict, str, dict] | None:
        response = _get(self.s3, bucket, key)
        if response is None:
            return None
        with response["Body"] as body:
            raw = bytearray()
            for piece in iter_gunzip(body):
                raw += piece
        return orjson.loads(raw), hashlib.sha256(raw).hexdigest(), response.get("Metadata") or {}

    def _check_digest(self, key: str, unit: discovery.Unit, findings: list[Finding]) -> dict | None:
        location = f"s3://{self.bucket}/{key}"
        try:
            read = self._read_digest(self.bucket, key)
        except (UnreadableLog, orjson.JSONDecodeError) as exc:
            findings.append(_finding("digest-invalid", "Digest file cannot be read", location, unit,
                                     log_key=key, reason=str(exc)))
            return None
        if read is None:  # listed, then deleted before we read it
            findings.append(_finding("digest-missing", "Digest file deleted", location, unit, log_key=key))
            return None
        digest, sha_hex, metadata = read
        if (digest.get("digestS3Bucket"), digest.get("digestS3Object")) != (self.bucket, key):
            findings.append(_finding("digest-invalid", "Digest file names another location than its own", location,
                                     unit, log_key=key, claims=f"{digest.get('digestS3Bucket')}/"
                                                                f"{digest.get('digestS3Object')}"))
            return None
        self._check_signature(digest, sha_hex, metadata, location, key, unit, findings)
        self._check_previous(digest, location, key, unit, findings)
        return digest

    def _check_signature(self, digest, sha_hex, metadata, location, key, unit, findings) -> None:
        signature = metadata.get("signature")
        if not signature or metadata.get("signature-algorithm", "SHA256withRSA") != "SHA256withRSA":
            findings.append(_finding("digest-signature-invalid", "Digest file is not signed", location, unit,
                                     log_key=key))
            return
        start = parse_time(digest["digestStartTime"])
        end = parse_time(digest["digestEndTime"])
        generated = metadata.get("backfill-generation-timestamp")
        if is_backfill(key) and generated:  # signed with a key valid when it was generated
            start = parse_time(generated) - timedelta(hours=1)
            end = start + timedelta(hours=2)
        der = self._public_key(unit.region, digest.get("digestPublicKeyFingerprint"), start, end)
        if der is None:
            findings.append(_finding("digest-signature-invalid", "No CloudTrail public key matches the digest's "
                                     "fingerprint", location, unit, log_key=key,
                                     fingerprint=digest.get("digestPublicKeyFingerprint")))
        elif not verify_signature(der, string_to_sign(digest, sha_hex), signature):
            findings.append(_finding("digest-signature-invalid", "Digest signature does not verify", location, unit,
                                     log_key=key))

    def _check_previous(self, digest, location, key, unit, findings) -> None:
        previous_key = digest.get("previousDigestS3Object")
        if not previous_key:
            if is_backfill(key):
                findings.append(_finding("digest-chain-start", "Backfill digest chain starts here", location, unit,
                                         severity="info", log_key=key))
            else:
                findings.append(_finding("digest-chain-start", "Digest chain starts here (validation enabled or "
                                         "restarted)", location, unit, severity="low", log_key=key))
            return
        previous_bucket = digest.get("previousDigestS3Bucket") or self.bucket
        previous_location = f"s3://{previous_bucket}/{previous_key}"
        try:
            previous = self._read_digest(previous_bucket, previous_key)
        except (UnreadableLog, orjson.JSONDecodeError) as exc:
            findings.append(_finding("digest-chain-broken", "Previous digest cannot be read", previous_location,
                                     unit, log_key=key, reason=str(exc)))
            return
        if previous is None:
            findings.append(_finding("digest-missing", "Previous digest file is missing (deleted)",
                                     previous_location, unit, log_key=key))
            return
        _, previous_sha, previous_metadata = previous
        if previous_sha != digest.get("previousDigestHashValue") or \
                previous_metadata.get("signature") != digest.get("previousDigestSignature"):
            findings.append(_finding("digest-chain-broken", "Previous digest does not match its hash or signature",
                                     previous_location, unit, log_key=key))

    def _unlisted_logs(self, digest: dict, unit: discovery.Unit) -> list[Finding]:
        """Log files delivered well inside the digest's period that it does not list (added afterwards)."""
        start = parse_time(digest["digestStartTime"])
        end = parse_time(digest["digestEndTime"])
        listed = {e.get("s3Object") for e in digest.get("logFiles") or () if isinstance(e, dict)}
        # Key timestamps have minute precision: skip the boundary minutes, which may belong to a neighbour.
        lo, hi = start + timedelta(minutes=1), end - timedelta(minutes=1)
        unlisted = []
        for hour in discovery.hours(start, end):
            prefix = discovery.log_prefix(self.base, unit.account, unit.region, hour)
            for obj in discovery.list_keys(self.s3, self.bucket, prefix):
                moment = discovery.key_time(obj["Key"])
                if moment and lo <= moment < hi and obj["Key"] not in listed:
                    unlisted.append(obj["Key"])
        backfilled = self._backfilled(unit, start, end) if unlisted else set()
        return [_finding("log-file-unlisted", "Log file is not listed in the digest of its period or a backfill "
                         "digest", f"s3://{self.bucket}/{key}", unit, log_key=key)
                for key in unlisted if key not in backfilled]
