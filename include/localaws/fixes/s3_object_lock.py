"""S3 Object Lock as AWS documents it (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html,
object-lock-managing.html, and the API reference of the operations named below).

moto 5.2.5 -> AWS:

* Default retention: moto applies the bucket's default retention only in PutObject; CopyObject and
  CompleteMultipartUpload create unprotected versions. AWS: "When you place an object in the bucket, the
  default retention applies to the new object version" - for every way of writing one. Explicit
  ``x-amz-object-lock-*`` headers on CreateMultipartUpload are honoured too (moto ignores them).
* CopyObject into an Object Lock bucket fails ``MissingUploadObjectWithObjectLockHeaders``. AWS requires
  Content-MD5 or an SDK checksum only for requests that carry a body (PutObject, UploadPart); CopyObject
  with or without ``ObjectLockMode``/``ObjectLockRetainUntilDate`` works.
* GetObjectRetention is not implemented (every call answers 500). AWS returns ``Retention`` (Mode,
  RetainUntilDate), ``NoSuchObjectLockConfiguration`` for a version without retention and ``InvalidRequest``
  for a bucket without Object Lock.
* PutObjectRetention accepts anything and answers 500 for a missing key. AWS: COMPLIANCE retention cannot be
  shortened, removed or changed to GOVERNANCE by anyone; an active GOVERNANCE retention can be shortened, removed
  or have its mode changed (also to COMPLIANCE) only with ``x-amz-bypass-governance-retention: true``
  ("users can't ... alter its lock settings unless they have special permissions", object-lock.html, "Retention
  modes"; AccessDenied otherwise), and only extended without it; a missing key or version -> NoSuchKey / NoSuchVersion.
  A request carrying the bypass header is refused when the bucket policy denies ``s3:BypassGovernanceRetention``
  (``fixes/s3_bucket_policy.py``), on PutObjectRetention and DeleteObject alike.
* PutObjectLockConfiguration fails ``InvalidBucket: Bucket needs to be empty`` on a bucket holding objects. AWS
  lets the default retention be changed at any time (it applies to versions written afterwards).
* GetObjectLockConfiguration reports ``Years: 0`` beside ``Days`` (and ``Days: 0`` beside ``Years``). AWS reports
  only the one that was set (they are mutually exclusive).
* DeleteObject treats any ``x-amz-bypass-governance-retention`` value as a bypass, so
  ``BypassGovernanceRetention=False`` deletes GOVERNANCE-locked versions. AWS bypasses only for ``true``.
* Versioning can be suspended on an Object Lock bucket. AWS: ``InvalidBucketState`` ("An Object Lock
  configuration is present on this bucket, so the versioning state cannot be changed.").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import xmltodict
from moto.core.responses import ActionResult
from moto.s3 import models, responses
from moto.s3.exceptions import (
    AccessDeniedByLock,
    InvalidBucketState,
    LockNotEnabled,
    MissingKey,
    MissingVersion,
    S3ClientError,
)

from include.localaws.fixes.s3_bucket_policy import deny_bypass

LOCK_HEADERS = ("x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold")


class NoSuchObjectLockConfiguration(S3ClientError):
    def __init__(self) -> None:
        super().__init__("NoSuchObjectLockConfiguration",
                         "The specified object does not have a ObjectLock configuration")


def _until(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _active(key: Any) -> bool:
    until = _until(key.lock_until)
    return bool(key.lock_mode) and until is not None and until > datetime.now(UTC)


def _patch_backend() -> None:
    original_put = models.S3Backend.put_object

    def put_object(self, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any):
        """Every new version gets the multipart's explicit retention, else the bucket's default retention."""
        if not args and kwargs.get("lock_mode") is None and kwargs.get("lock_until") is None:
            explicit = getattr(kwargs.get("multipart"), "localaws_lock", None)
            bucket = self.get_bucket(bucket_name)
            if explicit:
                kwargs["lock_mode"], kwargs["lock_until"], legal_hold = explicit
                kwargs.setdefault("lock_legal_status", legal_hold)
            elif bucket.object_lock_enabled and bucket.has_default_lock:
                kwargs["lock_mode"], kwargs["lock_until"] = bucket.default_lock_mode, bucket.default_retention()
        return original_put(self, bucket_name, key_name, value, *args, **kwargs)

    def put_object_lock_configuration(self, bucket_name: str, lock_enabled: bool, mode: str | None = None,
                                      days: int | None = None, years: int | None = None) -> None:
        bucket = self.get_bucket(bucket_name)
        if not bucket.is_versioned:
            raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
        if lock_enabled:
            bucket.object_lock_enabled = True
            bucket.versioning_status = "Enabled"
        bucket.default_lock_mode, bucket.default_lock_days, bucket.default_lock_years = mode, days, years

    original_versioning = models.S3Backend.put_bucket_versioning

    def put_bucket_versioning(self, bucket_name: str, status: str) -> None:
        if status != "Enabled" and self.get_bucket(bucket_name).object_lock_enabled:
            raise InvalidBucketState("An Object Lock configuration is present on this bucket, so the versioning "
                                     "state cannot be changed.")
        original_versioning(self, bucket_name, status)

    original_get_config = models.S3Backend.get_object_lock_configuration

    def get_object_lock_configuration(self, bucket_name: str):
        enabled, mode, days, years = original_get_config(self, bucket_name)
        return enabled, mode, days or None, years or None

    original_delete = models.S3Backend.delete_object

    def delete_object(self, bucket_name: str, key_name: str, version_id: str | None = None, bypass: Any = False):
        if isinstance(bypass, str):
            bypass = bypass.lower() == "true"
        if bypass:
            deny_bypass(self.get_bucket(bucket_name), key_name)
        return original_delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)

    models.S3Backend.put_object = put_object
    models.S3Backend.delete_object = delete_object
    models.S3Backend.get_object_lock_configuration = get_object_lock_configuration
    models.S3Backend.put_object_lock_configuration = put_object_lock_configuration
    models.S3Backend.put_bucket_versioning = put_bucket_versioning


def _patch_responses() -> None:
    S3Response = responses.S3Response
    original_put = S3Response._key_response_put
    original_get = S3Response._key_response_get
    original_post = S3Response._key_response_post

    def _key_response_put(self, query: dict[str, Any], key_name: str):
        if "x-amz-copy-source" in self.headers and not query.get("uploadId"):
            # CopyObject has no body, so no Content-MD5/checksum requirement.
            self._set_action("KEY", "PUT", query)
            self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
            bucket = self.backend.get_bucket(self.bucket_name)
            if any(self.headers.get(h) for h in LOCK_HEADERS[:2]) and not bucket.object_lock_enabled:
                raise LockNotEnabled
            return self.copy_object()
        if "retention" in query:
            self._set_action("KEY", "PUT", query)
            self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
            return _put_object_retention(self, key_name)
        return original_put(self, query, key_name)

    def _key_response_get(self, query: dict[str, Any], key_name: str):
        if "retention" not in query:
            return original_get(self, query, key_name)
        self._set_action("KEY", "GET", query)
        self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
        if not self.backend.get_bucket(self.bucket_name).object_lock_enabled:
            raise LockNotEnabled
        key, _ = self._get_key(validate_storage_class=False)
        if not key.lock_mode or not key.lock_until:
            raise NoSuchObjectLockConfiguration
        self.data["Action"] = "GetObjectRetention"
        return self.serialized(ActionResult({"Retention": {"Mode": key.lock_mode,
                                                           "RetainUntilDate": _until(key.lock_until)}}))

    def _key_response_post(self, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str):
        result = original_post(self, request, body, bucket_name, query, key_name)
        mode, until, hold = (request.headers.get(h) for h in LOCK_HEADERS)
        if body == b"" and "uploads" in query and (mode or until or hold):
            bucket = self.backend.get_bucket(bucket_name)
            if not bucket.object_lock_enabled:
                raise LockNotEnabled
            upload_id = re.search(r"<UploadId>([^<]+)</UploadId>", _text(result[2])).group(1)
            bucket.multiparts[upload_id].localaws_lock = (mode, until, hold)
        return result

    S3Response._key_response_put = _key_response_put
    S3Response._key_response_get = _key_response_get
    S3Response._key_response_post = _key_response_post


def _text(body: Any) -> str:
    return body.decode() if isinstance(body, bytes) else str(body)


def _put_object_retention(self: Any, key_name: str):
    """PutObjectRetention with AWS's rules for COMPLIANCE and GOVERNANCE retention."""
    bucket = self.backend.get_bucket(self.bucket_name)
    if not bucket.object_lock_enabled:
        raise LockNotEnabled
    version_id = self._get_param("versionId")
    key = self.backend.get_object(self.bucket_name, key_name, version_id=version_id)
    if key is None:
        raise MissingVersion() if version_id else MissingKey(key=key_name)
    retention = (xmltodict.parse(self.body).get("Retention") if self.body else None) or {}
    new_mode, new_until = retention.get("Mode"), retention.get("RetainUntilDate")
    bypass = self.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
    if bypass:
        deny_bypass(bucket, key_name)
    if _active(key):
        changed = new_mode != key.lock_mode
        shorter = new_until is None or _until(new_until) < _until(key.lock_until)
        if key.lock_mode == "COMPLIANCE" and (changed or shorter):
            raise AccessDeniedByLock
        if key.lock_mode == "GOVERNANCE" and (shorter or changed) and not bypass:
            raise AccessDeniedByLock
    key.lock_mode, key.lock_until = new_mode, new_until
    response_headers = self._get_cors_headers_other()
    if key.version_id != "null":
        response_headers["x-amz-version-id"] = key.version_id
    return 200, response_headers, ""


def apply() -> None:
    _patch_backend()
    _patch_responses()
