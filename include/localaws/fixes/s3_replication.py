"""S3 replication: objects written to a bucket with a replication configuration are replicated.

moto 5.2.5 stores ``PutBucketReplication`` but never replicates (getmoto/moto#4421), reports no
``ReplicationStatus`` and answers ``GetBucketReplication`` with every rule's filter replaced by ``Prefix: ""``.
AWS (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-status.html and
replication-what-is-isnot-replicated.html): a new object matching an enabled rule (highest ``Priority``
wins) is copied asynchronously to ``Destination.Bucket`` - in ``Destination.Account`` when given - with
the same key, bytes, ETag, metadata, checksum and Object Lock retention (the destination's default
retention when the source has none). The source object's ``x-amz-replication-status`` is PENDING, then
COMPLETED (FAILED if the copy cannot be made); the replica's is REPLICA. Replicas are not replicated
again; rules with tag filters are not emulated.

The copy happens ``replication_seconds`` after the write, on a background thread: initially
``LOCALAWS_REPLICATION_SECONDS`` (default 1), changed at run time with the control endpoint
``POST /_localaws/config`` and body ``{"replication_seconds": 60}`` (applies to later writes).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

SETTINGS = {"replication_seconds": float(os.environ.get("LOCALAWS_REPLICATION_SECONDS", "1"))}


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a stored (xmltodict) rule applies to; None for tag filters, which are not emulated."""
    flt = rule.get("Filter")
    if flt is None:
        return rule.get("Prefix") or ""
    if not isinstance(flt, dict):
        return ""
    if "And" in flt or "Tag" in flt:
        return None
    return flt.get("Prefix") or ""


def _tag_filter(flt: dict[str, Any]) -> dict[str, Any]:
    """A stored tag filter in GetBucketReplication's shape."""
    if "Tag" in flt:
        return {"Tag": flt["Tag"]}
    tags = flt["And"].get("Tag") or []
    return {"And": {"Prefix": flt["And"].get("Prefix") or "", "Tags": tags if isinstance(tags, list) else [tags]}}


def matching_rule(bucket, key_name: str) -> dict[str, Any] | None:
    config = getattr(bucket, "replication", None)
    if not config:
        return None
    rules = [r for r in config.get("Rule", []) if r.get("Status") == "Enabled"]
    rules = [r for r in rules if (p := _rule_prefix(r)) is not None and key_name.startswith(p)]
    return max(rules, key=lambda r: int(r.get("Priority") or 0), default=None)


def _replicate(backend, put_object, key, rule: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    destination = rule.get("Destination") or {}
    try:
        bucket_name = destination["Bucket"].split(":::", 1)[-1]
        target = s3_backends[destination.get("Account") or backend.account_id][backend.partition]
        bucket = target.get_bucket(bucket_name)
        lock_mode, lock_until = key.lock_mode, key.lock_until
        if not lock_mode and bucket.has_default_lock:
            lock_mode, lock_until = bucket.default_lock_mode, bucket.default_retention()
        replica = put_object(
            target, bucket_name, key.name, key.value, storage=key.storage_class, etag=key.etag.strip('"'),
            multipart=key.multipart, lock_mode=lock_mode, lock_until=lock_until,
            lock_legal_status=key.lock_legal_status, checksum_value=key.checksum_value,
        )
        replica.set_metadata(key.metadata)
        replica.checksum_algorithm = key.checksum_algorithm
        replica.replication_status = "REPLICA"
        key.replication_status = "COMPLETED"
    except Exception:  # noqa: BLE001 - any failure is what S3 reports as FAILED
        log.exception("replication of %s/%s failed", key.bucket_name, key.name)
        key.replication_status = "FAILED"


def apply() -> None:
    from moto.s3 import models, responses
    from moto.s3.exceptions import ReplicationConfigurationNotFoundError
    from moto.s3.responses import ActionResult

    original_put = models.S3Backend.put_object

    def put_object(self, bucket_name: str, key_name: str, *args: Any, **kwargs: Any):
        key = original_put(self, bucket_name, key_name, *args, **kwargs)
        rule = matching_rule(self.get_bucket(bucket_name), key_name)
        if rule is not None:
            key.replication_status = "PENDING"
            timer = threading.Timer(SETTINGS["replication_seconds"], _replicate,
                                    args=(self, original_put, key, rule))
            timer.daemon = True
            timer.start()
        return key

    models.S3Backend.put_object = put_object

    original_headers = models.FakeKey.response_dict.fget

    def response_dict(self) -> dict[str, Any]:
        headers = original_headers(self)
        status = getattr(self, "replication_status", None)
        if status:
            headers["x-amz-replication-status"] = status
        return headers

    models.FakeKey.response_dict = property(response_dict)

    def get_bucket_replication(self):
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for rule in replication["Rule"]:
            prefix = _rule_prefix(rule)
            rendered = {
                "ID": rule["ID"], "Priority": rule["Priority"], "Status": rule["Status"],
                "DeleteMarkerReplication": rule.get("DeleteMarkerReplication") or {"Status": "Disabled"},
                "Filter": {"Prefix": prefix} if prefix is not None else _tag_filter(rule["Filter"]),
                "Destination": rule["Destination"],
            }
            rules.append(rendered)
        return self.serialized(ActionResult({"ReplicationConfiguration": {"Role": replication["Role"],
                                                                          "Rules": rules}}))

    responses.S3Response.get_bucket_replication = get_bucket_replication
