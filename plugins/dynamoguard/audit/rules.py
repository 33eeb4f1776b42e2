"""Detection rules over CloudTrail records, one small pure function each (Panther style).

A rule is registered for the ``(eventSource, eventName)`` pairs it looks at, with a default severity.
It takes the record and the :class:`Context` (what we protect) and returns a :class:`Hit` naming the
resource, or ``None``. :func:`evaluate` adds what every rule shares: a call that failed with an
access-denied error code is reported one severity lower (``outcome: denied``); a call that failed for
any other reason (missing trail, validation error) changed nothing and is not reported.

Event names are the ones CloudTrail logs (AWS docs), not API operation names: S3 logs
``PutBucketLifecycle``/``PutBucketReplication`` for PutBucketLifecycleConfiguration/PutBucketReplication,
and a permanent version delete is a ``DeleteObject`` record with ``requestParameters.versionId``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from dynamoguard.audit.findings import DENIED_CODES, Finding, lower

DYNAMODB = "dynamodb.amazonaws.com"
S3 = "s3.amazonaws.com"
KMS = "kms.amazonaws.com"
CLOUDTRAIL = "cloudtrail.amazonaws.com"


@dataclass(frozen=True)
class Context:
    """What the rules protect, built from the config by :func:`context_from_config`."""

    accounts: frozenset[str]
    source_account: str
    tables: dict[str, frozenset[str]]  # protected table name -> principals allowed to touch its data
    allowed_principals: frozenset[str]  # may restore/import (and touch any protected table's data)
    buckets: frozenset[str]  # backup, replica and trail buckets
    export_buckets: frozenset[str]  # where exports of our tables may go
    trail_names: frozenset[str]
    kms_keys: frozenset[str] = frozenset()  # key ids or ARNs; empty means every key is watched
    required_data_resources: tuple[tuple[str, str], ...] = ()  # (resources.type, ARN) our trail must log


def context_from_config(config) -> Context:
    audit = config.audit
    common = frozenset(audit.allowed_principals)
    accounts = {config.accounts.source.account_id, config.accounts.backup.account_id, *audit.accounts}
    if config.accounts.audit:
        accounts.add(config.accounts.audit.account_id)
    return Context(
        accounts=frozenset(accounts),
        source_account=config.accounts.source.account_id,
        tables={t.name: frozenset(t.allowed_principals) | common for t in config.tables},
        allowed_principals=common,
        buckets=frozenset({config.backup_bucket.name, config.replica_bucket.name, audit.trail_bucket}),
        export_buckets=frozenset({config.backup_bucket.name}),
        trail_names=frozenset({audit.trail_name}),
        kms_keys=frozenset(audit.kms_key_arns),
        required_data_resources=required_data_resources(config),
    )


def required_data_resources(config) -> tuple[tuple[str, str], ...]:
    """The data events our trail must capture: every protected table, the backup and replica buckets."""
    tables = [("AWS::DynamoDB::Table", config.table_arn(t.name)) for t in config.tables]
    buckets = [("AWS::S3::Object", f"arn:aws:s3:::{name}/")
               for name in (config.backup_bucket.name, config.replica_bucket.name)]
    return tuple(tables + buckets)


class Hit(NamedTuple):
    resource: str
    severity: str | None = None  # overrides the rule's default
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    keys: tuple[tuple[str, str], ...]
    func: Callable[[dict, Context], Hit | None]


REGISTRY: dict[tuple[str, str], list[Rule]] = {}
RULES: list[Rule] = []


def rule(rule_id: str, title: str, severity: str, source: str, names: Iterable[str]):
    """Register the decorated function for ``source`` and each of ``names``."""

    def register(func):
        keys = tuple((source, name) for name in names)
        entry = Rule(rule_id, title, severity, keys, func)
        RULES.append(entry)
        for key in keys:
            REGISTRY.setdefault(key, []).append(entry)
        return func

    return register


# ---------------------------------------------------------------- helpers


def params(event: dict) -> dict:
    return event.get("requestParameters") or {}


def principal_arn(event: dict) -> str | None:
    """The IAM identity behind the call: the role for an assumed-role session, else the ARN."""
    identity = event.get("userIdentity") or {}
    if identity.get("type") == "AssumedRole":
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        if issuer.get("arn"):
            return issuer["arn"]
    return identity.get("arn") or identity.get("invokedBy") or identity.get("principalId")


def is_aws_service(event: dict) -> bool:
    return (event.get("userIdentity") or {}).get("type") == "AWSService"


def _arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(region, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[3], parts[4], parts[5]


def table_of(value: str | None, event: dict, ctx: Context) -> str | None:
    """The protected table a name or ARN (table, index, stream or backup ARN) refers to, or None."""
    if not value:
        return None
    if value.startswith("arn:"):
        parts = _arn_parts(value)
        if not parts or parts[1] != ctx.source_account or not parts[2].startswith("table/"):
            return None
        name = parts[2].split("/")[1]
    else:
        if event.get("recipientAccountId", ctx.source_account) != ctx.source_account:
            return None
        name = value
    return name if name in ctx.tables else None


def tables_in(event: dict, ctx: Context) -> list[str]:
    """Protected tables an event touches, from ``resources[]`` and the request parameters."""
    found = []
    for resource in event.get("resources") or ():
        name = table_of(resource.get("ARN") or resource.get("arn"), event, ctx)
        if name and name not in found:
            found.append(name)
    p = params(event)
    transact = [op.get("tableName") for item in p.get("transactItems") or () if isinstance(item, dict)
                for op in item.values() if isinstance(op, dict)]
    for value in (p.get("tableName"), p.get("tableArn"), p.get("resourceArn"), p.get("backupArn"),
                  p.get("sourceTableArn"), p.get("sourceTableName"), *(p.get("requestItems") or {}), *transact):
        name = table_of(value, event, ctx) if isinstance(value, str) else None
        if name and name not in found:
            found.append(name)
    return found


def bucket_of(event: dict, ctx: Context) -> str | None:
    name = params(event).get("bucketName")
    return name if name in ctx.buckets else None


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _policy_document(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def foreign_grants(policy: dict, accounts: frozenset[str]) -> list[str]:
    """Principals outside ``accounts`` (or everyone) that an Allow statement of ``policy`` names."""
    from policyuniverse.policy import Policy

    try:
        parsed = Policy(policy)
    except Exception:  # a policy we cannot parse is reported as foreign
        return ["<unparseable policy>"]
    foreign = set()
    if parsed.is_internet_accessible():
        foreign.add("*")
    for who in parsed.whos_allowed():
        value = str(who.value)
        if who.category in ("principal", "account", "arn"):
            if value == "*":
                foreign.add("*")
                continue
            account = value if value.isdigit() else (_arn_parts(value) or ("", "", ""))[1]
            if account and account not in accounts:
                foreign.add(value)
    return sorted(foreign)


# ---------------------------------------------------------------- DynamoDB control plane


@rule("ddb-delete-table", "Protected DynamoDB table deleted", "high", DYNAMODB, ["DeleteTable"])
def ddb_delete_table(event, ctx):
    tables = tables_in(event, ctx)
    return Hit(tables[0]) if tables else None


@rule("ddb-pitr-disabled", "Point-in-time recovery turned off on a protected table", "high", DYNAMODB,
      ["UpdateContinuousBackups"])
def ddb_pitr_disabled(event, ctx):
    spec = params(event).get("pointInTimeRecoverySpecification") or {}
    tables = tables_in(event, ctx)
    if tables and _is_false(spec.get("pointInTimeRecoveryEnabled")):
        return Hit(tables[0])
    return None


@rule("ddb-delete-backup", "Backup of a protected table deleted", "high", DYNAMODB, ["DeleteBackup"])
def ddb_delete_backup(event, ctx):
    arn = params(event).get("backupArn")
    table = table_of(arn, event, ctx) if isinstance(arn, str) else None
    return Hit(arn) if table else None


@rule("ddb-deletion-protection-off", "Deletion protection turned off on a protected table", "high", DYNAMODB,
      ["UpdateTable"])
def ddb_deletion_protection_off(event, ctx):
    tables = tables_in(event, ctx)
    if tables and _is_false(params(event).get("deletionProtectionEnabled")):
        return Hit(tables[0])
    return None


@rule("ddb-export-foreign", "Table exported to a bucket of another account or not in the config", "high",
      DYNAMODB, ["ExportTableToPointInTime"])
def ddb_export_foreign(event, ctx):
    p = params(event)
    bucket, owner = p.get("s3Bucket"), p.get("s3BucketOwner")
    reasons = []
    if bucket not in ctx.export_buckets:
        reasons.append("bucket not in config")
    if owner and owner not in ctx.accounts:
        reasons.append(f"bucket owned by account {owner}")
    if not reasons:
        return None
    return Hit(str(p.get("tableArn") or p.get("tableName")), detail={"s3Bucket": bucket, "reasons": reasons})


@rule("ddb-restore-not-allowed", "Restore or import by a principal not allowed to", "medium", DYNAMODB,
      ["RestoreTableToPointInTime", "RestoreTableFromBackup", "ImportTable"])
def ddb_restore_not_allowed(event, ctx):
    if principal_arn(event) in ctx.allowed_principals:
        return None
    p = params(event)
    sources = tables_in(event, ctx)
    target = p.get("targetTableName") or (p.get("tableCreationParameters") or {}).get("tableName")
    # Restoring a protected table's data elsewhere copies it out of our control: high.
    return Hit(str(target or event.get("eventName")), "high" if sources else None, {"source": sources})


@rule("ddb-resource-policy", "Resource policy of a protected table changed", "medium", DYNAMODB,
      ["PutResourcePolicy", "DeleteResourcePolicy"])
def ddb_resource_policy(event, ctx):
    tables = tables_in(event, ctx)
    if not tables:
        return None
    p = params(event)
    if event.get("eventName") == "PutResourcePolicy":
        policy = _policy_document(p.get("policy"))
        foreign = foreign_grants(policy, ctx.accounts) if policy else ["<policy not logged>"]
        if foreign:
            return Hit(p.get("resourceArn", tables[0]), "high", {"grants": foreign})
    return Hit(p.get("resourceArn", tables[0]))


DATA_WRITES = ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems")
DATA_DELETES = ("DeleteItem",)
DATA_SCANS = ("Scan",)
DATA_PARTIQL = ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")


@rule("ddb-data-not-allowed", "Protected table data written, deleted or scanned by a principal not allowed",
      "high", DYNAMODB, DATA_WRITES + DATA_DELETES + DATA_SCANS + DATA_PARTIQL)
def ddb_data_not_allowed(event, ctx):
    if is_aws_service(event):
        return None
    principal = principal_arn(event)
    for table in tables_in(event, ctx):
        if principal not in ctx.tables[table]:
            severity = "medium" if event.get("eventName") in DATA_SCANS else None
            return Hit(table, severity)
    return None


# ---------------------------------------------------------------- S3: backup, replica and trail buckets


@rule("s3-object-deleted", "Object deleted in a protected bucket", "medium", S3, ["DeleteObject", "DeleteObjects"])
def s3_object_deleted(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    p = params(event)
    key = p.get("key") or ""
    # A version id or a multi-object delete can remove data for good; a plain delete adds a marker.
    permanent = bool(p.get("versionId")) or event.get("eventName") == "DeleteObjects"
    return Hit(f"{bucket}/{key}".rstrip("/"), "high" if permanent else None, {"versionId": p.get("versionId")})


@rule("s3-retention-changed", "Object retention changed in a protected bucket", "medium", S3,
      ["PutObjectRetention"])
def s3_retention_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    p = params(event)
    bypass = any(str(source.get(name, "")).lower() == "true"
                 for source in (p, event.get("additionalEventData") or {})
                 for name in ("x-amz-bypass-governance-retention", "bypassGovernanceRetention"))
    return Hit(f"{bucket}/{p.get('key', '')}", "high" if bypass else None, {"governance_bypass": bypass})


@rule("s3-lock-config-changed", "Object Lock configuration of a protected bucket changed", "high", S3,
      ["PutObjectLockConfiguration"])
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
        policy = _policy_document(params(event).get("bucketPolicy"))
        foreign = foreign_grants(policy, ctx.accounts) if policy else []
        if foreign:
            return Hit(bucket, "high", {"grants": foreign})
    return Hit(bucket)


def _lifecycle_rules(p: dict) -> list[dict]:
    config = p.get("LifecycleConfiguration") or p.get("lifecycleConfiguration") or {}
    rules = config.get("Rule") or config.get("rules") or []
    return [rules] if isinstance(rules, dict) else list(rules)


@rule("s3-lifecycle-changed", "Lifecycle of a protected bucket changed", "medium", S3, ["PutBucketLifecycle"])
def s3_lifecycle_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    expiring = [r.get("ID", "") for r in _lifecycle_rules(params(event))
                if r.get("Status") == "Enabled"
                and any(k in r for k in ("Expiration", "NoncurrentVersionExpiration"))]
    return Hit(bucket, "high" if expiring else None, {"expiring_rules": expiring})


@rule("s3-replication-changed", "Replication of a protected bucket changed", "medium", S3,
      ["PutBucketReplication", "DeleteBucketReplication"])
def s3_replication_changed(event, ctx):
    bucket = bucket_of(event, ctx)
    if not bucket:
        return None
    config = params(event).get("ReplicationConfiguration") or {}
    rules = config.get("Rule") or []
    foreign = []
    for r in [rules] if isinstance(rules, dict) else rules:
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


@rule("s3-bucket-deleted", "Protected bucket deleted", "high", S3, ["DeleteBucket"])
def s3_bucket_deleted(event, ctx):
    bucket = bucket_of(event, ctx)
    return Hit(bucket) if bucket else None


# ---------------------------------------------------------------- KMS


@rule("kms-key-loss", "KMS key disabled or scheduled for deletion", "high", KMS, ["DisableKey", "ScheduleKeyDeletion"])
def kms_key_loss(event, ctx):
    key = params(event).get("keyId") or ""
    arns = [r.get("ARN", "") for r in event.get("resources") or ()]
    if not ctx.kms_keys:
        return Hit(arns[0] if arns else key, "medium")
    watched = [k for k in (key, *arns) if k in ctx.kms_keys or k.rsplit("/", 1)[-1] in ctx.kms_keys]
    return Hit(watched[0]) if watched else None


# ---------------------------------------------------------------- CloudTrail


def our_trail(event: dict, ctx: Context) -> str | None:
    p = params(event)
    value = p.get("name") or p.get("trailName") or ""
    if value.startswith("arn:"):
        parts = _arn_parts(value)
        if not parts or parts[1] not in ctx.accounts:
            return None
        value = parts[2].removeprefix("trail/")
    elif event.get("recipientAccountId") and event["recipientAccountId"] not in ctx.accounts:
        return None
    return value if value in ctx.trail_names else None


@rule("trail-stopped", "Our CloudTrail trail stopped or deleted", "high", CLOUDTRAIL, ["StopLogging", "DeleteTrail"])
def trail_stopped(event, ctx):
    trail = our_trail(event, ctx)
    return Hit(trail) if trail else None


@rule("trail-updated", "Our CloudTrail trail's settings changed", "medium", CLOUDTRAIL, ["UpdateTrail"])
def trail_updated(event, ctx):
    trail = our_trail(event, ctx)
    if not trail:
        return None
    p = params(event)
    weakened = [k for k in ("enableLogFileValidation", "isMultiRegionTrail", "includeGlobalServiceEvents")
                if _is_false(p.get(k))]
    if p.get("s3BucketName"):
        weakened.append("s3BucketName")
    return Hit(trail, "high" if weakened else None, {"changed": sorted(k for k in p if k != "name")})


def _lower_keys(value: Any) -> Any:
    """lowerCamel keys everywhere, so API responses (PascalCase) and log records (lowerCamel) compare."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _basic_covers(selector: dict, kind: str, arn: str, read_only: bool) -> bool:
    if selector.get("readWriteType", "All") not in ("All", "ReadOnly" if read_only else "WriteOnly"):
        return False
    for resource in selector.get("dataResources") or ():
        if resource.get("type") != kind:
            continue
        for value in resource.get("values") or ():
            if value in (arn, arn.rstrip("/")) or value in ("arn:aws:s3", "arn:aws:s3:::", "arn:aws:dynamodb"):
                return True
            if kind == "AWS::S3::Object" and value.endswith("/") and arn.startswith(value):
                return True
    return False


