"""Trail health: the trail that feeds the audit exists, logs everything we need, and its logs are safe.

Checked on every run, each gap one finding (rule ``trail-health``):
the trail exists and is logging, is multi-region, has log file validation on, delivers to the
configured bucket; its event selectors (basic or advanced) log management events and the data events
of every protected table and of the backup and replica buckets; and the trail bucket is versioned,
ideally under Object Lock, with no lifecycle rule expiring logs sooner than ``min_log_retention_days``.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from dynamoguard.audit.event_selectors import management_events_off, uncovered_data_resources
from dynamoguard.audit.findings import Finding
from dynamoguard.aws import error_code


def _gap(severity: str, title: str, resource: str, **detail) -> Finding:
    return Finding(severity=severity, rule="trail-health", title=title, resource=resource, detail=detail)


def trail_health(cloudtrail, s3, trail_name: str, bucket: str, required: tuple[tuple[str, str], ...],
                 min_log_retention_days: int = 365) -> list[Finding]:
    """Findings for every gap in the trail ``trail_name`` and its bucket ``bucket``."""
    try:
        trail = cloudtrail.get_trail(Name=trail_name)["Trail"]
    except ClientError as error:
        if error_code(error) in ("TrailNotFoundException", "ResourceNotFoundException"):
            return [_gap("critical", "Trail does not exist", trail_name)]
        raise
    arn = trail.get("TrailARN", trail_name)
    findings = []
    if not cloudtrail.get_trail_status(Name=trail_name).get("IsLogging"):
        findings.append(_gap("critical", "Trail is not logging", arn))
    if not trail.get("IsMultiRegionTrail"):
        findings.append(_gap("medium", "Trail is not multi-region", arn))
    if not trail.get("LogFileValidationEnabled"):
        findings.append(_gap("high", "Log file validation is off", arn))
    if trail.get("S3BucketName") != bucket:
        findings.append(_gap("high", "Trail delivers to another bucket than the audited one", arn,
                             delivers_to=trail.get("S3BucketName"), audited=bucket))
    selectors = cloudtrail.get_event_selectors(TrailName=trail_name)
    basic, advanced = selectors.get("EventSelectors"), selectors.get("AdvancedEventSelectors")
    for missing in uncovered_data_resources(basic, advanced, required):
        findings.append(_gap("high", "Event selectors do not log required data events", missing))
    if management_events_off(basic, advanced):
        findings.append(_gap("critical", "Event selectors do not log management events", arn))
    findings.extend(bucket_protection(s3, bucket, min_log_retention_days))
    return findings


def bucket_protection(s3, bucket: str, min_log_retention_days: int) -> list[Finding]:
    """Gaps in how well the trail bucket keeps logs: versioning, Object Lock, short expiry."""
    resource = f"arn:aws:s3:::{bucket}"
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return [_gap("critical", "Trail bucket does not exist", resource)]
        raise
    findings = []
    if versioning != "Enabled":
        findings.append(_gap("medium", "Trail bucket is not versioned (logs can be overwritten or deleted)",
                             resource, status=versioning or "never enabled"))
    try:
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        locked = lock.get("ObjectLockEnabled") == "Enabled"
    except ClientError as error:
        if error_code(error) != "ObjectLockConfigurationNotFoundError":
            raise
        locked = False
    if not locked:
        findings.append(_gap("low", "Trail bucket has no Object Lock", resource))
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as error:
        if error_code(error) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        days = [d for d in ((rule.get("Expiration") or {}).get("Days"),
                            (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")) if d]
        if days and min(days) < min_log_retention_days:
            findings.append(_gap("high", "Trail bucket lifecycle expires logs too soon", resource,
                                 rule=rule.get("ID"), days=min(days), minimum=min_log_retention_days))
    return findings
