"""DynamoDB rules: the control plane of protected tables, and who reads or writes their data.

Event names and request fields: DynamoDB developer guide, "Logging DynamoDB operations by using AWS
CloudTrail" and "Understanding DynamoDB log file entries"; member names of the DynamoDB API reference
with the first letter lowered (``pointInTimeRecoverySpecification.recoveryPeriodInDays``,
``replicaUpdates[].delete.regionName``).
"""

from __future__ import annotations

from dynamoguard.audit.context import Context, principal_key
from dynamoguard.audit.records import (
    as_int,
    data_tables,
    foreign_grants,
    is_aws_service,
    is_false,
    is_select,
    params,
    policy_document,
    principal_arn,
    statement_tables,
    statements,
    table_of,
    tables_in,
)
from dynamoguard.audit.registry import Hit, rule
from dynamoguard.audit.screen import head_principal, head_resource_tables

DYNAMODB = "dynamodb.amazonaws.com"


def _table_hit(tables: list[str], severity: str | None = None, detail: dict | None = None) -> Hit | None:
    return Hit(tables[0], severity, detail, tables[0]) if tables else None


@rule("ddb-delete-table", "Protected DynamoDB table deleted", "critical", DYNAMODB, ["DeleteTable"])
def ddb_delete_table(event, ctx):
    return _table_hit(tables_in(event, ctx))


def _pitr_spec(event: dict) -> dict:
    spec = params(event).get("pointInTimeRecoverySpecification")
    return spec if isinstance(spec, dict) else {}


@rule("ddb-pitr-disabled", "Point-in-time recovery turned off on a protected table (restore points dropped)",
      "critical", DYNAMODB, ["UpdateContinuousBackups"])
def ddb_pitr_disabled(event, ctx):
    if is_false(_pitr_spec(event).get("pointInTimeRecoveryEnabled")):
        return _table_hit(tables_in(event, ctx))
    return None


@rule("ddb-pitr-period-cut", "Point-in-time recovery period of a protected table cut (older restore points "
      "dropped)", "high", DYNAMODB, ["UpdateContinuousBackups"])
def ddb_pitr_period_cut(event, ctx):
    spec = _pitr_spec(event)
    days = as_int(spec.get("recoveryPeriodInDays"))
    if is_false(spec.get("pointInTimeRecoveryEnabled")) or days is None or days >= ctx.min_pitr_days:
        return None
    return _table_hit(tables_in(event, ctx), detail={"recoveryPeriodInDays": days, "required": ctx.min_pitr_days})


@rule("ddb-delete-backup", "Backup of a protected table deleted", "critical", DYNAMODB, ["DeleteBackup"])
def ddb_delete_backup(event, ctx):
    arn = params(event).get("backupArn")
    table = table_of(arn, event, ctx)
    return Hit(arn, table=table) if table else None


@rule("ddb-deletion-protection-off", "Deletion protection turned off on a protected table", "high", DYNAMODB,
      ["UpdateTable"])
def ddb_deletion_protection_off(event, ctx):
    if is_false(params(event).get("deletionProtectionEnabled")):
        return _table_hit(tables_in(event, ctx))
    return None


def _deleted_replicas(p: dict) -> list[str]:
    regions = []
    for update in p.get("replicaUpdates") or ():
        if not isinstance(update, dict):
            continue
        delete = update.get("delete") or update.get("Delete")
        if isinstance(delete, dict):
            regions.append(str(delete.get("regionName") or delete.get("RegionName") or "?"))
    return regions


@rule("ddb-replica-deleted", "Global-table replica of a protected table deleted", "critical", DYNAMODB,
      ["UpdateTable", "UpdateGlobalTable"])
def ddb_replica_deleted(event, ctx):
    regions = _deleted_replicas(params(event))
    return _table_hit(tables_in(event, ctx), detail={"deleted_regions": regions}) if regions else None


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
    tables = tables_in(event, ctx)
    return Hit(str(p.get("tableArn") or p.get("tableName")), detail={"s3Bucket": bucket, "reasons": reasons},
               table=tables[0] if tables else None)