_OPS = {
    "equals": lambda v, xs: v in xs,
    "notEquals": lambda v, xs: v not in xs,
    "startsWith": lambda v, xs: any(v.startswith(x) for x in xs),
    "notStartsWith": lambda v, xs: not any(v.startswith(x) for x in xs),
    "endsWith": lambda v, xs: any(v.endswith(x) for x in xs),
    "notEndsWith": lambda v, xs: not any(v.endswith(x) for x in xs),
}


def _advanced_covers(selector: dict, kind: str, arn: str, read_only: bool) -> bool:
    # A sample data event on the resource (for S3, an object in the bucket) must pass every field selector.
    sample = {"eventCategory": "Data", "resources.type": kind, "readOnly": "true" if read_only else "false",
              "resources.ARN": arn + "object" if kind == "AWS::S3::Object" else arn}
    fields = selector.get("fieldSelectors") or ()
    if not any(f.get("field") == "resources.type" for f in fields):
        return False
    for f in fields:
        value = sample.get(f.get("field"))
        if value is None:  # a condition on eventName, eventSource, ...: drops some of our events
            return False
        for op, check in _OPS.items():
            if f.get(op) is not None and not check(value, f[op]):
                return False
    return True


def uncovered_data_resources(event_selectors, advanced_event_selectors,
                             required: Iterable[tuple[str, str]]) -> list[str]:
    """Required ``(type, ARN)`` pairs whose reads or writes the selectors do not log (``ARN (reads)``...)."""
    basic = _lower_keys(event_selectors or [])
    advanced = _lower_keys(advanced_event_selectors or [])
    missing = []
    for kind, arn in required:
        for read_only, label in ((True, "reads"), (False, "writes")):
            if not any(_basic_covers(s, kind, arn, read_only) for s in basic) and not any(
                    _advanced_covers(s, kind, arn, read_only) for s in advanced):
                missing.append(f"{arn} ({label})")
    return missing


