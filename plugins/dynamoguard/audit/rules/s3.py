"""S3 rules on the backup, replica and trail buckets.

Event names are the ones CloudTrail logs (S3 user guide, "Amazon S3 CloudTrail events"), not always the
API's: PutBucketLifecycleConfiguration is logged as ``PutBucketLifecycle``, PutObjectLockConfiguration as
``PutBucketObjectLockConfiguration``; both spellings are accepted where older guides differ. A permanent
version delete is a ``DeleteObject`` record with ``requestParameters.versionId``. Request bodies appear
with their XML element names (``LifecycleConfiguration.Rule``, ``VersioningConfiguration.Status``), their
numbers possibly as strings.
"""

from __future__ import annotations

from dynamoguard.audit.records import as_int, bucket_of, foreign_grants, params, policy_document
from dynamoguard.audit.registry import Hit, rule

S3 = "s3.amazonaws.com"


@rule("s3-object-deleted", "Object deleted in a protected bucket", "medium", S3, ["DeleteObject", "DeleteObjects"])
def s3_object_deleted(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    p = params(event)
    key = p.get("key") or ""
    # A version id deletes that version for good; a plain delete only adds a marker; a multi-object
    # delete may do either.
    severity = "critical" if p.get("versionId") else "high" if event.get("eventName") == "DeleteObjects" else None
    return Hit(f"{bucket}/{key}".rstrip("/"), severity, {"versionId": p.get("versionId")})


def _bypass(event: dict) -> bool:
    return any(str(source.get(name, "")).lower() == "true"
               for source in (params(event), event.get("additionalEventData") or {})
               for name in ("x-amz-bypass-governance-retention", "bypassGovernanceRetention"))


@rule("s3-retention-changed", "Object retention changed in a protected bucket", "medium", S3,
      ["PutObjectRetention"])
def s3_retention_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    bypass = _bypass(event)
    return Hit(f"{bucket}/{params(event).get('key', '')}", "high" if bypass else None, {"governance_bypass": bypass})


@rule("s3-legal-hold-removed", "Legal hold removed from an object in a protected bucket", "medium", S3,
      ["PutObjectLegalHold"])
def s3_legal_hold_removed(event, ctx):
    bucket = bucket_of(event, ctx)
    hold = params(event).get("LegalHold")
    if not bucket or not isinstance(hold, dict) or str(hold.get("Status", "")).upper() != "OFF":
        return None
    return Hit(f"{bucket}/{params(event).get('key', '')}")


@rule("s3-lock-config-changed", "Object Lock configuration of a protected bucket changed", "high", S3,
      ["PutBucketObjectLockConfiguration", "PutObjectLockConfiguration"])
def s3_lock_config_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    return Hit(bucket) if bucket else None


@rule("s3-bucket-policy-changed", "Policy of a protected bucket changed", "medium", S3,
      ["PutBucketPolicy", "DeleteBucketPolicy"])
def s3_bucket_policy_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    if event.get("eventName") == "PutBucketPolicy":
        policy = policy_document(params(event).get("bucketPolicy"))
        foreign = foreign_grants(policy, ctx.accounts) if policy else []
        if foreign:
            return Hit(bucket, "high", {"grants": foreign})
    return Hit(bucket)


def _lifecycle_rules(p: dict) -> list[dict]:
    config = p.get("LifecycleConfiguration") or p.get("lifecycleConfiguration")
    rules = (config.get("Rule") or config.get("rules") or []) if isinstance(config, dict) else []
    rules = [rules] if isinstance(rules, dict) else rules
    return [r for r in rules if isinstance(r, dict)]


def expiry_days(lifecycle_rule: dict) -> int | None:
    """Days after which an enabled rule deletes data (current versions or noncurrent ones), or None.

    A date expiration counts as 0 days (it can fall any time)."""
    if str(lifecycle_rule.get("Status", "")).lower() != "enabled":
        return None
    days = []
    expiration = lifecycle_rule.get("Expiration")
    if isinstance(expiration, dict):
        days.append(as_int(expiration.get("Days")))
        if expiration.get("Date"):
            days.append(0)
    noncurrent = lifecycle_rule.get("NoncurrentVersionExpiration")
    if isinstance(noncurrent, dict):
        days.append(as_int(noncurrent.get("NoncurrentDays")))
    days = [d for d in days if d is not None]
    return min(days) if days else None


@rule("s3-lifecycle-changed", "Lifecycle of a protected bucket changed", "low", S3,
      ["PutBucketLifecycle", "PutBucketLifecycleConfiguration"])
def s3_lifecycle_changed(event, ctx):
    """High when a rule expires data sooner than the bucket must keep it (the config's retention)."""
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    required = ctx.bucket_retention_days.get(bucket, 0)
    expiring = {str(r.get("ID", "")): d for r in _lifecycle_rules(params(event))
                if (d := expiry_days(r)) is not None}
    too_soon = {name: days for name, days in expiring.items() if days < required}
    return Hit(bucket, "high" if too_soon else None,
               {"expiring_rules": expiring, "too_soon": too_soon, "required_days": required})


@rule("s3-replication-changed", "Replication of a protected bucket changed", "medium", S3,
      ["PutBucketReplication", "DeleteBucketReplication"])
def s3_replication_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    config = params(event).get("ReplicationConfiguration")
    rules = (config.get("Rule") or []) if isinstance(config, dict) else []
    foreign = []
    for r in [rules] if isinstance(rules, dict) else rules:
        if not isinstance(r, dict):
            continue
        destination = r.get("Destination") or {}
        account = destination.get("Account")
        target = str(destination.get("Bucket", "")).removeprefix("arn:aws:s3:::")
        if (account and account not in ctx.accounts) or (target and target not in ctx.buckets):
            foreign.append(destination.get("Bucket"))
    return Hit(bucket, "high" if foreign else None, {"foreign_destinations": foreign})


@rule("s3-versioning-suspended", "Versioning suspended or MFA delete disabled on a protected bucket", "high", S3,
      ["PutBucketVersioning"])
def s3_versioning_suspended(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    config = params(event).get("VersioningConfiguration") or {}
    if config.get("Status") in ("Suspended", "Disabled"):
        return Hit(bucket)
    if config.get("MfaDelete") == "Disabled":
        return Hit(bucket, "medium", {"MfaDelete": "Disabled"})
    return None


@rule("s3-bucket-deleted", "Protected bucket deleted", "critical", S3, ["DeleteBucket"])
def s3_bucket_deleted(event, ctx):
    bucket = bucket_of(event, ctx)
    return Hit(bucket) if bucket else None