@rule("ddb-restore-not-allowed", "Restore or import by a principal not allowed to", "medium", DYNAMODB,
      ["RestoreTableToPointInTime", "RestoreTableFromBackup", "ImportTable"], judges_principal=True)
def ddb_restore_not_allowed(event, ctx):
    if principal_key(principal_arn(event)) in ctx.allowed_principals:
        return None
    p = params(event)
    sources = tables_in(event, ctx)
    creation = p.get("tableCreationParameters")
    target = p.get("targetTableName") or (creation.get("tableName") if isinstance(creation, dict) else None)
    # Restoring a protected table's data elsewhere copies it out of our control: high.
    return Hit(str(target or event.get("eventName")), "high" if sources else None, {"source": sources},
               sources[0] if sources else None)


@rule("ddb-resource-policy", "Resource policy of a protected table changed", "medium", DYNAMODB,
      ["PutResourcePolicy", "DeleteResourcePolicy"])
def ddb_resource_policy(event, ctx):
    tables = tables_in(event, ctx)
    if not tables:
        return None
    p = params(event)
    resource = p.get("resourceArn", tables[0])
    if event.get("eventName") == "PutResourcePolicy":
        policy = policy_document(p.get("policy"))
        foreign = foreign_grants(policy, ctx.accounts) if policy else ["<policy not logged>"]
        if foreign:
            return Hit(resource, "high", {"grants": foreign}, tables[0])
    return Hit(resource, table=tables[0])


# ---------------------------------------------------------------- data: who reads and writes protected tables

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "GetRecords")
PARTIQL = ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")
BULK_READS = ("Scan", "ExportTableToPointInTime")  # the whole table at once


def screen_data(head, ctx: Context) -> bool:
    """False when a data event cannot fire a data rule: CloudTrail lists its tables in ``resources[]``
    and the caller (not an AWS service) may touch every protected one among them."""
    identity = head.userIdentity
    if identity is not None and identity.type == "AWSService":
        return False
    tables = head_resource_tables(head, ctx)
    if tables is None:
        return True
    principal = head_principal(head)
    return any(not ctx.allowed(t, principal) for t in tables)


def _unlisted_tables(event: dict, ctx: Context, tables: list[str]) -> list[str]:
    principal = principal_arn(event)
    return [t for t in tables if not ctx.allowed(t, principal)]


def _partiql_tables(event: dict, ctx: Context, reads: bool) -> list[str]:
    """Protected tables the call's SELECT (``reads``) or other statements touch; all its tables if the
    statements are not logged."""
    tables = data_tables(event, ctx)
    texts = statements(event)
    if not texts:
        return tables
    named = {n for s in texts if is_select(s) == reads for n in statement_tables(s)}
    arn_named = {table_of(n, event, ctx) for n in named}
    return [t for t in tables if t in named or t in arn_named]


@rule("ddb-data-not-allowed", "Protected table data written or deleted by a principal not allowed", "high",
      DYNAMODB, WRITES + PARTIQL, judges_principal=True, screen=screen_data)
def ddb_data_not_allowed(event, ctx):
    if is_aws_service(event):
        return None
    name = event.get("eventName")
    tables = _partiql_tables(event, ctx, reads=False) if name in PARTIQL else data_tables(event, ctx)
    return _table_hit(_unlisted_tables(event, ctx, tables))


@rule("ddb-read-not-allowed", "Protected table data read by a principal not allowed", "medium", DYNAMODB,
      READS + PARTIQL + ("ExportTableToPointInTime",), judges_principal=True, screen=screen_data, grouped=True)
def ddb_read_not_allowed(event, ctx):
    if is_aws_service(event):
        return None
    name = event.get("eventName")
    if name in PARTIQL:
        tables = _partiql_tables(event, ctx, reads=True)
    elif name == "ExportTableToPointInTime":
        tables = tables_in(event, ctx)
    else:
        tables = data_tables(event, ctx)
    return _table_hit(_unlisted_tables(event, ctx, tables), "high" if name in BULK_READS else None)