def management_events_off(event_selectors, advanced_event_selectors) -> bool:
    """True if the selectors no longer log management (control-plane) write events."""
    basic = _lower_keys(event_selectors or [])
    advanced = _lower_keys(advanced_event_selectors or [])
    if advanced:
        return not any(any(f.get("field") == "eventCategory" and "Management" in (f.get("equals") or ())
                           for f in s.get("fieldSelectors") or ()) for s in advanced)
    return bool(basic) and not any(s.get("includeManagementEvents", True) and
                                   s.get("readWriteType", "All") in ("All", "WriteOnly") for s in basic)


@rule("trail-selectors-drop-events", "Event selectors of our trail drop required events", "high", CLOUDTRAIL,
      ["PutEventSelectors"])
def trail_selectors_drop_events(event, ctx):
    trail = our_trail(event, ctx)
    if not trail:
        return None
    p = params(event)
    basic, advanced = p.get("eventSelectors"), p.get("advancedEventSelectors")
    missing = uncovered_data_resources(basic, advanced, ctx.required_data_resources)
    management_off = management_events_off(basic, advanced)
    if not missing and not management_off:
        return None
    return Hit(trail, detail={"uncovered": missing, "management_events_off": management_off})


# ---------------------------------------------------------------- evaluation


def evaluate(event: dict, rules: Iterable[Rule], ctx: Context, log_key: str | None = None) -> list[Finding]:
    """Findings of ``rules`` on one record (access-denied calls one severity lower, other failures none)."""
    error = event.get("errorCode")
    if error and error not in DENIED_CODES:
        return []
    found = []
    for entry in rules:
        hit = entry.func(event, ctx)
        if hit is None:
            continue
        severity = hit.severity or entry.severity
        found.append(Finding(
            severity=lower(severity) if error else severity,
            rule=entry.id,
            title=entry.title,
            resource=hit.resource or "",
            event_time=event.get("eventTime"),
            event_name=event.get("eventName"),
            principal=principal_arn(event),
            source_ip=event.get("sourceIPAddress"),
            event_id=event.get("eventID"),
            log_key=log_key,
            account=event.get("recipientAccountId"),
            region=event.get("awsRegion"),
            outcome="denied" if error else "success",
            detail=hit.detail or {},
        ))
    return found
